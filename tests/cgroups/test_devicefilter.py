"""The cgroup v2 device filter: instruction encoding, the program's decisions (run through a small
interpreter of the opcodes it uses, against a reference evaluation of the rules), and for real: a
program attached to a test cgroup on the unified hierarchy makes a denied open fail with EPERM."""
import errno
import itertools
import os
import struct

import pytest

from pyrunc.cgroups import devicefilter as df
from pyrunc.cgroups import resources as rs

UNIFIED = next((p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                if os.path.exists(os.path.join(p, "cgroup.controllers"))), None)


def test_insn_encoding():
    # r2 = *(u32 *)(r1 + 4): code 0x61, dst 2 in the low nibble, src 1 in the high one
    assert df.insn(0x61, dst=2, src=1, off=4) == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0])
    assert df.insn(0x55, dst=4, off=-1, imm=136) == bytes([0x55, 0x04, 0xFF, 0xFF, 136, 0, 0, 0])
    assert df.insn(0x95) == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])


def run(prog, dev_type, access, major, minor):
    """Interpret the program for one device access; returns R0 (1 allow, 0 deny)."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    insns = [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    reg = [0] * 11
    pc = 0
    for _ in range(10000):
        code, regs, off, imm = insns[pc]
        dst, src = regs & 0xF, regs >> 4
        pc += 1
        u32 = imm & 0xFFFFFFFF
        if code == 0x61:
            assert src == 1, "only the context is read"
            reg[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            reg[dst] = (reg[dst] & u32) & 0xFFFFFFFF
        elif code == 0x74:
            reg[dst] = (reg[dst] >> imm) & 0xFFFFFFFF
        elif code == 0xb4:
            reg[dst] = u32
        elif code == 0xbc:
            reg[dst] = reg[src] & 0xFFFFFFFF
        elif code == 0x55:
            if reg[dst] != u32:
                pc += off
        elif code == 0x15:
            if reg[dst] == u32:
                pc += off
        elif code == 0x95:
            return reg[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert 0 <= pc < len(insns), "jumped out of the program"
    raise AssertionError("no exit")


def reference(rules, dev_type, access, major, minor):
    """The kernel's v1 verdict on the state the rules give (checked against the kernel itself in
    test_devices_emulator.py)."""
    from pyrunc.cgroups.devices_emulator import emulate
    letters = "".join(p for p, bit in (("m", 1), ("r", 2), ("w", 4)) if access & bit)
    return int(emulate(rules).allows({1: "b", 2: "c"}[dev_type], major, minor, letters))


RULESETS = {
    "default": rs.device_rules({"devices": [{"allow": False, "access": "rwm"}]}),
    "allow-all-then-deny": rs.device_rules({"devices": [
        {"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 3,
                                           "access": "w"}]}),
    "deny-after-defaults": rs.device_rules({"devices": [{"allow": False, "access": "rwm"}]}) + [
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}],
    "block": [{"allow": True, "type": "b", "major": 8, "minor": None, "access": "r"}],
    "deny-list-partial": [{"allow": True, "type": "a", "major": None, "minor": None, "access": "rwm"},
                          {"allow": False, "type": "c", "major": 1, "minor": None, "access": "w"},
                          {"allow": False, "type": "b", "major": None, "minor": 3, "access": "rm"}],
    "kmsg-in-linux-devices": rs.device_rules({"devices": [{"allow": False, "access": "rwm"}]},
                                             [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]),
}


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_program_decides_as_the_rules_say(name):
    rules = RULESETS[name]
    prog = df.build(rules)
    for dev_type, access, major, minor in itertools.product(
            (1, 2), range(1, 8), (1, 5, 8, 10, 136, 250), (0, 1, 3, 5, 9, 200)):
        assert run(prog, dev_type, access, major, minor) == reference(rules, dev_type, access, major,
                                                                      minor), \
            (name, dev_type, access, major, minor)


def test_default_rules_examples():
    prog = df.build(RULESETS["default"])
    R, W, M = df.DEVCG_ACC_READ, df.DEVCG_ACC_WRITE, df.DEVCG_ACC_MKNOD
    C, B = df.DEVCG_DEV_CHAR, df.DEVCG_DEV_BLOCK
    assert run(prog, C, R | W, 1, 3) == 1       # /dev/null
    assert run(prog, C, R, 1, 11) == 0          # /dev/kmsg
    assert run(prog, B, M, 8, 0) == 1           # mknod of any block node
    assert run(prog, B, R, 8, 0) == 0           # ...but not opening it
    assert run(prog, C, R | W, 136, 4) == 1     # a pty
    # a deny exception takes any request it overlaps: reading and writing a write-denied node
    prog = df.build(RULESETS["deny-list-partial"])
    assert run(prog, C, R | W, 1, 3) == 0 and run(prog, C, R, 1, 3) == 1


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or UNIFIED is None, reason="needs root and cgroup2")
def test_attached_program_denies_open_with_eperm(cgroup_name):
    cg = os.path.join(UNIFIED, cgroup_name)
    os.mkdir(cg)
    df.attach_device_filter(cg, RULESETS["default"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child joins the cgroup and reports what it could open
        try:
            os.close(r)
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            out = []
            for path in ("/dev/null", "/dev/kmsg"):
                try:
                    os.close(os.open(path, os.O_RDONLY))
                    out.append("ok")
                except OSError as e:
                    out.append(errno.errorcode[e.errno])
            os.write(w, " ".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        result = os.read(r, 100).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert result == "ok EPERM"
    # Outside the cgroup the same open works: the program is the cgroup's, not global.
    os.close(os.open("/dev/kmsg", os.O_RDONLY))
