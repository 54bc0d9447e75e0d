"""exec: every flag, exit codes, users, capabilities, cgroup membership, stopped/paused containers."""
import errno
import json
import os
import subprocess

import pytest

from integration.helpers.runtime import wait_for


def _cap_eff(text):
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(text)


CAP_SYS_ADMIN = 21


@pytest.fixture
def running(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    return c


def test_exec_exit_code_and_output(runtime, running):
    cp = runtime.run("exec", running.id, "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert cp.returncode == 7
    assert cp.stdout == "out\n" and "err" in cp.stderr


def test_exec_killed_is_128_plus_signal(runtime, running):
    cp = runtime.run("exec", running.id, "sh", "-c", "kill -9 $$", check=False)
    assert cp.returncode == 137


def test_exec_failures_are_255(runtime, running):
    cp = runtime.fail("exec", running.id, "no-such-binary", code=255)
    assert "no-such-binary" in cp.stderr
    runtime.fail("exec", "no-such-container", "true", code=255)


def test_exec_joins_every_namespace_and_the_cgroup(runtime, running):
    init = running.pid
    out = runtime.run("exec", running.id, "sh", "-c",
                      "for n in ipc mnt net pid uts cgroup; do readlink /proc/self/ns/$n; done; "
                      "cat /proc/self/cgroup; hostname").stdout.splitlines()
    expected = [os.readlink(f"/proc/{init}/ns/{n}") for n in ("ipc", "mnt", "net", "pid", "uts", "cgroup")]
    assert out[:6] == expected
    assert out[-1] == running.config.get("hostname", "runc")


def test_exec_process_in_container_cgroup_on_host(runtime, running):
    c = running
    cp = runtime.run("exec", "-d", "--pid-file", os.path.join(runtime.tmp_path, "e.pid"), c.id, "sleep", "100")
    assert cp.returncode == 0
    pid = int(open(os.path.join(runtime.tmp_path, "e.pid")).read())
    with open(f"/proc/{pid}/cgroup") as f:
        mine = f.read()
    with open(f"/proc/{c.pid}/cgroup") as f:
        init = f.read()
    assert mine == init
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{c.pid}/ns/pid")


def test_exec_pid_is_in_container_pid_namespace(runtime, running):
    out = runtime.run("exec", running.id, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '").stdout
    pid, cmd = out.splitlines()
    assert int(pid) > 1 and cmd.strip() == "sleep 1000"


def test_exec_user_and_additional_gids(runtime, running):
    out = runtime.run("exec", "--user", "1000:1001", "-g", "10", "-g", "20", running.id,
                      "sh", "-c", "id -u; id -g; id -G").stdout.split("\n")
    assert out[0] == "1000" and out[1] == "1001"
    assert set(out[2].split()) >= {"1001", "10", "20"}
    assert runtime.run("exec", "-u", "33", running.id, "id", "-g").stdout.strip() == "0"


def test_exec_cwd_env(runtime, running):
    out = runtime.run("exec", "--cwd", "/tmp", "--env", "FOO=bar", "--env", "PATH=/bin", running.id,
                      "sh", "-c", "pwd; echo $FOO; echo $PATH").stdout
    assert out == "/tmp\nbar\n/bin\n"


def test_exec_caps_default_and_cap_flag(runtime, running):
    plain = _cap_eff(runtime.run("exec", running.id, "cat", "/proc/self/status").stdout)
    assert not plain & (1 << CAP_SYS_ADMIN)
    more = _cap_eff(runtime.run("exec", "--cap", "CAP_SYS_ADMIN", running.id, "cat", "/proc/self/status").stdout)
    assert more == plain | (1 << CAP_SYS_ADMIN)


def test_exec_no_new_privs(runtime, running):
    def nnp(*flags):
        out = runtime.run("exec", *flags, running.id, "grep", "NoNewPrivs", "/proc/self/status").stdout
        return out.split()[1]
    assert nnp("--no-new-privs") == "1"


def test_exec_process_json(runtime, running, tmp_path):
    process = {"args": ["sh", "-c", "echo $X; pwd; id -u; exit 3"], "cwd": "/etc", "env": ["X=from-json", "PATH=/bin"],
               "user": {"uid": 7, "gid": 7}, "terminal": False}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    cp = runtime.run("exec", "--process", str(path), running.id, check=False)
    assert cp.returncode == 3 and cp.stdout == "from-json\n/etc\n7\n"


def test_exec_process_json_rlimits(runtime, running, tmp_path):
    process = {"args": ["sh", "-c", "ulimit -n; ulimit -Hn"], "cwd": "/", "env": ["PATH=/bin"],
               "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    assert runtime.run("exec", "-p", str(path), running.id).stdout.split() == ["123", "456"]


def test_exec_process_json_invalid(runtime, running, tmp_path):
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": [], "cwd": "relative"}))
    runtime.fail("exec", "-p", str(path), running.id, code=255)


def test_exec_detach_pid_file(runtime, running, tmp_path):
    pid_file = tmp_path / "exec.pid"
    runtime.run("exec", "--detach", "--pid-file", str(pid_file), running.id, "sleep", "60")
    pid = int(pid_file.read_text())
    assert os.readlink(f"/proc/{pid}/root") is not None
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"60"]


def test_exec_preserve_fds(runtime, running, tmp_path):
    data = tmp_path / "data"
    data.write_text("preserved\n")
    # a shell opens the file as fd 3 and execs the runtime with it (fd 3 of pytest is its own)
    cp = subprocess.run(["sh", "-c", 'exec 3<"$0"; exec "$@"', str(data)]
                        + runtime.argv("exec", "--preserve-fds", "1", running.id, "sh", "-c", "cat <&3"),
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith("preserved\n")


def test_exec_sub_cgroup(runtime, running):
    from integration.helpers import mountinfo
    c = running
    made = []
    for mp, _, _ in mountinfo.cgroup_hierarchies():
        d = os.path.join(mp, c.cgroups_path.strip("/"), "sub")
        if os.path.isdir(os.path.dirname(d)):
            os.mkdir(d)
            made.append(d)
            for name in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset child starts empty
                if os.path.exists(os.path.join(d, name)):
                    with open(os.path.join(os.path.dirname(d), name)) as src, open(os.path.join(d, name), "w") as dst:
                        dst.write(src.read())
    try:
        out = runtime.run("exec", "--cgroup", "sub", c.id, "cat", "/proc/self/cgroup").stdout
        assert all(line.endswith("/sub") for line in out.splitlines() if line.split(":")[2] != "/"), out
        runtime.fail("exec", "--cgroup", "missing", c.id, "true", code=255)
    finally:
        for d in made:
            wait_for(lambda: _rmdir(d), what=f"rmdir {d}")


def _rmdir(d):
    try:
        os.rmdir(d)
        return True
    except OSError:
        return False


def test_exec_stopped_container_fails(runtime):
    c = runtime.container(["true"])
    c.start()
    c.wait_status("stopped")
    cp = runtime.fail("exec", c.id, "true", code=255)
    assert "stopped" in cp.stderr


def test_exec_paused_container(runtime, running):
    from integration.helpers import mountinfo
    freezer = [os.path.join(mp, running.cgroups_path.strip("/")) for mp, _, kind in
               mountinfo.cgroup_hierarchies() if "freezer" in kind.split(",")]
    assert freezer, "no freezer hierarchy"
    state = os.path.join(freezer[0], "freezer.state")
    with open(state, "w") as f:
        f.write("FROZEN")
    try:
        wait_for(lambda: open(state).read().strip() == "FROZEN", what="frozen")
        cp = runtime.fail("exec", running.id, "true", code=255)
        assert "paused" in cp.stderr
        with open(state, "w") as f:
            f.write("THAWED")
        runtime.run("exec", "--ignore-paused", running.id, "true")
    finally:
        with open(state, "w") as f:
            f.write("THAWED")


@pytest.mark.pyrunc_only
def test_exec_apparmor_and_label_rejected_without_lsm(runtime, running):
    runtime.fail("exec", "--apparmor", "x", running.id, "true", code=255)
    runtime.fail("exec", "--process-label", "x", running.id, "true", code=255)


def test_exec_tty_requires_console_socket_when_detached(runtime, running):
    runtime.fail("exec", "-t", "-d", running.id, "true", code=255)


@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_exec_gets_the_containers_seccomp_filter(runtime, no_new_privileges):
    """An exec'd process is filtered like init: mkdir fails with the configured errno, and
    /proc/self/status shows filter mode 2, with and without noNewPrivileges."""
    config = runtime.config(["sleep", "1000"])
    config["process"]["noNewPrivileges"] = no_new_privileges
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}],
    }
    c = runtime.container(config)
    c.start()
    cp = runtime.run("exec", c.id, "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/blocked",
                     check=False)
    assert "Seccomp:\t2" in cp.stdout, cp.stdout
    assert cp.returncode != 0
    assert "cross-device" in cp.stderr.lower() or "Invalid cross-device link" in cp.stderr, cp.stderr


def test_exec_process_unreachable_before_execve(runtime, probe_binary):
    """While the exec'd process is in the container but still runs the runtime's code (held by the
    test's tracer at the entry of its execve: integration/helpers/ptrace_hold.py), a process of the
    container cannot open its /proc/<pid>/exe, environ or fds: it is non-dumpable.

    The container has a user namespace that maps host root to its root, and CAP_SYS_PTRACE in it: the
    same uid (no uid change that would itself reset dumpability) and ptrace rights over the exec'd
    process's credentials would otherwise let it in; only non-dumpability says no."""
    from integration.helpers.probe import install
    from integration.helpers.ptrace_hold import run_holding_execve
    script = ("touch /shared/ready; while [ ! -s /shared/pid ]; do sleep 0.05; done; "
              "/bin/probe peek $(cat /shared/pid) > /shared/peek.tmp; /bin/probe peek $$ > /shared/control; "
              "mv /shared/peek.tmp /shared/peek; exec sleep 1000")
    config = runtime.config(["sh", "-c", script])
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind].append("CAP_SYS_PTRACE")
    c = runtime.container(config, create=False, shared=True)
    install(probe_binary, c.rootfs)
    c.create()
    c.start()
    c.wait_file("ready")
    pidns = os.readlink(f"/proc/{c.pid}/ns/pid")
    peek = {}

    def in_container(pid):  # not a helper of the runtime's own on the way (runc re-execs itself)
        return os.readlink(f"/proc/{pid}/ns/pid") == pidns

    def look_from_inside(pid):
        with open(f"/proc/{pid}/status") as f:
            inner = next(line.split()[-1] for line in f if line.startswith("NSpid:"))
        with open(c.path("pid.tmp"), "w") as f:
            f.write(inner)
        os.rename(c.path("pid.tmp"), c.path("pid"))
        c.wait_file("peek")
        peek.update(line.split("=", 1) for line in c.read("peek").split())

    with open(os.path.join(runtime.tmp_path, "exec.out"), "w+") as out:
        status = run_holding_execve(runtime.argv("exec", c.id, "/bin/probe", "ids"), look_from_inside,
                                    which=in_container, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.seek(0)
        assert (status, out.read()) == (0, "0 0 0 0\n")
    denied = {str(errno.EACCES), str(errno.EPERM)}
    for what in ("exe", "exe-link", "environ", "fd0-link", "fd0-open"):
        assert peek[what] in denied, f"{what} of the exec'd process was reachable: {peek}"
    control = dict(line.split("=", 1) for line in c.read("control").split())
    assert set(control.values()) == {"ok"}, f"the probe cannot even read a dumpable process: {control}"
