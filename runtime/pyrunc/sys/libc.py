"""Loading libc through ctypes: the one place the runtime touches ctypes (with calls.py).

Modules outside pyrunc.sys call the typed wrappers in pyrunc.sys.calls; they never see ctypes.
"""
import ctypes
import os

from pyrunc.errors import syscall_error

libc = ctypes.CDLL(None, use_errno=True)  # the already-loaded libc: no dlopen path search

# Syscall numbers for calls glibc 2.36 has no wrapper for, per machine (kernel ABI is stable).
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "setns": 308, "openat2": 437, "close_range": 436, "mount_setattr": 442,
               "pidfd_open": 434, "pidfd_send_signal": 424, "open_tree": 428, "move_mount": 429,
               "keyctl": 250, "bpf": 321, "pidfd_getfd": 438, "personality": 135, "clone3": 435},
    "aarch64": {"pivot_root": 41, "setns": 268, "openat2": 437, "close_range": 436, "mount_setattr": 442,
                "pidfd_open": 434, "pidfd_send_signal": 424, "open_tree": 428, "move_mount": 429,
                "keyctl": 219, "bpf": 280, "pidfd_getfd": 438, "personality": 92, "clone3": 435},
}
NR = _SYSCALLS[os.uname().machine]

c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_ulong = ctypes.c_ulong
c_uint = ctypes.c_uint
c_void_p = ctypes.c_void_p
c_size_t = ctypes.c_size_t
c_long = ctypes.c_long


def check(result, call, path=None, path2=None):
    """Raise SyscallError from errno when a libc call returned -1."""
    if result == -1:
        raise syscall_error(ctypes.get_errno(), call, path, path2)
    return result


def syscall(name, *args):
    return libc.syscall(c_long(NR[name]), *args)
