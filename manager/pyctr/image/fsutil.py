"""Filesystem helpers shared by the store's parts."""


def rmtree(path):
    """Remove a tree, what is there of it. shutil is imported here, not at the top of every store
    module: it imports bz2 and lzma (~1.5 ms), and most commands never remove a tree."""
    import shutil
    shutil.rmtree(path, ignore_errors=True)
