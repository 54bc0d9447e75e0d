"""Remove a directory tree of any depth: the store's iterative, fd-based remover (shutil.rmtree
recurses, and a container can make a tree deeper than Python's recursion limit)."""


def remove_tree(path):
    """Remove path and everything below it; what is already gone is fine."""
    from pyctr.image.fsutil import rmtree
    rmtree(path)
