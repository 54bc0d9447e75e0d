"""Docker's overlay2 layout (moby daemon/graphdriver/overlay2): one directory per layer.

    overlay2/<cache-id>/{diff/, link, lower, work/, merged/}
    overlay2/l/<26-char id> -> ../<cache-id>/diff

The short links keep `lowerdir=` inside one page of mount data. A layer is built in <root>/tmp/ and
renamed into overlay2/ only once its diff is complete, so overlay2/ never holds a half-written layer.
"""
import os

from pyctr.errors import PyctrError
from pyctr.image.fsutil import listdir, rmtree

_LINK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ID_LENGTH = 26
MAX_DEPTH = 128


def _short_id():
    raw = os.urandom(ID_LENGTH)
    return "".join(_LINK_CHARS[b % len(_LINK_CHARS)] for b in raw)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Overlay2:
    def __init__(self, root):
        self.home = os.path.join(root, "overlay2")
        self.links = os.path.join(self.home, "l")
        self.tmp = os.path.join(root, "tmp")

    def create(self):
        for d in (self.links, self.tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)

    def dir(self, cache_id):
        return os.path.join(self.home, cache_id)

    def diff(self, cache_id):
        return os.path.join(self.home, cache_id, "diff")

    def staging(self):
        """A fresh (cache_id, staging dir) whose diff/ the caller fills before commit()."""
        cache_id = os.urandom(32).hex()
        path = os.path.join(self.tmp, cache_id)
        os.makedirs(os.path.join(path, "diff"), mode=0o700)
        os.chmod(os.path.join(path, "diff"), 0o755)
        return cache_id, path

    def discard(self, staging_path):
        rmtree(staging_path)

    def commit(self, cache_id, staging_path, parent=None):
        """Write link/lower/work for the staged layer and move it into overlay2/."""
        short = _short_id()
        _write(os.path.join(staging_path, "link"), short)
        if parent:
            lowers = [f"l/{_read(os.path.join(self.dir(parent), 'link'))}"]
            parent_lower = _read(os.path.join(self.dir(parent), "lower"))
            if parent_lower:
                lowers += parent_lower.split(":")
            if len(lowers) > MAX_DEPTH:
                raise PyctrError(f"max depth exceeded: more than {MAX_DEPTH} layers")
            _write(os.path.join(staging_path, "lower"), ":".join(lowers))
            os.makedirs(os.path.join(staging_path, "work"), mode=0o700, exist_ok=True)
        os.rename(staging_path, self.dir(cache_id))
        os.symlink(f"../{cache_id}/diff", os.path.join(self.links, short))

    def create_rw(self, parent):
        """A fresh, empty read-write layer on top of parent (a container's or a bundle's)."""
        cache_id, path = self.staging()
        self.commit(cache_id, path, parent)
        os.makedirs(os.path.join(self.dir(cache_id), "merged"), mode=0o700, exist_ok=True)
        return cache_id

    def lowerdirs(self, cache_id):
        """Absolute lowerdir paths of a rw layer, uppermost first."""
        lower = _read(os.path.join(self.dir(cache_id), "lower"))
        return [os.path.join(self.home, p) for p in lower.split(":") if p]

    def mount_options(self, cache_id):
        lowers = self.lowerdirs(cache_id)
        d = self.dir(cache_id)
        if not lowers:
            raise PyctrError(f"layer {cache_id} has no lower layers to mount")
        return (f"index=off,lowerdir={':'.join(lowers)},upperdir={d}/diff,workdir={d}/work")

    def mount(self, cache_id, target):
        from pyrunc.sys import calls
        data = self.mount_options(cache_id)
        if len(data) >= os.sysconf("SC_PAGE_SIZE"):
            raise PyctrError(f"overlay mount options for {cache_id} exceed one page ({len(data)} bytes)")
        try:
            calls.mount("overlay", target, "overlay", 0, data)
        except OSError as e:
            raise PyctrError(f"cannot mount overlay on {target}: {e}") from None

    def remove(self, cache_id):
        d = self.dir(cache_id)
        short = _read(os.path.join(d, "link"))
        if short:
            try:
                os.unlink(os.path.join(self.links, short))
            except FileNotFoundError:
                pass
        rmtree(d)

    def ids(self):
        return [n for n in listdir(self.home) if n != "l"]

    def clean_links(self):
        for short in listdir(self.links):
            p = os.path.join(self.links, short)
            if not os.path.exists(p):
                os.unlink(p)
