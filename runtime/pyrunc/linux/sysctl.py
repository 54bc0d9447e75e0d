"""linux.sysctl: written through the container's own /proc/sys after pivot_root."""
from pyrunc.errors import StepError


def apply(sysctls):
    for key, value in (sysctls or {}).items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise StepError(f"write sysctl {key}={value} to", path, e) from None
