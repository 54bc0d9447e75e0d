"""`export CONTAINER`: the container's filesystem (image layers and its changes merged, whiteouts
applied; no volumes, as Docker) as a tar, xattrs kept, written without recursion (trees can be
thousands of levels deep)."""
import os


def export(ctx, cid, out):
    """The tar on out (a binary file object: the -o file or stdout)."""
    from pyctr.container.fsview import ContainerFS
    rec = ctx.containers.load(cid)
    fs = ContainerFS(ctx, rec)

    def write(root):
        from pyctr.fs.tarwrite import TarWriter
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            tw = TarWriter(out)
            tw.add_tree(fd)
            tw.close()
            out.flush()
        finally:
            os.close(fd)
        return 0
    fs.run_in_merged(write)
    from pyctr.container import events
    events.emit(ctx, "export", rec)
