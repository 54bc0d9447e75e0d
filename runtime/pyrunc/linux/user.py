"""process.user: supplementary groups, gid, uid, umask, and HOME from the container's passwd."""
import os

from pyrunc.errors import StepError


def switch(user):
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    try:
        os.setgroups(user.get("additionalGids") or [])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise StepError(f"set user {uid}:{gid}", None, e) from None
    os.umask(user["umask"] if user.get("umask") is not None else 0o022)


def home_for(uid):
    """HOME as runc sets it when the config does not: the passwd entry's dir, else "/"."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"
