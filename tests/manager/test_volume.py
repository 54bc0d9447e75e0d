"""Named volumes: Docker's layout, names, options, filters, rm/prune rules (Docker 20.10, checked
against a private dockerd), copy-up from an image root that tries to escape, crash leftovers."""
import json
import os
import stat
import subprocess
import sys

import pytest

from pyctr.cli.volumes import human_size
from pyctr.fs.remove import remove_tree
from pyctr.volume.errors import NoSuchVolume, VolumeError, VolumeInUse
from pyctr.volume.store import ANONYMOUS_LABEL, VolumeStore

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def vs(tmp_path):
    users = {}
    store = VolumeStore(str(tmp_path / "root"), users=lambda: users)
    store.test_users = users
    yield store
    for name in store.names():  # a tmpfs volume is mounted: never leave it behind
        store._unmount(name)


def test_layout_and_inspect(vs):
    vol, created = vs.create("data", labels={"z": "last", "a": "first"})
    assert created
    d = vs.dir("data")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o701
    assert stat.S_IMODE(os.stat(os.path.join(d, "_data")).st_mode) == 0o755
    assert vol["Mountpoint"] == os.path.join(d, "_data")
    assert list(vol) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert (vol["Driver"], vol["Scope"], vol["Options"], list(vol["Labels"])) == ("local", "local", None, ["a", "z"])
    # an existing name: returned as it is (Docker ignores new labels then)
    again, created = vs.create("data", labels={"other": "1"})
    assert not created and again["Labels"] == {"a": "first", "z": "last"}


def test_anonymous_volume_name_and_label(vs):
    vol, _ = vs.create()
    assert len(vol["Name"]) == 64 and all(c in "0123456789abcdef" for c in vol["Name"])
    assert vol["Labels"] == {ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize("name,message", [
    ("y", "create y: volume name is too short, names should be at least two alphanumeric characters"),
    ("bad/name", 'create bad/name: "bad/name" includes invalid characters for a local volume name, only '
                 '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'),
    ("../x", None), (".hidden", None), ("-x", None), ("a\nb", None),
])
def test_bad_names(vs, name, message):
    with pytest.raises(VolumeError) as e:
        vs.create(name)
    if message:
        assert str(e.value) == message
    assert os.listdir(vs.base) in ([], ["lock"])


@pytest.mark.parametrize("opts,ok", [
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, True),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=64m,mode=1777,uid=1000"}, True),
    ({"type": "none", "o": "bind", "device": "/srv"}, True),
    ({"bogus": "1"}, False),
    ({"type": "nfs", "device": ":/export", "o": "addr=1.2.3.4"}, False),
    ({"type": "ext4", "device": "/dev/vda"}, False),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=1m,exec,,context=x"}, False),
    ({"type": "none", "o": "bind", "device": "relative"}, False),
])
def test_driver_options(vs, opts, ok):
    if ok:
        assert vs.create("v1", options=opts)[0]["Options"] == dict(sorted(opts.items()))
    else:
        with pytest.raises(VolumeError):
            vs.create("v1", options=opts)
        assert vs.names() == []


def test_other_driver_refused(vs):
    with pytest.raises(VolumeError, match='plugin "other" not found'):
        vs.create("x1", driver="other")


def test_filters(vs):
    vs.create("data", labels={"z": "last", "a": "first"})
    vs.create("tv")
    vs.create("other", labels={"z": "x"})
    vs.test_users["data"] = ["c" * 64]
    names = lambda *f: [v["Name"] for v in vs.list(f)]  # noqa: E731
    assert names() == ["data", "other", "tv"]
    assert names("dangling=true") == ["other", "tv"]
    assert names("dangling=false") == ["data"]
    assert names("name=t") == ["data", "other", "tv"]
    assert names("name=da") == ["data"]
    assert names("name=^t") == ["tv"] and names("name=a$") == ["data"]   # a regexp, as Docker's
    assert names("name=[") == []
    assert names("label=z") == ["data", "other"]
    assert names("label=z=last") == ["data"]
    assert names("label=z", "label=a") == ["data"]          # same key: all labels must match
    assert names("name=tv", "name=other") == ["other", "tv"]  # same key: any name
    assert names("driver=local", "dangling=1") == ["other", "tv"]
    with pytest.raises(VolumeError, match="Invalid filter 'bogus'"):
        vs.list(["bogus=1"])
    with pytest.raises(VolumeError, match=r"Invalid filter 'dangling=\[maybe\]'"):
        vs.list(["dangling=maybe"])


def test_remove_in_use_and_force(vs):
    vs.create("data")
    cid = "b" * 64
    vs.test_users["data"] = [cid]
    for force in (False, True):  # Docker: -f does not remove a volume in use either
        with pytest.raises(VolumeInUse) as e:
            vs.remove("data", force=force)
        assert str(e.value) == f"remove data: volume is in use - [{cid}]"
    vs.test_users.clear()
    vs.remove("data")
    assert vs.names() == []
    with pytest.raises(NoSuchVolume, match="get data: no such volume"):
        vs.remove("data")
    vs.remove("data", force=True)


def test_prune_is_docker_20_10(vs):
    """20.10 (Debian's docker.io): every unused volume without driver options, named ones too;
    label filters narrow it; reclaimed space is the files' sizes."""
    vs.create("plainnamed")
    vs.create("labelled", labels={"keep": "no"})
    vs.create("used")
    vs.create("tv", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    anon = vs.create()[0]["Name"]
    vs.test_users["used"] = ["a" * 64]
    with open(os.path.join(vs.mountpoint("plainnamed"), "f"), "wb") as f:
        f.write(b"\0" * 123456)
    removed, reclaimed = vs.prune(["label!=keep"])
    assert sorted(removed) == sorted(["plainnamed", anon])
    assert reclaimed == 123456 and human_size(reclaimed) == "123.5kB"
    removed, _ = vs.prune()
    assert removed == ["labelled"]
    assert vs.names() == ["tv", "used"]
    with pytest.raises(VolumeError):
        vs.prune(["dangling=true"])


@pytest.mark.parametrize("n,text", [(0, "0B"), (999, "999B"), (1000, "1kB"), (123456, "123.5kB"),
                                    (5 * 10 ** 9, "5GB")])
def test_human_size(n, text):
    assert human_size(n) == text


def test_tmpfs_volume_mounts_and_unmounts(vs):
    vs.create("tv", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    mp = vs.ensure_mounted("tv")
    assert vs.ensure_mounted("tv") == mp  # once
    with open("/proc/self/mountinfo") as f:
        assert sum(1 for line in f if line.split()[4] == mp) == 1
    st = os.statvfs(mp)
    assert st.f_blocks * st.f_frsize == 1 << 20
    vs.remove("tv")
    with open("/proc/self/mountinfo") as f:
        assert mp not in f.read()


def test_interrupted_create_and_remove_are_cleaned(vs):
    os.makedirs(os.path.join(vs.base, ".new-half-123", "_data"))
    vs.create("whole")
    os.rename(vs.dir("whole"), os.path.join(vs.base, ".gone-whole-1"))
    with vs:
        pass
    assert sorted(os.listdir(vs.base)) == ["lock"]


# --- copy-up --------------------------------------------------------------------------------------
def _image_root(tmp_path):
    root = tmp_path / "image"
    etc = root / "etc"
    os.makedirs(etc / "sub")
    (etc / "conf").write_text("hello\n")
    os.chown(etc / "conf", 1000, 1001)
    os.chmod(etc / "conf", 0o640)
    os.link(etc / "conf", etc / "hard")
    os.symlink("/etc/passwd", etc / "abs-link")
    os.symlink("../../../../../../etc/shadow", etc / "rel-link")
    os.setxattr(etc / "conf", "user.note", b"\xffbinary")
    os.chmod(etc, 0o750)
    os.chown(etc, 0, 42)
    os.mkfifo(etc / "fifo")
    # the destination itself a symlink that would point the copy at the host: resolved in the root
    os.symlink("/etc", root / "etclink")
    os.symlink("/../../../../", root / "escape")
    return root


def test_copy_up_keeps_metadata_and_stays_in_root(vs, tmp_path):
    root = _image_root(tmp_path)
    vs.create("v1")
    assert vs.copy_up("v1", str(root), "/etclink")    # = /etc inside the image root
    data = vs.mountpoint("v1")
    assert sorted(os.listdir(data)) == ["abs-link", "conf", "fifo", "hard", "rel-link", "sub"]
    st = os.stat(os.path.join(data, "conf"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_nlink) == (1000, 1001, 0o640, 2)
    assert os.path.samefile(os.path.join(data, "conf"), os.path.join(data, "hard"))
    assert os.getxattr(os.path.join(data, "conf"), "user.note") == b"\xffbinary"
    assert os.readlink(os.path.join(data, "abs-link")) == "/etc/passwd"   # copied, not followed
    assert stat.S_ISFIFO(os.lstat(os.path.join(data, "fifo")).st_mode)
    root_st = os.stat(data)
    assert (root_st.st_gid, stat.S_IMODE(root_st.st_mode)) == (42, 0o750)   # the image dir's owner/mode
    # not empty any more: a second copy-up changes nothing
    os.unlink(os.path.join(data, "conf"))
    assert not vs.copy_up("v1", str(root), "/etc")
    assert not os.path.exists(os.path.join(data, "conf"))


def test_copy_up_never_reads_outside_the_root(vs, tmp_path):
    root = _image_root(tmp_path)
    vs.create("v2")
    # /escape -> /../../../../ resolves to the image root itself, not the host's /
    assert vs.copy_up("v2", str(root), "/escape")
    assert sorted(os.listdir(vs.mountpoint("v2"))) == ["escape", "etc", "etclink"]
    vs.create("v3")
    assert not vs.copy_up("v3", str(root), "/nonexistent")
    assert not vs.copy_up("v3", str(root), "/etc/conf")  # a file: nothing to copy into a volume
    assert os.listdir(vs.mountpoint("v3")) == []


def test_copy_up_of_a_deep_tree(vs, tmp_path):
    """1500 levels: no recursion limit, no path-length limit (every open is relative to its parent)."""
    root = tmp_path / "deep"
    os.makedirs(root / "d")
    try:
        _deep_copy_up(vs, root)
    finally:
        remove_tree(str(root))  # pytest's own cleanup (shutil.rmtree) would hit the recursion limit


def _deep_copy_up(vs, root):
    fd = os.open(root / "d", os.O_RDONLY | os.O_DIRECTORY)
    fds = [fd]
    for _ in range(1500):
        os.mkdir("abcdefgh", dir_fd=fds[-1])
        fds.append(os.open("abcdefgh", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
    with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fds[-1]), "w") as f:
        f.write("x")
    for f in fds:
        os.close(f)
    vs.create("deep")
    assert vs.copy_up("deep", str(root), "/d")
    fd = os.open(vs.mountpoint("deep"), os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:
        while "abcdefgh" in os.listdir(fd):
            nfd = os.open("abcdefgh", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = nfd, depth + 1
        assert depth == 1500 and os.listdir(fd) == ["leaf"]
    finally:
        os.close(fd)
    # removal of such a tree works too
    vs.remove("deep")


def test_cli_outputs(tmp_path):
    root = str(tmp_path / "r")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "manager"), os.path.join(REPO, "runtime")]))

    def pyctr(*args, input=None):
        return subprocess.run([sys.executable, "-m", "pyctr", "--root", root, "volume", *args],
                              capture_output=True, text=True, env=env, input=input, timeout=60)
    assert pyctr("create", "--label", "z=last", "--label", "a=first", "data").stdout == "data\n"
    assert pyctr("create", "tv", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m").returncode == 0
    assert pyctr("ls").stdout == "DRIVER    VOLUME NAME\nlocal     data\nlocal     tv\n"
    assert pyctr("ls", "-q").stdout == "data\ntv\n"
    assert pyctr("ls", "--format", "{{.Name}}:{{.Labels}}:{{.Label \"z\"}}").stdout == "data:a=first,z=last:last\ntv::\n"
    assert json.loads(pyctr("ls", "--format", "json").stdout.splitlines()[0]) == {
        "Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "a=first,z=last", "Links": "N/A",
        "Mountpoint": os.path.join(root, "volumes", "data", "_data"), "Name": "data", "Scope": "local",
        "Size": "N/A", "Status": "N/A"}
    out = json.loads(pyctr("inspect", "data").stdout)
    assert out[0]["Labels"] == {"a": "first", "z": "last"} and out[0]["Options"] is None
    # Docker's typed struct: a nil map prints map[], index of it is ""
    cp = pyctr("inspect", "-f", '{{.Options}}|{{index .Labels "q"}}|{{json .Options}}', "data", "tv")
    assert cp.stdout == ("map[]||null\n"
                         "map[device:tmpfs o:size=1m type:tmpfs]||{\"device\":\"tmpfs\",\"o\":\"size=1m\",\"type\":\"tmpfs\"}\n")
    cp = pyctr("inspect", "data", "nosuch")
    assert cp.returncode == 1 and "Error: get nosuch: no such volume" in cp.stderr and json.loads(cp.stdout)
    cp = pyctr("inspect", "-f", "{{.Name.X}}", "data")
    assert cp.returncode == 1 and "template parsing error" in cp.stderr and "Traceback" not in cp.stderr
    cp = pyctr("ls", "--bogus")
    assert cp.returncode == 125
    assert pyctr("prune", input="n\n").stdout.startswith("WARNING! This will remove all local volumes")
    assert pyctr("ls", "-q").stdout == "data\ntv\n"
    cp = pyctr("prune", "-f")
    assert cp.stdout == "Deleted Volumes:\ndata\n\nTotal reclaimed space: 0B\n"
    assert pyctr("rm", "tv", "nosuch").returncode == 1
    assert pyctr("rm", "-f", "nosuch").stdout == "nosuch\n"
    assert pyctr("ls", "-q").stdout == ""


def test_rm_and_prune_hold_the_guard(tmp_path):
    """The container store's lock is held around the in-use check and the removal: a create
    cannot take the volume in between."""
    held = []

    class Guard:
        def __enter__(self):
            held.append("in")

        def __exit__(self, *_):
            held.append("out")
    vs = VolumeStore(str(tmp_path / "root"), users=lambda: {"v2": ["c" * 64]} if held[-1:] == ["in"] else {},
                     guard=Guard())
    vs.create("v1")
    vs.create("v2")
    with pytest.raises(VolumeInUse):
        vs.remove("v2")
    assert vs.prune() == (["v1"], 0)
    assert held == ["in", "out", "in", "out"]
