"""--pid-file: written like runc, decimal pid without a newline, atomically via a dot-file rename."""
import os

from pyrunc.errors import StepError


def write_pid_file(path, pid):
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, "." + name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_SYNC | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StepError("write pid file", path, e) from None
