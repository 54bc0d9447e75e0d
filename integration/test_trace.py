"""`pyrunc run --trace` / `create --trace` and `pyrunc seccomp record`, on a busybox workload: the
trace covers the container's process tree from its execve (files, sockets in the container's own
network namespace, fork, exec, a handled signal), matches strace's syscall set on the same
program, the workload behaves as untraced, and the profile recorded from it runs it while one
more syscall fails with EPERM exactly there.

The workload is deterministic on purpose: a profile allows what one run did, so a call that only
some runs make (an HTTP client's poll() when the answer is late) would make the test flaky --
which is also why several traces of a workload can be merged.
"""
import json
import os
import select
import subprocess
import time

import pytest

from integration.helpers.runtime import add_mount, execute, wait_for

pytestmark = pytest.mark.pyrunc_only

WORKLOAD = """set -e
mkdir /tmp/d; echo data > /tmp/d/f; cat /tmp/d/f; mv /tmp/d/f /tmp/d/g; rm /tmp/d/g
trap 'echo got-usr1' USR1
kill -USR1 $$
(echo in-child)
wget -q -O - http://127.0.0.1:1/x 2>/dev/null || echo refused
ip -o link show lo | grep -o LOOPBACK,UP
sh -c 'echo exec'
echo done"""
OUTPUT = "data\ngot-usr1\nin-child\nrefused\nLOOPBACK,UP\nexec\ndone\n"


def _config(runtime, script=WORKLOAD, seccomp=None):
    config = runtime.config(["sh", "-c", script])
    add_mount(config, "/tmp", "tmpfs", "tmpfs", ["nosuid", "size=1m"])
    if seccomp is not None:
        config["linux"]["seccomp"] = seccomp
    return config


def _records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _syscalls(records):
    return [r for r in records if "syscall" in r]


@pytest.fixture
def traced(runtime, tmp_path):
    """The workload run once with --trace: (CompletedProcess, trace records, trace path)."""
    path = tmp_path / "trace.jsonl"
    c = runtime.bundle(_config(runtime))
    cp = c.run("--trace", path, check=False)
    return cp, _records(path), path


def test_traced_run_behaves_as_untraced(runtime, traced):
    cp, records, _ = traced
    plain = runtime.bundle(_config(runtime)).run(check=False)
    assert (cp.returncode, cp.stdout, cp.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (0, OUTPUT, "")
    calls = _syscalls(records)
    # From the container process's execve on: nothing of pyrunc's init (no seccomp, no exec.fifo).
    assert calls[0]["syscall"] == "execve" and calls[0]["args"][1][:2] == ["sh", "-c"]
    assert not any(r["syscall"] in ("seccomp", "pivot_root", "mount") for r in calls)
    assert not any("exec.fifo" in json.dumps(r["args"]) for r in calls)
    names = {r["syscall"] for r in calls}
    # files, fork, exec, a socket of its own network namespace, a delivered signal
    assert {"mkdir", "rename", "unlink", "openat", "clone", "execve", "wait4", "socket", "connect", "bind",
            "recvmsg", "kill"} <= names, names
    paths = {a for r in calls for a in r["args"] if isinstance(a, str)}
    assert {"/tmp/d/f", "/tmp/d/g"} <= paths
    assert any(r.get("signal") == "SIGUSR1" for r in records)
    assert any(r["syscall"] == "connect" and r.get("errno") == "ECONNREFUSED" for r in calls)
    pids = {r["pid"] for r in calls}
    assert len(pids) >= 5  # the shell, its children and grandchildren were followed
    failed = [r for r in calls if "errno" in r]
    assert all(r["ret"] < 0 for r in failed)
    assert calls[-1]["syscall"] == "exit_group" and records[-1].get("exit") == 0


def test_recorded_profile_runs_the_workload_and_refuses_anything_else(runtime, traced, tmp_path):
    _, _, trace = traced
    cp = runtime.raw("seccomp", "record", trace)
    profile = json.loads(cp.stdout)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64"] if os.uname().machine == "x86_64" else True
    socket_rules = [r for r in profile["syscalls"] if r["names"] == ["socket"]]
    assert [r["args"][0]["value"] for r in socket_rules] == [1, 2, 16]  # AF_UNIX (glibc's nscd probe), AF_INET, AF_NETLINK: as seen
    clone = [r for r in profile["syscalls"] if "clone" in r["names"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"  # no namespaces made
    under = runtime.bundle(_config(runtime, seccomp=profile)).run(check=False)
    assert (under.returncode, under.stdout, under.stderr) == (0, OUTPUT, "")
    # runc's init makes its own calls after the filter's load: the profile lets runc start it too
    c = runtime.bundle(_config(runtime, seccomp=profile))
    runc_root = tmp_path / "runc-root"
    try:
        cp = execute(["runc", "--root", str(runc_root), "run", "--bundle", c.bundle, c.id])
        assert (cp.returncode, cp.stdout) == (0, OUTPUT), cp.stderr
    finally:
        execute(["runc", "--root", str(runc_root), "delete", "--force", c.id])
    # One syscall more (mknodat of mkfifo), with a trace to show where the EPERM came from.
    variant = WORKLOAD.replace("kill -USR1 $$", "mkfifo /tmp/p; kill -USR1 $$")
    path = tmp_path / "variant.jsonl"
    cp = runtime.bundle(_config(runtime, variant, seccomp=profile)).run("--trace", path, check=False)
    assert (cp.returncode, cp.stdout) == (1, "data\n"), cp.stderr
    assert "mkfifo: /tmp/p: Operation not permitted" in cp.stderr
    eperm = [r for r in _syscalls(_records(path)) if r.get("errno") == "EPERM"]
    assert [(r["syscall"], r["args"][1]) for r in eperm] == [("mknodat", "/tmp/p")]


def test_profile_out_merge_and_from_default(runtime, traced, tmp_path):
    _, _, first = traced
    out = tmp_path / "profile.json"
    c = runtime.bundle(_config(runtime, "mkfifo /tmp/p; echo ok"))
    cp = c.run("--seccomp-profile-out", out)
    assert cp.stdout == "ok\n"
    second = json.loads(out.read_text())
    assert "mknodat" in second["syscalls"][0]["names"] and "socket" not in json.dumps(second)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".pyrunc-trace-")]  # its own trace removed
    # --seccomp-profile-out with --trace keeps the trace: merge it with the first
    kept = tmp_path / "kept.jsonl"
    runtime.bundle(_config(runtime, "mkfifo /tmp/p; echo ok")).run("--seccomp-profile-out", out, "--trace", kept)
    merged = json.loads(runtime.raw("seccomp", "record", first, kept).stdout)
    names = merged["syscalls"][0]["names"]
    assert {"mknodat", "connect", "rename"} <= set(names)
    script = WORKLOAD.replace("kill -USR1 $$", "mkfifo /tmp/p; kill -USR1 $$")
    assert runtime.bundle(_config(runtime, script, seccomp=merged)).run(check=False).stdout == OUTPUT
    # --from-default: Docker's rules, resolved for this machine, plus nothing (the workload needs
    # nothing Docker's default refuses) -- then a workload that makes namespaces, which it refuses.
    default = json.loads(runtime.raw("seccomp", "record", "--from-default", first).stdout)
    assert "SCMP_ARCH_X86" in default["architectures"] if os.uname().machine == "x86_64" else True
    allowed = {n for r in default["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
               for n in r["names"]}
    assert {"connect", "mknodat", "chmod"} <= allowed and "mount" not in allowed and "unshare" not in allowed
    assert runtime.bundle(_config(runtime, script, seccomp=default)).run(check=False).stdout == OUTPUT


def test_trace_matches_strace_syscall_set(runtime, traced, tmp_path):
    """strace -f attached to the same created init, from the same execve: the same set of calls."""
    ours = {r["syscall"] for r in _syscalls(traced[1])}
    c = runtime.container(_config(runtime))
    out = tmp_path / "strace.out"
    strace = subprocess.Popen(["strace", "-f", "-qq", "-o", str(out), "-p", str(c.pid)], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _tracer_pid(c.pid) == strace.pid, what="strace to attach")
        c.start()
        strace.wait(timeout=60)
    finally:
        if strace.poll() is None:
            strace.kill()
            strace.wait()
    theirs, started = set(), False
    for line in out.read_text().splitlines():
        name = line.split(None, 1)[1].split("(", 1)[0] if " " in line else ""
        if name == "execve" and '"sh", "-c"' in line:
            started = True
        if started and name and name[0].isalpha() and not line.split(None, 1)[1].startswith("+++"):
            theirs.add(name)
    assert started
    assert ours == theirs, (ours - theirs, theirs - ours)


def _tracer_pid(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("TracerPid:"))


def test_create_trace_outlives_the_command_and_stops_cleanly_when_killed(runtime, tmp_path):
    path = tmp_path / "trace.jsonl"
    c = runtime.container(_config(runtime, "while :; do echo x > /tmp/x; read y < /tmp/x; done"),
                          create_args=("--trace", path))
    tracer = _tracer_pid(c.pid)
    assert tracer and tracer != os.getpid()
    c.start()
    wait_for(lambda: path.stat().st_size > 10000, what="records")
    os.kill(tracer, 9)
    wait_for(lambda: _tracer_pid(c.pid) == 0, what="the kernel to detach the container")
    time.sleep(0.2)
    assert c.status == "running"  # not killed with its tracer (no PTRACE_O_EXITKILL)
    size = path.stat().st_size
    time.sleep(0.2)
    assert path.stat().st_size == size
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()


def test_group_stop_pid1_and_exit_status_under_trace(runtime, tmp_path):
    """SIGSTOP keeps a traced process stopped until SIGCONT (PTRACE_LISTEN, not resumed by the
    tracer); pid 1 ignores a signal it has no handler for, as untraced; the exit status is kept."""
    script = ("(while :; do echo tick >> /tmp/t; sleep 0.05; done) & c=$!; sleep 0.3; kill -STOP $c; sleep 0.1; "
              "n1=$(wc -l < /tmp/t); sleep 0.4; n2=$(wc -l < /tmp/t); kill -CONT $c; sleep 0.3; "
              "n3=$(wc -l < /tmp/t); kill $c; [ $n1 = $n2 ] && [ $n3 -gt $n2 ] && echo stopped-then-continued; "
              "kill -TERM 1; echo pid1-survived; exit 7")
    results = []
    for args in ((), ("--trace", tmp_path / "t.jsonl")):
        cp = runtime.bundle(_config(runtime, script)).run(*args, check=False)
        results.append((cp.returncode, cp.stdout, cp.stderr))
    assert results[0] == results[1] == (7, "stopped-then-continued\npid1-survived\n", "")
    records = _records(tmp_path / "t.jsonl")
    assert any(r.get("signal") == "SIGSTOP" for r in records) and any(r.get("signal") == "SIGTERM" for r in records)
    assert records[-1].get("exit") == 7


def test_trace_refused_leaves_nothing(runtime, tmp_path):
    """Without CAP_SYS_PTRACE the attach fails: a clear message, the create undone."""
    c = runtime.bundle(_config(runtime, "echo never"))
    cp = execute(["capsh", "--drop=cap_sys_ptrace", "--", "-c",
                  " ".join(runtime.argv("run", "--bundle", c.bundle, "--trace", str(tmp_path / "t"), c.id))])
    assert cp.returncode == 1 and "never" not in cp.stdout
    assert "ptrace not permitted (tracing needs CAP_SYS_PTRACE" in cp.stderr, cp.stderr
    assert "Traceback" not in cp.stderr
    assert c.id not in runtime.list_ids() and not c.leftovers()


def test_trace_of_an_already_traced_process_is_refused(tmp_path):
    from pyrunc.trace.launch import TraceError, start
    sleeper = subprocess.Popen(["sleep", "30"])
    strace = subprocess.Popen(["strace", "-qq", "-o", "/dev/null", "-p", str(sleeper.pid)])
    try:
        wait_for(lambda: _tracer_pid(sleeper.pid) == strace.pid, what="strace to attach")
        with pytest.raises(TraceError, match=f"already traced by process {strace.pid}"):
            start(sleeper.pid, str(tmp_path / "t"))
        assert sleeper.poll() is None
    finally:
        for p in (strace, sleeper):
            p.kill()
            p.wait()


def test_exec_trace_follows_the_exec_process_only(runtime, tmp_path):
    c = runtime.container(_config(runtime, "sleep 100"))
    c.start()
    path = tmp_path / "exec.jsonl"
    cp = runtime.run("exec", "--trace", path, c.id, "sh", "-c", "echo in-exec; ls / >/dev/null; exit 4", check=False)
    assert (cp.returncode, cp.stdout, cp.stderr) == (4, "in-exec\n", "")
    records = _records(path)
    calls = _syscalls(records)
    assert calls[0]["syscall"] == "execve" and calls[0]["args"][1] == ["sh", "-c", "echo in-exec; ls / >/dev/null; exit 4"]
    assert not any(r["syscall"] == "setns" for r in calls)  # the intermediate's steps are pyrunc's
    assert {"getdents64", "clone", "wait4"} <= {r["syscall"] for r in calls}
    assert c.pid not in {r["pid"] for r in records}  # the container's init is not traced
    assert records[-1].get("exit") == 4
    # refusals: a clear message, exit 255 as for any failed exec, the container untouched
    cp = runtime.run("exec", "--trace", tmp_path / "no" / "such" / "dir", c.id, "true", check=False)
    assert cp.returncode == 255 and "open trace file" in cp.stderr and "Traceback" not in cp.stderr
    cp = execute(["capsh", "--drop=cap_sys_ptrace", "--", "-c",
                  " ".join(runtime.argv("exec", "--trace", str(tmp_path / "t2"), c.id, "echo", "never"))])
    assert cp.returncode == 255 and "ptrace not permitted" in cp.stderr and "never" not in cp.stdout, cp.stderr
    assert c.status == "running" and _tracer_pid(c.pid) == 0
    assert runtime.run("exec", c.id, "echo", "still-fine").stdout == "still-fine\n"
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()


def test_setuid_exec_under_trace_as_untraced(runtime, probe_binary, tmp_path):
    """A setuid-root program run by uid 1000 gets euid 0 traced as untraced: the tracer holds
    CAP_SYS_PTRACE over the container, so ptrace's exec rules keep the privilege."""
    from integration.helpers.probe import install
    results = []
    for args in ((), ("--trace", tmp_path / "t.jsonl")):
        config = _config(runtime, "/bin/suid ids")
        config["process"]["user"] = {"uid": 1000, "gid": 1000}
        config["process"]["noNewPrivileges"] = False
        c = runtime.bundle(config)
        install(probe_binary, c.rootfs, name="suid", mode=0o4755)
        cp = c.run(*args, check=False)
        results.append((cp.returncode, cp.stdout, cp.stderr))
    assert results[0] == results[1] == (0, "1000 0 1000 1000\n", "")
    assert any(r.get("syscall") == "execve" and r["args"][0] == "/bin/suid" for r in _records(tmp_path / "t.jsonl"))


def test_start_container_hook_is_not_traced(runtime, tmp_path):
    """A startContainer hook runs from init before its execve: pyrunc's, let go by the tracer."""
    config = _config(runtime, "echo main")
    config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-ran > /tmp/hook"]}]}
    config["process"]["args"] = ["sh", "-c", "cat /tmp/hook; echo main"]
    cp = runtime.bundle(config).run("--trace", tmp_path / "t.jsonl", check=False)
    assert (cp.returncode, cp.stdout) == (0, "hook-ran\nmain\n"), cp.stderr
    calls = _syscalls(_records(tmp_path / "t.jsonl"))
    assert calls[0]["args"][1] == ["sh", "-c", "cat /tmp/hook; echo main"]
    assert not any("hook-ran" in json.dumps(r["args"]) for r in calls)  # the hook's execve, its open


def test_profile_out_needs_a_foreground_run(runtime, tmp_path):
    c = runtime.bundle(_config(runtime, "true"))
    cp = c.run("-d", "--seccomp-profile-out", tmp_path / "p.json", check=False)
    assert cp.returncode == 1 and "needs a foreground run" in cp.stderr
    assert c.id not in runtime.list_ids() and not os.path.exists(tmp_path / "p.json")
