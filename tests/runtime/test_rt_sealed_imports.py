"""process/sealed_imports.py: after seal() only builtin and frozen modules can be imported.

Run in a forked child (seal() changes the interpreter for good); the child reports over a pipe.
"""
import os


def _in_child(tmp_path, body):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, body().encode())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, f"child failed: {type(e).__name__}: {e}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def test_files_on_sys_path_and_package_paths_are_never_loaded(tmp_path):
    (tmp_path / "planted_top.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    package = tmp_path / "planted_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "late.py").write_text("open(__file__ + '.ran', 'w').close()\n")

    def body():
        import sys
        sys.path.insert(0, str(tmp_path))
        import planted_pkg  # noqa: F401 - loaded before the seal, as the runtime's own packages are
        from pyrunc.process import sealed_imports
        sealed_imports.seal()
        results = []
        for name in ("planted_top", "planted_pkg.late", "colorsys"):
            try:
                __import__(name)
                results.append(f"{name}: imported")
            except ModuleNotFoundError:
                results.append(f"{name}: refused")
        import _signal  # noqa: F401 - builtin modules still work
        import fcntl  # noqa: F401
        try:
            "x".encode("cp1140")  # a codec that is not loaded yet: its module is a file
            results.append("codec: loaded")
        except LookupError:
            results.append("codec: refused")
        import planted_pkg as again  # already loaded: still usable
        results.append(f"loaded package kept: {again is sys.modules['planted_pkg']}")
        return "\n".join(results)

    out = _in_child(tmp_path, body)
    assert out.splitlines() == ["planted_top: refused", "planted_pkg.late: refused", "colorsys: refused",
                                "codec: refused", "loaded package kept: True"], out
    assert not (tmp_path / "planted_top.py.ran").exists()
    assert not (package / "late.py.ran").exists()
