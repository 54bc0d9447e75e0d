"""pyctr's containers next to Docker's: the same scenarios through a private dockerd (Debian's
docker.io with runc, its own data-root, exec-root, pidfile and socket, no bridge or iptables) and
through pyctr (pyrunc under pyrunc-shim), comparing what users see: exit codes, output, logs, ps
columns, the inspect fields scripts read."""
import json
import os
import re
import shutil
import tempfile

import pytest

from integration.helpers.runtime import describe, execute
from integration.manager.containers import IMAGE, Pyctr, build_image_archive, on_pty, private_pyctr, wait_until
from integration.peers.test_docker import Dockerd

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
    base = tempfile.mkdtemp(prefix="pyctr-dkr-")
    d = None
    try:
        d = Dockerd(base)
        d("load", "-i", archive)
        yield d
    finally:
        problems = d.stop() if d else []
        shutil.rmtree(base, ignore_errors=True)
        if problems:
            pytest.fail("dockerd leftovers (removed): " + ", ".join(problems), pytrace=False)


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
