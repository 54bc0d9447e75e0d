"""sys/calls.py against the real kernel, in forked children with their own mount and UTS namespaces.

Each child first makes every mount private, so nothing it mounts propagates to the host, and its
mounts die with it; it reports back over a pipe and leaves with os._exit (runtime_forkhelp).
"""
import errno
import os

import pytest

from pyrunc.errors import SyscallError
from pyrunc.linux.mount_options import parse
from pyrunc.sys import calls, consts as c
from runtime_forkhelp import run_in_child

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (unshare, mount)")

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000


def _private_playground(uts=False):
    calls.unshare(c.CLONE_NEWNS | (c.CLONE_NEWUTS if uts else 0))
    calls.mount(None, "/", None, c.MS_REC | c.MS_PRIVATE)


def _mount_line(target):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                return fields
    return None


def _mount_options(target):
    fields = _mount_line(target)
    return None if fields is None else set(fields[5].split(","))


def _error_info(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return {"syscall_error": isinstance(e, SyscallError), "fnf": isinstance(e, FileNotFoundError),
                "errno": e.errno, "str": str(e), "call": getattr(e, "call", None),
                "path": getattr(e, "path", None), "path2": getattr(e, "path2", None), "mro": type(e).__name__}
    return None


def _uts_child():
    _private_playground(uts=True)
    calls.sethostname("pyrunc-test-host")
    calls.setdomainname("pyrunc.test")
    with open("/proc/sys/kernel/domainname") as f:
        domain = f.read().strip()
    return {"nodename": os.uname().nodename, "domain": domain,
            "too_long": _error_info(calls.sethostname, "h" * 65)}


def test_unshare_uts_sethostname():
    before = os.uname().nodename
    result = run_in_child(_uts_child)
    assert result["nodename"] == "pyrunc-test-host" and result["domain"] == "pyrunc.test"
    assert result["too_long"] == {"syscall_error": True, "fnf": False, "errno": errno.EINVAL,
                                  "str": "sethostname " + "h" * 65 + ": invalid argument", "call": "sethostname",
                                  "path": "h" * 65, "path2": None, "mro": "SyscallError"}
    assert os.uname().nodename == before  # the host's name never changed


def _tmpfs_child(target):
    _private_playground()
    out = {}
    calls.mount("tmpfs", target, "tmpfs", c.MS_NOSUID | c.MS_NODEV, "size=1m,mode=0700")
    fields = _mount_line(target)
    out["fstype"] = fields[fields.index("-") + 1]
    out["opts"] = _mount_options(target)
    st = os.statvfs(target)
    out["size"] = st.f_blocks * st.f_frsize
    out["mode"] = os.stat(target).st_mode & 0o7777
    with open(os.path.join(target, "f"), "w") as f:
        f.write("x")

    calls.mount_setattr(AT_FDCWD, target, c.AT_RECURSIVE, c.MOUNT_ATTR_RDONLY, 0)
    out["ro_opts"] = _mount_options(target)
    try:
        open(os.path.join(target, "g"), "w").close()
        out["ro_write"] = "succeeded"
    except OSError as e:
        out["ro_write"] = e.errno
    calls.mount_setattr(AT_FDCWD, target, c.AT_RECURSIVE, 0, c.MOUNT_ATTR_RDONLY)
    open(os.path.join(target, "g"), "w").close()
    out["rw_again"] = "rw" in _mount_options(target)

    calls.umount2(target)
    out["after_umount"] = _mount_line(target)
    out["umount_again"] = _error_info(calls.umount2, target)
    return out


def test_tmpfs_mount_setattr_umount(tmp_path):
    target = str(tmp_path / "mnt")
    os.mkdir(target)
    result = run_in_child(_tmpfs_child, target)
    assert result["fstype"] == "tmpfs"
    assert {"rw", "nosuid", "nodev"} <= result["opts"]
    assert result["size"] == 1024 * 1024 and result["mode"] == 0o700
    assert "ro" in result["ro_opts"] and result["ro_write"] == errno.EROFS
    assert result["rw_again"] is True
    assert result["after_umount"] is None
    assert result["umount_again"] == {"syscall_error": True, "fnf": False, "errno": errno.EINVAL,
                                      "str": f"umount2 {target}: invalid argument", "call": "umount2",
                                      "path": target, "path2": None, "mro": "SyscallError"}
    # nothing leaked: the parent never saw the mount, and the file went with the tmpfs
    assert _mount_line(target) is None and os.listdir(target) == []


def _attrs_child(target, option_sets):
    _private_playground()
    out = []
    for options in option_sets:
        calls.mount("tmpfs", target, "tmpfs", 0, "size=64k")
        opts = parse(options)
        fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
        try:
            # as linux/mounts.py does it: on the fd, AT_EMPTY_PATH | AT_RECURSIVE
            calls.mount_setattr(fd, "", AT_EMPTY_PATH | c.AT_RECURSIVE, opts.attr_set, opts.attr_clr)
            result = sorted(_mount_options(target) & {"ro", "rw", "nosuid", "nodev", "noexec", "noatime",
                                                      "relatime", "nodiratime", "nosymfollow"})
        except OSError as e:
            result = str(e)
        finally:
            os.close(fd)
        calls.umount2(target)
        out.append(result)
    return out


def test_recursive_attrs_from_parse_are_accepted_by_the_kernel(tmp_path):
    target = str(tmp_path / "mnt")
    os.mkdir(target)
    sets = [
        ["rro", "rnosuid", "rnodev", "rnoexec"],
        ["rnoatime"],
        ["rstrictatime"],  # no atime word in mountinfo: neither relatime nor noatime
        ["rrelatime"],
        ["rnoatime", "rstrictatime"],  # last wins (both in attr_set would be EINVAL)
        ["rstrictatime", "rnoatime"],
        ["rro", "rrw", "rnodiratime"],
        ["rnosymfollow"],
    ]
    assert run_in_child(_attrs_child, target, sets) == [
        ["nodev", "noexec", "nosuid", "relatime", "ro"],
        ["noatime", "rw"],
        ["rw"],
        ["relatime", "rw"],
        ["rw"],
        ["noatime", "rw"],
        ["nodiratime", "relatime", "rw"],
        ["nosymfollow", "relatime", "rw"],
    ]
    assert _mount_line(target) is None


def _errors_child(missing):
    _private_playground()
    return {
        "mount": _error_info(calls.mount, "tmpfs", missing, "tmpfs"),
        "mount_bind": _error_info(calls.mount, missing + "-src", "/tmp", None, c.MS_BIND),
        "mount_setattr": _error_info(calls.mount_setattr, AT_FDCWD, missing, 0, c.MOUNT_ATTR_RDONLY, 0),
        "umount2": _error_info(calls.umount2, missing),
        "pivot_root": _error_info(calls.pivot_root, missing, missing),
        "chroot": _error_info(calls.chroot, missing),
        "openat2": _error_info(calls.openat2, AT_FDCWD, missing, os.O_PATH),
        "setns": _error_info(calls.setns, 1023, 0, "/proc/1/ns/net"),
        "unshare": _error_info(calls.unshare, 0x1),  # CSIGNAL bits: EINVAL
        "close_range": _error_info(calls.close_range, 10, 5),
        "dumpable": calls.prctl(3),  # PR_GET_DUMPABLE: the return value comes back
    }


def test_errors_name_the_call_and_the_path(tmp_path):
    missing = str(tmp_path / "no" / "such")
    r = run_in_child(_errors_child, missing)
    fnf = "SyscallError[FileNotFoundError]"
    assert r["mount"] == {"syscall_error": True, "fnf": True, "errno": errno.ENOENT,
                          "str": f"mount tmpfs {missing}: no such file or directory", "call": "mount",
                          "path": "tmpfs", "path2": missing, "mro": fnf}
    assert r["mount_bind"]["str"] == f"mount {missing}-src /tmp: no such file or directory"
    assert r["mount_bind"]["fnf"] is True
    assert r["mount_setattr"] == {"syscall_error": True, "fnf": True, "errno": errno.ENOENT,
                                  "str": f"mount_setattr {missing}: no such file or directory",
                                  "call": "mount_setattr", "path": missing, "path2": None, "mro": fnf}
    assert r["umount2"]["str"] == f"umount2 {missing}: no such file or directory" and r["umount2"]["fnf"]
    assert r["pivot_root"]["str"] == f"pivot_root {missing}: no such file or directory"
    assert r["chroot"]["str"] == f"chroot {missing}: no such file or directory"
    assert r["openat2"]["str"] == f"openat2 {missing}: no such file or directory" and r["openat2"]["fnf"]
    assert r["setns"] == {"syscall_error": True, "fnf": False, "errno": errno.EBADF,
                          "str": "setns /proc/1/ns/net: bad file descriptor", "call": "setns",
                          "path": "/proc/1/ns/net", "path2": None, "mro": "SyscallError"}
    assert r["unshare"]["str"] == "unshare: invalid argument" and r["unshare"]["path"] is None
    assert r["close_range"]["str"] == "close_range: invalid argument"
    assert r["dumpable"] == 1


def test_openat2_flags_in_process(tmp_path):
    # openat2 needs no privilege: run it here. Always O_CLOEXEC, whatever the caller passes.
    import fcntl
    (tmp_path / "f").write_text("data")
    fd = calls.openat2(AT_FDCWD, str(tmp_path / "f"), os.O_RDONLY)
    try:
        assert os.read(fd, 10) == b"data"
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)
    os.symlink("f", tmp_path / "link")
    with pytest.raises(OSError) as e:
        calls.openat2(AT_FDCWD, str(tmp_path / "link"), os.O_RDONLY, 0, c.RESOLVE_NO_SYMLINKS)
    assert e.value.errno == errno.ELOOP and str(e.value) == f"openat2 {tmp_path}/link: too many levels of symbolic links"
