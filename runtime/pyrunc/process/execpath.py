"""Find process.args[0] inside the container with execvp's rules, before create reports success,
so a missing binary fails `create` (as runc does) with runc's exact wording."""
import os
import stat

from pyrunc.errors import ExecNotFound, PyruncError


def _executable(path):
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and _eaccess(path)


def _eaccess(path):
    """X_OK for the effective ids (runc's eaccess): faccessat2(AT_EACCESS), which profiles written
    for runc allow, where plain access(2) may be denied."""
    return os.access(path, os.X_OK, effective_ids=True)


def lookup(name, env):
    if "/" in name:
        try:
            st = os.stat(name)
        except FileNotFoundError:
            raise ExecNotFound(name) from None
        except OSError as e:
            raise PyruncError(f'exec: "{name}": stat {name}: {e.strerror.lower()}') from None
        if stat.S_ISDIR(st.st_mode) or not _eaccess(name):
            raise PyruncError(f'exec: "{name}": permission denied')
        return name
    search = ""
    for entry in env:
        if entry.startswith("PATH="):
            search = entry[5:]
    # Go's exec.LookPath (runc): an unset or empty PATH is no directory at all, not ".".
    for directory in search.split(":") if search else ():
        candidate = os.path.join(directory or ".", name)
        if _executable(candidate):
            return candidate
    raise ExecNotFound(name)
