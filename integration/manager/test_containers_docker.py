"""pyctr's containers next to Docker's: the same scenarios through a private dockerd (Debian's
docker.io with runc, its own data-root, exec-root, pidfile and socket, no bridge or iptables) and
through pyctr (pyrunc under pyrunc-shim), comparing what users see: exit codes, output, logs, ps
columns, the inspect fields scripts read."""
import json
import os
import re

import pytest

from integration.helpers.runtime import describe, execute
from integration.manager.containers import IMAGE, Pyctr, build_image_archive, on_pty, private_pyctr, wait_until
from integration.peers.test_docker import loaded_dockerd

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_image_archive(str(tmp_path_factory.mktemp("ctr-image")))


class DockerCli:
    name = "docker"

    def __init__(self, d):
        self.d = d

    def __call__(self, *args, check=False, timeout=120, input=None):
        cp = execute([self.d.client, "-H", f"unix://{self.d.sock}", *args], timeout=timeout, input=input,
                     env=dict(os.environ, DOCKER_CONFIG=os.path.join(self.d.base, "client")))
        assert not check or cp.returncode == 0, describe(cp)
        return cp

    def inspect(self, name):
        return self.d.inspect(name)

    def argv(self, *args):
        return [self.d.client, "-H", f"unix://{self.d.sock}", *args], \
            dict(os.environ, DOCKER_CONFIG=os.path.join(self.d.base, "client"))


@pytest.fixture(scope="module")
def dockerd(archive):
    with loaded_dockerd(archive, "pyctr-dkr-") as d:
        yield d


@pytest.fixture(scope="module")
def pyctr_store(archive):
    with private_pyctr(archive, "pyctr-ctr-") as p:
        yield p


@pytest.fixture(params=["docker", "pyctr"])
def tool(request):
    """Each scenario through both; the test's containers removed after it, and (pyctr) nothing left."""
    if request.param == "docker":
        t = DockerCli(request.getfixturevalue("dockerd"))
    else:
        t = request.getfixturevalue("pyctr_store")
    yield t
    ids = t("ps", "-aq").stdout.split()
    if ids:
        t("rm", "-f", *ids)
    if isinstance(t, Pyctr):
        problems = t.leftovers()
        assert not problems, problems


@pytest.fixture(scope="module")
def both(dockerd, pyctr_store):
    return DockerCli(dockerd), pyctr_store


@pytest.mark.parametrize("argv, code, out", [
    (["true"], 0, ""),
    (["sh", "-c", "exit 3"], 3, ""),
    (["sh", "-c", "echo out; echo err >&2"], 0, "out\n"),
    (["sh", "-c", "sleep 9 & kill -9 $!; wait $!"], 137, ""),
    (["nosuch-command"], 127, ""),
    (["/etc"], 126, ""),
    (["/etc/passwd"], 126, ""),
])
def test_run_rm_status_and_output(tool, argv, code, out):
    cp = tool("run", "--rm", "--network", "none", IMAGE, *argv)
    assert cp.returncode == code, cp
    assert cp.stdout == out
    if argv[0] == "sh" and "err" in argv[-1]:
        assert cp.stderr == "err\n"
    assert tool("ps", "-aq").stdout == ""  # --rm removed it


@pytest.mark.parametrize("argv", [
    ["run", "--rm", "no-such-image:1"],
    ["run", "--rm", "--bogus-flag", IMAGE, "true"],
    ["run", "--rm", "--restart", "always", IMAGE, "true"],
    ["run", "--rm", "-v", "relative:dir", IMAGE, "true"],
])
def test_own_errors_are_125(tool, argv):
    cp = tool(*argv[:1], "--network", "none", *argv[1:])
    assert cp.returncode == 125, cp
    assert tool("ps", "-aq").stdout == ""


def test_everything_after_the_image_is_the_command(tool):
    cp = tool("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "echo $0 -x", "-t")
    assert (cp.returncode, cp.stdout) == (0, "-t -x\n"), cp


def test_name_clash(tool):
    name = f"clash-{os.getpid()}"
    tool("create", "--network", "none", "--name", name, IMAGE, "true", check=True)
    for verb, code in (("create", 1), ("run", 125)):  # Docker's create fails with 1, run with 125
        cp = tool(verb, "--network", "none", "--name", name, IMAGE, "true")
        assert cp.returncode == code, cp
        assert f'Conflict. The container name "/{name}" is already in use by container' in cp.stderr
    cp = tool("run", "-d", "-a", "stdout", "--network", "none", IMAGE, "true")
    assert cp.returncode == 1 and "Conflicting options: -a and -d" in cp.stderr, cp
    cp = tool("rename", name, "bad/name")
    assert cp.returncode != 0


def _ps_line(tool, name, *flags):
    lines = tool("ps", *flags).stdout.splitlines()
    return lines[0], next((ln for ln in lines[1:] if ln.rstrip().endswith(name)), None)


def test_detached_workflow(tool):
    """run -d, ps, logs, exec, inspect, stop, start, restart, kill, wait, rm: what users see."""
    name = f"web-{os.getpid()}"
    script = "trap 'echo bye; exit 0' TERM; echo hello; echo oops >&2; while :; do sleep 0.1; done"
    cp = tool("run", "-d", "--network", "none", "--name", name, "-e", "A=1", "-w", "/work", "-l", "k=v",
              IMAGE, "sh", "-c", script)
    assert cp.returncode == 0, cp
    cid = cp.stdout.strip()
    assert HEX64.match(cid), cp.stdout
    wait_until(lambda: "hello" in tool("logs", name).stdout, what="the first line")
    head, row = _ps_line(tool, name)
    assert head.startswith("CONTAINER ID   IMAGE") and head.endswith("   PORTS     NAMES"), head
    assert re.split(r"\s{2,}", head) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    cols = re.split(r"\s{2,}", row.strip())
    assert cols[0] == cid[:12] and cols[1] == IMAGE and cols[2] == '"sh -c \'trap \'echo b…"'
    assert cols[4].startswith("Up ") and cols[-1] == name, row
    assert tool("ps", "-q").stdout.split() == [cid[:12]]
    cp = tool("ps", "--format", "{{.Names}}|{{.State}}|{{.Image}}|{{.Labels}}")
    assert cp.stdout == f"{name}|running|{IMAGE}|k=v\n", cp
    cp = tool("ps", "--format", "table {{.Names}}\t{{.State}}")
    assert cp.stdout.splitlines()[0].split() == ["NAMES", "STATE"], cp
    cp = tool("inspect", "-f", "{{.Name}} {{.State.Status}} {{.State.Running}} {{json .Config.Cmd}} {{.Config.Labels.k}}",
              name)
    assert cp.stdout == f'/{name} running true ["sh","-c",{json.dumps(script)}] v\n', cp
    cp = tool("logs", name)
    assert (cp.stdout, cp.stderr) == ("hello\n", "oops\n")
    cp = tool("logs", "--tail", "1", name)  # stdout and stderr entries may be in either order
    assert cp.stdout + cp.stderr in ("hello\n", "oops\n"), cp
    ts = tool("logs", "-t", name).stdout
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello\n$", ts), ts
    cp = tool("exec", name, "sh", "-c", "echo $A $PWD $(hostname); exit 4")
    assert (cp.returncode, cp.stdout) == (4, f"1 /work {cid[:12]}\n"), cp
    assert tool("exec", name, "nosuch").returncode in (126, 127)
    assert tool("exec", "-u", "nobody", name, "id", "-u").stdout.strip() == "65534"
    info = tool.inspect(name)
    assert info["Id"] == cid and info["Name"] == "/" + name
    st = info["State"]
    assert (st["Status"], st["Running"], st["Paused"], st["ExitCode"]) == ("running", True, False, 0)
    assert st["Pid"] > 0 and info["RestartCount"] == 0
    assert info["Config"]["Cmd"] == ["sh", "-c", script] and info["Config"]["Hostname"] == cid[:12]
    assert "A=1" in info["Config"]["Env"] and info["Config"]["Labels"] == {"k": "v"}
    assert info["Config"]["WorkingDir"] == "/work" and info["Config"]["Image"] == IMAGE
    assert info["Image"].startswith("sha256:") and info["Path"] == "sh"
    assert info["HostConfig"]["NetworkMode"] == "none"
    assert tool("rm", name).returncode == 1  # running, no -f
    assert tool("pause", name).returncode == 0
    assert tool.inspect(name)["State"]["Status"] == "paused"
    assert tool("unpause", name).returncode == 0
    cp = tool("stop", "-t", "5", name)
    assert (cp.returncode, cp.stdout) == (0, name + "\n"), cp
    info = tool.inspect(name)
    assert (info["State"]["Status"], info["State"]["ExitCode"], info["State"]["Running"]) == ("exited", 0, False)
    assert tool("logs", name).stdout == "hello\nbye\n"
    assert _ps_line(tool, name)[1] is None
    assert re.search(r"Exited \(0\) .* ago", _ps_line(tool, name, "-a")[1])
    assert tool("wait", name).stdout == "0\n"
    assert tool("start", name).returncode == 0
    assert tool.inspect(name)["State"]["Running"]
    assert tool("kill", "-s", "KILL", name).returncode == 0
    assert tool("wait", name).stdout == "137\n"
    assert tool("kill", name).returncode == 1  # not running
    cp = tool("rm", name)
    assert (cp.returncode, cp.stdout) == (0, name + "\n"), cp
    assert tool("inspect", name).returncode == 1
    assert tool("logs", name).returncode == 1


def test_rm_force_running_and_prefix_lookup(tool):
    cid = tool("run", "-d", "--network", "none", IMAGE, "sleep", "60", check=True).stdout.strip()
    assert tool("exec", cid[:8], "true").returncode == 0
    cp = tool("rm", "-f", cid[:10])
    assert cp.returncode == 0, cp
    assert tool("ps", "-aq").stdout == ""


def test_restart_policy_on_failure(tool):
    name = f"flaky-{os.getpid()}"
    tool("run", "-d", "--network", "none", "--name", name, "--restart", "on-failure:2", IMAGE,
         "sh", "-c", "exit 5", check=True)

    def done():
        i = tool.inspect(name)
        return i if i["State"]["Status"] == "exited" and i["RestartCount"] == 2 else None
    info = wait_until(done, 30, "two restarts")
    assert info["State"]["ExitCode"] == 5
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_foreground_stdin_and_env_file(tool, tmp_path):
    env = tmp_path / "env"
    env.write_text("# comment\nB=2 # not a comment\nC\n")
    cp = tool("run", "--rm", "-i", "--network", "none", "--env-file", str(env), IMAGE,
              "sh", "-c", "cat; echo \"$B\"", input="from stdin\n")
    assert (cp.returncode, cp.stdout) == (0, "from stdin\n2 # not a comment\n"), cp


def test_detached_rm_removes_at_exit(tool):
    """run -d --rm: the container is removed when it exits, with no pyctr left running (the
    monitor's exit command does it)."""
    cid = tool("run", "-d", "--rm", "--network", "none", IMAGE, "sleep", "0.3", check=True).stdout.strip()
    wait_until(lambda: cid[:12] not in tool("ps", "-aq").stdout, 30, "the removal")


def test_interactive_tty_detach_and_attach(tool):
    """run -it on a real pty: a terminal inside, ctrl-p ctrl-q detaches (status 0, the container
    runs on, its stdin still open), attach types into it again, and returns its status."""
    name = f"tty-{os.getpid()}"
    argv, env = tool.argv("run", "-it", "--network", "none", "--name", name, IMAGE, "sh")
    out, status = on_pty(argv, env, [("#", b"tty; echo $((6*7))\r"), ("42", b"\x10\x11")])
    assert status == 0 and "/dev/pts/0" in out, out
    assert tool.inspect(name)["State"]["Running"]
    argv, env = tool.argv("attach", name)
    out, status = on_pty(argv, env, [(None, b"echo again-$((1+1))\r"), ("again-2", b"exit 3\r")])
    assert status == 3, out
    assert tool.inspect(name)["State"]["ExitCode"] == 3


SAME = [
    ([], ["sh", "-c", "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status"]),
    (["--cap-drop", "CHOWN", "--cap-add", "SYS_ADMIN"], ["sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"]),
    (["--privileged"], ["sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status; grep -c . /proc/kcore >/dev/null && echo k"]),
    (["--cap-drop", "CHOWN"], ["sh", "-c", "chown 1 /tmp; echo $?"]),
    (["-u", "1000:1000", "-w", "/made/here"], ["sh", "-c", "id; pwd; ls -ld /made/here | cut -c1-10"]),
    (["-u", "nobody"], ["id"]),
    ([], ["sh", "-c", "id; env"]),
    (["-t"], ["sh", "-c", "env; tty"]),
    (["--hostname", "box", "-e", "X=1", "--entrypoint", "env"], []),
    (["--read-only"], ["sh", "-c", "touch /x 2>/dev/null; echo $?; touch /tmp/x 2>/dev/null; echo $?"]),
    (["--read-only", "--tmpfs", "/t:size=1m"], ["sh", "-c", "touch /t/x; echo $?; grep ' /t ' /proc/mounts | cut -d' ' -f3"]),
    (["-m", "64m", "--pids-limit", "20", "--cpus", "0.5"],
     ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
                  "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"]),
    (["--ulimit", "nofile=100:200"], ["sh", "-c", "ulimit -n; ulimit -Hn"]),
    ([], ["sh", "-c", "cat /proc/kcore 2>&1 | head -c 0; wc -c < /proc/kcore; ls /sys/class/net; cat /etc/hostname | wc -c"]),
    ([], ["sh", "-c", "grep -E ' / | /proc | /sys | /dev ' /proc/mounts | cut -d' ' -f2,3 | sort"]),
    (["--init"], ["sh", "-c", "cat /proc/1/comm"]),
    (["--stop-signal", "USR1", "--label", "a=b"], ["true"]),
    ([], ["sh", "-c", "unshare -U true 2>/dev/null; echo $?"]),
    (["--security-opt", "seccomp=unconfined", "--cap-add", "SYS_ADMIN"], ["sh", "-c", "unshare -U true; echo $?"]),
    (["--network", "host"], ["sh", "-c", "ls /sys/class/net | grep -c lo"]),
]


@pytest.mark.parametrize("flags, command", SAME, ids=[" ".join(f) or "defaults" + str(i) for i, (f, _) in enumerate(SAME)])
def test_flags_do_what_dockers_do(both, flags, command):
    """run --rm with the flag through docker (runc) and pyctr (pyrunc): the same output and status."""
    docker, pyctr = both
    argv = ["run", "--rm", *flags, *(["--network", "none"] if "--network" not in flags else []), IMAGE, *command]
    d, p = docker(*argv), pyctr(*argv)

    def same(text):  # the container's id differs
        return re.sub(r"HOSTNAME=[0-9a-f]{12}", "HOSTNAME=<id>", text)
    assert (p.returncode, same(p.stdout)) == (d.returncode, same(d.stdout)), f"docker: {d}\npyctr: {p}"


def test_logs_follow_since_until(tool):
    name = f"logs-{os.getpid()}"
    tool("run", "-d", "--network", "none", "--name", name, IMAGE, "sh", "-c",
         "echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c", check=True)
    cp = tool("logs", "-f", name, timeout=30)  # returns when the container exits
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "a\nc\n", "b\n"), cp
    stamps = [line.split(" ", 1)[0] for line in tool("logs", "-t", name).stdout.splitlines()]
    assert len(stamps) == 2
    assert tool("logs", "--since", stamps[1], name).stdout == "c\n"
    cp = tool("logs", "--until", stamps[0], name)
    assert (cp.stdout, cp.stderr) == ("a\n", ""), cp
    assert tool("logs", "--tail", "0", name).stdout == ""
    assert tool("logs", "--since", "1h", name).stdout == "a\nc\n"


def test_wait_blocks_and_stop_signal(tool):
    name = f"sig-{os.getpid()}"
    tool("run", "-d", "--network", "none", "--name", name, "--stop-signal", "USR1", IMAGE, "sh", "-c",
         "trap 'exit 9' USR1; while :; do sleep 0.1; done", check=True)
    import subprocess
    argv, env = tool.argv("wait", name)
    waiter = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert tool("stop", name).returncode == 0
        out, _ = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
        waiter.wait()
    assert out == "9\n"
    info = tool.inspect(name)
    assert (info["State"]["ExitCode"], info["Config"]["StopSignal"]) == (9, "USR1")


def test_restart_always_until_stopped(tool):
    name = f"always-{os.getpid()}"
    tool("run", "-d", "--network", "none", "--name", name, "--restart", "always", IMAGE, "sh", "-c",
         "sleep 0.2; exit 1", check=True)
    wait_until(lambda: tool.inspect(name)["RestartCount"] >= 2, 30, "two restarts")
    assert tool("stop", "-t", "1", name).returncode == 0
    count = tool.inspect(name)["RestartCount"]
    import time
    time.sleep(0.7)  # more than the restart delays so far (100, 200 ms...)
    info = tool.inspect(name)
    assert (info["State"]["Running"], info["RestartCount"]) == (False, count), info["State"]


def test_top_stats_and_events(tool):
    name = f"obs-{os.getpid()}"
    t0 = tool("run", "--rm", "--network", "none", IMAGE, "date", "+%s").stdout.strip()
    tool("run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "30", check=True)
    cp = tool("top", name)
    assert cp.returncode == 0 and cp.stdout.splitlines()[0].split()[:3] == ["UID", "PID", "PPID"], cp
    assert "sleep 30" in cp.stdout
    cp = tool("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name)
    assert cp.stdout == f"{name} 1\n", cp
    assert tool("port", name).stdout == ""
    tool("kill", "-s", "TERM", name)  # sleep as pid 1 ignores it
    tool("rm", "-f", name, check=True)
    import time
    until = f"{time.time() + 0.2:.3f}"
    time.sleep(0.3)
    cp = tool("events", "--since", t0, "--until", until, "--filter", f"container={name}", "--format",
              "{{.Action}}")
    assert cp.stdout.split() == ["create", "start", "top", "kill", "kill", "die", "destroy"], cp


def test_exec_details(tool):
    name = f"exec-{os.getpid()}"
    tool("run", "-d", "--network", "none", "--name", name, "-e", "A=img", "-w", "/w", IMAGE, "sleep", "60",
         check=True)
    cp = tool("exec", "-e", "B=2", "-w", "/tmp", "-u", "nobody", name, "sh", "-c", "echo $A $B $PWD $(id -u)")
    assert (cp.returncode, cp.stdout) == (0, "img 2 /tmp 65534\n"), cp
    cp = tool("exec", "-i", name, "cat", input="through stdin\n")
    assert cp.stdout == "through stdin\n", cp
    assert tool("exec", name, "cat", input="not read\n").stdout == ""  # no -i: no stdin
    assert tool("exec", "-d", name, "sh", "-c", "echo detached > /tmp/d").returncode == 0
    wait_until(lambda: tool("exec", name, "cat", "/tmp/d").stdout == "detached\n", 10, "the detached exec")


def test_exec_status_codes_match(both):
    docker, pyctr = both
    codes = []
    for tool in (docker, pyctr):
        name = f"codes-{os.getpid()}"
        tool("run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "60", check=True)
        try:
            codes.append([tool("exec", name, *argv).returncode for argv in
                          (["nosuch"], ["/etc/passwd"], ["/etc"], ["sh", "-c", "exit 42"])])
            tool("pause", name, check=True)
            codes[-1].append(tool("exec", name, "true").returncode)
            tool("unpause", name, check=True)
            tool("stop", "-t", "0", name, check=True)
            codes[-1].append(tool("exec", name, "true").returncode)
        finally:
            tool("rm", "-f", name)
    assert codes[0] == codes[1], codes


def test_ps_filters_and_prune(tool):
    pid = os.getpid()
    tool("run", "--network", "none", "--name", f"f-ok-{pid}", "-l", "role=a", IMAGE, "true", check=True)
    tool("run", "--network", "none", "--name", f"f-bad-{pid}", "-l", "role=b", IMAGE, "sh", "-c", "exit 3")
    tool("create", "--network", "none", "--name", f"f-new-{pid}", IMAGE, "true", check=True)
    tool("run", "-d", "--network", "none", "--name", f"f-up-{pid}", IMAGE, "sleep", "60", check=True)

    def names(*flags):
        return tool("ps", "-a", "--format", "{{.Names}}", *flags).stdout.split()
    assert names() == [f"f-up-{pid}", f"f-new-{pid}", f"f-bad-{pid}", f"f-ok-{pid}"]  # newest first
    assert names("--filter", "status=exited") == [f"f-bad-{pid}", f"f-ok-{pid}"]
    assert names("--filter", "exited=3") == [f"f-bad-{pid}"]
    assert names("--filter", "label=role=a") == [f"f-ok-{pid}"]
    assert names("--filter", "label=role") == [f"f-bad-{pid}", f"f-ok-{pid}"]
    assert names("--filter", "status=created", "--filter", "status=running") == [f"f-up-{pid}", f"f-new-{pid}"]
    assert names("--filter", "name=f-b") == [f"f-bad-{pid}"]
    assert names("--filter", f"ancestor={IMAGE}", "-n", "2") == [f"f-up-{pid}", f"f-new-{pid}"]
    assert tool("ps", "-l", "--format", "{{.Names}} {{.State}}").stdout == f"f-up-{pid} running\n"
    assert len(tool("ps", "-q", "--no-trunc").stdout.strip()) == 64
    assert tool("ps", "--filter", "bogus=1").returncode != 0
    cp = tool("container", "prune", "-f")
    assert cp.returncode == 0 and cp.stdout.startswith("Deleted Containers:\n"), cp
    assert names() == [f"f-up-{pid}"]
    assert tool("container", "ls", "-q").stdout.split() == tool("ps", "-q").stdout.split()


CONFIG_FIELDS = ["Hostname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
                 "Env", "Cmd", "Image", "WorkingDir", "Entrypoint", "Labels", "StopSignal"]
HOST_FIELDS = ["RestartPolicy", "AutoRemove", "Privileged", "ReadonlyRootfs", "NetworkMode", "Memory", "NanoCpus",
               "CapAdd", "CapDrop", "Binds"]


def _shape(info):
    """What scripts read from `inspect`, with what differs by nature (ids, times, pids) masked."""
    cfg = {k: info["Config"].get(k) for k in CONFIG_FIELDS}
    cfg["Hostname"] = len(cfg["Hostname"])
    cfg["Env"] = [e for e in cfg["Env"] if not e.startswith("HOSTNAME=")]
    st = dict(info["State"])
    for k in ("StartedAt", "FinishedAt"):
        st[k] = st[k].startswith("0001-")
    st["Pid"] = st["Pid"] > 0
    return {"keys": sorted(info), "state_keys": sorted(info["State"]), "State": st, "Config": cfg,
            "HostConfig": {k: info["HostConfig"].get(k) for k in HOST_FIELDS}, "Name": info["Name"],
            "Path": info["Path"], "Args": info["Args"], "RestartCount": info["RestartCount"],
            "Mounts": [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in info["Mounts"]],
            "Image": info["Image"].startswith("sha256:")}


def test_inspect_matches_docker(both, tmp_path):
    docker, pyctr = both
    src = str(tmp_path)
    shapes = []
    for tool in (docker, pyctr):
        name = f"insp-{os.getpid()}"
        created = ["create", "--network", "none", "--name", name, "-t", "-i", "-e", "K=V", "-u", "1:2",
                   "-w", "/srv", "-l", "x=y", "--read-only", "--cap-add", "NET_ADMIN",
                   "--cap-drop", "MKNOD", "-m", "32m", "--cpus", "0.25", "--stop-signal", "SIGINT",
                   "-v", f"{src}:/data:ro", "--entrypoint", "sh", IMAGE, "-c", "exit 4"]
        try:
            tool(*created, check=True)
            one = _shape(tool.inspect(name))
            tool("start", name, check=True)
            assert tool("wait", name).stdout == "4\n"
            two = _shape(tool.inspect(name))
            shapes.append((one, two))
        finally:
            tool("rm", "-f", name)
    for d, p in zip(shapes[0], shapes[1]):
        for key in d:
            assert p[key] == d[key], f"{key}: docker {d[key]!r}, pyctr {p[key]!r}"


def test_network_container_joins_the_other_netns(tool):
    name = f"net-{os.getpid()}"
    tool("run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "60", check=True)
    theirs = tool("exec", name, "readlink", "/proc/self/ns/net").stdout
    mine = tool("run", "--rm", "--network", f"container:{name}", IMAGE, "readlink", "/proc/self/ns/net").stdout
    other = tool("run", "--rm", "--network", "none", IMAGE, "readlink", "/proc/self/ns/net").stdout
    assert theirs.startswith("net:[") and mine == theirs and other != theirs


def test_runtime_by_path(pyctr_store):
    """--runtime takes any runc-compatible binary (here runc itself) for run, exec and stop."""
    p = pyctr_store
    cid = p("run", "-d", "--runtime", "/usr/sbin/runc", IMAGE, "sleep", "60", check=True).stdout.strip()
    try:
        assert p("exec", cid, "echo", "via runc").stdout == "via runc\n"
        assert p.inspect(cid)["HostConfig"]["Runtime"] == "/usr/sbin/runc"
        assert p("stop", "-t", "0", cid).returncode == 0
        assert p("start", cid).returncode == 0
    finally:
        p("rm", "-f", cid)
    cp = p("run", "--rm", "--runtime", "/nonexistent/runc", IMAGE, "true")
    assert cp.returncode == 125 and "/nonexistent/runc" in cp.stderr, cp
    assert p("ps", "-aq").stdout == ""
