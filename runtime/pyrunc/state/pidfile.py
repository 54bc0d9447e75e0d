"""--pid-file: written like runc, decimal pid without a newline, atomically via a dot-file rename."""
import os

from pyrunc.errors import StepError
from pyrunc.state.atomic import write_atomic


def write_pid_file(path, pid):
    directory, name = os.path.split(path)
    try:
        write_atomic(path, str(pid).encode(), 0o666, tmp=os.path.join(directory, "." + name), exclusive=True)
    except OSError as e:
        raise StepError("write pid file", path, e) from None
