"""A finder for pyrunc's own modules that skips importlib's generic path search.

`run` imports ~60 pyrunc modules and `state` ~17; through sys.path each costs ~40-50 us of
import machinery (a FileFinder per package, path and cache-name computations, several stats and
reads) before its code runs. This finder knows where pyrunc lives: for pyrunc.a.b it stats
<pyrunc>/a/b.py (or a/b/__init__.py), reads the .pyc CPython wrote for it (cache_from_source,
so PYTHONPYCACHEPREFIX is honoured) and accepts it on CPython's own terms: the magic number of
this interpreter, a timestamp pyc whose recorded source mtime and size match. Anything else (no
pyc, stale, hash-based, unreadable, a namespace package) is declined and the normal path
import handles it, compiling as usual. ~20 us a module.

Installed by the console script (scripts/fast-entry) only; tests and `python -m` imports are
untouched. sealed_imports.seal() removes it with every other non-builtin finder.
"""
import _imp
import marshal
import os
import sys

_external = sys.modules["_frozen_importlib_external"]
_ModuleSpec = sys.modules["_frozen_importlib"].ModuleSpec


class OwnPackageFinder:
    """Meta path finder (and loader) for one package's modules, from their .pyc files."""

    def __init__(self, package, directory):
        self.prefix = package + "."
        self.directory = directory

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(self.prefix):
            return None
        base = os.path.join(self.directory, *fullname[len(self.prefix):].split("."))
        try:
            return self._spec(fullname, base + ".py", False) or \
                self._spec(fullname, os.path.join(base, "__init__.py"), True)
        except (OSError, ValueError, EOFError, TypeError):
            return None  # whatever went wrong, the normal import decides

    def _spec(self, fullname, source, package):
        try:
            st = os.stat(source)
        except FileNotFoundError:
            return None
        cached = _external.cache_from_source(source)
        try:
            fd = os.open(cached, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            data = os.read(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        if (data[:4] != _external.MAGIC_NUMBER or data[4:8] != b"\0\0\0\0"
                or int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF):
            return None
        code = marshal.loads(memoryview(data)[16:])
        _imp._fix_co_filename(code, source)  # as SourceFileLoader does: the file it really is
        spec = _ModuleSpec(fullname, self, origin=source, is_package=package)
        spec.has_location = True
        spec.cached = cached
        if package:
            spec.submodule_search_locations = [os.path.dirname(source)]
        spec.loader_state = code
        return spec

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        code, module.__spec__.loader_state = module.__spec__.loader_state, None
        exec(code, module.__dict__)


def install():
    """Put the finder for pyrunc just before the path-based one (after builtin and frozen)."""
    import pyrunc
    finder = OwnPackageFinder("pyrunc", os.path.dirname(os.path.abspath(pyrunc.__file__)))
    position = next((i for i, f in enumerate(sys.meta_path) if getattr(f, "__name__", "") == "PathFinder"),
                    len(sys.meta_path))
    sys.meta_path.insert(position, finder)
    return finder
