"""Typed wrappers around the system calls the os module lacks.

Each raises SyscallError naming the call and the path on failure. Paths are str; bytes conversion
happens here, once.
"""
import ctypes
import errno
import os

from pyrunc.errors import syscall_error
from pyrunc.sys import libc as _l
from pyrunc.sys.libc import check, libc, syscall

_fs = os.fsencode


def _b(value):
    return None if value is None else _fs(value)


libc.mount.argtypes = [_l.c_char_p, _l.c_char_p, _l.c_char_p, _l.c_ulong, _l.c_char_p]
libc.umount2.argtypes = [_l.c_char_p, _l.c_int]
libc.unshare.argtypes = [_l.c_int]
libc.sethostname.argtypes = [_l.c_char_p, _l.c_size_t]
libc.setdomainname.argtypes = [_l.c_char_p, _l.c_size_t]
libc.prctl.argtypes = [_l.c_int, _l.c_ulong, _l.c_ulong, _l.c_ulong, _l.c_ulong]
libc.chroot.argtypes = [_l.c_char_p]


def mount(source, target, fstype, flags=0, data=None):
    check(libc.mount(_b(source), _fs(target), _b(fstype), flags, _b(data) if data else None),
          "mount", source if source else fstype, target)


def umount2(target, flags=0):
    check(libc.umount2(_fs(target), flags), "umount2", target)


def pivot_root(new_root, put_old):
    check(syscall("pivot_root", _fs(new_root), _fs(put_old)), "pivot_root", new_root)


def unshare(flags):
    check(libc.unshare(flags), "unshare")


def setns(fd, nstype=0, path=None):
    check(syscall("setns", _l.c_int(fd), _l.c_int(nstype)), "setns", path)


def sethostname(name):
    raw = _fs(name)
    check(libc.sethostname(raw, len(raw)), "sethostname", name)


def setdomainname(name):
    raw = _fs(name)
    check(libc.setdomainname(raw, len(raw)), "setdomainname", name)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return check(libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def chroot(path):
    check(libc.chroot(_fs(path)), "chroot", path)


class _IfReqFlags(ctypes.Structure):
    """struct ifreq as SIOCGIFFLAGS/SIOCSIFFLAGS use it: the name, then ifr_flags in the 24-byte union."""
    _fields_ = [("name", ctypes.c_char * 16), ("flags", ctypes.c_short), ("_pad", ctypes.c_char * 22)]


_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_AF_INET, _SOCK_DGRAM, _SOCK_CLOEXEC = 2, 2, 0o2000000
libc.ioctl.argtypes = [_l.c_int, _l.c_ulong, _l.c_void_p]


def link_up(name):
    """Set IFF_UP on a network interface of the caller's network namespace (what `ip link set NAME
    up` does), through an ioctl on a throwaway datagram socket."""
    sock = check(libc.socket(_AF_INET, _SOCK_DGRAM | _SOCK_CLOEXEC, 0), "socket", name)
    try:
        req = _IfReqFlags(_fs(name))
        check(libc.ioctl(sock, _SIOCGIFFLAGS, ctypes.byref(req)), "ioctl(SIOCGIFFLAGS)", name)
        if not req.flags & _IFF_UP:
            req.flags |= _IFF_UP
            check(libc.ioctl(sock, _SIOCSIFFLAGS, ctypes.byref(req)), "ioctl(SIOCSIFFLAGS)", name)
    finally:
        os.close(sock)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode=0, resolve=0):
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return check(syscall("openat2", _l.c_int(dirfd), _fs(path), ctypes.byref(how),
                         _l.c_size_t(ctypes.sizeof(how))), "openat2", path)


def close_range(first, last=0xFFFFFFFF, flags=0):
    check(syscall("close_range", _l.c_uint(first), _l.c_uint(last), _l.c_uint(flags)), "close_range")


_F_GETFD, _F_SETFD, _FD_CLOEXEC = 1, 2, 1
libc.fcntl.argtypes = [_l.c_int, _l.c_int, _l.c_int]


def set_cloexec(fd, cloexec=True):
    """FD_CLOEXEC on or off with fcntl(2), as Go's syscall.CloseOnExec does (os.set_inheritable uses
    ioctl(FIOCLEX), a call seccomp profiles may deny where they allow fcntl)."""
    flags = check(libc.fcntl(fd, _F_GETFD, 0), "fcntl(F_GETFD)", str(fd))
    wanted = flags | _FD_CLOEXEC if cloexec else flags & ~_FD_CLOEXEC
    if wanted != flags:
        check(libc.fcntl(fd, _F_SETFD, wanted), "fcntl(F_SETFD)", str(fd))


# Capabilities: the v3 header carries two 32-bit data words per set.
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522


def capset(effective, permitted, inheritable):
    """Set the calling thread's capability sets from 64-bit masks."""
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    check(libc.capset(ctypes.byref(header), data), "capset")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    check(syscall("mount_setattr", _l.c_int(dirfd), _fs(path), _l.c_uint(flags), ctypes.byref(attr),
                  _l.c_size_t(ctypes.sizeof(attr))), "mount_setattr", path)


def open_tree(dirfd, path, flags):
    """A new fd for the mount at path; with OPEN_TREE_CLONE a detached copy of it (a bind not yet placed)."""
    return check(syscall("open_tree", _l.c_int(dirfd), _fs(path), _l.c_uint(flags)), "open_tree", path)


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags, what=None, where=None):
    """Attach (or move) a mount; what/where name the source and destination in errors."""
    check(syscall("move_mount", _l.c_int(from_dirfd), _fs(from_path), _l.c_int(to_dirfd), _fs(to_path),
                  _l.c_uint(flags)), "move_mount", what or from_path, where or to_path)


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name):
    """A fresh session keyring, so the container cannot read the caller's keys."""
    return check(syscall("keyctl", _l.c_int(KEYCTL_JOIN_SESSION_KEYRING), _fs(name)), "keyctl", name)


def pidfd_getfd(pidfd, targetfd):
    """A duplicate of another process's fd (needs ptrace access to it); CLOEXEC is set."""
    return check(syscall("pidfd_getfd", _l.c_int(pidfd), _l.c_int(targetfd), _l.c_uint(0)), "pidfd_getfd",
                 str(targetfd))


def prepare_execve(path, argv, env):
    """execve's arguments as C arrays, built while the process may still allocate memory: under a
    tiny RLIMIT_AS os.execve itself fails (it builds these arrays, and "KEY=VALUE" strings, when
    called). env is a {name: value} dict, as os.execve takes."""
    args = [_fs(a) for a in argv]
    envs = [_fs(k) + b"=" + _fs(v) for k, v in env.items()]
    keep = (_fs(path), args, envs)  # the arrays point into these bytes: keep them alive
    argv_array = (_l.c_char_p * (len(args) + 1))(*args, None)
    envp_array = (_l.c_char_p * (len(envs) + 1))(*envs, None)
    return path, keep, argv_array, envp_array


def execve_prepared(prepared):
    """execve(2) of prepare_execve()'s result; returns only by raising SyscallError."""
    path, keep, argv_array, envp_array = prepared
    libc.execve(keep[0], argv_array, envp_array)
    raise syscall_error(ctypes.get_errno(), "execve", path)


def personality(persona):
    """Set the execution domain; returns the previous one."""
    return check(syscall("personality", _l.c_ulong(persona)), "personality")


class _CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


_CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17


def clone_fork(namespaces=0, cgroup_fd=None):
    """os.fork() through clone3: the child born in new namespaces (CLONE_NEW* flags) and, with
    cgroup_fd, in that cgroup2 directory (CLONE_INTO_CGROUP).

    A cgroup.procs write would take the kernel's global migration lock and wait for an RCU grace
    period (5-15 ms); a child created in place takes neither. Python's fork bookkeeping runs
    around the call as os.fork does it, with the GIL held throughout (PyDLL). Returns None when
    the kernel lacks clone3 or CLONE_INTO_CGROUP (before 5.7): nothing was started, the caller
    takes another way. Only for a single-threaded caller: glibc's fork handlers do not run.
    """
    api = ctypes.pythonapi
    flags = namespaces | (_CLONE_INTO_CGROUP if cgroup_fd is not None else 0)
    args = _CloneArgs(flags=flags, exit_signal=_SIGCHLD, cgroup=cgroup_fd or 0)
    raw = ctypes.PyDLL(None, use_errno=True).syscall
    raw.restype = ctypes.c_long
    api.PyOS_BeforeFork()
    pid = raw(ctypes.c_long(_l.NR["clone3"]), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid > 0:
        return pid
    if err in (errno.ENOSYS, errno.E2BIG):
        return None
    raise syscall_error(err, "clone3", f"CLONE_INTO_CGROUP fd {cgroup_fd}" if cgroup_fd is not None else None)
