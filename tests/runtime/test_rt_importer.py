"""pyrunc/importer.py: a package's modules loaded from their .pyc files, and declined to the normal
import whenever CPython itself would not trust the .pyc.

Each case runs in a fresh `python -S` (the finder changes sys.meta_path for good) over a
package built in tmp_path and compiled with py_compile, as pip compiles an installed pyrunc.
"""
import os
import py_compile
import subprocess
import sys
import textwrap

RUNTIME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "runtime")


def _package(tmp_path):
    root = tmp_path / "pkgx"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "NAME = 'pkgx'\n",
        "a.py": "from . import b\nfrom .sub import c\n\ndef total():\n    return b.VALUE + c.VALUE\n",
        "b.py": "VALUE = 1\n",
        "sub/__init__.py": "",
        "sub/c.py": "VALUE = 10\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
        py_compile.compile(str(root / name), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    return root


def _run(tmp_path, body):
    script = textwrap.dedent("""
        import sys
        sys.path[:0] = [{runtime!r}, {tmp!r}]
        import pkgx
        from pyrunc.importer import OwnPackageFinder
        finder = OwnPackageFinder("pkgx", {pkg!r})
        sys.meta_path.insert(0, finder)
        def via(name):
            return "finder" if type(sys.modules[name].__loader__) is OwnPackageFinder else "path"
    """).format(runtime=RUNTIME, tmp=str(tmp_path), pkg=str(tmp_path / "pkgx")) + textwrap.dedent(body)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    cp = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.split()


def test_modules_come_from_their_pyc_with_the_usual_attributes(tmp_path):
    root = _package(tmp_path)
    out = _run(tmp_path, """
        import pkgx.a
        m, sub = sys.modules["pkgx.a"], sys.modules["pkgx.sub"]
        print(via("pkgx.a"), via("pkgx.b"), via("pkgx.sub"), via("pkgx.sub.c"), pkgx.a.total())
        print(m.__file__, m.__cached__, m.__package__, sub.__path__[0], pkgx.a.total.__code__.co_filename)
    """)
    assert out[:5] == ["finder", "finder", "finder", "finder", "11"]
    assert out[5:] == [str(root / "a.py"), str(root / "__pycache__" / f"a.{sys.implementation.cache_tag}.pyc"),
                       "pkgx", str(root / "sub"), str(root / "a.py")]


def test_a_stale_or_missing_pyc_is_left_to_the_normal_import(tmp_path):
    root = _package(tmp_path)
    (root / "b.py").write_text("VALUE = 1000\n")  # edited after compiling: size and mtime differ
    os.unlink(root / "sub" / "__pycache__" / f"c.{sys.implementation.cache_tag}.pyc")
    out = _run(tmp_path, """
        import pkgx.a
        print(via("pkgx.a"), via("pkgx.b"), via("pkgx.sub.c"), pkgx.a.total())
    """)
    assert out == ["finder", "path", "path", "1010"]


def test_a_hash_based_pyc_is_left_to_the_normal_import(tmp_path):
    root = _package(tmp_path)
    py_compile.compile(str(root / "b.py"), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    out = _run(tmp_path, """
        import pkgx.b
        print(via("pkgx.b"), pkgx.b.VALUE)
    """)
    assert out == ["path", "1"]


def test_other_packages_are_not_its_business(tmp_path):
    _package(tmp_path)
    out = _run(tmp_path, """
        print(finder.find_spec("pkgxy.a"), finder.find_spec("json"), finder.find_spec("pkgx.absent"))
    """)
    assert out == ["None", "None", "None"]


def test_sealed_imports_remove_it(tmp_path):
    _package(tmp_path)
    out = _run(tmp_path, """
        import pkgx.b
        from pyrunc.process import sealed_imports
        sealed_imports.seal()
        print(finder in sys.meta_path)
        try:
            import pkgx.sub.c
            print("imported")
        except ModuleNotFoundError:
            print("refused")
    """)
    assert out == ["False", "refused"]
