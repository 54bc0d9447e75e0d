"""Where COPY/ADD sources come from: the build context (read in place, filtered by .dockerignore,
nothing outside it: `../x` and symlinks that lead out are refused) or another stage's or image's
root filesystem (`--from`, symlinks resolved inside that root). Also the content checksum the
cache keys COPY/ADD by: names, modes, link targets and file contents, not mtimes."""
import fnmatch
import hashlib
import os
import posixpath
import stat

from pyctr.errors import PyctrError

_GLOB = set("*?[")


class SourceError(PyctrError):
    pass


def scoped_path(root, path, refuse_escape=False, what="path"):
    """Host path of `path` inside `root`, following symlinks as if root were `/` (Docker's
    FollowSymlinkInScope). With refuse_escape, a `..` or a symlink that leads out is an error
    instead of being clamped at root."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved = []
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if resolved:
                resolved.pop()
            elif refuse_escape:
                raise SourceError(f"forbidden path outside the build context: {what}")
            continue
        candidate = os.path.join(root, *resolved, p)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(p)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 255:
                raise SourceError(f"too many levels of symbolic links: {what}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                if refuse_escape:
                    raise SourceError(f"forbidden path outside the build context: {what} (a symlink to {target})")
                resolved = []
            parts = [x for x in target.split("/") if x and x != "."] + parts
            continue
        resolved.append(p)
    return os.path.join(root, *resolved)


class Source:
    """One resolved source: `path` on the host, `rel` its name in the context or image."""

    def __init__(self, path, rel):
        self.path, self.rel = path, rel


class Origin:
    """A tree sources are read from: the context (with its ignore matcher) or an image root."""

    def __init__(self, root, matcher=None, is_context=True):
        self.root, self.matcher, self.is_context = root, matcher, is_context

    def ignored(self, rel):
        return bool(self.matcher and rel and self.matcher.ignored(rel))

    def _all(self):
        """Every path under the root, relative, parents first (iteratively: any depth)."""
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                names = sorted(os.listdir(os.path.join(self.root, rel) if rel else self.root))
            except (NotADirectoryError, PermissionError):
                continue
            for n in names:
                sub = f"{rel}/{n}" if rel else n
                yield sub
                if stat.S_ISDIR(os.lstat(os.path.join(self.root, sub)).st_mode):
                    stack.append(sub)

    def resolve(self, src, cmd):
        """The sources a COPY/ADD argument names (a glob may name many)."""
        clean = posixpath.normpath("/" + src).lstrip("/")
        if self.is_context and posixpath.normpath(src).startswith(".."):
            raise SourceError(f"{cmd} failed: forbidden path outside the build context: {src}")
        if _GLOB & set(clean):
            out = [Source(self._path(rel, src, cmd), rel) for rel in self._all()
                   if _segments_match(rel, clean) and not self.ignored(rel)]
            if not out:
                raise SourceError(f"{cmd} failed: no source files were specified")
            return out
        path = self._path(clean, src, cmd)
        if (clean and self.ignored(clean)) or not os.path.lexists(path):
            raise SourceError(f"{cmd} failed: file not found in build context or excluded by .dockerignore: "
                              f"stat {src}: file does not exist" if self.is_context else
                              f"{cmd} failed: stat {src}: file does not exist")
        return [Source(path, clean)]

    def _path(self, rel, src, cmd):
        try:
            return scoped_path(self.root, rel, refuse_escape=self.is_context, what=src)
        except SourceError as e:
            raise SourceError(f"{cmd} failed: {e}") from None

    def walk(self, source):
        """(host path, relative name under the source, lstat) of a source and what lies below it,
        parents before children, ignored paths left out (an ignored directory is still entered
        when `!` patterns may bring back something below it)."""
        st = os.stat(source.path)
        yield source.path, "", st
        if not stat.S_ISDIR(st.st_mode):
            return
        stack = [("", source.path)]
        while stack:
            rel, host = stack.pop()
            subdirs = []
            for name in sorted(os.listdir(host)):
                sub_rel = f"{rel}/{name}" if rel else name
                ctx_rel = f"{source.rel}/{sub_rel}" if source.rel else sub_rel
                sub_host = os.path.join(host, name)
                sst = os.lstat(sub_host)
                is_dir = stat.S_ISDIR(sst.st_mode)
                if self.ignored(ctx_rel):
                    if is_dir and self.matcher.has_exclusions:
                        subdirs.append((sub_rel, sub_host))
                    continue
                yield sub_host, sub_rel, sst
                if is_dir:
                    subdirs.append((sub_rel, sub_host))
            stack.extend(reversed(subdirs))


def _segments_match(rel, pattern):
    a, b = rel.split("/"), pattern.split("/")
    return len(a) == len(b) and all(fnmatch.fnmatchcase(x, y) for x, y in zip(a, b))


def checksum(origin, sources):
    """Docker-like `file:<hex>`, `dir:<hex>` or `multi:<hex>`: content, modes and names, no mtimes."""
    h_all = hashlib.sha256()
    kinds = []
    for s in sources:
        h = hashlib.sha256()
        for host, rel, st in origin.walk(s):
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if not origin.is_context:
                h.update(f"{st.st_uid}:{st.st_gid}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(host).encode("utf-8", "surrogateescape"))
            elif stat.S_ISREG(st.st_mode):
                with open(host, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            h.update(b"\n")
        kinds.append("dir" if os.path.isdir(s.path) else "file")
        h_all.update(h.digest())
    if len(sources) == 1:
        return f"{kinds[0]}:{h_all.hexdigest()}"
    return f"multi:{h_all.hexdigest()}"
