"""The cgroup v2 device filter: device rules -> a BPF_PROG_TYPE_CGROUP_DEVICE program (pure).

cgroup v2 has no devices.allow/deny; the kernel runs an attached eBPF program on every device
open/mknod with a struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}, where
access_type = access << 16 | type. The rules are first reduced to the state a v1 devices cgroup
would reach (devices_emulator.py), so v1 and v2 decide alike; the program, like runc's, loads the
fields into R2..R5, then has one block per exception, each falling through to the next on a
mismatch, and ends with the default verdict.
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
_JEQ_K = 0x15         # BPF_JMP | BPF_JEQ | BPF_K
_EXIT = 0x95          # BPF_JMP | BPF_EXIT


def insn(code, dst=0, src=0, off=0, imm=0):
    """struct bpf_insn: u8 code, u8 dst:4 src:4 (little-endian bitfields), s16 off, s32 imm."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def access_mask(access):
    mask = 0
    for ch in access:
        mask |= _ACCESS[ch]
    return mask


def _exception_block(key, access, default_allow):
    """The instructions of one exception, with jumps still symbolic: (opcode, reg, imm) to the next
    block when the device does not match."""
    kind, major, minor = key
    block = [(_JNE_K, 2, _TYPES[kind])]
    mask = access_mask(access)
    if mask != 0b111:
        block.append(insn(_MOV32_X, dst=1, src=3))
        if default_allow:
            # A deny exception takes any request that overlaps it (the kernel's partial match).
            block.append(insn(_AND32_K, dst=1, imm=mask))
            block.append((_JEQ_K, 1, 0))
        else:
            # An allow exception must cover the whole request: (access & ~mask) == 0.
            block.append(insn(_AND32_K, dst=1, imm=~mask & 0xFFFF))
            block.append((_JNE_K, 1, 0))
    if major is not None:
        block.append((_JNE_K, 4, major))
    if minor is not None:
        block.append((_JNE_K, 5, minor))
    block.append(insn(_MOV32_K, dst=0, imm=0 if default_allow else 1))
    block.append(insn(_EXIT))
    return block


def build(rules):
    """Bytes of the program for `rules` (resources.device_rules() output, in order)."""
    from .devices_emulator import emulate
    state = emulate(rules)
    prog = [
        insn(_LDXW, dst=2, src=1, off=0),      # R2 = access_type
        insn(_AND32_K, dst=2, imm=0xFFFF),     # R2 = device type
        insn(_LDXW, dst=3, src=1, off=0),
        insn(_RSH32_K, dst=3, imm=16),         # R3 = requested access
        insn(_LDXW, dst=4, src=1, off=4),      # R4 = major
        insn(_LDXW, dst=5, src=1, off=8),      # R5 = minor
    ]
    for key, access in state.ordered():
        if any(n is not None and not 0 <= n < 1 << 31 for n in key[1:]):
            continue  # no device has such a number (majors are 12 bits, minors 20)
        block = _exception_block(key, access, state.default_allow)
        end = len(block)
        for i, ins in enumerate(block):
            if isinstance(ins, tuple):
                code, reg, imm = ins
                # to the first instruction after this block: the offset counts from the next insn
                prog.append(insn(code, dst=reg, off=end - i - 1, imm=imm))
            else:
                prog.append(ins)
    prog.append(insn(_MOV32_K, dst=0, imm=1 if state.default_allow else 0))
    prog.append(insn(_EXIT))
    return b"".join(prog)


def attach_device_filter(cgroup_dir, rules):
    from ..errors import StepError
    from ..sys.bpf import attach_to_cgroup
    try:
        attach_to_cgroup(cgroup_dir, build(rules))
    except OSError as exc:
        raise StepError("attach device filter to", cgroup_dir, exc) from exc
