"""The generated validator: what it imports, and its on-disk cache (created, reused, regenerated,
never trusted blindly), and the import cost of pyrunc.spec.load for commands that never use it."""
import ast
import json
import marshal
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, REPO
from pyrunc.spec import load
from pyrunc.spec.template import default_config

HEAVY = ("jsonschema", "fastjsonschema", "referencing", "rpds", "attrs", "decimal", "importlib.util",
         "importlib.metadata", "hashlib", "json", "re", "enum")


@pytest.fixture
def schema_copy(tmp_path):
    directory = tmp_path / "schemas"
    shutil.copytree(load.schema_dir(), directory)
    return directory


@pytest.fixture
def cache(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o755)
    return directory


def _code_files(directory):
    return sorted(p for p in directory.iterdir() if p.suffix == ".code")


def _no_generation(monkeypatch):
    def refuse(*args):
        raise AssertionError("the validator was generated again instead of loaded from the cache")
    monkeypatch.setattr(load, "generate_source", refuse)


def _generated(kind):
    source = load.generate_source(load.default_schemas(), kind)
    namespace = {}
    exec(compile(source, f"<{kind}>", "exec"), namespace)
    return source, namespace


@pytest.mark.parametrize("kind", sorted(load.ROOTS))
def test_generated_source_imports_nothing_when_loaded(kind):
    source, _ = _generated(kind)
    tree = ast.parse(source)
    assert not [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imports = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imports.add(node.module)
    # Only inside the stand-ins: re for a pattern without a twin, decimal for multipleOf.
    assert imports <= {"re", "decimal"}


@pytest.mark.parametrize("kind", sorted(load.ROOTS))
def test_every_schema_pattern_has_a_plain_python_twin(kind):
    # Otherwise validating would import re (milliseconds) on the first use of that pattern: add a
    # twin to _PRELUDE in load.py, and it is checked against re by the test below.
    _, namespace = _generated(kind)
    sources = {pattern._source for pattern in namespace.get("REGEX_PATTERNS", {}).values()}
    assert sources <= set(namespace["_TWINS"])


def _corpus():
    alphabet = "RLIMT_CAPZa09 ,-KMGB:\ncbup\u00c9\u0661"
    words = [""] + [a + b + c for a in alphabet for b in alphabet + "." for c in ("", "B")][:4000]
    samples = ["RLIMIT_NOFILE", "RLIMIT_NOFILE\n", "RLIMIT_", "RLIMIT_nofile", "XRLIMIT_AS", "CAP_SYS_ADMIN",
               "CAP_", "CAP_SYS_ADMIN\n", "0-3, 7", "0-3\n", "2MB", "1GB", "10KB", "02MB", "2M", "MB", "2MB\n",
               "\u0662MB", "MB:0=20;1=70", "MB:0=20\n", "MB:", "xMB:", "\n", "\n\n", "a", "\na", "c", "cc",
               "c\n", "u", "p", "x", "1\u0661KB"]
    return words + samples + [prefix + word for prefix in ("RLIMIT_", "CAP_", "MB:", "1") for word in words]


def test_twins_answer_as_re_does():
    import re
    _, namespace = _generated("config")
    corpus = _corpus()
    for source, twin in namespace["_TWINS"].items():
        compiled = re.compile(source)
        for text in corpus:
            assert bool(twin(text)) == bool(compiled.search(text)), (source, text)


def test_generation_never_fetches_a_remote_schema(schema_copy, cache):
    path = schema_copy / "config-schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["hostname"] = {"$ref": "http://example.invalid/hostname.json"}
    path.write_text(json.dumps(schema))
    schemas = load.Schemas(str(schema_copy), str(cache))
    with pytest.raises(load.PyruncError, match="outside"):
        load.generate_source(schemas, "config")
    assert schemas.fast_validator("config") is None  # and the precise path would do the work


def test_cache_created_then_reused(schema_copy, cache, monkeypatch):
    validator = load.Schemas(str(schema_copy), str(cache)).fast_validator("config")
    assert validator is not None
    files = _code_files(cache)
    assert [p.name.split("-")[0] for p in files] == ["config"]
    assert files[0].with_suffix(".py").is_file()  # the source, for tracebacks
    before = files[0].stat()

    _no_generation(monkeypatch)
    again = load.Schemas(str(schema_copy), str(cache))
    validator = again.fast_validator("config")
    assert validator is not None
    validator(default_config())
    after = files[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _code_files(cache) == files


def test_cache_regenerated_when_a_schema_changes(schema_copy, cache, monkeypatch):
    config = default_config()
    config.pop("hostname")
    load.Schemas(str(schema_copy), str(cache)).fast_validator("config")(config)
    [old] = _code_files(cache)

    # The change is in a file reached only through a cross-file $ref from the entry schema.
    path = schema_copy / "config-linux.json"
    linux = json.loads(path.read_text())
    linux["linux"]["required"] = ["cgroupsPath"]
    path.write_text(json.dumps(linux, indent=4))

    schemas = load.Schemas(str(schema_copy), str(cache))
    validator = schemas.fast_validator("config")
    with pytest.raises(Exception):
        validator(config)
    assert str(schemas.precise_error("config", config).message) == "'cgroupsPath' is a required property"
    [new] = _code_files(cache)
    assert new != old and not old.with_suffix(".py").exists()  # the replaced entry is pruned

    _no_generation(monkeypatch)  # and the new one is reused in turn
    assert load.Schemas(str(schema_copy), str(cache)).fast_validator("config") is not None


def test_touching_a_schema_regenerates(schema_copy, cache):
    load.Schemas(str(schema_copy), str(cache)).fast_validator("process")
    [old] = _code_files(cache)
    stat = (schema_copy / "defs.json").stat()
    os.utime(schema_copy / "defs.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    load.Schemas(str(schema_copy), str(cache)).fast_validator("process")
    [new] = _code_files(cache)
    assert new != old


def test_entries_of_another_schema_directory_are_kept(schema_copy, cache, tmp_path):
    other = tmp_path / "other-install"
    shutil.copytree(schema_copy, other)
    load.Schemas(str(other), str(cache)).fast_validator("config")
    load.Schemas(str(schema_copy), str(cache)).fast_validator("config")
    assert len(_code_files(cache)) == 2


@pytest.mark.parametrize("content", [b"", b"garbage", marshal.dumps(("some other key", "0", compile(
    "raise SystemExit('a cache entry for another key was executed')", "x", "exec")))],
    ids=["empty", "garbage", "other-key"])
def test_corrupt_or_foreign_cache_file_is_regenerated(schema_copy, cache, content):
    schemas = load.Schemas(str(schema_copy), str(cache))
    schemas.fast_validator("config")
    [path] = _code_files(cache)
    path.write_bytes(content)
    validator = load.Schemas(str(schema_copy), str(cache)).fast_validator("config")
    assert validator is not None
    validator(default_config())
    stored_key, _, _ = marshal.loads(path.read_bytes())
    assert stored_key == schemas.cache_key("config")


def test_cache_key_records_what_matters(schema_copy, cache):
    key = load.Schemas(str(schema_copy), str(cache)).cache_key("config")
    assert sys.version in key
    assert str(schema_copy) in key
    assert "fastjsonschema " in key and "fastjsonschema -" not in key
    for name in load.SCHEMA_FILES:
        assert name in key
    load.Schemas(str(schema_copy), str(cache)).fast_validator("config")
    [path] = _code_files(cache)
    _, version, _ = marshal.loads(path.read_bytes())
    import fastjsonschema
    assert version == fastjsonschema.VERSION


def test_untrusted_cache_dir_is_not_used(schema_copy, cache):
    cache.chmod(0o777)
    validator = load.Schemas(str(schema_copy), str(cache)).fast_validator("config")
    assert validator is not None
    validator(default_config())
    assert list(cache.iterdir()) == []


def test_group_writable_cache_file_is_not_executed(schema_copy, cache, monkeypatch):
    load.Schemas(str(schema_copy), str(cache)).fast_validator("config")
    [path] = _code_files(cache)
    path.chmod(0o666)
    generated = []
    real = load.generate_source
    monkeypatch.setattr(load, "generate_source", lambda *a: generated.append(1) or real(*a))
    assert load.Schemas(str(schema_copy), str(cache)).fast_validator("config") is not None
    assert generated == [1]


def test_unusable_cache_dir_compiles_in_memory(schema_copy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    schemas = load.Schemas(str(schema_copy), str(blocker / "cache"))
    validator = schemas.fast_validator("config")
    assert validator is not None
    validator(default_config())


def test_cache_dir_is_created(schema_copy, tmp_path):
    directory = tmp_path / "a" / "b"
    load.Schemas(str(schema_copy), str(directory)).fast_validator("state")
    assert len(_code_files(directory)) == 1


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYRUNC_CACHE_DIR", str(tmp_path))
    assert load.cache_dir() == str(tmp_path)
    monkeypatch.delenv("PYRUNC_CACHE_DIR")
    assert load.cache_dir() == "/var/cache/pyrunc"


def _python(code, env_extra=None, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO / "runtime"), **(env_extra or {}))
    return subprocess.run([sys.executable, *kwargs.pop("flags", []), "-c", code], env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_concurrent_processes_share_one_cache(schema_copy, cache):
    code = ("import sys; from pyrunc.spec import load; "
            f"v = load.Schemas({str(schema_copy)!r}, {str(cache)!r}).fast_validator('config'); "
            "sys.exit(0 if v is not None else 3)")
    env = dict(os.environ, PYTHONPATH=str(REPO / "runtime"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    [path] = _code_files(cache)
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
    key, _, code_object = marshal.loads(path.read_bytes())
    assert key == load.Schemas(str(schema_copy), str(cache)).cache_key("config")


def test_importing_load_imports_nothing_heavy():
    result = _python("from pyrunc.spec.load import load_config", flags=["-X", "importtime"])
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "pyrunc.spec.load" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert "pyrunc.spec.validate" not in imported


def test_valid_config_with_warm_cache_imports_no_validator_library(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(default_config()))
    load.default_schemas().fast_validator("config")  # warm the session cache this process shares
    result = _python(
        "import sys; from pyrunc.spec.load import load_config; "
        f"load_config({str(bundle)!r}); "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_invalid_config_imports_jsonschema_for_the_message(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = default_config()
    config["process"]["cwd"] = 7
    (bundle / "config.json").write_text(json.dumps(config))
    result = _python(f"from pyrunc.spec.load import load_config; load_config({str(bundle)!r})")
    assert "pyrunc.errors.InvalidSpec: config.json: process.cwd: 7 is not of type 'string'" in result.stderr


def test_runc_default_fixture_validates_in_a_fresh_process():
    path = FIXTURES / "good" / "runc-spec-default.json"
    result = _python(f"import json; from pyrunc.spec.load import validate_config; "
                     f"validate_config(json.load(open({str(path)!r})))")
    assert result.returncode == 0, result.stderr
