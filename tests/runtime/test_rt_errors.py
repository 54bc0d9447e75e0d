"""errors.py: one hierarchy; SyscallError is also the errno's OSError subclass."""
import errno
import os

import pytest

from pyrunc.errors import (ContainerExists, ContainerNotFound, ExecNotFound, InvalidID, InvalidSpec, InvalidState,
                           PyruncError, StepError, SyscallError, UsageError, syscall_error)


@pytest.mark.parametrize("code,kind", [
    (errno.ENOENT, FileNotFoundError), (errno.EEXIST, FileExistsError), (errno.ENOTDIR, NotADirectoryError),
    (errno.EISDIR, IsADirectoryError), (errno.EACCES, PermissionError), (errno.EPERM, PermissionError),
    (errno.ESRCH, ProcessLookupError), (errno.ECHILD, ChildProcessError), (errno.EAGAIN, BlockingIOError),
    (errno.EINTR, InterruptedError), (errno.ETIMEDOUT, TimeoutError), (errno.EPIPE, BrokenPipeError),
    (errno.ECONNREFUSED, ConnectionRefusedError),
])
def test_syscall_error_is_the_errno_subclass(code, kind):
    e = syscall_error(code, "openat2", "etc/hosts")
    assert isinstance(e, SyscallError) and isinstance(e, kind) and isinstance(e, OSError)
    assert not isinstance(e, PyruncError)
    assert e.errno == code and e.strerror == os.strerror(code)
    assert e.call == "openat2" and e.path == "etc/hosts" and e.path2 is None
    assert str(e) == f"openat2 etc/hosts: {os.strerror(code).lower()}"
    with pytest.raises(kind):
        raise e


def test_syscall_error_without_a_subclass():
    e = syscall_error(errno.EINVAL, "umount2", "/mnt")
    assert type(e) is SyscallError
    assert str(e) == "umount2 /mnt: invalid argument"
    assert e.errno == errno.EINVAL


def test_syscall_error_classes_are_cached():
    assert type(syscall_error(errno.ENOENT, "a")) is type(syscall_error(errno.ENOENT, "b"))
    assert type(syscall_error(errno.EACCES, "a")) is type(syscall_error(errno.EPERM, "b"))  # both PermissionError
    assert type(syscall_error(errno.ENOENT, "a")).__name__ == "SyscallError[FileNotFoundError]"


def test_syscall_error_message_forms():
    assert str(syscall_error(errno.EPERM, "unshare")) == "unshare: operation not permitted"
    assert str(syscall_error(errno.ENOENT, "mount", "tmpfs", "/no/such")) == \
        "mount tmpfs /no/such: no such file or directory"
    assert str(syscall_error(errno.EBUSY, "pivot_root", "/r", None)) == "pivot_root /r: device or resource busy"
    assert str(syscall_error(errno.ENOENT, "mount", None, "/t")) == "mount /t: no such file or directory"
    e = syscall_error(errno.EEXIST, "mkdir", "/x")
    e.path2 = "/y"  # mutable, as mounts.py strips /proc/self/fd paths
    assert str(e) == "mkdir /x /y: file exists"


def test_hierarchy_and_exit_codes():
    for cls in (UsageError, ContainerNotFound, ContainerExists, InvalidID, InvalidState, InvalidSpec, StepError,
                ExecNotFound):
        assert issubclass(cls, PyruncError)
    assert PyruncError.exit_code == 1 and UsageError("x").exit_code == 1
    assert str(PyruncError("plain message")) == "plain message"


def test_message_forms():
    assert str(ContainerNotFound("c1")) == "container c1 does not exist"
    assert str(ContainerExists("c1")) == "container with id exists: c1"
    assert str(InvalidID("a/b", "why")) == "invalid container id 'a/b': why"
    e = InvalidState("container not running", "stopped")
    assert str(e) == "container not running" and e.status == "stopped"
    e = InvalidSpec("process.args", "must not be empty")
    assert str(e) == "config.json: process.args: must not be empty"
    assert (e.where, e.rule, e.source) == ("process.args", "must not be empty", "config.json")
    assert str(InvalidSpec("", "not JSON", "process.json")) == "process.json: not JSON"
    assert str(ExecNotFound("sh")) == 'exec: "sh": executable file not found in $PATH'
    assert str(ExecNotFound("/bin/sh")) == 'exec: "/bin/sh": stat /bin/sh: no such file or directory'


def test_step_error_forms():
    assert str(StepError("pivot_root")) == "pivot_root"
    assert str(StepError("create state dir", "/run/pyrunc/c1")) == "create state dir /run/pyrunc/c1"
    cause = syscall_error(errno.ENOENT, "mount", "proc", "/proc/self/fd/7")
    e = StepError("mount proc to rootfs at", "/proc", cause)
    assert str(e) == "mount proc to rootfs at /proc: mount proc /proc/self/fd/7: no such file or directory"
    assert (e.step, e.path, e.cause) == ("mount proc to rootfs at", "/proc", cause)


def test_step_error_with_os_errors():
    plain = OSError(errno.EACCES, "Permission denied")
    assert str(StepError("open", "/x", plain)) == "open /x: permission denied"
    named = FileNotFoundError(errno.ENOENT, "No such file or directory", "/etc/.pid")
    assert str(StepError("write pid file", "/etc/pid", named)) == \
        "write pid file /etc/pid: no such file or directory (/etc/.pid)"
    try:
        os.stat("/nonexistent-pyrunc-test")
    except OSError as real:
        assert str(StepError("stat", None, real)) == "stat: no such file or directory (/nonexistent-pyrunc-test)"
    assert str(StepError("x", "/p", OSError("no errno"))) == "x /p: no errno"


def test_step_error_with_other_causes():
    assert str(StepError("mount cgroup at", "/sys/fs/cgroup", "the container has no cgroup")) == \
        "mount cgroup at /sys/fs/cgroup: the container has no cgroup"
    assert str(StepError("read state", "/s.json", ValueError("Expecting value"))) == \
        "read state /s.json: Expecting value"
    assert str(StepError("a", "/p", ContainerNotFound("c"))) == "a /p: container c does not exist"
