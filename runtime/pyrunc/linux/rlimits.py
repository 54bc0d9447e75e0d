"""process.rlimits, through prlimit(2) so every failure is an OSError with errno.

The container's process is this Python interpreter until execve. A limit that would starve it (an
address space of a few MiB, RLIMIT_NOFILE 3) cannot be in force while it still runs: it would die
of a MemoryError or EMFILE in the runtime's own code, after the container was reported ready. Such
limits are deferred: apply() raises their hard limit while the process is still privileged (only
that needs CAP_SYS_RESOURCE), and execve() lowers them to the configured values as the very last
step, with execve's arguments built beforehand as C arrays so nothing is allocated after it.
The limits a real container sets (Docker's and podman's RLIMIT_NOFILE 1048576, runc's default 1024)
are above every floor and take effect at apply(), at runc's point, as before.
"""
import errno
import resource

from pyrunc.errors import StepError

# Numbers from <sys/resource.h>; the resource module lacks some names on some builds.
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
_INFINITY = 2 ** 64 - 1

# Soft limits below which the interpreter cannot finish init's work (start's wait, startContainer
# hooks, closing fds): deferred to just before execve.
STARVING_BELOW = {"RLIMIT_AS": 1 << 30, "RLIMIT_DATA": 1 << 30, "RLIMIT_STACK": 8 << 20, "RLIMIT_NOFILE": 64}

_deferred = []  # [(name, soft, hard)] still to apply, in this (forked) process


def _c_value(v):
    """rlim_t is unsigned 64-bit, the resource module's argument a signed C long: values of 2**63
    and above go in as their two's complement (RLIM_INFINITY, 2**64-1, is -1)."""
    return v - 2 ** 64 if v >= 2 ** 63 else v


def _unsigned(v):
    return v + 2 ** 64 if v < 0 else v


def apply(rlimits):
    """Set every limit that cannot starve the interpreter now; remember the others for execve()."""
    for limit in rlimits or ():
        name = limit["type"]
        if name not in RLIMITS:
            raise StepError("set rlimit", name, "unknown rlimit type")
        soft, hard = limit["soft"], limit["hard"]
        if soft < STARVING_BELOW.get(name, 0):
            current_hard = _unsigned(resource.prlimit(0, RLIMITS[name])[1])
            if hard > current_hard:
                # Raising a hard limit needs privileges that are gone at execve: do it now, leaving
                # the soft limit where it is.
                current_soft = _unsigned(resource.prlimit(0, RLIMITS[name])[0])
                _set(name, min(current_soft, hard), hard, limit)
            _deferred.append((name, soft, hard))
        else:
            _set(name, soft, hard, limit)


def _set(name, soft, hard, limit):
    try:
        resource.prlimit(0, RLIMITS[name], (_c_value(soft), _c_value(hard)))
    except PermissionError:
        current = _unsigned(resource.prlimit(0, RLIMITS[name])[1])
        raise StepError(f"set rlimit {name} (soft {limit['soft']}, hard {limit['hard']})", None,
                        f"operation not permitted: raising the hard limit above {current} needs "
                        "CAP_SYS_RESOURCE") from None
    except (OSError, ValueError, OverflowError) as e:
        raise StepError(f"set rlimit {name} (soft {limit['soft']}, hard {limit['hard']})", None,
                        e if isinstance(e, OSError) else OSError(errno.EINVAL, str(e))) from None


def execve(path, argv, env):
    """os.execve, after the deferred limits; raises OSError (SyscallError) if either fails."""
    import os
    if not _deferred:
        os.execve(path, argv, env)
    from pyrunc.sys.calls import execve_prepared, prepare_execve
    prepared = prepare_execve(path, argv, env)
    while _deferred:
        name, soft, hard = _deferred.pop(0)
        _set(name, soft, hard, {"soft": soft, "hard": hard})
    execve_prepared(prepared)
