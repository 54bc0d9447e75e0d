"""linux/paths.py: every lookup stays inside the rootfs, whatever symlinks the container planted.

RESOLVE_IN_ROOT makes the kernel treat the rootfs fd as "/": absolute symlinks and ".." are
resolved against the rootfs, so a path that "escapes" lands INSIDE it (etc -> / makes /etc/x the
rootfs' /x). A dangling symlink is followed inside the rootfs and its target created there, as
runc does (images link /etc/resolv.conf to paths that do not exist yet); never on the host.
"""
import errno
import os

import pytest

from pyrunc.errors import SyscallError
from pyrunc.linux import paths
from runtime_forkhelp import run_in_child


def _snapshot(directory):
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out.append((os.path.relpath(full, directory), os.readlink(full) if os.path.islink(full) else
                        ("d" if os.path.isdir(full) else "f")))
    return sorted(out)


@pytest.fixture
def hostile(tmp_path):
    """A rootfs full of symlinks that point out of it, plus a canary directory outside."""
    rootfs = tmp_path / "rootfs"
    outside = tmp_path / "outside"
    rootfs.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("host data")
    os.symlink("/", rootfs / "etc")
    os.symlink("../../..", rootfs / "a")
    os.symlink(str(outside), rootfs / "abs")
    os.symlink(str(outside / "secret"), rootfs / "planted")
    os.symlink("loop2", rootfs / "loop1")
    os.symlink("loop1", rootfs / "loop2")
    os.symlink("nothere", rootfs / "dangling")
    (rootfs / "bin").mkdir()
    (rootfs / "bin" / "file").write_text("inside")
    os.symlink("file", rootfs / "bin" / "rel")
    fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    before_outside = _snapshot(outside)
    before_tmp = sorted(os.listdir(tmp_path))
    yield rootfs, outside, fd
    os.close(fd)
    # the invariant of every test: nothing outside the rootfs was created, changed or removed
    assert _snapshot(outside) == before_outside
    assert (outside / "secret").read_text() == "host data"
    assert sorted(os.listdir(tmp_path)) == before_tmp


def _where(fd):
    try:
        return os.readlink(paths.fd_path(fd))
    finally:
        os.close(fd)


def test_relative():
    assert paths.relative("/") == "."
    assert paths.relative("") == "."
    assert paths.relative("/./") == "."
    assert paths.relative("/etc/hosts") == "etc/hosts"
    assert paths.relative("etc//hosts/") == "etc/hosts"
    assert paths.relative("/a/./b/../c") == "a/b/../c"  # ".." is left to the kernel (clamped at the root)


def test_fd_path(tmp_path):
    fd = os.open(tmp_path, os.O_PATH)
    try:
        assert paths.fd_path(fd) == f"/proc/self/fd/{fd}"
        assert os.readlink(paths.fd_path(fd)) == str(tmp_path)
        assert os.path.samestat(os.stat(paths.fd_path(fd)), os.stat(tmp_path))
    finally:
        os.close(fd)


def test_mkdir_all_plain(hostile):
    rootfs, _, root = hostile
    assert _where(paths.mkdir_all(root, "/x/y/z")) == str(rootfs / "x" / "y" / "z")
    assert oct(os.stat(rootfs / "x").st_mode & 0o777) == oct(0o755 & ~_umask())
    assert _where(paths.mkdir_all(root, "/x/y/z")) == str(rootfs / "x" / "y" / "z")  # idempotent
    assert _where(paths.mkdir_all(root, "/")) == str(rootfs)
    assert _where(paths.mkdir_all(root, "m", 0o700)) == str(rootfs / "m")
    assert os.stat(rootfs / "m").st_mode & 0o777 == 0o700 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_mkdir_all_returns_o_path_fd(hostile):
    import fcntl
    _, _, root = hostile
    fd = paths.mkdir_all(root, "/p/q")
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        assert flags & os.O_PATH
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)


def test_mkdir_all_through_etc_to_slash_lands_inside(hostile):
    rootfs, _, root = hostile
    name = "pyrunc-test-" + os.path.basename(rootfs.parent)
    assert not os.path.lexists("/" + name)
    assert _where(paths.mkdir_all(root, f"/etc/{name}/sub")) == str(rootfs / name / "sub")
    assert (rootfs / name / "sub").is_dir() and os.path.islink(rootfs / "etc")
    assert not os.path.lexists("/" + name)  # the host's / is untouched


def test_mkdir_all_through_dotdot_symlink_lands_inside(hostile):
    rootfs, _, root = hostile
    assert _where(paths.mkdir_all(root, "a/y/z")) == str(rootfs / "y" / "z")
    assert _where(paths.mkdir_all(root, "/../../../w")) == str(rootfs / "w")
    assert _where(paths.mkdir_all(root, "bin/../../../v")) == str(rootfs / "v")


def test_mkdir_all_through_absolute_symlink_does_not_reach_the_host(hostile):
    rootfs, outside, root = hostile
    # abs -> <tmp>/outside means <rootfs>/<tmp>/outside: created there, never on the host
    inside = rootfs / str(outside).lstrip("/") / "q"
    assert _where(paths.mkdir_all(root, "/abs/q")) == str(inside)
    assert inside.is_dir()
    assert not (outside / "q").exists()


def test_mkdir_all_symlink_loop(hostile):
    _, _, root = hostile
    with pytest.raises(OSError) as e:
        paths.mkdir_all(root, "/loop1/q")
    assert e.value.errno == errno.ELOOP and isinstance(e.value, SyscallError)
    assert str(e.value) == "openat2 loop1/q: too many levels of symbolic links"  # the path asked for


def test_mkdir_all_creates_a_dangling_symlinks_target_inside(hostile):
    rootfs, _, root = hostile
    assert _where(paths.mkdir_all(root, "/dangling/q")) == str(rootfs / "nothere" / "q")
    assert os.path.islink(rootfs / "dangling") and (rootfs / "nothere" / "q").is_dir()


def test_mkdir_all_dangling_symlink_chain_is_bounded(hostile):
    rootfs, _, root = hostile
    for i in range(50):
        os.symlink(f"c{i + 1}", rootfs / f"c{i}")
    with pytest.raises(OSError) as e:
        paths.mkdir_all(root, "/c0")
    assert e.value.errno == errno.ELOOP


def test_mkdir_all_over_a_file(hostile):
    rootfs, _, root = hostile
    with pytest.raises(NotADirectoryError):
        paths.mkdir_all(root, "/bin/file/sub")
    with pytest.raises(NotADirectoryError):
        paths.mkdir_all(root, "/bin/file")


def test_make_file_plain(hostile):
    rootfs, _, root = hostile
    assert _where(paths.make_file(root, "/new/dir/file")) == str(rootfs / "new" / "dir" / "file")
    assert (rootfs / "new" / "dir" / "file").read_bytes() == b""
    assert os.stat(rootfs / "new" / "dir" / "file").st_mode & 0o777 == 0o644 & ~_umask()
    assert _where(paths.make_file(root, "top")) == str(rootfs / "top")


def test_make_file_keeps_existing_content(hostile):
    rootfs, _, root = hostile
    assert _where(paths.make_file(root, "/bin/file")) == str(rootfs / "bin" / "file")
    assert (rootfs / "bin" / "file").read_text() == "inside"


def test_make_file_through_etc_to_slash_lands_inside(hostile):
    rootfs, _, root = hostile
    assert _where(paths.make_file(root, "/etc/hosts")) == str(rootfs / "hosts")
    assert (rootfs / "hosts").is_file()
    assert _where(paths.make_file(root, "/a/../../resolv.conf")) == str(rootfs / "resolv.conf")


def test_make_file_does_not_follow_a_planted_symlink(hostile):
    rootfs, outside, root = hostile
    # planted -> <tmp>/outside/secret: the file is made inside the rootfs, the host's is untouched
    inside = rootfs / str(outside).lstrip("/")
    assert _where(paths.make_file(root, "/planted")) == str(inside / "secret")
    assert os.path.islink(rootfs / "planted")
    assert _where(paths.make_file(root, "/abs/newfile")) == str(inside / "newfile")
    assert not (outside / "newfile").exists()


def test_make_file_follows_a_symlink_inside_the_rootfs(hostile):
    rootfs, _, root = hostile
    assert _where(paths.make_file(root, "/bin/rel")) == str(rootfs / "bin" / "file")


def test_make_file_creates_a_dangling_symlinks_target_inside(hostile):
    rootfs, _, root = hostile
    assert _where(paths.make_file(root, "/dangling")) == str(rootfs / "nothere")
    assert (rootfs / "nothere").is_file() and os.path.islink(rootfs / "dangling")


def test_open_in_root(hostile):
    rootfs, _, root = hostile
    assert _where(paths.open_in_root(root, "/")) == str(rootfs)
    assert _where(paths.open_in_root(root, "../../..")) == str(rootfs)
    assert _where(paths.open_in_root(root, "/etc/../../a/etc")) == str(rootfs)
    assert _where(paths.open_in_root(root, "/etc/bin/file")) == str(rootfs / "bin" / "file")
    assert _where(paths.open_in_root(root, "/a/bin/rel")) == str(rootfs / "bin" / "file")
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(root, "/abs/secret")
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(root, "/planted")
    with pytest.raises(OSError) as e:
        paths.open_in_root(root, "/loop2")
    assert e.value.errno == errno.ELOOP


def test_open_in_root_readable_flags(hostile):
    _, _, root = hostile
    fd = paths.open_in_root(root, "/etc/bin/file", os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"inside"
    finally:
        os.close(fd)


def test_make_mountpoint(hostile):
    rootfs, _, root = hostile
    assert _where(paths.make_mountpoint(root, "/mnt/dir")) == str(rootfs / "mnt" / "dir")
    assert _where(paths.make_mountpoint(root, "/mnt/file", directory=False)) == str(rootfs / "mnt" / "file")
    assert (rootfs / "mnt" / "file").is_file()
    with pytest.raises(NotADirectoryError) as e:
        paths.make_mountpoint(root, "/mnt/file/x")
    assert e.value.errno == errno.ENOTDIR and e.value.filename == "/mnt/file/x"
    with pytest.raises(NotADirectoryError) as e:
        paths.make_mountpoint(root, "/mnt/file/x", directory=False)
    assert e.value.filename == "/mnt/file/x"


def _magic_link_child(rootfs):
    from pyrunc.sys import calls, consts as c
    calls.unshare(c.CLONE_NEWNS)
    calls.mount(None, "/", None, c.MS_REC | c.MS_PRIVATE)
    os.mkdir(os.path.join(rootfs, "proc"))
    calls.mount("/proc", os.path.join(rootfs, "proc"), None, c.MS_BIND | c.MS_REC)
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    result = {"stat": os.readlink(paths.fd_path(paths.open_in_root(root, "/proc/self/stat")))}
    for path in ("/proc/self/root", "/proc/self/root/etc", "/proc/self/cwd", "/proc/thread-self/root"):
        try:
            fd = paths.open_in_root(root, path)
            result[path] = os.readlink(paths.fd_path(fd))
        except OSError as e:
            result[path] = (e.errno, str(e))
    return result


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
def test_magic_links_refused(tmp_path):
    # With a real /proc inside the rootfs, /proc/self/root would lead to the host "/":
    # RESOLVE_NO_MAGICLINKS refuses it (ELOOP).
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    result = run_in_child(_magic_link_child, str(rootfs))
    assert result["stat"].endswith("/stat")
    for path in ("/proc/self/root", "/proc/self/root/etc", "/proc/self/cwd", "/proc/thread-self/root"):
        assert result[path] == (errno.ELOOP, f"openat2 {path[1:]}: too many levels of symbolic links"), path
    assert os.listdir(rootfs / "proc") == []  # the bind mount died with the child's namespace
