"""No module is loaded from a file once the container's filesystem is ours.

After pivot_root (init) or setns into the mount namespace (exec), every path on sys.path and every
package's __path__ resolves inside the container's root: a lazy import there would run a file the
image chose, as root, in a process that still holds the runtime's fds. The children import what
they need before that point (process/init.py and process/setns_init.py preload()); seal() then
leaves only the interpreter's builtin and frozen modules importable, so a module that was missed
fails loudly (ModuleNotFoundError) instead of being read from the container. Codecs are looked up
through imports too: an unloaded one becomes a LookupError, never the image's encodings/*.py.
"""
import sys

_IN_BINARY = ("BuiltinImporter", "FrozenImporter")


# What seal() takes away, kept alive: freeing the finders' directory listings (thousands of
# strings the child shares with the runtime copy-on-write) would copy ~80 pages to decrement their
# reference counts, 0.25 ms of init's time. The process execs or exits soon after.
_unreachable = []


def seal():
    sys.meta_path[:] = [finder for finder in sys.meta_path if getattr(finder, "__name__", "") in _IN_BINARY]
    _unreachable.append((sys.path_importer_cache, sys.path))
    sys.path_importer_cache = {}
    sys.path = []
