"""process.rlimits, through prlimit(2) so every failure is an OSError with errno."""
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


def _value(v):
    return resource.RLIM_INFINITY if v >= _INFINITY else v


def apply(rlimits):
    for limit in rlimits or ():
        name = limit["type"]
        soft, hard = _value(limit["soft"]), _value(limit["hard"])
        try:
            resource.prlimit(0, RLIMITS[name], (soft, hard))
        except KeyError:
            raise StepError("set rlimit", name, "unknown rlimit type") from None
        except PermissionError:
            current = resource.prlimit(0, RLIMITS[name])[1]
            raise StepError(f"set rlimit {name} (soft {limit['soft']}, hard {limit['hard']})", None,
                            f"operation not permitted: raising the hard limit above {current} needs "
                            "CAP_SYS_RESOURCE") from None
        except (OSError, ValueError) as e:
            raise StepError(f"set rlimit {name} (soft {limit['soft']}, hard {limit['hard']})", None,
                            e if isinstance(e, OSError) else OSError(errno.EINVAL, str(e))) from None
