"""One exception hierarchy for the runtime.

Every error a user can see is a PyruncError: the CLI prints its message (never a traceback), writes
it to --log, and exits with its exit_code. Errors from the kernel are SyscallError, an OSError that
names the call and the path, so a message always says what was attempted on what.
"""
import os


class PyruncError(Exception):
    """Base of all user-facing errors; str() is the complete message."""

    exit_code = 1


class UsageError(PyruncError):
    """The command line itself is wrong (unknown flag, missing argument)."""


class ContainerNotFound(PyruncError):
    def __init__(self, container_id):
        super().__init__(f"container {container_id} does not exist")
        self.container_id = container_id


class ContainerExists(PyruncError):
    def __init__(self, container_id):
        super().__init__(f"container with id exists: {container_id}")
        self.container_id = container_id


class InvalidID(PyruncError):
    def __init__(self, container_id, why):
        super().__init__(f"invalid container id {container_id!r}: {why}")
        self.container_id = container_id


class InvalidState(PyruncError):
    """The operation is not allowed in the container's current status."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class InvalidSpec(PyruncError):
    """config.json (or a process.json) breaks the schema or a semantic rule.

    `where` is the JSON path in dotted form (``process.args``), `rule` what it breaks.
    """

    def __init__(self, where, rule, source="config.json"):
        self.where, self.rule, self.source = where, rule, source
        super().__init__(f"{source}: {where}: {rule}" if where else f"{source}: {rule}")


class StepError(PyruncError):
    """A step of building or tearing down a container failed.

    Carries the step ("mount", "pivot_root", "cgroup", ...), the path it acted on, and the cause,
    so the message reads like runc's: ``mount /proc to rootfs at /x: permission denied``.
    """

    def __init__(self, step, path=None, cause=None):
        self.step, self.path, self.cause = step, path, cause
        text = step if path is None else f"{step} {path}"
        if cause is not None:
            text = f"{text}: {_describe(cause)}"
        super().__init__(text)


class ExecNotFound(PyruncError):
    """runc's exact wording: dockerd maps "executable file not found" to exit code 127."""

    def __init__(self, name):
        if "/" in name:
            msg = f'exec: "{name}": stat {name}: no such file or directory'
        else:
            msg = f'exec: "{name}": executable file not found in $PATH'
        super().__init__(msg)
        self.name = name


class SyscallError(OSError):
    """An OSError naming the system call and the path it was given."""

    def __init__(self, errno_, call, path=None, path2=None):
        super().__init__(errno_, os.strerror(errno_))
        self.call, self.path, self.path2 = call, path, path2

    def __str__(self):
        where = "" if self.path is None else f" {self.path}"
        if self.path2 is not None:
            where += f" {self.path2}"
        return f"{self.call}{where}: {self.strerror.lower()}"


_SYSCALL_CLASSES = {}


def syscall_error(errno_, call, path=None, path2=None):
    """A SyscallError that is also the errno's OSError subclass (FileNotFoundError for ENOENT...),
    so callers can catch by kind as they would for errors from the os module."""
    kind = type(OSError(errno_, ""))
    cls = _SYSCALL_CLASSES.get(kind)
    if cls is None:
        cls = SyscallError if kind is OSError else type(f"SyscallError[{kind.__name__}]", (SyscallError, kind), {})
        _SYSCALL_CLASSES[kind] = cls
    return cls(errno_, call, path, path2)


def _describe(cause):
    if isinstance(cause, SyscallError):
        return str(cause)
    if isinstance(cause, OSError) and cause.strerror:
        name = f" {cause.filename}" if cause.filename is not None else ""
        return f"{cause.strerror.lower()}{'' if not name else ' (' + name.strip() + ')'}"
    return str(cause)
