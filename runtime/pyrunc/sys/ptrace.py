"""ptrace(2) for the tracer (runtime/pyrunc/trace/): seize, resume, events, PTRACE_GET_SYSCALL_INFO.

Here rather than python-ptrace's bindings: python-ptrace reads registers with PTRACE_GETREGS and
decodes them per CPU, two calls and a struct copy per stop; PTRACE_GET_SYSCALL_INFO (Linux 5.3)
gives entry/exit, the audit arch, the number, the arguments and the return value in one call,
which is what keeps the tracer's cost per stop low. The resume calls return False for a tracee
that vanished meanwhile (ESRCH: killed), which the tracer's loop expects, instead of raising.
"""
import ctypes
import errno
import struct

from pyrunc.errors import syscall_error
from pyrunc.sys.libc import libc

PTRACE_CONT, PTRACE_DETACH, PTRACE_SYSCALL = 7, 17, 24
PTRACE_SETOPTIONS, PTRACE_GETEVENTMSG = 0x4200, 0x4201
PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_LISTEN = 0x4206, 0x4207, 0x4208
PTRACE_GET_SYSCALL_INFO = 0x420e

PTRACE_O_TRACESYSGOOD, PTRACE_O_TRACEFORK, PTRACE_O_TRACEVFORK = 0x1, 0x2, 0x4
PTRACE_O_TRACECLONE, PTRACE_O_TRACEEXEC = 0x8, 0x10
PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE, PTRACE_EVENT_EXEC = 1, 2, 3, 4
PTRACE_EVENT_STOP = 128

OP_ENTRY, OP_EXIT, OP_SECCOMP = 1, 2, 3
AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7

_ptrace = libc.ptrace
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_ptrace.restype = ctypes.c_long

_info = ctypes.create_string_buffer(88)  # struct ptrace_syscall_info
_info_address = ctypes.addressof(_info)
# For the tracer's loop, which runs twice per traced syscall: a second handle on ptrace without
# argtypes or errno saving (a third cheaper per call; the loop passes ints and ctypes pointers
# only, and reads no errno), and the syscall-info buffer: a stop costs two calls and one unpack.
raw_ptrace = ctypes.CDLL(None).ptrace
raw_ptrace.restype = ctypes.c_long
INFO_SIZE, INFO_ADDRESS, INFO = 88, ctypes.c_void_p(_info_address), _info
NULL = ctypes.c_void_p(0)
INFO_OP = memoryview(_info).cast("B")
_message = ctypes.c_ulong()
_message_address = ctypes.addressof(_message)
ENTRY = struct.Struct("=xxxxIxxxxxxxxxxxxxxxxQ6Q")  # (op, pad,) arch, (ip, sp,) nr, args[6]
EXIT = struct.Struct("=xxxxxxxxxxxxxxxxxxxxxxxxqB")  # (op, pad, arch, ip, sp,) rval, is_error


def seize(pid, options):
    if _ptrace(PTRACE_SEIZE, pid, None, options) == -1:
        raise syscall_error(ctypes.get_errno(), "ptrace(PTRACE_SEIZE)", f"pid {pid}")


def resume(request, pid, signal=0):
    """PTRACE_SYSCALL / PTRACE_CONT / PTRACE_LISTEN / PTRACE_DETACH; False if the tracee is gone."""
    if _ptrace(request, pid, None, signal) == -1:
        if ctypes.get_errno() == errno.ESRCH:
            return False
        raise syscall_error(ctypes.get_errno(), "ptrace", f"pid {pid}")
    return True


def event_message(pid):
    if _ptrace(PTRACE_GETEVENTMSG, pid, None, _message_address) == -1:
        return None
    return _message.value


def syscall_info(pid):
    """(op, arch, nr, args) at a syscall-entry stop, (op, None, rval, is_error) at an exit stop,
    None if the tracee is gone."""
    if _ptrace(PTRACE_GET_SYSCALL_INFO, pid, 88, _info_address) == -1:
        return None
    op = INFO_OP[0]
    if op == OP_EXIT:
        return (op, None) + EXIT.unpack_from(_info)
    arch, nr, *args = ENTRY.unpack_from(_info)
    return op, arch, nr, args
