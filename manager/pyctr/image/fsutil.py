"""Filesystem helpers shared by the store's parts."""


def rmtree(path):
    """Remove a tree, what is there of it. Iterative (pyctr.fs.remove): a container's upper layer
    can be deeper than shutil.rmtree's recursion reaches, and must still go with the container."""
    from pyctr.fs.remove import remove_tree
    try:
        remove_tree(path)
    except OSError:
        pass
