"""containerd drives the shim: `ctr run --runtime io.containerd.pyrunc.v2` with pyrunc and with
runc (runc options BinaryName, via --runtime-config-path) as the runtime under the shim; and the
same through the shim's lean mode (idle shims exec lean.py, containerd's requests wake them)."""
import os
import subprocess
import time

from integration.shim.conftest import IMAGE, PYRUNC
from integration.shim.shimclient import mapped_files, shim_mode, wait_mode

RT = "io.containerd.pyrunc.v2"


def _run(c, binary, cid, *cmd, detach=False, extra=()):
    args = ["run", "--runtime", RT, "--runtime-config-path", c.runtime_config(binary)]
    args += ["-d"] if detach else ["--rm"]
    return c.ctr(*args, *extra, IMAGE, cid, *cmd, check=False)


def _wait_status(c, cid, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        out = c.ctr("tasks", "ls", check=False).stdout
        for line in out.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid and f[2] == want:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"task {cid} never reached {want}:\n{out}")
        time.sleep(0.2)


def _cleanup(c, cid):
    c.ctr("tasks", "kill", "-s", "KILL", cid, check=False)
    deadline = time.monotonic() + 30
    while c.ctr("tasks", "delete", cid, check=False).returncode != 0 and time.monotonic() < deadline:
        if cid not in c.ctr("tasks", "ls", "-q", check=False).stdout.split():
            break
        time.sleep(0.3)
    c.ctr("containers", "delete", cid, check=False)


def test_run_output_and_exit_code(containerd, binary):
    cp = _run(containerd, binary, "run1", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert cp.returncode == 7, cp
    assert cp.stdout.splitlines() == ["out"]
    assert cp.stderr.strip() == "err"


def test_stdin_reaches_container(containerd, binary):
    args = ["run", "--rm", "--runtime", RT, "--runtime-config-path", containerd.runtime_config(binary),
            IMAGE, "stdin1", "sh", "-c", "wc -l; echo done"]
    cp = containerd.ctr(*args, input="a\nb\nc\n", check=False)
    assert cp.returncode == 0, cp
    assert cp.stdout.split() == ["3", "done"]


def test_kill_and_delete(containerd, binary):
    cid = "kill1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        containerd.ctr("tasks", "kill", "-s", "KILL", cid)  # pid 1 ignores an unhandled TERM
        _wait_status(containerd, cid, "STOPPED")
        containerd.ctr("tasks", "delete", cid)
        assert cid not in containerd.ctr("tasks", "ls", "-q").stdout.split()
        containerd.ctr("containers", "delete", cid)
    finally:
        _cleanup(containerd, cid)


def test_exec(containerd, binary):
    cid = "exec1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        cp = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo from-exec; exit 5",
                            check=False)
        assert cp.returncode == 5, cp
        assert cp.stdout.strip() == "from-exec"
    finally:
        _cleanup(containerd, cid)


def test_pause_resume(containerd, binary):
    cid = "pause1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        containerd.ctr("tasks", "pause", cid)
        _wait_status(containerd, cid, "PAUSED")
        containerd.ctr("tasks", "resume", cid)
        _wait_status(containerd, cid, "RUNNING")
    finally:
        _cleanup(containerd, cid)


def test_ps_lists_the_container_processes(containerd, binary):
    cid = "ps1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        out = containerd.ctr("tasks", "ps", cid).stdout.split()
        pids = [int(x) for x in out if x.isdigit()]
        assert len(pids) == 1
        with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:2] == [b"sleep", b"1000"]
    finally:
        _cleanup(containerd, cid)


def test_metrics(containerd, binary):
    """`ctr task metrics`: the runtime's `events --stats`, as containerd's cgroups v1 Metrics."""
    import json
    cid = "metrics1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sh", "-c", "dd if=/dev/zero of=/tmp/f bs=1k count=512; "
                    "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000",
                    detach=True, extra=("--memory-limit", str(64 << 20))).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        table = containerd.ctr("tasks", "metrics", cid).stdout
        rows = dict(line.split(None, 1) for line in table.splitlines() if line.startswith(("memory.", "cpuacct.",
                                                                                             "pids.")))
        assert int(rows["memory.usage_in_bytes"]) > 0
        assert int(rows["memory.limit_in_bytes"]) == 64 << 20
        assert int(rows["cpuacct.usage"]) > 0
        assert int(rows["pids.current"]) >= 1
        doc = json.loads(containerd.ctr("tasks", "metrics", "--format", "json", cid).stdout)
        data = doc.get("Data") or doc.get("data") or doc
        mem, cpu = data["memory"], data["cpu"]["usage"]
        assert mem["usage"]["max"] >= mem["usage"]["usage"] > 0 and mem["usage"]["limit"] == 64 << 20
        assert mem["total_cache"] + mem["total_rss"] > 0  # the 512 KiB file in /tmp, or the shell's pages
        assert len(cpu["per_cpu"]) == os.cpu_count() and sum(cpu["per_cpu"]) > 0
        assert "blkio" in data
    finally:
        _cleanup(containerd, cid)


def _wait_lean(c, cid):
    pid = c.shim_pid(cid)
    wait_mode(pid, "lean")
    assert not [m for m in mapped_files(pid) if "_upb" in m], "protobuf is loaded in the lean mode"
    return pid


def test_lean_shim_under_containerd(containerd, binary):
    """A detached task whose shim goes lean between containerd's requests: exec, pause, resume, kill,
    delete each wake it (same shim pid throughout), and exit codes and output arrive intact."""
    cid = "lean1-" + os.path.basename(binary)
    try:
        assert _run(containerd, binary, cid, "sleep", "1000", detach=True).returncode == 0
        _wait_status(containerd, cid, "RUNNING")
        pid = _wait_lean(containerd, cid)
        cp = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c",
                            "echo from-exec; echo to-err >&2; exit 5", check=False)
        assert (cp.returncode, cp.stdout, cp.stderr.strip()) == (5, "from-exec\n", "to-err"), cp
        assert _wait_lean(containerd, cid) == pid
        containerd.ctr("tasks", "pause", cid)
        _wait_status(containerd, cid, "PAUSED")
        _wait_lean(containerd, cid)
        _wait_status(containerd, cid, "PAUSED")  # `tasks ls` asks the lean shim: it wakes and knows
        containerd.ctr("tasks", "resume", cid)
        _wait_status(containerd, cid, "RUNNING")
        _wait_lean(containerd, cid)
        containerd.ctr("tasks", "kill", "-s", "KILL", cid)
        _wait_status(containerd, cid, "STOPPED")
        assert containerd.shim_pid(cid) == pid
        containerd.ctr("tasks", "delete", cid)
        containerd.ctr("containers", "delete", cid)
    finally:
        _cleanup(containerd, cid)


def test_lean_shim_answers_ctr_run(containerd, binary):
    """`ctr run --rm` waits (Wait pending in the shim) while the shim goes lean; the container reads
    its stdin and writes its output while lean, exits, and ctr gets both and the exit code."""
    cid = "lean2-" + os.path.basename(binary)
    args = ["run", "--rm", "--runtime", RT, "--runtime-config-path", containerd.runtime_config(binary),
            IMAGE, cid, "sh", "-c", "read a; echo \"got $a\"; read b; echo \"got $b\" >&2; exit 6"]
    p = subprocess.Popen(["ctr", "-a", containerd.address, "-n", "pyrunc-test"] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pid = containerd.shim_pid(cid)
                break
            except AssertionError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise
                time.sleep(0.1)
        wait_mode(pid, "lean")
        p.stdin.write(b"one\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"got one\n"
        assert shim_mode(pid) == "lean"  # the lean mode copied stdin in and stdout out
        p.stdin.write(b"two\n")
        p.stdin.close()
        out, err = p.stdout.read(), p.stderr.read()
        assert (p.wait(60), out, err) == (6, b"", b"got two\n")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            f.close()
        _cleanup(containerd, cid)


def test_no_pivot_sends_legacy_options(containerd):
    """`ctr run --no-pivot` on a runtime that is not io.containerd.runc.*: containerd's client sends
    the legacy containerd.linux.runc.CreateOptions (and no BinaryName: the shim's own pyrunc runs)."""
    root = "/run/containerd/pyrunc"
    existed = os.path.isdir(root)
    try:
        cp = containerd.ctr("run", "--rm", "--runtime", RT, "--no-pivot", IMAGE, "nopivot1",
                            "sh", "-c", "echo in-container", check=False)
        assert (cp.returncode, cp.stdout, cp.stderr) == (0, "in-container\n", ""), cp
    finally:
        _cleanup(containerd, "nopivot1")
        if not existed:  # the runtime's default root for this namespace, empty once the task is gone
            for d in (os.path.join(root, "pyrunc-test"), root):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def test_shim_cgroup_from_runtime_config(containerd, tmp_path):
    """ShimCgroup in the TOML of --runtime-config-path (runtimeoptions.v1, which is also what the CRI
    plugin sends): containerd hands the options to `start` on stdin and the shim joins that cgroup."""
    name = f"pyrunc-test-shimcg-{os.getpid()}"
    dirs = [os.path.join("/sys/fs/cgroup", h, name) for h in ("pids", "unified")]
    for d in dirs:
        os.mkdir(d)
    cid = "shimcg1"
    config = tmp_path / "opts.toml"
    config.write_text(f'BinaryName = "{PYRUNC}"\nRoot = "{containerd.runtime_root}"\nShimCgroup = "/{name}"\n')
    try:
        cp = containerd.ctr("run", "-d", "--runtime", RT, "--runtime-config-path", str(config), IMAGE, cid,
                            "sleep", "1000", check=False)
        assert cp.returncode == 0, cp
        with open(f"/proc/{containerd.shim_pid(cid)}/cgroup") as f:
            cgroups = f.read()
        assert f":pids:/{name}\n" in cgroups and f"0::/{name}\n" in cgroups, cgroups
    finally:
        _cleanup(containerd, cid)
        deadline = time.monotonic() + 30
        for d in dirs:
            while True:  # empty once the shim has exited after the delete
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{d} still populated"
                    time.sleep(0.1)
