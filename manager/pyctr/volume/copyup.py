"""Docker's volume copy-up (daemon/create_unix.go populateVolume): at create, a volume that is
empty gets the image's content at the mount destination, owners, modes and xattrs kept. The
destination is resolved inside the image root (a symlink in the image cannot point the copy at the
host), and the copy never follows a symlink."""
import errno
import os

from pyctr.volume.errors import VolumeError


def copy_up(rootfs, path, volume_dir):
    """Copy rootfs:path into volume_dir if volume_dir is empty and path is a directory in the
    image; returns whether it copied."""
    from pyctr.fs.copytree import copy_meta, copy_tree
    from pyctr.fs.resolve import open_in_root
    dst = os.open(volume_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.listdir(dst):
            return False
        try:
            src = open_in_root(rootfs, path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return False   # nothing in the image there: the volume stays empty
            raise VolumeError(f"copying the image's {path} into the volume: {e.strerror.lower()}") from None
        try:
            copy_tree(src, dst)
            copy_meta(src, dst, os.fstat(src))  # the volume root takes the image dir's owner and mode
        finally:
            os.close(src)
    finally:
        os.close(dst)
    return True
