"""Read config.json (or an exec process.json) and check it against the OCI runtime-spec schemas.

Every container start runs this, so the common case, a valid config, must cost about a
millisecond. Importing jsonschema alone costs tens, so validation has two paths:

- fast: a validator that fastjsonschema generated from the same schema files, rewritten to import
  nothing (not even `re`: the schemas' few patterns have plain-Python twins), cached on disk as a
  marshalled code object and keyed by the schema files' stat (plus this file's and
  fastjsonschema's), so a warm run is a read, a `marshal.loads` and a call.
- precise: only when the fast validator rejects the document (or cannot be had) is jsonschema
  imported; it names the JSON path and the broken rule. jsonschema is authoritative: if it finds no
  error, the document is valid whatever the fast path said.

After the schema, the semantic rules of `pyrunc.spec.validate` run.
Only os and pyrunc.fastjson (not json, which drags in re and enum) are imported at module level.
"""
import os

from pyrunc import fastjson
from pyrunc.errors import InvalidSpec, PyruncError

CACHE_DIR_ENV = "PYRUNC_CACHE_DIR"
DEFAULT_CACHE_DIR = "/var/cache/pyrunc"

# The schemas' own base (config-schema.json's id). Every file is registered under it, so the
# relative cross-file $refs ("defs.json#/definitions/...") resolve to the local copies only.
SCHEMA_BASE = "https://opencontainers.org/schema/"
SCHEMA_FILES = ("config-schema.json", "config-linux.json", "defs.json", "defs-linux.json",
                "state-schema.json", "features-schema.json", "features-linux.json")
_DRAFT4 = "http://json-schema.org/draft-04/schema#"

# Documents we validate, and where in the schemas each one starts.
ROOTS = {
    "config": "config-schema.json",
    "process": "config-schema.json#/properties/process",
    "resources": "config-linux.json#/linux/properties/resources",
    "state": "state-schema.json",
    "features": "features-schema.json",
}

# Bump when the code generation or the cache file layout changes without this file's size changing.
_CODEGEN_REVISION = 1


# runc reads config.json whole, with no bound; a config is a few KiB (a large seccomp profile and a
# Kubernetes pod's environment, some hundreds). Anything past this is an attack or a mistake (a
# bundle whose config.json is /dev/zero), refused before a byte of it is held in memory.
MAX_DOCUMENT = 16 << 20


def load_config(bundle: str) -> dict:
    """Read, parse and validate <bundle>/config.json."""
    path = os.path.join(bundle, "config.json")
    data = read_document(path)
    config = parse_json(data, "config.json")
    validate_config(config, raw=data)
    return config


def read_document(path: str, limit: int = MAX_DOCUMENT) -> bytes:
    """The bytes of a JSON document the caller names (config.json, exec's --process file).

    Only a regular file of at most `limit` bytes: opened without blocking (a FIFO would otherwise
    hang until some writer came, a device would be read for ever) and checked on the open fd."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidSpec("", "JSON specification file not found", source=path) from None
    except OSError as e:
        raise InvalidSpec("", f"cannot read: {_strerror(e)}", source=path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidSpec("", f"cannot read: {_file_kind(st.st_mode)}, not a regular file", source=path)
        if st.st_size > limit:
            raise InvalidSpec("", f"cannot read: {st.st_size} bytes, more than the {limit >> 20} MiB "
                              "a JSON specification may have", source=path)
        chunks, size = [], 0
        while size <= limit:  # the file may grow while we read: never past limit + 1
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise InvalidSpec("", f"cannot read: more than the {limit >> 20} MiB a JSON specification "
                              "may have", source=path)
        return b"".join(chunks)
    except OSError as e:
        raise InvalidSpec("", f"cannot read: {_strerror(e)}", source=path) from None
    finally:
        os.close(fd)


def _strerror(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _file_kind(mode: int) -> str:
    import stat
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def parse_json(data: bytes, source: str):
    """Parse, turning every way a document can be malformed into InvalidSpec; fastjson's messages
    name the line and column."""
    try:
        return fastjson.loads(data)
    except fastjson.JSONError as e:
        raise InvalidSpec("", f"malformed JSON: {e}", source) from None
    except UnicodeDecodeError as e:
        raise InvalidSpec("", f"malformed JSON: not valid UTF-8 at byte {e.start}", source) from None
    except RecursionError:
        raise InvalidSpec("", "malformed JSON: nested too deeply", source) from None


def validate_config(config, source: str = "config.json", raw: bytes | None = None) -> None:
    """Normalisation (runc's reading of nulls; strings the kernel cannot take), schema, semantic
    rules; raises InvalidSpec naming the JSON path. `raw`, the document's bytes when known, lets
    normalisation skip what the text shows cannot be there."""
    from pyrunc.spec import normalize
    normalize.prepare(config, source, raw, exempt=("annotations",))
    default_schemas().check("config", config, source)
    from pyrunc.spec import validate
    validate.check_config(config, source)


def validate_process(process, source: str = "process.json", raw: bytes | None = None) -> None:
    """A process.json (exec --process): the config's process schema and the rules on it."""
    from pyrunc.spec import normalize
    normalize.prepare(process, source, raw)
    default_schemas().check("process", process, source)
    from pyrunc.spec import validate
    validate.check_process(process, "", source)


def validate_resources(resources, source: str, raw: bytes | None = None) -> None:
    """`update -r`'s document: a LinuxResources, as in config.json's linux.resources."""
    from pyrunc.spec import normalize
    normalize.prepare(resources, source, raw)
    default_schemas().check("resources", resources, source)


_default = None


def default_schemas() -> "Schemas":
    global _default
    if _default is None:
        _default = Schemas(schema_dir())
    return _default


def schema_dir() -> str:
    """Installed, the schemas are package data of `pyrunc_specs`, beside `pyrunc`; in the source
    tree they are <repo>/specs. Path arithmetic only: no importlib machinery on this path."""
    import pyrunc
    parent = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
    candidates = (os.path.join(parent, "pyrunc_specs", "runtime-spec"),
                  os.path.join(os.path.dirname(parent), "specs", "runtime-spec"))
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, ROOTS["config"])):
            return candidate
    raise PyruncError(f"runtime-spec schemas not found (looked in {', '.join(candidates)})")


def cache_dir() -> str:
    return os.path.abspath(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)


class Schemas:
    """The schema files of one directory, with a fast validator per root, built at most once per
    process and cached on disk across processes."""

    def __init__(self, directory: str, cache_directory: str | None = None):
        self.directory = os.path.abspath(directory)
        self._cache_directory = cache_directory
        self._fast = {}
        self._registry = None

    @property
    def cache_directory(self) -> str:
        return self._cache_directory or cache_dir()

    def check(self, kind: str, document, source: str) -> None:
        """Raise InvalidSpec if `document` breaks the `kind` schema (a key of ROOTS)."""
        validator = self.fast_validator(kind)
        if validator is not None:
            try:
                validator(document)
                return
            except Exception:  # noqa: BLE001 - any doubt goes to the authoritative validator
                pass
        error = self.precise_error(kind, document)
        if error is not None:
            from pyrunc.spec.validate import json_path
            raise InvalidSpec(json_path(error.absolute_path), _message(error), source)

    def precise_error(self, kind: str, document):
        """jsonschema's best-matching error for `document`, or None if it is valid."""
        from jsonschema import Draft4Validator
        from jsonschema.exceptions import best_match
        validator = Draft4Validator({"$ref": SCHEMA_BASE + ROOTS[kind]}, registry=self.registry())
        return best_match(validator.iter_errors(document))

    def registry(self):
        """A referencing Registry holding every schema file, with no retrieval: an unknown $ref is
        an error, never a network fetch."""
        if self._registry is None:
            from referencing import Registry
            from referencing.jsonschema import DRAFT4
            self._registry = Registry().with_resources(
                (SCHEMA_BASE + name, DRAFT4.create_resource(self.read_schema(name)))
                for name in SCHEMA_FILES)
        return self._registry

    def read_schema(self, name: str):
        with open(os.path.join(self.directory, name), "rb") as f:
            return fastjson.loads(f.read())

    # -- fast path ----------------------------------------------------------------------------

    def fast_validator(self, kind: str):
        """The generated validate(document) for `kind`, or None if it cannot be had (no
        fastjsonschema, generation failed); the precise path then does all the work."""
        try:
            return self._fast[kind]
        except KeyError:
            pass
        try:
            validator = self._load_fast(kind)
        except Exception:  # noqa: BLE001 - an optimisation must never make a valid config fail
            validator = None
        self._fast[kind] = validator
        return validator

    def _load_fast(self, kind: str):
        key = self.cache_key(kind)
        path = self.cache_path(kind, key)
        code = _read_cached_code(path, key) if path else None
        if code is None:
            source = generate_source(self, kind)
            filename = path[:-len(".code")] + ".py" if path else f"<pyrunc {kind} validator>"
            code = compile(source, filename, "exec")
            if path and _write_cache(path, filename, source, key, code):
                _prune_stale(path, kind, self.directory)
        namespace = {"__name__": f"pyrunc_spec_{kind}_validator"}
        exec(code, namespace)
        return namespace["validate"]

    def cache_key(self, kind: str) -> str:
        """Everything that can change the generated code, cheaply: os.stat, no hashing library.
        Python's version is in it because marshal's format follows the bytecode."""
        import sys
        parts = [f"pyrunc-spec-cache {_CODEGEN_REVISION}", self.directory, kind,
                 sys.version.replace("\n", " "), _stamp(os.path.abspath(__file__)),
                 "fastjsonschema " + _fastjsonschema_stamp()]
        parts.extend(f"{name} {_stamp(os.path.join(self.directory, name))}" for name in SCHEMA_FILES)
        return "\n".join(parts)

    def cache_path(self, kind: str, key: str) -> str | None:
        """<cache>/<kind>-<digest>.code, or None when the directory is unusable or untrusted (the
        file is executed: only a directory of ours or root's, writable by nobody else, will do)."""
        directory = self.cache_directory
        try:
            try:
                st = os.stat(directory)
            except FileNotFoundError:
                os.makedirs(directory, 0o755, exist_ok=True)
                st = os.stat(directory)
        except OSError:
            return None
        if not _trusted(st):
            return None
        import zlib
        raw = key.encode()
        return os.path.join(directory, f"{kind}-{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.code")


_MAX_VALUE_REPR = 60


def _message(error) -> str:
    """jsonschema's message, with the offending value cut short when it is a large subtree: a
    config that is a list instead of an object must not be echoed whole."""
    value = repr(error.instance)
    if len(value) > _MAX_VALUE_REPR and error.message.startswith(value):
        return value[:_MAX_VALUE_REPR] + "..." + error.message[len(value):]
    return error.message


def _stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _fastjsonschema_stamp() -> str:
    """The stat of the fastjsonschema that would be imported, found without importing it: an
    upgrade rewrites its version.py, which changes the key and regenerates the validators."""
    import sys
    for entry in sys.path:
        stamp = _stamp(os.path.join(entry or ".", "fastjsonschema", "version.py"))
        if stamp != "-":
            return stamp
    return "-"


def _trusted(st) -> bool:
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


# -- cache files ------------------------------------------------------------------------------
# A cache file is marshal.dumps((key, fastjsonschema version, code object)). The full key is stored
# and compared, so a digest collision or a torn file costs a regeneration, never a wrong validator.


def _read_cached_code(path: str, key: str):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(fd)):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    import marshal
    try:
        stored_key, _version, code = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return None
    return code if stored_key == key else None


def _write_cache(path: str, source_path: str, source: str, key: str, code) -> bool:
    """Best effort: the source (for tracebacks and reading), then the code file, each written to
    a unique temporary name and renamed, so concurrent processes only ever see whole files."""
    import marshal
    version = source.partition("\n")[0].partition("=")[2].strip().strip('"')
    try:
        _write_atomic(source_path, source.encode())
        _write_atomic(path, marshal.dumps((key, version, code)))
    except OSError:
        return False
    return True


def _prune_stale(path: str, kind: str, schema_directory: str) -> None:
    """Remove the entries this one replaces: same kind, same schema directory, older key (an
    upgrade, an edited schema). Entries of other installations sharing the cache are kept."""
    import marshal
    directory, current = os.path.split(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name == current or not (name.startswith(kind + "-") and name.endswith(".code")):
            continue
        stale = os.path.join(directory, name)
        try:
            with open(stale, "rb") as f:
                key = marshal.loads(f.read())[0]
            if key.split("\n")[1] != schema_directory:
                continue
            os.unlink(stale)
            os.unlink(stale[:-len(".code")] + ".py")
        except (OSError, EOFError, ValueError, TypeError, IndexError, AttributeError):
            continue


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- code generation --------------------------------------------------------------------------

# Replaces fastjsonschema's imports in the generated module, so loading it needs neither
# fastjsonschema nor decimal (the checks only need exception classes to raise), nor re: the
# patterns our schemas use (as fastjsonschema rewrote them, "$" becoming "\Z") have plain-Python
# twins, and any other pattern is compiled on first use.
_PRELUDE = r'''
class JsonSchemaValueException(ValueError):
    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message, self.value, self.name = message, value, name
        self.definition, self.rule = definition, rule


class JsonSchemaValuesException(ValueError):
    def __init__(self, errors):
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors


_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_CAP_NAME = _UPPER | {"_"}
_CPU_LIST = _DIGITS | {",", " ", "-"}

# Each twin answers exactly as re.compile(key).search would, for any str.
_TWINS = {
    r"^RLIMIT_[A-Z]+\Z": lambda s: len(s) > 7 and s.startswith("RLIMIT_") and _UPPER.issuperset(s[7:]),
    r"^CAP_[A-Z_]+\Z": lambda s: len(s) > 4 and s.startswith("CAP_") and _CAP_NAME.issuperset(s[4:]),
    r"^[0-9, -]*\Z": lambda s: _CPU_LIST.issuperset(s),
    r"^[1-9][0-9]*[KMG]B\Z": lambda s: (len(s) >= 3 and s[0] in _DIGITS and s[0] != "0"
                                        and _DIGITS.issuperset(s[1:-2]) and s[-2] in "KMG" and s[-1] == "B"),
    r"^MB:[^\n]*\Z": lambda s: s.startswith("MB:") and "\n" not in s,
    r".{1,}": lambda s: s.strip("\n") != "",
    r"^[cbup]\Z": lambda s: s in ("c", "b", "u", "p"),
}


class _LazyPattern:
    def __init__(self, source):
        self._source = source
        twin = _TWINS.get(source)
        if twin is not None:
            self.search = twin

    def __getattr__(self, name):
        import re
        compiled = re.compile(self._source)
        self.search, self.match, self.fullmatch = compiled.search, compiled.match, compiled.fullmatch
        return getattr(compiled, name)


class Decimal:
    # JSON parsing never makes a Decimal, so isinstance() checks against this class are False as
    # they would be against the real one; constructing one (only multipleOf does) returns the real one.
    def __new__(cls, value):
        import decimal
        return decimal.Decimal(value)
'''

_FOREIGN_IMPORTS = (
    "from decimal import Decimal\n",
    "import re\n",
    "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException\n",
)


class _LocalOnly(dict):
    """fastjsonschema's handler table, answering for every URI scheme: a scheme it has no
    handler for would be fetched with urlopen, and schema loading must never touch the network."""

    def __init__(self, schemas: "Schemas"):
        super().__init__()
        self._schemas = schemas

    def __contains__(self, scheme):
        return True

    def __getitem__(self, scheme):
        return self._fetch

    def _fetch(self, uri: str):
        name = uri[len(SCHEMA_BASE):] if uri.startswith(SCHEMA_BASE) else None
        if name not in SCHEMA_FILES:
            raise PyruncError(f"schema $ref to {uri} is outside {self._schemas.directory}")
        return self._schemas.read_schema(name)


def generate_source(schemas: Schemas, kind: str) -> str:
    """Python source of a validator for `kind` that imports nothing when it is loaded."""
    import fastjsonschema
    root = {"$schema": _DRAFT4, "$ref": SCHEMA_BASE + ROOTS[kind]}
    # use_default=False: the validator must not write schema defaults into the config;
    # detailed_exceptions=False: only pass/fail is used, jsonschema writes the message.
    source = fastjsonschema.compile_to_code(root, handlers=_LocalOnly(schemas), use_default=False,
                                            use_formats=False, detailed_exceptions=False)
    for line in _FOREIGN_IMPORTS:
        source = source.replace(line, "", 1)
    source = source.replace("re.compile(", "_LazyPattern(")
    head, sep, body = source.partition("\n")
    source = head + sep + _PRELUDE + body
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(("import ", "from ")) and (line == stripped or stripped not in (
                "import re", "import decimal")):
            raise PyruncError(f"generated validator has an unexpected import: {stripped}")
    return source
