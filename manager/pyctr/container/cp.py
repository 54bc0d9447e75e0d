"""`cp` between a container and the host, with Docker's rules (cli-docs container_cp):

    SRC file    DEST missing -> a new file (DEST ending in '/' -> "no such directory");
                DEST file -> overwritten; DEST dir -> DEST/basename(SRC)
    SRC dir     DEST missing -> created with SRC's content; DEST file -> "cannot copy directory";
                DEST dir -> DEST/basename(SRC), or SRC's content if SRC ends in '/.'
    '-'         a tar on stdout (from a container) or from stdin (into a container dir)
    owners      as Docker 20.10 does them (checked against dockerd; its docs say otherwise): into a
                container the source's ids are kept, out of it files belong to the caller, with or
                without -a
    symlinks    SRC's last component copied as a link unless -L; DEST's followed

Container paths are resolved inside the container's root (openat2 RESOLVE_IN_ROOT) with its
volumes; what is written below DEST never goes through a symlink. A stopped container is mounted
in a private mount namespace for the copy (fsview.py)."""
import errno
import os
import stat
import sys
import threading

from pyctr.container.errors import CommandError


def _norm(path):
    return "/" + path.lstrip("/") if path else "/"


class _Source:
    """What to archive: an open fd for a directory (or the parent's fd and the name for anything
    else), its stat, and the name its copy gets by default."""

    def __init__(self, fd, name, st, base):
        self.fd, self.name, self.st, self.base = fd, name, st, base

    @property
    def is_dir(self):
        return stat.S_ISDIR(self.st.st_mode)

    def close(self):
        os.close(self.fd)


def open_source(root, path, follow, shown):
    """Open SRC: in a container root (root a path) or on the host (root None)."""
    from pyctr.fs.resolve import open_in_root
    want_dir = path.endswith("/") or path.endswith("/.")
    clean = os.path.normpath(path) if root is None else os.path.normpath(_norm(path))
    parent, base = os.path.split(clean)
    try:
        if root is None:
            pfd = os.open(parent or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            pfd = open_in_root(root, parent, os.O_PATH | os.O_DIRECTORY)
    except OSError as e:
        raise _missing(root, path, shown, e) from None
    try:
        if not base:   # the container's (or host's) root: its content is copied
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            return _Source(fd, None, os.fstat(fd), "")
        st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode) and follow:
            # -L: the link's target (resolved inside the root), under the link's name
            fd = open_in_root(root, clean, os.O_RDONLY | os.O_NONBLOCK) if root is not None else \
                os.open(clean, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            return _Source(fd, None, os.fstat(fd), base)
        if want_dir and not stat.S_ISDIR(st.st_mode):
            raise CommandError(f"lstat {path}: not a directory")
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            return _Source(fd, None, st, base)
        return _Source(os.dup(pfd), base, st, base)
    except FileNotFoundError as e:
        raise _missing(root, path, shown, e) from None
    except NotADirectoryError:
        raise CommandError(f"lstat {path}: not a directory") from None
    finally:
        os.close(pfd)


def _missing(root, path, shown, e):
    if root is None:
        return CommandError(f"lstat {os.path.abspath(path)}: {os.strerror(e.errno).lower()}")
    return CommandError(f"Could not find the file {_norm(path)} in container {shown}")


def plan(src, src_path, dest_stat, dest_path):
    """(directory to extract into, name of the copy's root, copy SRC's content only?) by Docker's
    rules; dest_stat is DEST's stat (symlinks followed) or None."""
    contents = src_path.endswith("/.") or src.base == ""
    if dest_stat is None:
        if not src.is_dir and dest_path.endswith("/"):
            raise CommandError("no such directory")
        parent, name = os.path.split(dest_path.rstrip("/"))
        return parent or "/", name, False
    if stat.S_ISDIR(dest_stat.st_mode):
        if src.is_dir and contents:
            parent, name = os.path.split(dest_path.rstrip("/"))
            return parent or "/", name, True
        return dest_path, src.base, False
    if src.is_dir:
        raise CommandError("cannot copy directory")
    parent, name = os.path.split(dest_path.rstrip("/"))
    return parent or "/", name, False


def write_archive(src, out, name, owner=None):
    """SRC as a tar named `name` (a directory: name/ and everything below) on out."""
    from pyctr.fs.tarwrite import TarWriter
    tw = TarWriter(out)
    try:
        if src.is_dir:
            tw.add_tree(src.fd, prefix=name, owner=owner, root_entry=(name, src.st))
        else:
            tw.add(src.fd, src.name, name, src.st, owner)
    finally:
        tw.close()


def extract(stream, dest_fd, owner):
    from pyctr.fs.untar import Extractor
    Extractor(dest_fd, owner).run(stream)


def _pipe_copy(src, name, dest_fd, archive_owner, extract_owner):
    """Archive src into a pipe on a thread, extract it below dest_fd here."""
    r, w = os.pipe2(os.O_CLOEXEC)
    failure = []

    def produce():
        try:
            with os.fdopen(w, "wb") as out:
                write_archive(src, out, name, archive_owner)
        except BaseException as e:  # noqa: BLE001 - reported by the consumer
            failure.append(e)
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    try:
        with os.fdopen(r, "rb") as stream:
            extract(stream, dest_fd, extract_owner)
    finally:
        t.join()
    if failure:
        raise failure[0]


def _container_stat(root, path):
    from pyctr.fs.resolve import open_in_root
    try:
        fd = open_in_root(root, path, os.O_PATH)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            return None
        raise
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def copy_from(ctx, cid, shown, src_path, dest_path, archive=False, follow=False):
    from pyctr.container.fsview import ContainerFS
    fs = ContainerFS(ctx, ctx.containers.load(cid))
    if dest_path != "-":   # relative to the caller's directory, whatever a helper's cwd
        dest_path = os.path.abspath(dest_path) + ("/" if dest_path.endswith("/") else "")
    owner = (os.getuid(), os.getgid())

    def work(root):
        src = open_source(root, src_path, follow, shown)
        try:
            if dest_path == "-":
                write_archive(src, sys.stdout.buffer, src.base or ".")
                sys.stdout.buffer.flush()
                return 0
            try:
                dest_stat = os.stat(dest_path)
            except FileNotFoundError:
                dest_stat = None
                parent = os.path.dirname(dest_path.rstrip("/")) or "/"
                if not os.path.isdir(parent) and not dest_path.endswith("/"):
                    raise CommandError(f"invalid output path: directory \"{parent}\" does not exist") from None
            into, name, contents = plan(src, src_path, dest_stat, dest_path)
            dfd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                if contents:
                    dfd2 = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    os.close(dfd)
                    dfd, name = dfd2, ""
                _pipe_copy(src, name or ".", dfd, None, owner)
            finally:
                os.close(dfd)
        finally:
            src.close()
        return 0
    fs.run_in_container(work)


def copy_to(ctx, cid, shown, src_path, dest_path, archive=False, follow=False):
    from pyctr.container.fsview import ContainerFS
    from pyctr.fs.resolve import open_in_root
    fs = ContainerFS(ctx, ctx.containers.load(cid))
    if (ctx.containers.load(cid).get("HostConfig") or {}).get("ReadonlyRootfs"):
        raise CommandError("container rootfs is marked read-only")
    owner = None   # the archive's ids (the host file's), -a or not
    src = None if src_path == "-" else open_source(None, src_path, follow, shown)

    def work(root):
        dest = _norm(dest_path)
        if src is None:   # a tar on stdin, extracted into the directory DEST
            st = _container_stat(root, dest)
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise CommandError(f"destination \"{shown}:{dest_path}\" must be a directory")
            dfd = open_in_root(root, dest, os.O_RDONLY | os.O_DIRECTORY)
            try:
                extract(sys.stdin.buffer, dfd, owner)
            finally:
                os.close(dfd)
            return 0
        dest_stat = _container_stat(root, dest)
        if dest_stat is None and _container_stat(root, os.path.dirname(dest.rstrip("/")) or "/") is None:
            raise CommandError(f"Could not find the file {os.path.dirname(dest.rstrip('/'))} in container {shown}")
        into, name, contents = plan(src, src_path, dest_stat, dest)
        try:
            dfd = open_in_root(root, into, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise CommandError(f"Could not find the file {into} in container {shown}: {e.strerror.lower()}") from None
        try:
            if contents:
                dfd2 = open_in_root(root, os.path.join(into, name), os.O_RDONLY | os.O_DIRECTORY)
                os.close(dfd)
                dfd, name = dfd2, ""
            _pipe_copy(src, name or ".", dfd, None, owner)
        finally:
            os.close(dfd)
        return 0
    try:
        fs.run_in_container(work, write=True)
    finally:
        if src is not None:
            src.close()
