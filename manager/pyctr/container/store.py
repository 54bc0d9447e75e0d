"""The container store under <root>/containers: one directory per container, many pyctr processes
at once.

    containers/lock               the store's flock: held to reserve, rename or release a name
    containers/names/<name>       the id owning <name> (made with O_EXCL under the store lock)
    containers/events.log         append-only events (events.py)
    containers/exits/<id>         exit codes of removed containers, kept a while (`run --rm`)
    containers/<id>/record.json   the container's record, replaced atomically (tmp+fsync+rename)
    containers/<id>/lock          the container's flock: held by any command changing it

What a record holds is what the user asked for and what pyctr did (the monitor it started); the
container's state is derived from the runtime and the monitor's exit file (state.py), never read
from the record."""
import errno
import json
import os
import time

from pyctr.container import names
from pyctr.container.errors import ContainerError, NameConflict, NoSuchContainer

EXIT_KEEP_SECONDS = 300  # as podman keeps exit codes after removal


def _atomic_write(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class Lock:
    """An exclusive flock on a file, as a context manager; reentrant within one process."""

    def __init__(self, path, missing=None):
        """missing: the exception to raise when the lock's directory is gone (a removed container)."""
        self.path, self.fd, self.depth, self.missing = path, -1, 0, missing

    def __enter__(self):
        import fcntl
        if self.depth == 0:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                if self.missing is None:
                    raise
                raise self.missing() from None
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.depth += 1
        return self

    def __exit__(self, *_):
        self.depth -= 1
        if self.depth == 0:
            os.close(self.fd)
            self.fd = -1


class ContainerStore:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.base = os.path.join(self.root, "containers")
        self.names_dir = os.path.join(self.base, "names")
        self.exits_dir = os.path.join(self.base, "exits")
        for d in (self.base, self.names_dir, self.exits_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.lock = Lock(os.path.join(self.base, "lock"))
        self._locks = {}

    # --- paths and locks -------------------------------------------------------------------------
    def dir(self, cid):
        return os.path.join(self.base, cid)

    def path(self, cid, *parts):
        return os.path.join(self.base, cid, *parts)

    def container_lock(self, cid):
        if cid not in self._locks:
            self._locks[cid] = Lock(self.path(cid, "lock"), lambda: NoSuchContainer(cid))
        return self._locks[cid]

    # --- records ---------------------------------------------------------------------------------
    def ids(self):
        return [n for n in os.listdir(self.base) if names.HEX64.match(n)
                and os.path.exists(os.path.join(self.base, n, "record.json"))]

    def load(self, cid):
        try:
            with open(self.path(cid, "record.json"), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            raise NoSuchContainer(cid) from None
        except ValueError:
            raise ContainerError(f"container {cid}: its record is unreadable") from None

    def save(self, rec):
        _atomic_write(self.path(rec["Id"], "record.json"), json.dumps(rec, indent=1).encode())

    def all(self):
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except (NoSuchContainer, ContainerError):
                continue  # removed meanwhile, or half-written by a killed create: rm -f removes it
        return out

    def lookup(self, ref):
        """Docker's order: full id, exact name, unique id prefix."""
        if not ref:
            raise NoSuchContainer(ref)
        if names.HEX64.match(ref) and os.path.exists(self.path(ref, "record.json")):
            return ref
        name = ref[1:] if ref.startswith("/") else ref
        if names.NAME_RE.match(name):
            try:
                with open(os.path.join(self.names_dir, name)) as f:
                    cid = f.read().strip()
                if os.path.exists(self.path(cid, "record.json")):
                    return cid
            except (FileNotFoundError, NotADirectoryError):
                pass
        if all(c in "0123456789abcdef" for c in ref):
            found = [c for c in self.ids() if c.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ContainerError(f"multiple containers found with provided prefix: {ref}")
        raise NoSuchContainer(ref)

    # --- names -----------------------------------------------------------------------------------
    def reserve_name(self, name, cid):
        """Under the store lock. Docker's wording on a clash."""
        if not names.NAME_RE.match(name):
            raise ContainerError(f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        path = os.path.join(self.names_dir, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            with open(path) as f:
                owner = f.read().strip()
            if owner and os.path.exists(self.path(owner, "record.json")):
                raise NameConflict(name, owner) from None
            os.unlink(path)  # its container was removed by a killed rm: free
            return self.reserve_name(name, cid)
        with os.fdopen(fd, "w") as f:
            f.write(cid)
            f.flush()
            os.fsync(f.fileno())

    def auto_name(self, cid):
        for retry in range(6):
            name = names.random_name(retry)
            try:
                self.reserve_name(name, cid)
                return name
            except NameConflict:
                continue
        self.reserve_name(cid[:12], cid)
        return cid[:12]

    def release_name(self, name, cid):
        path = os.path.join(self.names_dir, name)
        try:
            with open(path) as f:
                if f.read().strip() != cid:
                    return
            os.unlink(path)
        except FileNotFoundError:
            pass

    # --- exit codes of removed containers ---------------------------------------------------------
    def keep_exit(self, cid, code):
        _atomic_write(os.path.join(self.exits_dir, cid), str(code).encode())

    def kept_exit(self, cid):
        try:
            with open(os.path.join(self.exits_dir, cid)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def expire_exits(self):
        now = time.time()
        for n in os.listdir(self.exits_dir):
            p = os.path.join(self.exits_dir, n)
            try:
                if now - os.stat(p).st_mtime > EXIT_KEEP_SECONDS:
                    os.unlink(p)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
