"""Parsing /proc/self/mountinfo and /proc/self/cgroup: hierarchies, options, mode, own cgroup."""
import pytest

import hosts
from pyrunc.cgroups import mountinfo as mi
from pyrunc.errors import StepError


def by_mountpoint(hierarchies):
    return {h.mountpoint: h for h in hierarchies}


def test_v1_hierarchies_controllers_names_and_options():
    hs = mi.cgroup_hierarchies(hosts.V1_MOUNTINFO)
    assert [h.mountpoint for h in hs] == [
        "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/net_cls,net_prio",
        "/sys/fs/cgroup/memory", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/blkio"]
    m = by_mountpoint(hs)
    systemd = m["/sys/fs/cgroup/systemd"]
    assert (systemd.fstype, systemd.controllers, systemd.name) == ("cgroup", [], "systemd")
    assert systemd.keys == ["name=systemd"]
    # xattr and release_agent are superblock flags, not controllers.
    assert systemd.mount_data() == "none,name=systemd"
    assert m["/sys/fs/cgroup/cpu,cpuacct"].controllers == ["cpu", "cpuacct"]
    assert m["/sys/fs/cgroup/cpu,cpuacct"].mount_data() == "cpu,cpuacct"
    assert m["/sys/fs/cgroup/cpuset"].controllers == ["cpuset"]  # clone_children is a flag
    assert all(h.version == "v1" for h in hs)
    assert mi.detect_mode(hs) == "v1"


def test_mounts_outside_root_are_ignored():
    hs = mi.cgroup_hierarchies(hosts.V1_MOUNTINFO)
    assert not [h for h in hs if h.mountpoint.startswith("/var/")]
    pids = by_mountpoint(hs)["/sys/fs/cgroup/pids"]
    assert pids.root == "/"


def test_hybrid():
    hs = mi.cgroup_hierarchies(hosts.HYBRID_MOUNTINFO)
    unified = by_mountpoint(hs)["/sys/fs/cgroup/unified"]
    assert unified.version == "v2" and unified.keys == [""] and unified.mount_data() == ""
    assert mi.detect_mode(hs) == "hybrid"


def test_v2_only():
    hs = mi.cgroup_hierarchies(hosts.V2_MOUNTINFO)
    assert len(hs) == 1 and hs[0].mountpoint == "/sys/fs/cgroup" and hs[0].version == "v2"
    assert mi.detect_mode(hs) == "v2"


def test_no_cgroups_is_an_error_naming_the_root():
    with pytest.raises(StepError, match="/sys/fs/cgroup"):
        mi.detect_mode(mi.cgroup_hierarchies("18 62 0:17 / /sys rw - sysfs sysfs rw\n"))


def test_custom_root():
    hs = mi.cgroup_hierarchies(hosts.HYBRID_MOUNTINFO, root="/sys/fs/cgroup/unified")
    assert [h.mountpoint for h in hs] == ["/sys/fs/cgroup/unified"]
    assert mi.detect_mode(hs) == "v2"


def test_overmount_hides_what_was_below():
    text = hosts.V2_MOUNTINFO + "90 24 0:60 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" \
        "91 90 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    hs = mi.cgroup_hierarchies(text)
    assert [(h.fstype, h.mountpoint) for h in hs] == [("cgroup", "/sys/fs/cgroup/memory")]


def test_same_hierarchy_mounted_twice_keeps_the_first():
    text = hosts.V1_MOUNTINFO + \
        "99 24 0:27 / /sys/fs/cgroup/memory2 rw - cgroup cgroup rw,memory\n"
    hs = mi.cgroup_hierarchies(text)
    assert [h.mountpoint for h in hs if "memory" in h.controllers] == ["/sys/fs/cgroup/memory"]


def test_octal_escapes_and_optional_fields():
    text = r"40 24 0:40 / /sys/fs/cgroup/a\040b rw,relatime shared:1 master:2 - cgroup cgroup rw,pids" "\n"
    (h,) = mi.cgroup_hierarchies(text)
    assert h.mountpoint == "/sys/fs/cgroup/a b" and h.controllers == ["pids"]
    assert mi.unescape(r"x\134y\011") == "x\\y\t"
    assert mi.unescape("plain\\12") == "plain\\12"  # not a full escape: left alone


def test_malformed_mountinfo():
    with pytest.raises(StepError, match="parse mountinfo"):
        mi.parse_mountinfo("1 2 3\n")


def test_parse_self_cgroup():
    own = mi.parse_self_cgroup(hosts.HYBRID_SELF_CGROUP)
    assert own["cpu"] == own["cpuacct"] == "/user.slice"
    assert own["name=systemd"] == "/user.slice/user-1000.slice/session-3.scope"
    assert own[""] == "/user.slice/user-1000.slice/session-3.scope"
    # A cgroup path may contain ':'.
    assert mi.parse_self_cgroup("0::/a:b\n") == {"": "/a:b"}
    with pytest.raises(StepError):
        mi.parse_self_cgroup("garbage\n")


def test_own_cgroup_dir():
    hs = by_mountpoint(mi.cgroup_hierarchies(hosts.V1_MOUNTINFO))
    own = mi.parse_self_cgroup(hosts.V1_SELF_CGROUP)
    assert mi.own_cgroup_dir(hs["/sys/fs/cgroup/cpu,cpuacct"], own) == \
        "/sys/fs/cgroup/cpu,cpuacct/user.slice"
    assert mi.own_cgroup_dir(hs["/sys/fs/cgroup/cpuset"], own) == "/sys/fs/cgroup/cpuset"


def test_own_cgroup_dir_below_a_bind_mounted_subtree():
    hs = by_mountpoint(mi.cgroup_hierarchies(hosts.DIND_V1_MOUNTINFO))
    own = mi.parse_self_cgroup(hosts.DIND_V1_SELF_CGROUP)
    assert mi.own_cgroup_dir(hs["/sys/fs/cgroup/devices"], own) == "/sys/fs/cgroup/devices"
    assert mi.own_cgroup_dir(hs["/sys/fs/cgroup/memory"], own) == "/sys/fs/cgroup/memory/sub"
    with pytest.raises(StepError, match="outside the mounted sub-tree"):
        mi.own_cgroup_dir(hs["/sys/fs/cgroup/memory"], {"memory": "/docker/other"})
    with pytest.raises(StepError, match="no entry for memory"):
        mi.own_cgroup_dir(hs["/sys/fs/cgroup/memory"], {})


def test_hierarchy_dict_round_trip():
    for h in mi.cgroup_hierarchies(hosts.HYBRID_MOUNTINFO):
        assert mi.Hierarchy.from_dict(h.to_dict()) == h
