"""config.json fixtures: the good ones pass, each bad one fails with its exact path and rule, and
the fast (generated) validator agrees with jsonschema on every one of them."""
import copy
import json

import pytest

from conftest import FIXTURES
from pyrunc.errors import InvalidSpec
from pyrunc.spec import load
from pyrunc.spec.template import default_config, rootless

GOOD = sorted((FIXTURES / "good").glob("*.json"))
BAD_FILES = sorted((FIXTURES / "bad").glob("*.json"))

_ROOT_LIST = "[{'ociVersion': '1.0.2-dev', 'process': {'terminal': True, '... is not of type 'object'"

# fixture -> the complete message; each fixture is runc's default config with one rule broken.
BAD = {
    # schema
    "annotation-not-string.json": """config.json: annotations["com.example.count"]: 3 is not of type 'string'""",
    "args-empty.json": "config.json: process.args: [] should be non-empty",
    "cwd-missing.json": "config.json: process: 'cwd' is a required property",
    "device-type-bad.json": "config.json: linux.devices[0].type: 'x' does not match '^[cbup]$'",
    "gid-overflow.json": "config.json: process.user.gid: 4294967296 is greater than the maximum of 4294967295",
    "hook-timeout-zero.json": "config.json: hooks.poststop[0].timeout: 0 is less than the minimum of 1",
    "hugepage-size-bad.json": "config.json: linux.resources.hugepageLimits[0].pageSize: '2M' does not match "
                              "'^[1-9][0-9]*[KMG]B$'",
    "mount-destination-missing.json": "config.json: mounts[1]: 'destination' is a required property",
    "mount-destination-number.json": "config.json: mounts[2].destination: 5 is not of type 'string'",
    "namespace-type-unknown.json": "config.json: linux.namespaces[5].type: 'foo' is not one of "
                                   "['mount', 'pid', 'network', 'uts', 'ipc', 'user', 'cgroup', 'time']",
    "not-an-object.json": "config.json: " + _ROOT_LIST,
    "pids-limit-missing.json": "config.json: linux.resources.pids: 'limit' is a required property",
    "rlimit-type-pattern.json": "config.json: process.rlimits[0].type: 'NOFILE' does not match '^RLIMIT_[A-Z]+$'",
    "root-path-missing.json": "config.json: root: 'path' is a required property",
    "rootfs-propagation-bad.json": "config.json: linux.rootfsPropagation: 'recursive' is not one of "
                                   "['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', "
                                   "'rslave', 'runbindable']",
    "seccomp-action-unknown.json": "config.json: linux.seccomp.syscalls[0].action: 'SCMP_ACT_MAYBE' is not one of "
                                   "['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', "
                                   "'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', "
                                   "'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY']",
    "seccomp-names-empty.json": "config.json: linux.seccomp.syscalls[0].names: [] should be non-empty",
    "uid-boolean.json": "config.json: process.user.uid: True is not of type 'integer'",
    "uid-float.json": "config.json: process.user.uid: 0.0 is not of type 'integer'",
    "uid-negative.json": "config.json: process.user.uid: -1 is less than the minimum of 0",
    # semantic rules (pyrunc.spec.validate)
    "cwd-relative.json": "config.json: process.cwd: 'home' is not an absolute path",
    "device-major-missing.json": "config.json: linux.devices[0]: major and minor are required for device type 'c'",
    "device-path-relative.json": "config.json: linux.devices[0].path: 'dev/fuse' is not an absolute path",
    "domainname-without-uts.json": "config.json: domainname: unable to set domainname without a private UTS "
                                   "namespace",
    "hook-path-relative.json": "config.json: hooks.createRuntime[1].path: 'bin/hook' is not an absolute path",
    "hostname-without-uts.json": "config.json: hostname: unable to set hostname without a private UTS namespace",
    "idmap-not-bind.json": "config.json: mounts[7]: id-mapped mounts are only supported for bind mounts",
    "idmap-uid-only.json": "config.json: mounts[7]: uidMappings and gidMappings must be specified together",
    "idmap-without-mappings.json": "config.json: mounts[7].options: 'ridmap' needs uidMappings and gidMappings "
                                   "on the mount or a user namespace",
    "iopriority-range.json": "config.json: process.ioPriority.priority: 8 is not in the range 0 to 7",
    "mappings-without-userns.json": "config.json: linux.uidMappings: user namespace mappings specified, but user "
                                    "namespace isn't enabled in the config",
    "namespace-duplicate.json": "config.json: linux.namespaces[5].type: duplicate namespace type 'pid'",
    "namespace-path-relative.json": "config.json: linux.namespaces[1].path: 'proc/1/ns/net' is not an absolute "
                                    "path",
    "process-missing.json": "config.json: process property must not be empty",
    "rlimit-duplicate.json": "config.json: process.rlimits[1].type: duplicate rlimit type 'RLIMIT_NOFILE'",
    "rlimit-soft-above-hard.json": "config.json: process.rlimits[0]: soft limit 2048 is greater than hard limit "
                                   "1024",
    "rlimit-unknown.json": "config.json: process.rlimits[1].type: unknown rlimit type 'RLIMIT_FOO'",
    "root-missing.json": "config.json: 'root' is a required property",
    "scheduler-nice-range.json": "config.json: process.scheduler.nice: 20 is not in the range -20 to 19",
    "scheduler-priority-other.json": "config.json: process.scheduler.priority: scheduler.priority can only be "
                                     "specified for SCHED_FIFO or SCHED_RR policy",
    "scheduler-runtime-not-deadline.json": "config.json: process.scheduler.runtime: scheduler "
                                           "runtime/deadline/period can only be specified for SCHED_DEADLINE "
                                           "policy",
    "seccomp-default-errno-on-allow.json": "config.json: linux.seccomp.defaultErrnoRet: an errno cannot be "
                                           "returned by SCMP_ACT_ALLOW",
    "seccomp-errno-on-kill.json": "config.json: linux.seccomp.syscalls[0].errnoRet: an errno cannot be returned "
                                  "by SCMP_ACT_KILL",
    "seccomp-notify-without-listener.json": "config.json: linux.seccomp.listenerPath: SCMP_ACT_NOTIFY is used, but "
                                            "no listenerPath is set",
    "sysctl-domainname-host-uts.json": """config.json: linux.sysctl["kernel.domainname"]: sysctl """
                                       """'kernel.domainname' is not in a separate kernel namespace""",
    "sysctl-hostname.json": """config.json: linux.sysctl["kernel.hostname"]: sysctl 'kernel.hostname' is not """
                            """allowed as it conflicts with the OCI 'hostname' field""",
    "sysctl-ipc-host-ipcns.json": """config.json: linux.sysctl["kernel.shmmax"]: sysctl 'kernel.shmmax' is not """
                                  """allowed in the host's ipc namespace""",
    "sysctl-net-host-netns.json": """config.json: linux.sysctl["net.ipv4.ip_forward"]: sysctl """
                                  """'net.ipv4.ip_forward' is not allowed in the host's network namespace""",
    "sysctl-not-namespaced.json": """config.json: linux.sysctl["vm.swappiness"]: sysctl 'vm.swappiness' is not """
                                  """in a separate kernel namespace""",
    "time-offsets-joined-timens.json": "config.json: linux.timeOffsets: time namespace offsets specified, but the "
                                       "time namespace is joined by path",
    "time-offsets-without-timens.json": "config.json: linux.timeOffsets: time namespace offsets specified, but time "
                                        "namespace isn't enabled in the config",
    "userns-without-gid-mappings.json": "config.json: linux.gidMappings: user namespace enabled, but no gid "
                                        "mappings found",
    "userns-without-mappings.json": "config.json: linux.uidMappings: user namespace enabled, but no uid mappings "
                                    "found",
}


def _read(path):
    return json.loads(path.read_text())


def test_every_bad_fixture_has_an_expectation():
    assert sorted(p.name for p in BAD_FILES) == sorted(BAD)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_fixture_is_valid(path):
    load.validate_config(_read(path))


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_fixture_names_path_and_rule(name):
    with pytest.raises(InvalidSpec) as info:
        load.validate_config(_read(FIXTURES / "bad" / name))
    assert str(info.value) == BAD[name]
    error = info.value
    assert error.source == "config.json"
    assert str(error) == (f"config.json: {error.where}: {error.rule}" if error.where
                          else f"config.json: {error.rule}")


@pytest.mark.parametrize("config", [default_config(), default_config(terminal=False),
                                    rootless(default_config())], ids=["default", "no-tty", "rootless"])
def test_pyrunc_template_is_valid(config):
    load.validate_config(config)


def _fast_says_valid(kind, document):
    validator = load.default_schemas().fast_validator(kind)
    assert validator is not None, "the generated validator must be available in tests"
    try:
        validator(copy.deepcopy(document))
    except Exception:  # noqa: BLE001 - any rejection counts
        return False
    return True


def _precise_says_valid(kind, document):
    return load.default_schemas().precise_error(kind, document) is None


# Documents near the edges of JSON types, where two validator implementations could differ.
TRICKY = [
    {"ociVersion": "1.0.0"},
    {"ociVersion": 1},
    {"ociVersion": None},
    {"ociVersion": "1.0.0", "root": {"path": "r", "readonly": 0}},
    {"ociVersion": "1.0.0", "process": {"cwd": "/", "args": ["a"], "user": {"uid": 4294967295}}},
    {"ociVersion": "1.0.0", "process": {"cwd": "/", "args": ["a"], "user": {"uid": 1.5}}},
    {"ociVersion": "1.0.0", "process": {"cwd": "/", "args": ["a"], "rlimits": [{"type": "RLIMIT_AS", "soft": 0,
                                                                               "hard": 18446744073709551616}]}},
    {"ociVersion": "1.0.0", "process": {"cwd": "/", "args": [1]}},
    {"ociVersion": "1.0.0", "process": {"cwd": "/", "args": "sh"}},
    {"ociVersion": "1.0.0", "process": {"cwd": "/", "args": ["a"], "oomScoreAdj": False}},
    {"ociVersion": "1.0.0", "annotations": {"": 5}},
    {"ociVersion": "1.0.0", "annotations": {"k": None}},
    {"ociVersion": "1.0.0", "unknownTopLevel": {"anything": [1, 2]}},
    {"ociVersion": "1.0.0", "linux": {"resources": {"memory": {"limit": -9223372036854775809}}}},
    {"ociVersion": "1.0.0", "linux": {"resources": {"memory": {"limit": -9223372036854775808}}}},
    {"ociVersion": "1.0.0", "linux": {"resources": {"blockIO": {"weightDevice": [{"major": 8}]}}}},
    {"ociVersion": "1.0.0", "linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0,
                                                                                           "rate": -1}]}}}},
    {"ociVersion": "1.0.0", "linux": {"devices": [{"type": "c", "path": "/dev/x", "fileMode": 513}]}},
    {"ociVersion": "1.0.0", "linux": {"netDevices": {"eth0": {"name": 1}}}},
    {"ociVersion": "1.0.0", "linux": {"rdma": {"x": 1}, "resources": {"rdma": {"mlx": {"hcaHandles": -1}}}}},
    {"ociVersion": "1.0.0", "linux": {"seccomp": {"syscalls": []}}},
    {"ociVersion": "1.0.0", "linux": {"personality": {"domain": "LINUX64"}}},
    {"ociVersion": "1.0.0", "linux": {"namespaces": [{"path": "/proc/1/ns/pid"}]}},
    {"ociVersion": "1.0.0", "linux": {"timeOffsets": {"monotonic": {"secs": "1"}}}},
    {"ociVersion": "1.0.0", "hooks": {"prestart": [{"args": []}]}},
    {"ociVersion": "1.0.0", "hooks": {"unknownStage": 5}},
    {"ociVersion": "1.0.0", "mounts": {}},
    {"ociVersion": "1.0.0", "linux": []},
]


def _documents():
    for path in GOOD + BAD_FILES:
        yield pytest.param(_read(path), id=path.name)
    for i, document in enumerate(TRICKY):
        yield pytest.param(document, id=f"tricky-{i}")


@pytest.mark.parametrize("document", list(_documents()))
def test_fast_and_precise_validators_agree(document):
    assert _fast_says_valid("config", document) == _precise_says_valid("config", document)


def test_jsonschema_is_authoritative_when_the_fast_path_disagrees():
    # fastjsonschema turns "$" into "\Z" (ECMA-262 semantics); Python's re lets "$" match before a
    # final newline, so the two disagree here. jsonschema decides: the config is valid.
    config = default_config()
    config["linux"]["intelRdt"] = {"memBwSchema": "MB:0=20\n"}
    assert not _fast_says_valid("config", config)
    assert _precise_says_valid("config", config)
    load.validate_config(config)


@pytest.mark.parametrize("kind,directory", [("state", "state"), ("features", "features")])
def test_state_and_features_schemas(kind, directory):
    schemas = load.default_schemas()
    for path in sorted((FIXTURES / directory).glob("*.json")):
        document = _read(path)
        schemas.check(kind, document, path.name)
        assert _fast_says_valid(kind, document)


def test_state_schema_rejects_unknown_status():
    state = _read(FIXTURES / "state" / "running.json")
    state["status"] = "paused"  # runc prints it, the spec's enum lacks it (interfaces.md (a))
    with pytest.raises(InvalidSpec) as info:
        load.default_schemas().check("state", state, "state.json")
    assert str(info.value) == ("state.json: status: 'paused' is not one of "
                               "['creating', 'created', 'running', 'stopped']")
    assert not _fast_says_valid("state", state)


# process.json for `exec --process`: the config's process schema, and the rules on a process.
def test_process_json_valid():
    load.validate_process({"args": ["sh"], "cwd": "/", "env": ["A=1"], "terminal": False,
                           "user": {"uid": 1, "gid": 1}})


@pytest.mark.parametrize("process,message", [
    ({"args": [], "cwd": "/"}, "process.json: args: [] should be non-empty"),
    ({"args": ["sh"]}, "process.json: 'cwd' is a required property"),
    ({"args": ["sh"], "cwd": "tmp"}, "process.json: cwd: 'tmp' is not an absolute path"),
    ({"args": ["sh"], "cwd": "/", "user": {"uid": -1}}, "process.json: user.uid: -1 is less than the minimum of 0"),
    ({"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_CPU", "soft": 1, "hard": 1},
                                              {"type": "RLIMIT_CPU", "soft": 2, "hard": 2}]},
     "process.json: rlimits[1].type: duplicate rlimit type 'RLIMIT_CPU'"),
    ([], "process.json: [] is not of type 'object'"),
])
def test_process_json_invalid(process, message):
    with pytest.raises(InvalidSpec) as info:
        load.validate_process(process)
    assert str(info.value) == message


def test_process_fast_and_precise_agree():
    for process in ({"args": ["sh"], "cwd": "/"}, {"args": [], "cwd": "/"}, {"cwd": "/"},
                    _read(FIXTURES / "good" / "maximal.json")["process"]):
        assert _fast_says_valid("process", process) == _precise_says_valid("process", process)
