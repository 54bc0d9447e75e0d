"""`diff`: what a container changed, from its upper layer: `A path` added, `C path` changed (a
directory is listed when something below it changed), `D path` deleted (an overlay whiteout: a 0:0
character device). Docker prints its changes in map order; pyctr sorts them by path, parents first.
Runtime stubs (fsview.STUBS, the container's mount targets) are left out, as Docker's init layer
and podman's filter do."""
import os
import stat

from pyctr.fs.walk import walk

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def changes(upper, lower_root, stubs=()):
    """[(kind, "/path")] for the upper dir against the image tree at lower_root."""
    lower = os.open(lower_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    raw = []
    try:
        for kind, e in walk(top):
            if kind == "leave":
                continue
            path = "/" + e.path
            if is_whiteout(e.st):
                raw.append(("D", path, e.st, None))
                continue
            below = _lstat_below(lower, e.path)
            if below is None:
                raw.append(("A", path, e.st, None))
            else:
                raw.append(("C", path, e.st, below))
    finally:
        os.close(top)
        os.close(lower)
    return _filter(raw, stubs)


def _lstat_below(root_fd, relpath):
    """lstat of relpath in the image tree, no symlink followed on the way (a path below an image
    symlink is not the same path)."""
    from pyrunc.sys import calls, consts
    parent, name = os.path.split(relpath)
    try:
        fd = calls.openat2(root_fd, parent or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                           consts.RESOLVE_BENEATH | consts.RESOLVE_NO_SYMLINKS | consts.RESOLVE_NO_XDEV)
    except OSError:
        return None
    try:
        return os.lstat(name, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _empty_stub(st, below):
    if below is not None:
        return True   # the image has it: the runtime only mounted over it
    return stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def _filter(raw, stubs):
    """Drop stubs (and what the runtime made below them); keep a changed directory only if
    something below it is kept or its own mode or owner changed."""
    kept = []
    dropped_dirs = []
    for kind, path, st, below in raw:
        if any(path.startswith(d + "/") for d in dropped_dirs):
            continue
        if path in stubs and kind != "D" and _empty_stub(st, below):
            if stat.S_ISDIR(st.st_mode):
                dropped_dirs.append(path)
            continue
        kept.append((kind, path, st, below))
    out = []
    for i, (kind, path, st, below) in enumerate(kept):
        if kind == "C" and stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(below.st_mode):
            has_child = i + 1 < len(kept) and kept[i + 1][1].startswith(path + "/")
            own = (st.st_mode, st.st_uid, st.st_gid) != (below.st_mode, below.st_uid, below.st_gid)
            if not has_child and not own:
                continue
        out.append((kind, path))
    return out


def print_changes(fs):
    """The `diff` verb's output for a ContainerFS, printed by whichever process has the view."""
    import sys

    def show(lower_root):
        for kind, path in changes(fs.upper, lower_root, fs.stubs()):
            sys.stdout.write(f"{kind} {path}\n")
        sys.stdout.flush()
        return 0
    return fs.run_in_lowers(show)
