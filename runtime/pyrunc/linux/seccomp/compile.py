"""linux.seccomp -> a plan of libseccomp calls. Pure: no library, no kernel; unit-testable.

Semantics follow runc (libcontainer/seccomp/seccomp_linux.go), which profiles are written against:
- ERRNO and TRACE return errnoRet, else EPERM (defaultErrnoRet for the default action);
- a syscall name libseccomp does not know is skipped (profiles list syscalls of newer kernels);
- a rule whose action equals the default action is skipped (libseccomp refuses it);
- conditions on distinct arguments are ANDed in one rule, but when one argument has several
  conditions each becomes a rule of its own (OR), as Docker's profile expects (e.g. personality).
- libseccomp must not set no_new_privs itself: process.noNewPrivileges decides that.
"""
EPERM = 1

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
# enum scmp_filter_attr
ATTR_CTL_NNP, ATTR_CTL_TSYNC, ATTR_CTL_LOG, ATTR_CTL_SSB, ATTR_CTL_WAITKILL = 3, 4, 6, 7, 10
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": ATTR_CTL_SSB,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": ATTR_CTL_WAITKILL,
}
SYSCALL_MAX_ARGS = 6


class SeccompConfigError(ValueError):
    def __init__(self, where, message):
        super().__init__(f"linux.seccomp.{where}: {message}")
        self.where = where


def action_value(name, errno_ret=None, where="defaultAction"):
    if name not in ACTIONS:
        raise SeccompConfigError(where, f"unknown action {name!r}")
    value = ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= (EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def arch_name(spec_name):
    """SCMP_ARCH_X86_64 -> x86_64, the name seccomp_arch_resolve_name knows."""
    return spec_name[len("SCMP_ARCH_"):].lower() if spec_name.startswith("SCMP_ARCH_") else spec_name.lower()


class Plan:
    def __init__(self, default_action, arches, attrs, rules, uses_notify):
        self.default_action = default_action
        self.arches = arches            # [libseccomp arch name]
        self.attrs = attrs              # [(attr, value, flag name)]
        self.rules = rules              # [(action, syscall name, [(arg, op, a, b)], where)]
        self.uses_notify = uses_notify


def compile_plan(seccomp):
    default = action_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    notify = seccomp["defaultAction"] == "SCMP_ACT_NOTIFY"
    attrs = [(ATTR_CTL_NNP, 0, None)]
    for flag in seccomp.get("flags") or ():
        if flag not in FLAGS:
            raise SeccompConfigError("flags", f"unknown flag {flag!r}")
        attrs.append((FLAGS[flag], 1, flag))
    rules = []
    for i, rule in enumerate(seccomp.get("syscalls") or ()):
        where = f"syscalls[{i}]"
        action = action_value(rule["action"], rule.get("errnoRet"), where + ".action")
        notify = notify or rule["action"] == "SCMP_ACT_NOTIFY"
        if action == default:
            continue
        conditions, per_arg = [], {}
        for j, arg in enumerate(rule.get("args") or ()):
            index = arg["index"]
            if index >= SYSCALL_MAX_ARGS:
                raise SeccompConfigError(f"{where}.args[{j}].index", f"{index} is not a syscall argument (0-5)")
            if arg["op"] not in OPERATORS:
                raise SeccompConfigError(f"{where}.args[{j}].op", f"unknown operator {arg['op']!r}")
            conditions.append((index, OPERATORS[arg["op"]], arg["value"], arg.get("valueTwo", 0)))
            per_arg[index] = per_arg.get(index, 0) + 1
        groups = [[cond] for cond in conditions] if any(n > 1 for n in per_arg.values()) else [conditions]
        for name in rule["names"]:
            for group in groups:
                rules.append((action, name, group, where))
    arches = [arch_name(a) for a in seccomp.get("architectures") or ()]
    return Plan(default, arches, attrs, rules, notify)
