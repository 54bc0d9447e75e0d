"""process.user: supplementary groups, gid, uid, umask, and HOME from the container's passwd."""
import os

from pyrunc.errors import StepError


def apply_umask(user):
    """Before the user switch: a seccomp filter loaded then (no noNewPrivileges) may deny umask(2),
    which runc never calls after it. Any uint32, as runc's unix.Umask(int(umask)): the kernel keeps
    the permission bits."""
    os.umask(user["umask"] & 0o777 if user.get("umask") is not None else 0o022)


def switch(user):
    """setgid/setuid, as runc: privileged, each sets the real, effective and saved id (what
    setresgid/setresuid would), and they are the calls seccomp profiles written for runc allow."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    try:
        os.setgroups(user.get("additionalGids") or [])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as e:
        raise StepError(f"set user {uid}:{gid}", None, e) from None


# A real passwd is a few KiB; the cap keeps a hostile one (a huge sparse file) from stalling the
# start of every process of the container while it is read.
_PASSWD_MAX = 4 << 20
_READ_CHUNK = 64 << 10


def home_for(uid):
    """HOME as runc sets it when the config does not: the passwd entry's dir, else "/".

    The file is the image's: it is opened without blocking and read only if it is a regular file
    (a FIFO there would otherwise hang `create` and `exec` forever, as it does runc 1.1.5), and
    only its first _PASSWD_MAX bytes."""
    import stat
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        data = b""
        while len(data) < _PASSWD_MAX:
            # 64 KiB reads: a 4 MiB buffer would be mmap'd and mremap'd, calls a seccomp filter
            # loaded before this (no noNewPrivileges) may deny; runc's read here needs neither
            chunk = os.read(fd, min(_READ_CHUNK, _PASSWD_MAX - len(data)))
            if not chunk:
                break
            data += chunk
    except OSError:
        return "/"
    finally:
        os.close(fd)
    wanted = str(uid).encode()
    for line in data.split(b"\n"):
        fields = line.split(b":")
        if len(fields) >= 6 and fields[2] == wanted:
            return fields[5].decode(errors="surrogateescape") or "/"
    return "/"
