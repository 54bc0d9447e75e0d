"""linux/idmap.py's plan (which mounts are idmapped, with which mapping) and linux/mounts.py's retry
flags for bind remounts whose source has locked flags. Pure: no kernel."""
import pytest

from pyrunc.errors import InvalidSpec
from pyrunc.linux import idmap
from pyrunc.linux.mount_options import parse
from pyrunc.linux.mounts import _mount_flags, locked_retry_flags

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 0x400, 0x800, 0x200000, 0x1000000
ST_RELATIME = 0x1000
MAPS = [{"containerID": 0, "hostID": 1000, "size": 1}]
CTR = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _config(mounts, userns=None, maps=True):
    linux = {"namespaces": [{"type": "mount"}]}
    if userns is not None:
        linux["namespaces"].append(userns)
        if maps:
            linux["uidMappings"] = linux["gidMappings"] = CTR
    return {"mounts": mounts, "linux": linux}


def test_plain_mounts_are_not_idmapped():
    config = _config([{"destination": "/a", "source": "/x", "options": ["rbind"]}])
    assert not idmap.needed(config)
    assert idmap.plan(config, "/b") == []


def test_mount_mappings_win_and_recursion_follows_rbind_and_ridmap():
    config = _config([{"destination": "/a", "source": "rel", "options": ["rbind", "idmap"],
                       "uidMappings": MAPS, "gidMappings": MAPS},
                      {"destination": "/b", "source": "/x", "options": ["bind", "ridmap"]}], {"type": "user"})
    first, second = idmap.plan(config, "/bundle")
    assert (first.index, first.source, first.recursive_tree, first.recursive_idmap) == (0, "/bundle/rel", True, False)
    assert first.mapping == ("maps", MAPS, MAPS)
    assert (second.recursive_tree, second.recursive_idmap) == (False, True)
    assert second.mapping == ("maps", CTR, CTR)  # the container's user namespace mapping


def test_joined_user_namespace_is_used_directly():
    config = _config([{"destination": "/a", "source": "/x", "options": ["bind", "idmap"]}],
                     {"type": "user", "path": "/proc/7/ns/user"}, maps=False)
    assert idmap.plan(config, "/b")[0].mapping == ("userns", "/proc/7/ns/user")


@pytest.mark.parametrize("entry,userns,words", [
    ({"options": ["bind", "idmap"]}, None, "needs uidMappings and gidMappings"),
    ({"options": ["bind", "idmap"], "uidMappings": MAPS}, {"type": "user"}, "both"),
    ({"options": ["idmap"], "type": "tmpfs", "uidMappings": MAPS, "gidMappings": MAPS}, None, "bind mounts"),
    ({"options": ["bind"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}], "gidMappings": MAPS},
     None, "positive"),
])
def test_bad_idmapped_mounts(entry, userns, words):
    entry = dict(entry, destination="/a", source="/x")
    with pytest.raises(InvalidSpec) as e:
        idmap.plan(_config([entry], userns), "/b")
    assert "mounts[0]" in str(e.value) and words in str(e.value)


def test_statvfs_flags_to_mount_flags():
    assert _mount_flags(MS_NOSUID | MS_NODEV | ST_RELATIME) == MS_NOSUID | MS_NODEV | MS_RELATIME
    assert _mount_flags(MS_RDONLY | MS_NOATIME) == MS_RDONLY | MS_NOATIME
    assert _mount_flags(MS_NOEXEC) == MS_NOEXEC | MS_STRICTATIME  # neither noatime nor relatime


def test_retry_adds_the_sources_locked_flags():
    source = MS_NOSUID | MS_NODEV | MS_RELATIME
    assert locked_retry_flags(MS_RDONLY, 0, source) == MS_RDONLY | MS_NOSUID | MS_NODEV | MS_RELATIME
    # an atime option equal to the source's is fine
    assert locked_retry_flags(MS_RDONLY | MS_RELATIME, 0, source) == MS_RDONLY | MS_NOSUID | MS_NODEV | MS_RELATIME


@pytest.mark.parametrize("options,words", [(["bind", "ro", "suid"], "'suid'"), (["bind", "nosuid", "dev"], "'dev'"),
                                           (["bind", "ro", "noatime"], "atime")])
def test_retry_refuses_to_drop_what_the_config_asked_for(options, words):
    opts = parse(options)
    with pytest.raises(ValueError) as e:
        locked_retry_flags(opts.flags & ~0x5000, opts.cleared, MS_NOSUID | MS_NODEV | MS_RELATIME)
    assert words in str(e.value)


def test_parse_tracks_explicitly_cleared_flags():
    assert parse(["rw", "suid"]).cleared == MS_RDONLY | MS_NOSUID
    assert parse(["suid", "nosuid"]).cleared == 0  # the last word wins


@pytest.mark.parametrize("mount_type,data,expected", [
    ("tmpfs", "", 'context="system_u:object_r:container_file_t:s0"'),
    ("devpts", "newinstance,mode=0620", 'newinstance,mode=0620,context="system_u:object_r:container_file_t:s0"'),
    ("proc", "", ""), ("sysfs", "", ""), ("cgroup", "", ""), ("mqueue", "", ""),
])
def test_mount_label_as_context_option(mount_type, data, expected):
    from pyrunc.linux.lsm import mount_data_with_label
    assert mount_data_with_label(mount_type, data, "system_u:object_r:container_file_t:s0") == expected
    assert mount_data_with_label(mount_type, data, None) == data
