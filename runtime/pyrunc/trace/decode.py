"""Syscall names and argument decoding for trace records, from python-ptrace's tables.

python-ptrace's SYSCALL_NAMES (per machine) names a number; libseccomp's table is asked for the
numbers newer than python-ptrace's (its table stops at Linux 5.8). Its prototypes say which
arguments are paths and strings: those are read from the tracee's memory at syscall entry (the
only moment they are valid: execve replaces the memory), bounded, and written as strings; every
other argument stays the integer the kernel saw, which is what a seccomp rule compares.
"""
import errno
import json

from ptrace.syscall.prototypes import FILENAME_ARGUMENTS, SYSCALL_PROTOTYPES

from pyrunc.sys import ptrace as pt

MAX_STRING = 4096
MAX_ARGV = 64

_ARCH_TABLES = {pt.AUDIT_ARCH_X86_64: ("x86_64", "ptrace.syscall.linux.x86_64"),
                pt.AUDIT_ARCH_I386: ("x86", "ptrace.syscall.linux.i386"),
                pt.AUDIT_ARCH_AARCH64: ("aarch64", "ptrace.syscall.linux.aarch64")}
ARCH_NAMES = {token: name for token, (name, _) in _ARCH_TABLES.items()}
ERRNO_NAMES = errno.errorcode


class SyscallTable:
    """Number -> (name, per-argument decoder, whether one reads memory) for one architecture,
    filled as numbers are seen."""

    def __init__(self, arch_token):
        self.arch_token = arch_token
        self.arch = ARCH_NAMES.get(arch_token, f"audit-0x{arch_token:x}")
        module = _ARCH_TABLES.get(arch_token, (None, None))[1]
        if module is not None:
            __import__(module)
            import sys
            self.names = dict(sys.modules[module].SYSCALL_NAMES)
        else:
            self.names = {}
        self.entries = {}

    def lookup(self, nr):
        entry = self.entries.get(nr)
        if entry is None:
            name = self.names.get(nr)
            if name is None:
                from pyrunc.sys.libseccomp import syscall_name
                try:
                    name = syscall_name(nr, self.arch_token)
                except OSError:
                    name = None
            kinds = _decoders(name)
            entry = self.entries[nr] = (name, kinds, bool(kinds) and ("string" in kinds or "argv" in kinds))
        return entry


def _decoders(name):
    prototype = SYSCALL_PROTOTYPES.get(name) if name else None
    if prototype is None:
        return None  # unknown: all six raw arguments
    kinds = []
    for ctype, argname in prototype[1]:
        if ctype == "const char *const *" and argname == "argv":  # never envp: it may hold secrets
            kinds.append("argv")
        elif ctype in ("const char *", "char *") and argname in _STRING_ARGUMENTS and name not in _OUTPUT_BUFFERS:
            kinds.append("string")
        else:
            kinds.append(None)
    return tuple(kinds)


# NUL-terminated string arguments: python-ptrace's path names and a few more (mount's, xattr names);
# a buffer (write's buf) is not one.
_STRING_ARGUMENTS = FILENAME_ARGUMENTS | {"dev_name", "dir_name", "type", "name", "oldpath", "newpath",
                                         "specialfile", "library"}
# "char *" arguments the kernel writes into: nothing to read at entry.
_OUTPUT_BUFFERS = {"getcwd", "readlink", "readlinkat", "read", "pread64", "recvfrom", "getxattr", "lgetxattr",
                   "fgetxattr", "listxattr", "llistxattr", "flistxattr", "uname", "gethostname"}


class Memory:
    """Reads from one tracee's memory through /proc/<pid>/mem (allowed: we are its tracer)."""

    def __init__(self, pid):
        import os
        self.os = os
        try:
            self.fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = None

    def close(self):
        if self.fd is not None:
            self.os.close(self.fd)
            self.fd = None

    def string(self, address):
        if self.fd is None or address == 0:
            return None
        data = b""
        while len(data) < MAX_STRING:
            chunk_size = min(256, 4096 - (address + len(data)) % 4096)
            try:
                chunk = self.os.pread(self.fd, chunk_size, address + len(data))
            except OSError:
                break
            end = chunk.find(b"\0")
            if end >= 0:
                return (data + chunk[:end]).decode(errors="backslashreplace")
            if not chunk:
                break
            data += chunk
        return data[:MAX_STRING].decode(errors="backslashreplace") if data else None

    def argv(self, address):
        if self.fd is None or address == 0:
            return None
        try:
            raw = self.os.pread(self.fd, 8 * MAX_ARGV, address)
        except OSError:
            return None
        values = []
        for i in range(0, len(raw) - 7, 8):
            pointer = int.from_bytes(raw[i:i + 8], "little")
            if pointer == 0:
                break
            values.append(self.string(pointer))
        return values


def decode_args(kinds, args, memory):
    """The JSON text of a syscall's arguments: strings where the prototype has them."""
    if kinds is None:
        return ",".join(map(str, args))
    out = []
    for kind, value in zip(kinds, args):
        if kind is None:
            out.append(str(value))
        elif kind == "string":
            text = memory.string(value)
            out.append(json.dumps(text) if text is not None else str(value))
        elif kind == "argv":
            vector = memory.argv(value)
            out.append(json.dumps(vector) if vector is not None else str(value))
    return ",".join(out)
