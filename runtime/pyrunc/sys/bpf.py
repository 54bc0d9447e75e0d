"""bpf(2): load a program and attach it to a cgroup, for the cgroup v2 device filter.

Only what the device filter needs (BPF_PROG_LOAD, BPF_PROG_ATTACH); the union bpf_attr is laid out
by hand in a zeroed buffer: the kernel insists every byte past the fields it reads is zero.
"""
import ctypes
import os

from pyrunc.sys import libc as _l
from pyrunc.sys.libc import check, syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

_ATTR_SIZE = 128  # larger than every field used here; zero-filled
_LOG_SIZE = 64 * 1024


def _attr():
    return ctypes.create_string_buffer(_ATTR_SIZE)


def _put(buf, offset, fmt, value):
    import struct
    struct.pack_into(fmt, buf, offset, value)


def prog_load(prog_type, insns, license="GPL", name="", expected_attach_type=0):
    """Load `insns` (bytes, 8 per instruction); returns the program fd (close it when done).

    On rejection the verifier's log is part of the error, which is what says why.
    """
    code = ctypes.create_string_buffer(bytes(insns), len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(_LOG_SIZE)
    attr = _attr()
    _put(attr, 0, "<I", prog_type)
    _put(attr, 4, "<I", len(insns) // 8)
    _put(attr, 8, "<Q", ctypes.addressof(code))
    _put(attr, 16, "<Q", ctypes.addressof(lic))
    _put(attr, 24, "<I", 1)                 # log_level
    _put(attr, 28, "<I", _LOG_SIZE)
    _put(attr, 32, "<Q", ctypes.addressof(log))
    raw = name.encode()[:15]
    ctypes.memmove(ctypes.addressof(attr) + 48, raw, len(raw))
    _put(attr, 68, "<I", expected_attach_type)
    fd = syscall("bpf", _l.c_int(BPF_PROG_LOAD), attr, _l.c_uint(_ATTR_SIZE))
    if fd == -1:
        err = ctypes.get_errno()
        text = log.value.decode(errors="replace").strip()
        from pyrunc.errors import syscall_error
        raise syscall_error(err, "bpf(BPF_PROG_LOAD)", name + (f" (verifier: {text[-500:]})" if text else ""))
    return fd


def prog_attach(target_fd, prog_fd, attach_type, flags=0, path=None):
    attr = _attr()
    _put(attr, 0, "<I", target_fd)
    _put(attr, 4, "<I", prog_fd)
    _put(attr, 8, "<I", attach_type)
    _put(attr, 12, "<I", flags)
    check(syscall("bpf", _l.c_int(BPF_PROG_ATTACH), attr, _l.c_uint(_ATTR_SIZE)),
          "bpf(BPF_PROG_ATTACH)", path)


def prog_detach(target_fd, prog_fd, attach_type, path=None):
    attr = _attr()
    _put(attr, 0, "<I", target_fd)
    _put(attr, 4, "<I", prog_fd)
    _put(attr, 8, "<I", attach_type)
    check(syscall("bpf", _l.c_int(BPF_PROG_DETACH), attr, _l.c_uint(_ATTR_SIZE)),
          "bpf(BPF_PROG_DETACH)", path)


def attach_to_cgroup(cgroup_dir, insns, name="pyrunc_devices"):
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to cgroup_dir (multi-attach).

    The attachment keeps the program alive; the cgroup's removal releases both.
    """
    prog = prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns, name=name,
                     expected_attach_type=BPF_CGROUP_DEVICE)
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            prog_attach(cg, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, cgroup_dir)
        finally:
            os.close(cg)
    finally:
        os.close(prog)
