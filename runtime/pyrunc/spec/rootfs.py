"""root.path to the directory the container's root is built on, by runc's rule.

A relative root.path is relative to the bundle as runc sees it (runc chdirs into the bundle, so its
working directory is the bundle's real path), and the result must name a directory through no
symlink at all (runc's configs/validate: "invalid rootfs: not an absolute path, or a symlink").
Following a symlink there would let an image or a bundle point the root anywhere on the host,
where create would then make dev/, proc/, sys/ and every mount point.
"""
import os
import stat

from pyrunc.errors import PyruncError, StepError


def rootfs_path(root_path: str, bundle: str) -> str:
    path = os.path.normpath(os.path.join(os.path.realpath(bundle), root_path))
    try:
        st = os.stat(path)
    except OSError as e:
        raise StepError("invalid rootfs", path, e) from None
    if os.path.realpath(path) != path:
        raise PyruncError(f"invalid rootfs {path}: not an absolute path, or a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise StepError("invalid rootfs", path, "not a directory")
    return path
