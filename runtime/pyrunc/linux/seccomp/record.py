"""A seccomp profile from traces (`pyrunc seccomp record`, `run --seccomp-profile-out`): what the
container did is allowed, anything else fails with EPERM.

The profile is in the runtime-spec's `linux.seccomp` form, which Docker also reads as a profile
(`--security-opt seccomp=FILE`): defaultAction SCMP_ACT_ERRNO with defaultErrnoRet 1 (EPERM), the
architectures the trace shows, the syscalls seen. Where Docker's default profile filters on an
argument (personality's persona, socket's address family, clone's namespace flags) the rule keeps
exactly the values the trace shows. Pure: traces in, a dict out; nothing here loads a filter.
"""
import json
import os

from pyrunc.errors import PyruncError

# Traces name the audit architecture as the tracer does; profiles as libseccomp does.
ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "aarch64": "SCMP_ARCH_AARCH64"}
# Docker's `includes.arches` words for the libseccomp architectures.
_DOCKER_ARCH = {"SCMP_ARCH_X86_64": "amd64", "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32",
                "SCMP_ARCH_AARCH64": "arm64", "SCMP_ARCH_ARM": "arm"}

# After the filter is loaded the runtime's init still runs until execve: these calls are not in
# a trace (it starts at the execve) and must be allowed for the container to start at all. runc's
# list (what `strace -f` shows runc 1.1.5's init calling between PR_SET_SECCOMP and execve, with
# the Go runtime's own calls on that thread) covers pyrunc's init, which makes a subset of them
# (integration/test_seccomp_after_load.py); with it the profile works under runc too.
RUNTIME_AFTER_LOAD = sorted(set("""capget capset chdir close epoll_ctl execve faccessat2 fcntl fstat fstatfs futex
getcwd getdents64 getpid getppid newfstatat openat prctl read setgid setgroups setuid write brk madvise mmap
mprotect munmap nanosleep rt_sigprocmask rt_sigreturn sched_yield sigaltstack gettid tgkill""".split()))

CLONE_NAMESPACE_FLAGS = 0x7E020000  # Docker's mask: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
# Arguments Docker's default profile compares, by syscall: index of the argument.
FILTERED_ARGS = {"personality": 0, "socket": 0, "clone": 0}

DOCKER_DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                       "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                       "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")


class RecordError(PyruncError):
    """A trace that cannot become a profile; names the file and line."""


class Observed:
    """What traces show: per libseccomp architecture, syscall name -> set of filtered-argument values
    (None for a syscall whose arguments no rule compares)."""

    def __init__(self):
        self.arches = []
        self.calls = {}

    def add(self, arch, name, args):
        if arch not in self.arches:
            self.arches.append(arch)
        values = self.calls.setdefault(name, set())
        index = FILTERED_ARGS.get(name)
        if (index is not None and isinstance(args, list) and len(args) > index and isinstance(args[index], int)
                and not isinstance(args[index], bool)):
            values.add(args[index])
        elif index is not None:
            values.add(None)  # an argument the trace could not show: no restriction can be derived


def read_traces(paths, observed=None):
    observed = observed or Observed()
    for path in paths:
        try:
            f = open(path, "rb")
        except OSError as e:
            from pyrunc.errors import StepError
            raise StepError("read trace", path, e) from None
        with f:
            for number, line in enumerate(f, 1):
                _add_line(observed, path, number, line)
    return observed


def _add_line(observed, path, number, line):
    line = line.strip()
    if not line:
        return
    try:
        record = json.loads(line)
    except ValueError:
        raise RecordError(f"{path} line {number}: not a JSON trace record") from None
    if not isinstance(record, dict) or "arch" not in record:
        return  # signals and exits
    arch = ARCHES.get(record["arch"]) if isinstance(record["arch"], str) else None
    if arch is None:
        raise RecordError(f"{path} line {number}: architecture {record.get('arch')!r} has no seccomp name")
    name = record.get("syscall")
    if not isinstance(name, str) or not name:
        raise RecordError(f"{path} line {number}: syscall number {record.get('nr')} is unknown on "
                          f"{record.get('arch')}: a profile cannot name it")
    observed.add(arch, name, record.get("args"))


def _check_names(names, arches):
    from pyrunc.sys.libseccomp import syscall_known
    unknown = [n for n in names if not any(syscall_known(n, a) for a in arches)]
    if unknown:
        raise RecordError(f"libseccomp does not know syscall(s) {', '.join(sorted(unknown))}: "
                          "a profile cannot name them")


def _rules_for(name, values):
    """Rules allowing `name` for the observed values of its filtered argument; None: no condition."""
    index = FILTERED_ARGS.get(name)
    if index is None or None in values or not values:
        return None
    if name == "clone":
        if any(v & CLONE_NAMESPACE_FLAGS for v in values):
            return None  # namespaces were made: nothing narrower than clone itself
        return [{"names": [name], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": index, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]}]
    return [{"names": [name], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": index, "value": v, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]} for v in sorted(values)]


def recorded_profile(observed, runtime_calls=True):
    """A profile allowing what `observed` shows (and the runtime's own last calls)."""
    if not observed.arches:
        raise RecordError("the traces show no syscall: nothing to record")
    calls = {name: set(values) for name, values in observed.calls.items()}
    if runtime_calls:
        for name in RUNTIME_AFTER_LOAD:
            calls.setdefault(name, set())
    _check_names(calls, observed.arches)
    plain, conditional = [], []
    for name in sorted(calls):
        rules = _rules_for(name, calls[name])
        if rules is None:
            plain.append(name)
        else:
            conditional.extend(rules)
    syscalls = [{"names": plain, "action": "SCMP_ACT_ALLOW"}] + conditional
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": list(observed.arches),
            "syscalls": syscalls}


# --- --from-default: Docker's profile, resolved as dockerd resolves it, plus what it lacks ---

def docker_default():
    import pyrunc
    parent = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
    for candidate in (os.path.join(parent, "pyrunc_specs", "seccomp", "docker-default.json"),
                      os.path.join(os.path.dirname(parent), "specs", "seccomp", "docker-default.json")):
        if os.path.isfile(candidate):
            with open(candidate, "rb") as f:
                return json.loads(f.read())
    raise PyruncError("Docker's default seccomp profile (specs/seccomp/docker-default.json) is not installed")


def _kernel_at_least(version, release):
    def numbers(text):
        out = []
        for part in text.split(".")[:2]:
            digits = "".join(ch for ch in part if ch.isdigit()) or "0"
            out.append(int(digits))
        return tuple(out)
    return numbers(release) >= numbers(version)


def resolve_docker(profile, native_arch, caps=DOCKER_DEFAULT_CAPS, kernel=None):
    """Docker's profile for one machine: archMap -> architectures, includes/excludes applied."""
    kernel = kernel or os.uname().release
    arches = [native_arch]
    for entry in profile.get("archMap") or ():
        if entry.get("architecture") == native_arch:
            arches += entry.get("subArchitectures") or []
    docker_arches = {_DOCKER_ARCH.get(a) for a in arches}
    caps = set(caps)

    def included(cond):
        if not cond:
            return True
        if cond.get("arches") and not docker_arches & set(cond["arches"]):
            return False
        if cond.get("caps") and not caps.issuperset(cond["caps"]):
            return False
        return not cond.get("minKernel") or _kernel_at_least(cond["minKernel"], kernel)

    rules = []
    for rule in profile.get("syscalls") or ():
        if not included(rule.get("includes")):
            continue
        excludes = rule.get("excludes") or {}
        if excludes and (docker_arches & set(excludes.get("arches") or ()) or caps & set(excludes.get("caps") or ())):
            continue
        rules.append({k: v for k, v in rule.items() if k not in ("includes", "excludes", "comment")})
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile.get("defaultErrnoRet", 1),
            "architectures": arches, "syscalls": rules}


def _allows(rule, value):
    """Whether a rule's argument conditions let a call with filtered argument `value` through."""
    for cond in rule.get("args") or ():
        if value is None:
            return False
        op, a, b = cond["op"], cond["value"], cond.get("valueTwo", 0)
        ok = {"SCMP_CMP_EQ": value == a, "SCMP_CMP_NE": value != a, "SCMP_CMP_LT": value < a,
              "SCMP_CMP_LE": value <= a, "SCMP_CMP_GT": value > a, "SCMP_CMP_GE": value >= a,
              "SCMP_CMP_MASKED_EQ": value & a == b}.get(op, False)
        if not ok:
            return False
    return True


def from_default_profile(observed, native_arch):
    """Docker's default profile, plus a rule for every call of the trace it would refuse."""
    profile = resolve_docker(docker_default(), native_arch)
    allow = [r for r in profile["syscalls"] if r.get("action") == "SCMP_ACT_ALLOW"]
    missing = Observed()
    for name, values in observed.calls.items():
        for value in values or {None}:
            if not any(name in r["names"] and _allows(r, value) for r in allow):
                missing.calls.setdefault(name, set()).add(value)
    for name in RUNTIME_AFTER_LOAD:
        if not any(name in r["names"] and not r.get("args") for r in allow):
            missing.calls.setdefault(name, set())
    if missing.calls:
        # Docker's errno rule for clone3 (ENOSYS) must not shadow a clone3 the workload needs.
        profile["syscalls"] = [r for r in profile["syscalls"]
                               if r.get("action") == "SCMP_ACT_ALLOW" or not set(r["names"]) & set(missing.calls)]
        missing.arches = list(profile["architectures"])
        extra = recorded_profile(missing, runtime_calls=False)["syscalls"]
        profile["syscalls"] += [r for r in extra if r["names"]]
    for arch in observed.arches:
        if arch not in profile["architectures"]:
            profile["architectures"].append(arch)
    return profile


def native_arch():
    machine = os.uname().machine
    return {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}.get(machine, f"SCMP_ARCH_{machine.upper()}")
