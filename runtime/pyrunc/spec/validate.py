"""Rules of config.json that the JSON schema cannot express.

These run after the schema has passed, so every field present has its schema type. Each rule
raises InvalidSpec with the JSON path of the offending field. Where runc has the same rule its
wording is kept, so a message reads the same under either runtime.
"""
import os

from pyrunc import fastjson
from pyrunc.errors import InvalidSpec

RLIMIT_TYPES = frozenset((
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
))

HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
               "poststop")

# Sysctls that the IPC namespace isolates (ipc_namespaces(7)); fs.mqueue.* too, by prefix.
_IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
))

# Seccomp actions that carry an errno (config-linux.md: an errno on any other action is an error).
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

# The policies that take a static priority (sched(7)); runc checks the same.
_PRIORITY_POLICIES = ("SCHED_FIFO", "SCHED_RR")

# Numbers the schema allows but a system call cannot take, with the limits runc enforces.
_MAX_ID = 2 ** 31 - 1        # runc: "uids and gids must be in range 0-2147483647" (setuid(-1) is a no-op)
_NGROUPS_MAX = 65536         # setgroups(2) takes no more (runc: "setgroups: invalid argument")
_OOM_SCORE_ADJ = 1000        # /proc/PID/oom_score_adj takes -1000..1000
_GO_INT_MAX = 2 ** 63 - 1    # a Go int: runc's decoder refuses a larger hook timeout
_DEVICE_NUMBER_MAX = 2 ** 32 - 1  # major and minor are 32-bit in mknod(2) and the device cgroup


def json_path(parts) -> str:
    """`mounts[2].destination`; keys that are not plain names are quoted:
    `linux.sysctl["net.ipv4.ip_forward"]`."""
    out = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.replace("-", "_").isidentifier():
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{fastjson.dumps(part)}]")
    return "".join(out)


def check_config(config: dict, source: str = "config.json") -> None:
    if "root" not in config:
        # REQUIRED on Linux (config.md#root); the schema leaves it optional for VM platforms.
        raise InvalidSpec("", "'root' is a required property", source)
    if "process" not in config:
        # Optional in the schema (a config for `create` only); runc refuses it there, as do we.
        raise InvalidSpec("", "process property must not be empty", source)
    check_process(config["process"], "process", source)
    linux = config.get("linux", {})
    namespaces = _namespaces(linux, source)
    _check_hooks(config.get("hooks", {}), source)
    _check_mounts(config.get("mounts", []), namespaces, source)
    _check_uts(config, namespaces, source)
    _check_user_namespace(linux, namespaces, source)
    _check_time_namespace(linux, namespaces, source)
    _check_sysctl(linux.get("sysctl", {}), namespaces, source)
    _check_devices(linux.get("devices", []), source)
    if "seccomp" in linux:
        _check_seccomp(linux["seccomp"], source)


def check_process(process: dict, where: str, source: str = "config.json") -> None:
    """`where` is the process object's own path: "process" in a config, "" in a process.json."""
    def at(*parts):
        return json_path(([where] if where else []) + list(parts))

    cwd = process["cwd"]
    if not cwd.startswith("/"):
        raise InvalidSpec(at("cwd"), f"{cwd!r} is not an absolute path", source)
    seen = set()
    for i, rlimit in enumerate(process.get("rlimits", [])):
        kind = rlimit["type"]
        if kind not in RLIMIT_TYPES:
            raise InvalidSpec(at("rlimits", i, "type"), f"unknown rlimit type {kind!r}", source)
        if kind in seen:
            raise InvalidSpec(at("rlimits", i, "type"), f"duplicate rlimit type {kind!r}", source)
        seen.add(kind)
        if rlimit["soft"] > rlimit["hard"]:
            raise InvalidSpec(at("rlimits", i),
                              f"soft limit {rlimit['soft']} is greater than hard limit {rlimit['hard']}",
                              source)
    io_priority = process.get("ioPriority")
    if io_priority is not None and not 0 <= io_priority.get("priority", 0) <= 7:
        raise InvalidSpec(at("ioPriority", "priority"),
                          f"{io_priority['priority']} is not in the range 0 to 7", source)
    if "scheduler" in process:
        _check_scheduler(process["scheduler"], at, source)
    if "user" in process:
        _check_user(process["user"], at, source)
    oom_score_adj = process.get("oomScoreAdj")
    if oom_score_adj is not None and not -_OOM_SCORE_ADJ <= oom_score_adj <= _OOM_SCORE_ADJ:
        raise InvalidSpec(at("oomScoreAdj"), f"{oom_score_adj} is not in the range -{_OOM_SCORE_ADJ} to "
                          f"{_OOM_SCORE_ADJ}", source)


def _check_user(user: dict, at, source: str) -> None:
    for field in ("uid", "gid"):
        if user.get(field, 0) > _MAX_ID:
            raise InvalidSpec(at("user", field), f"uids and gids must be in range 0-{_MAX_ID}", source)
    gids = user.get("additionalGids") or ()
    if len(gids) > _NGROUPS_MAX:
        raise InvalidSpec(at("user", "additionalGids"), f"{len(gids)} groups, more than setgroups(2) takes "
                          f"({_NGROUPS_MAX})", source)
    for i, gid in enumerate(gids):
        if gid > _MAX_ID:
            raise InvalidSpec(at("user", "additionalGids", i), f"uids and gids must be in range 0-{_MAX_ID}",
                              source)


def _check_scheduler(scheduler: dict, at, source: str) -> None:
    policy = scheduler["policy"]
    nice = scheduler.get("nice", 0)
    if not -20 <= nice <= 19:
        raise InvalidSpec(at("scheduler", "nice"), f"{nice} is not in the range -20 to 19", source)
    if scheduler.get("priority", 0) != 0 and policy not in _PRIORITY_POLICIES:
        raise InvalidSpec(at("scheduler", "priority"),
                          "scheduler.priority can only be specified for SCHED_FIFO or SCHED_RR policy",
                          source)
    if policy != "SCHED_DEADLINE":
        for field in ("runtime", "deadline", "period"):
            if scheduler.get(field, 0) != 0:
                raise InvalidSpec(at("scheduler", field),
                                  "scheduler runtime/deadline/period can only be specified for "
                                  "SCHED_DEADLINE policy", source)


def _namespaces(linux: dict, source: str) -> dict:
    """{type: path}, path "" for a namespace the runtime creates."""
    namespaces = {}
    for i, ns in enumerate(linux.get("namespaces", [])):
        kind, path = ns["type"], ns.get("path", "")
        if kind in namespaces:
            raise InvalidSpec(f"linux.namespaces[{i}].type", f"duplicate namespace type {kind!r}", source)
        if path and not path.startswith("/"):
            raise InvalidSpec(f"linux.namespaces[{i}].path", f"{path!r} is not an absolute path", source)
        namespaces[kind] = path
    return namespaces


def _check_hooks(hooks: dict, source: str) -> None:
    for stage in HOOK_STAGES:
        for i, hook in enumerate(hooks.get(stage, [])):
            if not hook["path"].startswith("/"):
                raise InvalidSpec(f"hooks.{stage}[{i}].path", f"{hook['path']!r} is not an absolute path",
                                  source)
            if hook.get("timeout", 0) > _GO_INT_MAX:
                raise InvalidSpec(f"hooks.{stage}[{i}].timeout",
                                  f"{hook['timeout']} is greater than the maximum of {_GO_INT_MAX}", source)


def _check_mounts(mounts: list, namespaces: dict, source: str) -> None:
    # A relative destination is deprecated but valid: it means relative to "/" (config.md#mounts).
    for i, mount in enumerate(mounts):
        uid_maps, gid_maps = mount.get("uidMappings"), mount.get("gidMappings")
        options = mount.get("options", [])
        idmap_options = [o for o in options if o in ("idmap", "ridmap")]
        if bool(uid_maps) != bool(gid_maps):
            raise InvalidSpec(f"mounts[{i}]",
                              "uidMappings and gidMappings must be specified together", source)
        if not (uid_maps or idmap_options):
            continue
        if "bind" not in options and "rbind" not in options:
            raise InvalidSpec(f"mounts[{i}]", "id-mapped mounts are only supported for bind mounts",
                              source)
        if not uid_maps and "user" not in namespaces:
            raise InvalidSpec(f"mounts[{i}].options",
                              f"{idmap_options[0]!r} needs uidMappings and gidMappings on the mount "
                              "or a user namespace", source)


def _check_uts(config: dict, namespaces: dict, source: str) -> None:
    if "uts" in namespaces:
        return
    for field in ("hostname", "domainname"):
        if config.get(field):
            raise InvalidSpec(field, f"unable to set {field} without a private UTS namespace", source)


def _check_user_namespace(linux: dict, namespaces: dict, source: str) -> None:
    if "user" not in namespaces:
        for field in ("uidMappings", "gidMappings"):
            if linux.get(field):
                raise InvalidSpec(f"linux.{field}", "user namespace mappings specified, but user "
                                  "namespace isn't enabled in the config", source)
        return
    if namespaces["user"]:
        return  # joined by path: the mappings are that namespace's own
    for field, what in (("uidMappings", "uid"), ("gidMappings", "gid")):
        if not linux.get(field):
            raise InvalidSpec(f"linux.{field}", f"user namespace enabled, but no {what} mappings found",
                              source)


def _check_time_namespace(linux: dict, namespaces: dict, source: str) -> None:
    if not linux.get("timeOffsets"):
        return
    if "time" not in namespaces:
        raise InvalidSpec("linux.timeOffsets", "time namespace offsets specified, but time namespace "
                          "isn't enabled in the config", source)
    if namespaces["time"]:
        # Offsets can only be written before the first process enters a new time namespace.
        raise InvalidSpec("linux.timeOffsets", "time namespace offsets specified, but the time "
                          "namespace is joined by path", source)


def _check_sysctl(sysctl: dict, namespaces: dict, source: str) -> None:
    """runc's rules: a sysctl is allowed only if a namespace of the container's own isolates it."""
    for key in sysctl:
        name = key.replace("/", ".")
        where = json_path(["linux", "sysctl", key])
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" in namespaces:
                continue
            raise InvalidSpec(where, f"sysctl {key!r} is not allowed in the host's ipc namespace", source)
        if name.startswith("net."):
            if "network" in namespaces and not _is_host_netns(namespaces["network"]):
                continue
            raise InvalidSpec(where, f"sysctl {key!r} is not allowed in the host's network namespace",
                              source)
        if "uts" in namespaces:
            if name == "kernel.domainname":
                continue  # namespaced, and no OCI field competes for it
            if name == "kernel.hostname":
                raise InvalidSpec(where, f"sysctl {key!r} is not allowed as it conflicts with the OCI "
                                  "'hostname' field", source)
        raise InvalidSpec(where, f"sysctl {key!r} is not in a separate kernel namespace", source)


def _is_host_netns(path: str) -> bool:
    """A network namespace joined by path may still be the host's own; runc refuses net.* then."""
    if not path:
        return False
    try:
        ours, theirs = os.stat("/proc/self/ns/net"), os.stat(path)
    except OSError:
        return False  # joining it will fail later, with the path in the message
    return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)


def _check_devices(devices: list, source: str) -> None:
    for i, device in enumerate(devices):
        path = device["path"]
        if not path.startswith("/"):
            raise InvalidSpec(f"linux.devices[{i}].path", f"{path!r} is not an absolute path", source)
        if device["type"] != "p" and ("major" not in device or "minor" not in device):
            raise InvalidSpec(f"linux.devices[{i}]",
                              f"major and minor are required for device type {device['type']!r}", source)
        for field in ("major", "minor"):
            if not 0 <= device.get(field, 0) <= _DEVICE_NUMBER_MAX:
                raise InvalidSpec(f"linux.devices[{i}].{field}",
                                  f"{device[field]} is not in the range 0 to {_DEVICE_NUMBER_MAX}", source)


def _check_seccomp(seccomp: dict, source: str) -> None:
    if "defaultErrnoRet" in seccomp and seccomp["defaultAction"] not in _ERRNO_ACTIONS:
        raise InvalidSpec("linux.seccomp.defaultErrnoRet",
                          f"an errno cannot be returned by {seccomp['defaultAction']}", source)
    notify = seccomp["defaultAction"] == "SCMP_ACT_NOTIFY"
    for i, rule in enumerate(seccomp.get("syscalls", [])):
        if "errnoRet" in rule and rule["action"] not in _ERRNO_ACTIONS:
            raise InvalidSpec(f"linux.seccomp.syscalls[{i}].errnoRet",
                              f"an errno cannot be returned by {rule['action']}", source)
        notify = notify or rule["action"] == "SCMP_ACT_NOTIFY"
    if notify and not seccomp.get("listenerPath"):
        raise InvalidSpec("linux.seccomp.listenerPath",
                          "SCMP_ACT_NOTIFY is used, but no listenerPath is set", source)
