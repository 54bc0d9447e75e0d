"""libseccomp through ctypes: building a filter context and loading it.

libseccomp returns negative errno values rather than setting errno; every wrapper turns them into a
SyscallError naming the libseccomp function (and the syscall or architecture it was given).
The library is loaded when this module is first imported, which init does before pivot_root
(afterwards the host's /usr/lib is out of reach).
"""
import ctypes

from pyrunc.errors import syscall_error

_lib = None


def lib():
    global _lib
    if _lib is None:
        try:
            _lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise OSError(2, f"libseccomp.so.2 cannot be loaded ({e}); install libseccomp2") from None
        _lib.seccomp_init.argtypes = [ctypes.c_uint32]
        _lib.seccomp_init.restype = ctypes.c_void_p
        _lib.seccomp_release.argtypes = [ctypes.c_void_p]
        _lib.seccomp_release.restype = None
        _lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        _lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        _lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        _lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        _lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        _lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                                ctypes.c_uint, ctypes.c_void_p]
        _lib.seccomp_load.argtypes = [ctypes.c_void_p]
        _lib.seccomp_notify_fd.argtypes = [ctypes.c_void_p]
        _lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
        _lib.seccomp_api_get.restype = ctypes.c_uint
    return _lib


def version():
    v = lib().seccomp_version().contents
    return (v[0], v[1], v[2])


def api_level():
    return lib().seccomp_api_get()


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _check(rc, call, what=None):
    if rc < 0:
        raise syscall_error(-rc, call, what)
    return rc


class Filter:
    """A libseccomp filter context; release() frees it (load() does not)."""

    def __init__(self, default_action):
        self.ctx = lib().seccomp_init(default_action)
        if not self.ctx:
            raise syscall_error(22, "seccomp_init", hex(default_action))

    def arch_add(self, name):
        token = lib().seccomp_arch_resolve_name(name.encode())
        if token == 0:
            raise syscall_error(22, "seccomp_arch_resolve_name", name)
        rc = lib().seccomp_arch_add(self.ctx, token)
        if rc != -17:  # EEXIST: the native architecture is always in the filter
            _check(rc, "seccomp_arch_add", name)

    def attr_set(self, attr, value, what=None):
        _check(lib().seccomp_attr_set(self.ctx, attr, value), "seccomp_attr_set", what)

    def rule_add(self, action, syscall_nr, conditions, what=None):
        """conditions: [(arg index, op, value, valueTwo)], ANDed."""
        array = (_ArgCmp * max(1, len(conditions)))()
        for i, (arg, op, a, b) in enumerate(conditions):
            array[i] = _ArgCmp(arg, op, a, b)
        _check(lib().seccomp_rule_add_array(self.ctx, action, syscall_nr, len(conditions),
                                            ctypes.cast(array, ctypes.c_void_p)), "seccomp_rule_add", what)

    def load(self):
        _check(lib().seccomp_load(self.ctx), "seccomp_load")

    def notify_fd(self):
        return _check(lib().seccomp_notify_fd(self.ctx), "seccomp_notify_fd")

    def release(self):
        if self.ctx:
            lib().seccomp_release(self.ctx)
            self.ctx = None


def resolve_syscall(name):
    """The native syscall number, or None when libseccomp does not know the name."""
    nr = lib().seccomp_syscall_resolve_name(name.encode())
    return None if nr == -1 else nr  # __NR_SCMP_ERROR


def syscall_name(number, arch_token):
    """The name libseccomp gives syscall `number` of an audit arch token (AUDIT_ARCH_*), or None."""
    library = lib()
    library.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    library.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
    pointer = library.seccomp_syscall_resolve_num_arch(arch_token, number)
    if not pointer:
        return None
    name = ctypes.string_at(pointer).decode()
    ctypes.CDLL(None).free(ctypes.c_void_p(pointer))
    return name


def syscall_known(name, arch_name="SCMP_ARCH_NATIVE"):
    """Whether libseccomp knows syscall `name` (as a profile would name it)."""
    library = lib()
    arch = 0 if arch_name == "SCMP_ARCH_NATIVE" else library.seccomp_arch_resolve_name(
        arch_name.removeprefix("SCMP_ARCH_").lower().encode())
    library.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    return library.seccomp_syscall_resolve_name_arch(arch, name.encode()) >= 0
