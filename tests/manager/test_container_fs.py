"""What reads and writes a container's files, on synthetic overlay layers (no container needed):
diff (whiteouts, opaque directories, stubs), the commit layer tar (round trip through pyctr's own
layer applier), Dockerfile changes, cp's rules, the cp extractor against hostile archives, and
trees deeper than Python's recursion limit."""
import io
import os
import stat
import tarfile

import pytest

from pyctr.cli.fsverbs import split_cp_arg
from pyctr.container.changes import apply_changes
from pyctr.container.cp import _Source, plan
from pyctr.container.diff import changes
from pyctr.container.errors import CommandError, ContainerError
from pyctr.fs.remove import remove_tree
from pyctr.fs.tarwrite import TarWriter
from pyctr.fs.untar import ExtractError, Extractor
from pyctr.image.layer import apply_layer

STUBS = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/dev", "/data"}


def _whiteout(path):
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


@pytest.fixture
def layers(tmp_path):
    """An image tree and a container's upper dir over it, with every kind of change."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "bin", "var/cache", "var/log", "proc", "dev", "usr/share", "data"):
        os.makedirs(lower / d)
    (lower / "etc" / "passwd").write_text("root\n")
    (lower / "etc" / "hosts").write_text("")
    (lower / "bin" / "ls").write_text("ls")
    (lower / "var" / "cache" / "old").write_text("old")
    (lower / "usr" / "share" / "doc").write_text("doc")
    # upper: /etc/passwd changed, /etc/new added, /bin/ls deleted, /var/cache made opaque (rm -rf +
    # mkdir) with a new file, /usr/share copied up with only its mode changed, stubs the runtime
    # made (/etc/hostname empty, /proc, /data a volume's mount point), a new tree /opt/a/b
    for d in ("etc", "bin", "var/cache", "usr/share", "proc", "opt/a/b", "data", "dev"):
        os.makedirs(upper / d)
    (upper / "etc" / "passwd").write_text("root\nnew\n")
    (upper / "etc" / "new").write_text("n")
    (upper / "etc" / "hostname").write_text("")
    _whiteout(upper / "bin" / "ls")
    os.setxattr(upper / "var" / "cache", "trusted.overlay.opaque", b"y")
    (upper / "var" / "cache" / "fresh").write_text("f")
    os.chmod(upper / "usr" / "share", 0o700)
    (upper / "opt" / "a" / "b" / "f").write_text("f")
    os.link(upper / "opt" / "a" / "b" / "f", upper / "opt" / "hard")
    os.setxattr(upper / "etc" / "new", "user.k", b"\x00\xffv")
    return str(lower), str(upper)


def test_diff(layers):
    lower, upper = layers
    assert changes(upper, lower, STUBS) == [
        ("D", "/bin/ls"),
        ("C", "/bin"),
    ][::-1] + [
        ("C", "/etc"), ("A", "/etc/new"), ("C", "/etc/passwd"),
        ("A", "/opt"), ("A", "/opt/a"), ("A", "/opt/a/b"), ("A", "/opt/a/b/f"), ("A", "/opt/hard"),
        ("C", "/usr"), ("C", "/usr/share"),
        ("C", "/var"), ("C", "/var/cache"), ("A", "/var/cache/fresh"),
    ]


def test_diff_keeps_a_stub_with_content(layers):
    lower, upper = layers
    with open(os.path.join(upper, "etc", "hostname"), "w") as f:
        f.write("written into the layer itself\n")
    assert ("A", "/etc/hostname") in changes(upper, lower, STUBS)


def test_diff_does_not_follow_image_symlinks(tmp_path):
    """/etc in the image is a symlink to the host's /etc: /etc/passwd of the upper is new."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    os.makedirs(lower)
    os.symlink("/etc", lower / "etc")
    os.makedirs(upper / "etc")
    (upper / "etc" / "passwd").write_text("x")
    assert changes(str(upper), str(lower)) == [("C", "/etc"), ("A", "/etc/passwd")]


def _layer_tar(upper, stubs=()):
    buf = io.BytesIO()
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY)
    try:
        tw = TarWriter(buf)
        tw.add_tree(fd, skip=lambda p, st: p in stubs and (stat.S_ISDIR(st.st_mode) or st.st_size == 0),
                    overlay=True)
        tw.close()
    finally:
        os.close(fd)
    return buf.getvalue()


def test_commit_layer_tar_is_docker_layer_format(layers, tmp_path):
    _, upper = layers
    data = _layer_tar(upper, STUBS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf}
    names = list(members)
    assert "bin/.wh.ls" in names and members["bin/.wh.ls"].isreg() and members["bin/.wh.ls"].size == 0
    assert "var/cache/.wh..wh..opq" in names
    # (tarfile drops the trailing '/' of directory names when reading; they are written with it)
    assert data.count(b"var/cache/\0") == 1
    assert names.index("var/cache") < names.index("var/cache/.wh..wh..opq") < names.index("var/cache/fresh")
    assert "etc/hostname" not in names and "proc" not in names and "data" not in names
    assert members["opt/hard"].islnk() and members["opt/hard"].linkname == "opt/a/b/f"
    assert members["etc/new"].pax_headers["SCHILY.xattr.user.k"].encode("utf-8", "surrogateescape") == b"\x00\xffv"
    assert not any("trusted.overlay" in k for m in members.values() for k in m.pax_headers)
    # pyctr's image layer applier takes it back: the same whiteout char device, opaque xattr, link
    out = tmp_path / "applied"
    os.makedirs(out)
    apply_layer(io.BytesIO(data), str(out))
    st = os.lstat(out / "bin" / "ls")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(out / "var" / "cache", "trusted.overlay.opaque") == b"y"
    assert os.path.samefile(out / "opt" / "hard", out / "opt" / "a" / "b" / "f")
    assert stat.S_IMODE(os.stat(out / "usr" / "share").st_mode) == 0o700


@pytest.mark.parametrize("lines,expected", [
    (['CMD ["echo","hi"]'], {"Cmd": ["echo", "hi"]}),
    (["CMD echo hi"], {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
    (['ENTRYPOINT ["/e"]'], {"Entrypoint": ["/e"], "Cmd": None}),            # drops the inherited CMD
    (['CMD ["c"]', 'ENTRYPOINT ["/e"]'], {"Entrypoint": ["/e"], "Cmd": ["c"]}),
    (['ENV A=1 B="two words"'], {"Env": ["PATH=/bin", "A=1", "B=two words"]}),
    (["ENV PATH /usr/bin:/bin"], {"Env": ["PATH=/usr/bin:/bin"]}),            # legacy form, replaces
    (["EXPOSE 80 53/udp"], {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
    (['LABEL a=b "c d"="e f"'], {"Labels": {"a": "b", "c d": "e f"}}),
    (['VOLUME ["/v1", "/v2"]', "VOLUME /v3"], {"Volumes": {"/v1": {}, "/v2": {}, "/v3": {}}}),
    (["WORKDIR /a", "WORKDIR b"], {"WorkingDir": "/a/b"}),
    (["USER 1000:1000"], {"User": "1000:1000"}),
    (["STOPSIGNAL SIGUSR1"], {"StopSignal": "SIGUSR1"}),
    (["ONBUILD RUN make"], {"OnBuild": ["RUN make"]}),
    (["cmd lower-case is fine"], {"Cmd": ["/bin/sh", "-c", "lower-case is fine"]}),
])
def test_changes(lines, expected):
    base = {"Env": ["PATH=/bin"], "Cmd": ["sh"]}
    cfg = apply_changes(base, lines)
    for key, value in expected.items():
        assert cfg[key] == value
    assert base == {"Env": ["PATH=/bin"], "Cmd": ["sh"]}   # not modified in place


@pytest.mark.parametrize("line", ["FROM busybox", "RUN make", "ONBUILD FROM x", "ENV", "EXPOSE http",
                                  "USER", 'ENV a="unterminated', "LABEL =x"])
def test_bad_changes(line):
    with pytest.raises(ContainerError):
        apply_changes({}, [line])


class _St:
    def __init__(self, mode):
        self.st_mode = mode


def _src(kind, base="src"):
    return _Source(-1, None, _St(stat.S_IFDIR if kind == "dir" else stat.S_IFREG), base)


DIR, FILE = _St(stat.S_IFDIR | 0o755), _St(stat.S_IFREG | 0o644)


@pytest.mark.parametrize("src,src_path,dest_st,dest,expected", [
    (_src("file"), "/src", None, "/d/new", ("/d", "new", False)),
    (_src("file"), "/src", FILE, "/d/f", ("/d", "f", False)),
    (_src("file"), "/src", DIR, "/d", ("/d", "src", False)),
    (_src("dir"), "/src", None, "/d/new", ("/d", "new", False)),
    (_src("dir"), "/src", DIR, "/d", ("/d", "src", False)),
    (_src("dir"), "/src/.", DIR, "/d", ("/", "d", True)),
    (_src("dir", ""), "/", DIR, "/d", ("/", "d", True)),
])
def test_cp_rules(src, src_path, dest_st, dest, expected):
    assert plan(src, src_path, dest_st, dest) == expected


@pytest.mark.parametrize("src,dest_st,dest,message", [
    (_src("file"), None, "/d/missing/", "no such directory"),
    (_src("dir"), FILE, "/d/f", "cannot copy directory"),
])
def test_cp_rule_errors(src, dest_st, dest, message):
    with pytest.raises(CommandError, match=message):
        plan(src, "/src", dest_st, dest)


@pytest.mark.parametrize("arg,expected", [
    ("c1:/etc", ("c1", "/etc")), ("./a:b", (None, "./a:b")), ("/x:y", (None, "/x:y")), ("file", (None, "file")),
    ("c1:", ("c1", "")), ("-", (None, "-")),
])
def test_split_cp_arg(arg, expected):
    assert split_cp_arg(arg) == expected


def _tar(*entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = extra
                tf.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(extra)
                tf.addfile(info, io.BytesIO(extra))
            else:
                tf.addfile(info)
    buf.seek(0)
    return buf


def _extract(dest, stream, owner=(0, 0)):
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        Extractor(fd, owner).run(stream)
    finally:
        os.close(fd)


@pytest.mark.parametrize("entries", [
    [("../escape", tarfile.REGTYPE, b"x")],
    [("a/../../escape", tarfile.REGTYPE, b"x")],
    [("link", tarfile.SYMTYPE, "/"), ("link/escape", tarfile.REGTYPE, b"x")],
    [("link", tarfile.SYMTYPE, "../../.."), ("link/tmp/escape", tarfile.REGTYPE, b"x")],
    [("hard", tarfile.LNKTYPE, "../outside")],
    [("d", tarfile.SYMTYPE, "/tmp"), ("d/", tarfile.DIRTYPE, None)],
])
def test_extract_refuses_hostile_archives(tmp_path, entries):
    dest = tmp_path / "dest"
    os.makedirs(dest)
    (tmp_path / "outside").write_text("host file")
    with pytest.raises(ExtractError):
        _extract(str(dest), _tar(*entries))
    assert (tmp_path / "outside").read_text() == "host file"
    assert not os.path.exists(tmp_path / "escape") and not os.path.exists("/tmp/escape")


def test_extract_does_not_write_through_a_symlink_in_the_destination(tmp_path):
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    os.makedirs(dest)
    os.makedirs(elsewhere)
    os.symlink(str(elsewhere), dest / "sub")
    with pytest.raises(ExtractError, match="symbolic link"):
        _extract(str(dest), _tar(("sub/f", tarfile.REGTYPE, b"x")))
    assert os.listdir(elsewhere) == []


def test_extract_overwrites_files_not_directories(tmp_path):
    dest = tmp_path / "dest"
    os.makedirs(dest / "dir")
    (dest / "f").write_text("old")
    _extract(str(dest), _tar(("f", tarfile.REGTYPE, b"new")))
    assert (dest / "f").read_text() == "new"
    with pytest.raises(ExtractError, match="cannot overwrite directory"):
        _extract(str(dest), _tar(("dir", tarfile.REGTYPE, b"x")))
    with pytest.raises(ExtractError, match="cannot overwrite non-directory"):
        _extract(str(dest), _tar(("f/", tarfile.DIRTYPE, None)))


def test_deep_tree_round_trip(tmp_path):
    """2000 levels through TarWriter and Extractor: no recursion, no path-length limit."""
    src, dest = tmp_path / "src", tmp_path / "dest"
    os.makedirs(src)
    os.makedirs(dest)
    try:
        fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
        fds = [fd]
        for _ in range(2000):
            os.mkdir("level-name", dir_fd=fds[-1])
            fds.append(os.open("level-name", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fds[-1]))
        for f in fds[1:]:
            os.close(f)
        buf = io.BytesIO()
        tw = TarWriter(buf)
        tw.add_tree(fds[0])
        tw.close()
        os.close(fds[0])
        assert tw.count == 2001
        buf.seek(0)
        _extract(str(dest), buf)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
        depth = 0
        while os.listdir(fd) == ["level-name"]:
            nfd = os.open("level-name", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = nfd, depth + 1
        assert depth == 2000 and os.listdir(fd) == ["leaf"]
        os.close(fd)
    finally:
        remove_tree(str(src))
        remove_tree(str(dest))
    assert not os.path.exists(src) and not os.path.exists(dest)


def test_container_paths_are_normal():
    """A mount destination of //x (an image VOLUME "/x" joined to "/") is /x, as Docker shows it."""
    from pyctr.container.fsview import _abs
    assert [_abs(p) for p in ("//anon", "/a/../b", "rel", "/")] == ["/anon", "/b", "/rel", "/"]
