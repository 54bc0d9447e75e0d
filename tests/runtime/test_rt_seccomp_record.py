"""linux/seccomp/record.py and trace/decode.py: traces -> a seccomp profile (pure), merging,
Docker's default profile resolved for a machine, and what cannot become a profile."""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.linux.seccomp import record
from pyrunc.linux.seccomp.compile import compile_plan

AF_INET, AF_UNIX, AF_VSOCK = 2, 1, 40
CLONE_THREAD_FLAGS, CLONE_NEWNS = 0x3D0F00, 0x20000


def _line(name, args=(), arch="x86_64", nr=0):
    return json.dumps({"time": 1.0, "pid": 7, "arch": arch, "nr": nr, "syscall": name, "args": list(args), "ret": 0})


def _trace(tmp_path, name, *lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _rules(profile, name):
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_recorded_profile_allows_what_was_seen_and_narrows_docker_filtered_args(tmp_path):
    trace = _trace(tmp_path, "t", _line("openat", [4294967196, "/etc/passwd", 0, 0]),
                   _line("socket", [AF_INET, 1, 0]), _line("socket", [AF_UNIX, 1, 0]), _line("socket", [AF_INET, 2, 0]),
                   _line("personality", [0xFFFFFFFF]), _line("clone", [CLONE_THREAD_FLAGS, 0, 0, 0, 0]),
                   json.dumps({"time": 1.0, "pid": 7, "signal": "SIGCHLD"}), json.dumps({"pid": 7, "exit": 0}))
    profile = record.recorded_profile(record.read_traces([trace]))
    assert (profile["defaultAction"], profile["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert profile["architectures"] == ["SCMP_ARCH_X86_64"]
    plain = profile["syscalls"][0]
    assert plain["action"] == "SCMP_ACT_ALLOW" and "openat" in plain["names"]
    assert not {"socket", "personality", "clone", "mount", "ptrace"} & set(plain["names"])
    assert [r["args"] for r in _rules(profile, "socket")] == [
        [{"index": 0, "value": AF_UNIX, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        [{"index": 0, "value": AF_INET, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]]
    assert [r["args"][0]["value"] for r in _rules(profile, "personality")] == [0xFFFFFFFF]
    assert _rules(profile, "clone")[0]["args"] == [{"index": 0, "value": record.CLONE_NAMESPACE_FLAGS,
                                                    "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    # the runtime's own calls between the filter's load and execve (not in any trace)
    assert set(record.RUNTIME_AFTER_LOAD) <= set(plain["names"])
    compile_plan(profile)  # pyrunc's own loader takes it


def test_namespaces_made_means_clone_unrestricted_and_merge_unions(tmp_path):
    first = _trace(tmp_path, "a", _line("clone", [CLONE_THREAD_FLAGS]), _line("socket", [AF_INET]))
    second = _trace(tmp_path, "b", _line("clone", [CLONE_NEWNS | 17]), _line("mknodat", [0, "/p", 0o10644, 0]),
                    _line("socket", [AF_UNIX]), _line("socket", [4294967295]))
    profile = record.recorded_profile(record.read_traces([first, second]))
    plain = profile["syscalls"][0]["names"]
    assert "clone" in plain and "mknodat" in plain
    assert [r["args"][0]["value"] for r in _rules(profile, "socket")] == [AF_UNIX, AF_INET, 4294967295]


def test_argument_the_trace_could_not_show_leaves_the_call_unrestricted(tmp_path):
    trace = _trace(tmp_path, "t", _line("socket", [AF_INET]), _line("socket", ["not-a-number"]))
    profile = record.recorded_profile(record.read_traces([trace]))
    assert "socket" in profile["syscalls"][0]["names"]


def test_architectures_as_seen(tmp_path):
    trace = _trace(tmp_path, "t", _line("read"), _line("read", arch="x86", nr=3))
    assert record.recorded_profile(record.read_traces([trace]))["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]


@pytest.mark.parametrize("line, words", [
    (json.dumps({"pid": 1, "arch": "x86_64", "nr": 999, "syscall": None, "args": []}), "syscall number 999 is unknown"),
    ("{not json", "not a JSON trace record"),
    (json.dumps({"pid": 1, "arch": "vax", "nr": 1, "syscall": "read"}), "architecture 'vax'"),
])
def test_what_cannot_become_a_profile_is_named(tmp_path, line, words):
    trace = _trace(tmp_path, "t", _line("read"), line)
    with pytest.raises(record.RecordError, match=words) as e:
        record.read_traces([trace])
    assert f"{trace} line 2" in str(e.value)


def test_name_libseccomp_does_not_know_and_empty_traces(tmp_path):
    with pytest.raises(record.RecordError, match="does not know syscall.*no_such_call"):
        record.recorded_profile(record.read_traces([_trace(tmp_path, "t", _line("no_such_call"))]))
    with pytest.raises(record.RecordError, match="no syscall"):
        record.recorded_profile(record.read_traces([_trace(tmp_path, "e", json.dumps({"pid": 1, "exit": 0}))]))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=4), max_leaves=12)
RECORDS = st.fixed_dictionaries({}, optional={"arch": st.sampled_from(["x86_64", "x86", "arm", 5, None]) | JSON_VALUES,
                                              "syscall": st.sampled_from(["read", "socket", "clone", "personality",
                                                                          "", None, 3]) | st.text(max_size=5),
                                              "args": JSON_VALUES, "nr": JSON_VALUES, "pid": JSON_VALUES})


@settings(max_examples=150, deadline=None)
@given(st.lists(RECORDS | JSON_VALUES, max_size=6))
def test_hostile_traces_give_a_profile_or_a_named_error(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("h") / "t"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    try:
        profile = record.recorded_profile(record.read_traces([str(path)]))
    except record.RecordError as e:
        assert str(e)
        return
    compile_plan(profile)


def test_docker_default_resolved_for_amd64_with_docker_caps():
    profile = record.resolve_docker(record.docker_default(), "SCMP_ARCH_X86_64", kernel="6.1.0")
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert {"read", "arch_prctl", "modify_ldt", "ptrace", "chroot"} <= allowed  # ptrace: minKernel 4.8
    assert not {"mount", "unshare", "reboot", "s390_runtime_instr", "riscv_flush_icache", "bpf"} & allowed
    assert [r["args"][0]["index"] for r in _rules(profile, "clone")] == [0]  # not s390's ordering
    assert [(r["action"], r["errnoRet"]) for r in _rules(profile, "clone3")] == [("SCMP_ACT_ERRNO", 38)]
    assert not any("includes" in r or "excludes" in r for r in profile["syscalls"])
    old = record.resolve_docker(record.docker_default(), "SCMP_ARCH_X86_64", kernel="4.4.0")
    assert "process_vm_readv" not in {n for r in old["syscalls"] for n in r["names"]}
    admin = record.resolve_docker(record.docker_default(), "SCMP_ARCH_X86_64",
                                  caps=record.DOCKER_DEFAULT_CAPS + ("CAP_SYS_ADMIN",))
    assert "mount" in {n for r in admin["syscalls"] for n in r["names"]} and not _rules(admin, "clone3")[0].get("errnoRet")
    compile_plan(profile)


def test_from_default_adds_only_what_docker_refuses(tmp_path):
    trace = _trace(tmp_path, "t", _line("read"), _line("socket", [AF_INET]), _line("socket", [AF_VSOCK]),
                   _line("clone", [CLONE_NEWNS | 17]), _line("clone3", [1, 88]), _line("personality", [8]),
                   _line("mount", [0, 0, 0, 0, 0]))
    base = record.resolve_docker(record.docker_default(), "SCMP_ARCH_X86_64")
    profile = record.from_default_profile(record.read_traces([trace]), "SCMP_ARCH_X86_64")
    added = profile["syscalls"][len(base["syscalls"]) - 1:]  # Docker's clone3 errno rule is dropped
    assert not [r for r in profile["syscalls"] if r["action"] != "SCMP_ACT_ALLOW"]
    assert {n for r in added for n in r["names"]} == {"clone", "clone3", "mount", "socket"}
    assert [r["args"] for r in added if r["names"] == ["socket"]] == [
        [{"index": 0, "value": AF_VSOCK, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]]
    assert profile["architectures"] == base["architectures"]
    compile_plan(profile)


def test_syscall_names_for_trace_records():
    from pyrunc.sys import ptrace as pt
    from pyrunc.trace.decode import SyscallTable, decode_args
    table = SyscallTable(pt.AUDIT_ARCH_X86_64)
    assert table.lookup(0)[0] == "read" and table.lookup(59)[0] == "execve"
    assert table.lookup(439)[0] == "faccessat2"
    name, kinds, reads_memory = table.lookup(100000)
    assert (name, kinds, reads_memory) == (None, None, False)
    assert decode_args(kinds, [1, 2, 3, 4, 5, 6], None) == "1,2,3,4,5,6"
    assert SyscallTable(pt.AUDIT_ARCH_I386).lookup(11)[0] == "execve"
    assert table.lookup(59)[1:] == (("string", "argv", None), True)  # envp is never read
    assert table.lookup(1)[1:] == ((None, None, None), False)  # write's buffer is not a string


@pytest.mark.parametrize("argv, words", [
    ([], "usage: pyrunc seccomp record"),
    (["dump"], "usage: pyrunc seccomp record"),
    (["record"], "requires at least one trace file"),
    (["record", "/nonexistent/trace"], "read trace /nonexistent/trace"),
])
def test_cli_errors(argv, words):
    cp = subprocess.run([sys.executable, "-m", "pyrunc", "seccomp", *argv], capture_output=True, text=True,
                        env=dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "../../runtime")))
    assert cp.returncode == 1 and words in cp.stderr and "Traceback" not in cp.stderr, cp.stderr


def test_cli_writes_the_profile(tmp_path):
    trace = _trace(tmp_path, "t", _line("read"))
    out = tmp_path / "p.json"
    cp = subprocess.run([sys.executable, "-m", "pyrunc", "seccomp", "record", "-o", str(out), trace],
                        capture_output=True, text=True,
                        env=dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "../../runtime")))
    assert cp.returncode == 0, cp.stderr
    assert "read" in json.loads(out.read_text())["syscalls"][0]["names"]


def test_trace_records_round_trip_and_a_killed_tracer():
    """The tracer's batches become JSON lines; a batch cut short by the tracer's death is dropped,
    what came before is written."""
    import io
    from pyrunc.trace import records
    r, w = os.pipe()
    sender = records.Sender(w, batch_size=2)
    sender.add((7, -2, 1, 1.5, "x86_64", 257, "openat", '4294967196,"/a b\\"c",0,0'), 1.5)
    sender.add((7, 3, 0, 1.6, "x86_64", 0, "read", [3, 140000, 10]), 1.6)  # flushed: two items
    sender.add('{"time":1.7,"pid":7,"exit":0}\n', 1.7)
    sender.add((8, None, 0, 1.8, "x86_64", 999, None, [1, 2, 3, 4, 5, 6]), 1.8)
    sender.flush()
    os.write(w, b"\xff\x00\x00\x00partial")  # a batch the tracer did not finish
    os.close(w)
    out = io.BytesIO()
    records.write_all(r, out)
    os.close(r)
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert lines[0] == {"time": 1.5, "pid": 7, "arch": "x86_64", "nr": 257, "syscall": "openat",
                        "args": [4294967196, '/a b"c', 0, 0], "ret": -2, "errno": "ENOENT"}
    assert lines[1]["args"] == [3, 140000, 10] and "errno" not in lines[1]
    assert lines[2] == {"time": 1.7, "pid": 7, "exit": 0}
    assert lines[3]["syscall"] is None and lines[3]["ret"] is None and len(lines) == 4
