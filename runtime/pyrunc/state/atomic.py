"""Replacing a file atomically: readers see the old content or the new, never a part."""
import os


def write_atomic(path, data, mode=0o600, tmp=None, exclusive=False, durable=True):
    """Write data to tmp (default path + ".tmp"), fsync, rename over path; the tmp file is removed
    on failure. exclusive: fail if tmp exists (runc's pid file: O_EXCL on the dot-file).
    durable=False skips the fsync: the rename alone is what keeps readers from seeing half a file;
    the fsync only matters across a crash of the machine."""
    tmp = tmp or path + ".tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(tmp, flags, mode)
        try:
            os.write(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
