"""The cgroup v2 device filter: device rules -> a BPF_PROG_TYPE_CGROUP_DEVICE program (pure).

cgroup v2 has no devices.allow/deny; the kernel runs an attached eBPF program on every device
open/mknod with a struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}, where
access_type = access << 16 | type. The program is runc's: load the fields into R2..R5, then one
block per rule, the LAST rule first (later rules override earlier ones, as devices.allow/deny
writes do), each falling through to the next on a mismatch; no match denies.
"""
import struct

# struct bpf_cgroup_dev_ctx values (include/uapi/linux/bpf.h)
DEVCG_DEV_BLOCK, DEVCG_DEV_CHAR = 1, 2
DEVCG_ACC_MKNOD, DEVCG_ACC_READ, DEVCG_ACC_WRITE = 1, 2, 4
_TYPES = {"b": DEVCG_DEV_BLOCK, "c": DEVCG_DEV_CHAR}
_ACCESS = {"m": DEVCG_ACC_MKNOD, "r": DEVCG_ACC_READ, "w": DEVCG_ACC_WRITE}

# opcodes: class | op | source
_LDXW = 0x61          # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54       # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74       # BPF_ALU | BPF_RSH | BPF_K
_MOV32_K = 0xb4       # BPF_ALU | BPF_MOV | BPF_K
_MOV32_X = 0xbc       # BPF_ALU | BPF_MOV | BPF_X
_JNE_K = 0x55         # BPF_JMP | BPF_JNE | BPF_K
_EXIT = 0x95          # BPF_JMP | BPF_EXIT


def insn(code, dst=0, src=0, off=0, imm=0):
    """struct bpf_insn: u8 code, u8 dst:4 src:4 (little-endian bitfields), s16 off, s32 imm."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def access_mask(access):
    mask = 0
    for ch in access:
        mask |= _ACCESS[ch]
    return mask


def _rule_block(rule):
    """The instructions of one rule, with jumps still symbolic: ("jne", reg, imm) to the next block."""
    block = []
    if rule["type"] != "a":
        block.append(("jne", 2, _TYPES[rule["type"]]))
    mask = access_mask(rule["access"])
    if mask != 0b111:
        # Requested access must be a subset of the rule's: (access & ~mask) == 0.
        block.append(insn(_MOV32_X, dst=1, src=3))
        block.append(insn(_AND32_K, dst=1, imm=~mask & 0xFFFF))
        block.append(("jne", 1, 0))
    if rule["major"] is not None:
        block.append(("jne", 4, rule["major"]))
    if rule["minor"] is not None:
        block.append(("jne", 5, rule["minor"]))
    block.append(insn(_MOV32_K, dst=0, imm=1 if rule["allow"] else 0))
    block.append(insn(_EXIT))
    return block


def build(rules):
    """Bytes of the program for `rules` (resources.device_rules() output: later rules win)."""
    prog = [
        insn(_LDXW, dst=2, src=1, off=0),      # R2 = access_type
        insn(_AND32_K, dst=2, imm=0xFFFF),     # R2 = device type
        insn(_LDXW, dst=3, src=1, off=0),
        insn(_RSH32_K, dst=3, imm=16),         # R3 = requested access
        insn(_LDXW, dst=4, src=1, off=4),      # R4 = major
        insn(_LDXW, dst=5, src=1, off=8),      # R5 = minor
    ]
    for rule in reversed(rules):
        if rule["type"] not in ("a", "b", "c"):
            continue
        block = _rule_block(rule)
        if rule["type"] == "a" and rule["major"] is None and rule["minor"] is None \
                and access_mask(rule["access"]) == 0b111:
            # Matches everything: what comes after it (earlier rules) can never run.
            prog.extend(block)
            return b"".join(prog)
        end = len(block)
        for i, ins in enumerate(block):
            if isinstance(ins, tuple):
                _, reg, imm = ins
                # jump to the first instruction after this block: offset counts from the next insn
                prog.append(insn(_JNE_K, dst=reg, off=end - i - 1, imm=imm))
            else:
                prog.append(ins)
    prog.append(insn(_MOV32_K, dst=0, imm=0))  # nothing matched: deny
    prog.append(insn(_EXIT))
    return b"".join(prog)


def attach_device_filter(cgroup_dir, rules):
    from ..errors import StepError
    from ..sys.bpf import attach_to_cgroup
    try:
        attach_to_cgroup(cgroup_dir, build(rules))
    except OSError as exc:
        raise StepError("attach device filter to", cgroup_dir, exc) from exc
