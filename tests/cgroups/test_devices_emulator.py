"""The device cgroup state an ordered rule list gives (devices_emulator.py): runc's semantics by
example, and for real: random rule lists replayed into a v1 devices cgroup give the kernel the very
devices.list the emulator predicts, and the emulator's own writes reproduce it."""
import os
import random

import pytest

from pyrunc.cgroups import resources as rs
from pyrunc.cgroups.devices_emulator import DeviceState, emulate, v1_writes
from pyrunc.errors import InvalidSpec

DEVICES_ROOT = "/sys/fs/cgroup/devices"


def rule(allow, kind="a", major=None, minor=None, access="rwm"):
    return {"allow": allow, "type": kind, "major": major, "minor": minor, "access": access}


def test_default_config_is_an_allow_list_of_runc_defaults():
    state = emulate(rs.device_rules({"devices": [{"allow": False, "access": "rwm"}]}))
    assert state.default_allow is False
    assert state.allows("c", 1, 3, "rw") and state.allows("c", 136, 7, "rw")
    assert state.allows("b", 8, 0, "m") and not state.allows("b", 8, 0, "r")
    assert not state.allows("c", 1, 11, "w")  # /dev/kmsg


def test_linux_devices_create_nodes_but_allow_nothing():
    """runc: linux.devices never adds a cgroup rule; a default rule for the same path is dropped."""
    kmsg = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}
    null = {"path": "/dev/null", "type": "c", "major": 1, "minor": 3}
    state = emulate(rs.device_rules({"devices": [{"allow": False, "access": "rwm"}]}, [kmsg, null]))
    assert not state.allows("c", 1, 11, "r")
    assert not state.allows("c", 1, 3, "r")
    assert state.allows("c", 1, 5, "r")


def test_last_rule_wins_and_a_resets():
    assert emulate([rule(True), rule(False, "c", 1, 3, "w")]) == DeviceState(True, {("c", 1, 3): "w"})
    state = emulate([rule(False), rule(True, "c", 1, 3), rule(False, "c", 1, 3, "w")])
    assert state == DeviceState(False, {("c", 1, 3): "rm"})
    assert emulate([rule(False), rule(True, "c", 1, 3), rule(True)]) == DeviceState(True)
    # "a" with a partial access still means every access (the kernel ignores the rest of the line)
    assert emulate([rule(False), rule(True, "a", 1, 3, "r")]) == DeviceState(True)


def test_deny_list_denies_any_overlap():
    state = emulate([rule(True), rule(False, "c", 1, 3, "w")])
    assert not state.allows("c", 1, 3, "rw") and state.allows("c", 1, 3, "r")


def test_punching_a_hole_in_a_wildcard_is_refused():
    with pytest.raises(InvalidSpec, match="hole"):
        emulate([rule(False), rule(True, "c", 136, None), rule(False, "c", 136, 2, "r")])
    with pytest.raises(InvalidSpec, match="hole"):
        emulate([rule(True), rule(False, "c", None, None, "m"), rule(True, "c", 1, 3, "m")])


def test_v1_writes_reset_first():
    assert v1_writes(DeviceState(False, {("c", 1, 3): "rwm", ("c", None, None): "m"})) == [
        ("devices.deny", "a *:* rwm"), ("devices.allow", "c *:* m"), ("devices.allow", "c 1:3 rwm")]
    assert v1_writes(DeviceState(True, {("b", 8, None): "w"})) == [
        ("devices.allow", "a *:* rwm"), ("devices.deny", "b 8:* w")]


def random_rules(rng):
    """A rule list of the classes that matter: resets, wildcards and exact keys, both verdicts,
    every access subset, on a few colliding keys so later rules meet earlier ones."""
    rules = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice("abcc")
        major = rng.choice([None, 1, 1, 136])
        minor = rng.choice([None, 3, 3, 5])
        access = "".join(p for p in "rwm" if rng.random() < 0.6) or "r"
        rules.append(rule(rng.random() < 0.5, kind, major, minor, access))
    return rules


def parse_list(text):
    """devices.list -> DeviceState (an "a *:* rwm" line alone means allow-all)."""
    lines = text.split()
    lines = [" ".join(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    if lines == ["a *:* rwm"]:
        return DeviceState(True)
    state = DeviceState(False)
    for line in lines:
        kind, numbers, access = line.split()
        major, minor = (None if n == "*" else int(n) for n in numbers.split(":"))
        state.exceptions[(kind, major, minor)] = access
    return state


def _write(cgdir, name, line):
    with open(os.path.join(cgdir, name), "w") as f:
        f.write(line)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir(DEVICES_ROOT), reason="needs root and v1 devices")
def test_emulator_predicts_the_kernel(cgroup_name):
    """Deny-list states are compared by their verdicts (devices.list shows only "a *:* rwm" for
    any allow-by-default cgroup); allow-list states by devices.list itself."""
    parent = os.path.join(DEVICES_ROOT, cgroup_name)
    os.mkdir(parent)
    rng = random.Random(13)
    checked = 0
    for n in range(150):
        rules = random_rules(rng)
        try:
            expected = emulate(rules)
        except InvalidSpec:
            continue
        raw, replayed = os.path.join(parent, f"raw{n}"), os.path.join(parent, f"ours{n}")
        os.mkdir(raw)
        os.mkdir(replayed)
        try:
            _write(raw, "devices.deny", "a")  # where the emulator (and runc) start
            for r in rules:
                line = "a" if r["type"] == "a" else (
                    f"{r['type']} {'*' if r['major'] is None else r['major']}:"
                    f"{'*' if r['minor'] is None else r['minor']} {r['access']}")
                _write(raw, "devices.allow" if r["allow"] else "devices.deny", line)
            for name, line in v1_writes(expected):
                _write(replayed, name, line)
            for cgdir in (raw, replayed):
                with open(os.path.join(cgdir, "devices.list")) as f:
                    kernel = parse_list(f.read())
                if expected.default_allow:
                    assert kernel.default_allow, (rules, expected)
                else:
                    assert kernel == expected, (rules, cgdir)
            checked += 1
        finally:
            os.rmdir(raw)
            os.rmdir(replayed)
    assert checked > 100
