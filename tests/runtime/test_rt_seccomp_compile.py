"""linux/seccomp/compile.py: the spec -> libseccomp plan translation (pure, runc's semantics)."""
import pytest

from pyrunc.linux.seccomp.compile import ACTIONS, SeccompConfigError, arch_name, compile_plan


def test_errno_defaults_and_values():
    plan = compile_plan({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["b"], "action": "SCMP_ACT_TRACE"}]})
    assert plan.default_action == ACTIONS["SCMP_ACT_ERRNO"] | 1  # EPERM
    assert [(r[0], r[1]) for r in plan.rules] == [(ACTIONS["SCMP_ACT_ERRNO"] | 38, "a"),
                                                   (ACTIONS["SCMP_ACT_TRACE"] | 1, "b")]


def test_rule_equal_to_default_is_skipped():
    plan = compile_plan({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})
    assert plan.rules == []


def test_conditions_on_one_argument_become_alternatives():
    args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    plan = compile_plan({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["p"], "action": "SCMP_ACT_KILL", "args": args}]})
    assert [r[2] for r in plan.rules] == [[(0, 4, 1, 0)], [(0, 4, 2, 0)]]


def test_conditions_on_distinct_arguments_are_anded():
    args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": 7, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]
    plan = compile_plan({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["p"], "action": "SCMP_ACT_LOG", "args": args}]})
    assert [r[2] for r in plan.rules] == [[(0, 4, 1, 0), (2, 7, 7, 3)]]


def test_notify_flags_and_arches():
    plan = compile_plan({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                         "architectures": ["SCMP_ARCH_X86_64"],
                         "syscalls": [{"names": ["x"], "action": "SCMP_ACT_NOTIFY"}]})
    assert plan.uses_notify
    assert plan.arches == ["x86_64"] and arch_name("SCMP_ARCH_AARCH64") == "aarch64"
    assert (3, 0, None) in plan.attrs  # libseccomp must not set no_new_privs itself
    assert (6, 1, "SECCOMP_FILTER_FLAG_LOG") in plan.attrs


def test_bad_input_names_the_field():
    with pytest.raises(SeccompConfigError, match=r"syscalls\[0\].args\[0\].index"):
        compile_plan({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["x"], "action": "SCMP_ACT_KILL", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
