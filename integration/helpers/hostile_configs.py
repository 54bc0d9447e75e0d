"""Hypothesis strategies for hostile config.json documents, by class.

Each strategy starts from `rich_config()` (runc's default plus most of what a caller may set:
hooks, rlimits, devices, resources, seccomp, sysctl, a tmpfs mount) and breaks it in one way of its
class: a value of the wrong JSON type anywhere, a string no system call can take, a number at the
edge of a C type, bad namespaces, mounts, hooks, rlimits, cgroup paths. `documents()` gives raw
bytes that are not a config at all.

Shared by tests/spec (validation, in process) and integration (the runtime, end to end). Safe on
the machine that runs them: cgroup paths always stay under the given prefix and never hold a ".."
component, root.path never leaves the bundle, hooks only run /bin/true and /bin/false, and bind
mounts only take paths under the bundle, the mount namespace is never dropped or joined (mounts
would land on the host) and no mount has "remount" (without "bind" it reconfigures the superblock,
which a bind of the rootfs shares with the host).
"""
import copy

from hypothesis import strategies as st

from pyrunc.spec.template import default_config

HOOK_BINARIES = ("/bin/true", "/bin/false")


def rich_config(args=("true",)):
    config = copy.deepcopy(default_config(args=list(args), terminal=False))
    process = config["process"]
    process["user"] = {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [1, 2]}
    process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                          {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    process["oomScoreAdj"] = 0
    process["consoleSize"] = {"height": 24, "width": 80}
    process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    config["domainname"] = "example"
    config["annotations"] = {"org.example.key": "value"}
    config["hooks"] = {kind: [{"path": "/bin/true", "args": ["true", "x"], "env": ["A=b"], "timeout": 5}]
                       for kind in ("prestart", "createRuntime", "poststop")}
    config["mounts"].append({"destination": "/hostile-tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["size=1m", "mode=700"]})
    linux = config["linux"]
    linux["devices"] = [{"path": "/dev/hostile-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666,
                         "uid": 0, "gid": 0}]
    linux["resources"].update({
        "memory": {"limit": 256 << 20},
        "cpu": {"shares": 1024, "quota": 100000, "period": 100000},
        "pids": {"limit": 100},
    })
    linux["sysctl"] = {"net.ipv4.ip_forward": "0"}
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    linux["personality"] = {"domain": "LINUX"}
    return config


# -- values ----------------------------------------------------------------------------------------

_SPECIAL_CHARACTERS = ("\0", "\ud800", "\udc80", "\udfff", "\n", "\t", "\x7f", "\u202e", "\ufeff", "=", ":", "/",
                       ".", ",", " ")
# Any codepoint, surrogates included (hypothesis leaves them out unless asked).
_ANY_CHARACTER = st.one_of(st.characters(codec=None), st.sampled_from(_SPECIAL_CHARACTERS))

hostile_strings = st.one_of(
    st.sampled_from(["", ".", "..", "/", "//", "relative/path", "../../../../..", "/proc/self/fd/0", "-", "=",
                     "/dev/null/x", "a" * 256, "/" + "a" * 5000, "x" * 70000]),
    st.text(_ANY_CHARACTER, max_size=40),
    st.builds(lambda head, middle, tail: head + middle + tail,
              st.sampled_from(["/", "/proc/kc", "A=", "", "net."]),
              st.sampled_from(["\0", "\ud800", "\udcff", "\0\0"]),
              st.text(max_size=8)),
)

# Integers at the edges of every C type a field can end up in.
EDGE_INTEGERS = (0, 1, -1, 7, 8, 255, 256, 511, 512, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -2 ** 31 - 1,
                 2 ** 32 - 1, 2 ** 32, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1, 2 ** 64 - 1,
                 2 ** 64, 10 ** 30, -10 ** 30)
edge_integers = st.sampled_from(EDGE_INTEGERS)

any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), edge_integers, st.floats(allow_nan=True), hostile_strings),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=6)


def _wrong_type(value):
    """Values of every JSON type but value's own."""
    choices = [st.none(), st.booleans(), edge_integers, st.floats(), hostile_strings,
               st.lists(any_json, max_size=2), st.dictionaries(st.text(max_size=4), any_json, max_size=2)]
    kinds = (type(None), bool, int, float, str, list, dict)
    return st.one_of(*[c for c, k in zip(choices, kinds) if not (type(value) is k)])


# -- where a config can be broken ------------------------------------------------------------------

# Left to their own strategies below (safety: cgroups are shared with the machine, root.path decides
# where create writes, a hook path is a program run as root).
_OWN_STRATEGY = (("linux", "cgroupsPath"), ("root", "path"))


def paths(config, prefix=()):
    """Every node's path (dict keys and list indexes), parents before children."""
    found = []
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, list):
        items = enumerate(config)
    else:
        return found
    for key, value in items:
        path = prefix + (key,)
        if path in _OWN_STRATEGY or (len(path) == 4 and path[0] == "hooks" and path[3] == "path"):
            continue
        found.append(path)
        found.extend(paths(value, path))
    return found


def get(config, path):
    for part in path:
        config = config[part]
    return config


def put(config, path, value):
    get(config, path[:-1])[path[-1]] = value


def _replace_at(config, path, strategy_for):
    return strategy_for(get(config, path)).map(lambda value: _with(config, path, value))


def _with(config, path, value):
    config = copy.deepcopy(config)
    put(config, path, value)
    return config


_BASE = rich_config()
_PATHS = paths(_BASE)
_STRING_PATHS = [p for p in _PATHS if isinstance(get(_BASE, p), str)]
_INTEGER_PATHS = [p for p in _PATHS if type(get(_BASE, p)) is int]
# The integers a system call takes as they are (the others become text in a cgroup file, which
# the kernel parses): drawn as often as all the rest together.
_SYSCALL_INTEGER_PATHS = [p for p in _INTEGER_PATHS if p[:2] in (("process", "user"), ("process", "rlimits"),
                                                                  ("process", "consoleSize"), ("linux", "devices"))
                          or p[-1] in ("oomScoreAdj", "timeout")]


@st.composite
def type_confusion(draw, base=None):
    """Any node (an object, an array, a leaf; at any depth) replaced by a value of another type."""
    config = base or _BASE
    path = draw(st.sampled_from(paths(config)))
    return _with(config, path, draw(_wrong_type(get(config, path))))


@st.composite
def hostile_string_configs(draw, base=None):
    """Any string of the config (or an object key of a map) replaced by a hostile one."""
    config = copy.deepcopy(base or _BASE)
    if draw(st.booleans()):
        path = draw(st.sampled_from(_STRING_PATHS))
        put(config, path, draw(hostile_strings))
    else:
        owner = draw(st.sampled_from([("annotations",), ("linux", "sysctl")]))
        get(config, owner)[draw(hostile_strings)] = draw(st.sampled_from(["1", "0", "\0"]))
    return config


@st.composite
def edge_number_configs(draw, base=None):
    """Any integer of the config set to the edge of some C type."""
    config = copy.deepcopy(base or _BASE)
    where = st.one_of(st.sampled_from(_SYSCALL_INTEGER_PATHS), st.sampled_from(_INTEGER_PATHS))
    for path in draw(st.lists(where, min_size=1, max_size=2, unique=True)):
        put(config, path, draw(edge_integers))
    return config


_NAMESPACE_TYPES = ("pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time")
_NAMESPACE_PATHS = ("/proc/self/ns/net", "/proc/self/ns/uts", "/proc/1/ns/ipc", "/dev/null", "/proc", "/",
                    "/nonexistent/ns", "relative/ns", "/proc/self/ns/../ns/pid")


@st.composite
def namespace_configs(draw, base=None):
    """Duplicated, unknown, missing, or joined through paths that are no namespace of that type."""
    config = copy.deepcopy(base or _BASE)
    entry = st.builds(
        lambda kind, path: {"type": kind, **({"path": path} if path is not None else {})},
        st.one_of(st.sampled_from(_NAMESPACE_TYPES), hostile_strings),
        st.one_of(st.none(), st.sampled_from(_NAMESPACE_PATHS), hostile_strings))
    namespaces = config["linux"]["namespaces"]
    for _ in range(draw(st.integers(0, 2))):
        droppable = [i for i, ns in enumerate(namespaces) if ns["type"] != "mount"]
        if droppable:
            del namespaces[draw(st.sampled_from(droppable))]
    namespaces.extend(draw(st.lists(entry, max_size=3)))
    if draw(st.booleans()) and any(ns.get("type") == "user" for ns in namespaces if isinstance(ns, dict)):
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": draw(edge_integers),
                                           "size": draw(edge_integers)}]
    return config


_MOUNT_TYPES = ("tmpfs", "proc", "sysfs", "bind", "none", "devpts", "mqueue", "cgroup", "cgroup2", "overlay",
                "nosuchfs", "")
_MOUNT_OPTIONS = ("bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "shared",
                  "rslave", "size=-1", "size=1k", "mode=99999", "mode=0700", "nr_inodes=0", "tmpcopyup",
                  "idmap", "ridmap", "rro", "x-unknown", "strictatime", "newinstance", "")
_MOUNT_DESTINATIONS = ("/", "/proc", "/dev", "/dev/null", "/sys/fs/cgroup", "/proc/self", "/etc/passwd",
                       "relative", "../../escape", "/dev/pts/ptmx", "/tmp/a/b/c", "/hostile-tmp")


@st.composite
def mount_configs(draw, base=None, bind_source="."):
    """A mount of an odd type, source, destination or options: `bind_source` is the only real path
    a bind may take (the tests pass a directory of their own)."""
    config = copy.deepcopy(base or _BASE)
    mount = {"destination": draw(st.one_of(st.sampled_from(_MOUNT_DESTINATIONS), hostile_strings)),
             "type": draw(st.sampled_from(_MOUNT_TYPES)),
             "source": draw(st.one_of(st.just(bind_source), st.sampled_from(["tmpfs", "proc", "none", ""]),
                                      hostile_strings.filter(lambda s: not s.startswith("/") or "\0" in s))),
             "options": draw(st.lists(st.sampled_from(_MOUNT_OPTIONS), max_size=4))}
    if draw(st.booleans()):
        del mount[draw(st.sampled_from(["type", "source", "options"]))]
    config["mounts"].insert(draw(st.integers(0, len(config["mounts"]))), mount)
    return config


@st.composite
def hook_configs(draw, base=None):
    """Hooks with hostile paths, args, env and timeouts (the only programs are HOOK_BINARIES)."""
    config = copy.deepcopy(base or _BASE)
    paths = st.sampled_from(HOOK_BINARIES + ("/nonexistent", "/", "/dev/null", "relative"))
    hook = {"path": draw(st.one_of(paths, hostile_strings.filter(lambda s: not s.startswith("/") or "\0" in s)))}
    if draw(st.booleans()):
        hook["args"] = draw(st.lists(hostile_strings, max_size=3))
    if draw(st.booleans()):
        hook["env"] = draw(st.lists(hostile_strings, max_size=3))
    if draw(st.booleans()):
        hook["timeout"] = draw(edge_integers)
    # Mostly the kinds create runs (the rest run at start and delete, or never).
    kind = draw(st.one_of(st.sampled_from(["prestart", "createRuntime", "createContainer"]),
                          st.sampled_from(["startContainer", "poststart", "poststop", "unknownKind"])))
    config["hooks"].setdefault(kind, []).append(hook)
    return config


_RLIMIT_TYPES = ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CPU",
                 "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_MEMLOCK", "RLIMIT_SIGPENDING", "RLIMIT_RTTIME",
                 "RLIMIT_FOO", "NOFILE")
_RLIMIT_VALUES = (0, 1, 3, 4096, 1 << 20, 64 << 20, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 2, 2 ** 64 - 1)


@st.composite
def rlimit_configs(draw, base=None):
    """rlimits of any type at values from 0 (starving the process) to infinity and beyond."""
    config = copy.deepcopy(base or _BASE)
    limits = []
    for _ in range(draw(st.integers(1, 3))):
        soft, hard = draw(st.sampled_from(_RLIMIT_VALUES)), draw(st.sampled_from(_RLIMIT_VALUES))
        if draw(st.integers(0, 3)):
            # Mostly limits the runtime may set without CAP_SYS_RESOURCE, so the container starts.
            hard = min(hard, 4096)
            soft = min(soft, hard)
        limits.append({"type": draw(st.sampled_from(_RLIMIT_TYPES)), "soft": soft, "hard": hard})
    config["process"]["rlimits"] = limits
    return config


@st.composite
def cgroup_path_configs(draw, prefix, base=None):
    """cgroupsPath under `prefix` (an absolute cgroup path of the test's own) with a hostile last
    part: never a ".." component, so it cannot name a cgroup above the prefix."""
    config = copy.deepcopy(base or _BASE)
    tail = draw(hostile_strings.map(lambda s: "/".join(p for p in s.split("/") if p not in ("..", ".")))
                .filter(lambda s: s.strip("/")))
    config["linux"]["cgroupsPath"] = f"{prefix}/{tail.lstrip('/')}"
    return config


def all_classes(base=None):
    """One strategy drawing from every config class above (bind mounts and cgroup paths aside)."""
    return st.one_of(type_confusion(base), hostile_string_configs(base), edge_number_configs(base),
                     namespace_configs(base), mount_configs(base), hook_configs(base), rlimit_configs(base))


# -- documents that are no config at all -----------------------------------------------------------

def documents():
    """Raw bytes for config.json: not JSON, not UTF-8, not an object, nested too deeply, numbers
    too long, a BOM, a valid config cut short."""
    import json
    text = json.dumps(_BASE).encode()
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"", b"null", b"[]", b"1", b'"x"', b"{}", b"\xef\xbb\xbf" + text, b"\xff\xfe{}",
                         b"[" * 100000, b"{" * 3000 + b"}" * 3000, b'{"a": ' + b"9" * 5000 + b"}",
                         b'{"ociVersion": "1", "root": {"path": "rootfs"}, "process": 1e999999}',
                         text.replace(b"}", b"", 1), text + b"x", text.replace(b'"', b"'")]),
        st.integers(1, len(text) - 1).map(lambda n: text[:n]),
        st.tuples(st.integers(0, len(text) - 1), st.binary(min_size=1, max_size=4))
        .map(lambda t: text[:t[0]] + t[1] + text[t[0] + 1:]),
    )
