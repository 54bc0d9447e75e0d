"""cp, diff, commit, export and volumes, the same scenarios through a private dockerd and through
pyctr, comparing what users see; plus what only pyctr is checked for here (symlink escapes refused
for running and stopped containers, nothing left behind)."""
import io
import os
import tarfile
import uuid

import pytest

from integration.manager.containers import IMAGE, Pyctr
from integration.manager.test_containers_docker import DockerCli, archive, dockerd, pyctr_store  # noqa: F401

CHANGES = ("echo x > /etc/motd; echo y >> /etc/passwd; rm /bin/ls; mkdir -p /new/sub; touch /new/sub/f; "
           "rm -rf /var; mkdir /var; touch /var/z; ln -s /etc /lnk; ln -s / /escape; mkdir -p /root/.cache")


@pytest.fixture(params=["docker", "pyctr"])
def tool(request):
    t = DockerCli(request.getfixturevalue("dockerd")) if request.param == "docker" else \
        request.getfixturevalue("pyctr_store")
    made = []
    t.made = made
    yield t
    ids = t("ps", "-aq").stdout.split()
    if ids:
        t("rm", "-f", "-v", *ids)
    for image in made:
        t("rmi", image)
    vols = t("volume", "ls", "-q", "--filter", "label=test=h15").stdout.split()
    anon = t("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    if vols or anon:
        t("volume", "rm", "-f", *(vols + anon))
    if isinstance(t, Pyctr):
        problems = t.leftovers()
        assert not problems, problems


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _changed(tool):
    name = _name("fs")
    cp = tool("run", "--network", "none", "--name", name, IMAGE, "sh", "-c", CHANGES)
    assert cp.returncode == 0, cp
    return name


def test_diff(tool):
    name = _changed(tool)
    cp = tool("diff", name)
    assert cp.returncode == 0, cp
    # Docker prints its changes in map order: compare them as sets
    assert sorted(cp.stdout.splitlines()) == sorted([
        "C /bin", "D /bin/ls", "C /etc", "A /etc/motd", "C /etc/passwd", "A /escape", "A /lnk", "A /new",
        "A /new/sub", "A /new/sub/f", "C /root", "A /root/.cache", "C /var", "A /var/z"]), cp.stdout
    assert tool("diff", "nosuch").returncode == 1


def test_cp_rules(tool, tmp_path):
    name = _changed(tool)
    out = tmp_path / "out"
    os.makedirs(out)
    (out / "existing").write_text("old")
    os.makedirs(out / "dir")

    def cp(*args):
        return tool("cp", *args).returncode
    assert cp(f"{name}:/etc/motd", str(out / "newfile")) == 0
    assert (out / "newfile").read_text() == "x\n"
    assert cp(f"{name}:/etc/motd", str(out / "existing")) == 0 and (out / "existing").read_text() == "x\n"
    assert cp(f"{name}:/etc/motd", str(out / "dir")) == 0 and (out / "dir" / "motd").read_text() == "x\n"
    assert cp(f"{name}:/new", str(out / "copy")) == 0 and os.path.exists(out / "copy" / "sub" / "f")
    assert cp(f"{name}:/new", str(out / "dir")) == 0 and os.path.exists(out / "dir" / "new" / "sub" / "f")
    assert cp(f"{name}:/new/.", str(out / "dir")) == 0 and os.path.exists(out / "dir" / "sub" / "f")
    assert cp(f"{name}:/lnk", str(out / "lnk")) == 0 and os.readlink(out / "lnk") == "/etc"
    assert cp("-L", f"{name}:/lnk", str(out / "lnkf")) == 0 and os.path.isfile(out / "lnkf" / "passwd")
    assert cp(f"{name}:/nosuch", str(out)) == 1
    assert cp(f"{name}:/etc/motd/", str(out)) == 1
    assert cp(f"{name}:/etc/motd", str(out / "missing") + "/") == 1
    assert cp(f"{name}:/etc/motd", str(out / "missing" / "x")) == 1
    assert cp(f"{name}:/new", str(out / "existing")) == 1
    # owners as Docker 20.10 does them (not as its docs say): kept into the container, the
    # caller's out of it, -a or not
    src = tmp_path / "src"
    src.write_text("from host")
    os.chown(src, 1234, 4321)
    assert cp(str(src), f"{name}:/new/") == 0
    assert cp("-a", str(src), f"{name}:/new/kept") == 0
    assert cp(str(src), f"{name}:/nosuchdir/") == 1
    assert cp(str(tmp_path / "nosuch"), f"{name}:/") == 1
    assert cp(f"{name}:/new/src", str(out / "back")) == 0 and (out / "back").read_text() == "from host"
    assert (os.stat(out / "back").st_uid, os.stat(out / "back").st_gid) == (0, 0)
    assert cp("-a", f"{name}:/new/kept", str(out / "kept")) == 0
    assert (os.stat(out / "kept").st_uid, os.stat(out / "kept").st_gid) == (0, 0)
    import subprocess
    listing = subprocess.run(_argv(tool) + ["cp", f"{name}:/new/src", "-"], capture_output=True, timeout=60)
    with tarfile.open(fileobj=io.BytesIO(listing.stdout)) as tf:
        assert [(m.uid, m.gid) for m in tf] == [(1234, 4321)]


def test_cp_tar_streams(tool):
    name = _changed(tool)
    import subprocess
    base = _argv(tool)
    out = subprocess.run(base + ["cp", f"{name}:/new", "-"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tf:
        assert sorted(m.name for m in tf) == ["new", "new/sub", "new/sub/f"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("streamed")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    cp = subprocess.run(base + ["cp", "-", f"{name}:/root"], input=buf.getvalue(), capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    cp = subprocess.run(base + ["cp", "-", f"{name}:/etc/motd"], input=buf.getvalue(), capture_output=True, timeout=60)
    assert cp.returncode == 1 and b"must be a directory" in cp.stderr
    assert "A /root/streamed" in tool("diff", name).stdout


def _argv(tool):
    from integration.manager.conftest import PYCTR
    if isinstance(tool, Pyctr):
        return [PYCTR, "--root", tool.root, "--runroot", tool.runroot]
    return [tool.d.client, "-H", f"unix://{tool.d.sock}"]


@pytest.mark.parametrize("running", [False, True])
def test_cp_never_escapes_through_symlinks(tool, tmp_path, running):
    """/escape -> / and /rel -> ../../.. inside the container: a copy through them stays inside."""
    name = _name("esc")
    script = "ln -s / /escape; ln -s ../../../../.. /rel; mkdir /dst; ln -s /etc /dst/sub; echo s > /tmp/secret"
    argv = ["run", "--network", "none", "--name", name] + (["-d"] if running else [])
    cp = tool(*argv, IMAGE, "sh", "-c", script + ("; sleep 600" if running else ""))
    assert cp.returncode == 0, cp
    if running:
        from integration.manager.containers import wait_until
        wait_until(lambda: tool("exec", name, "test", "-e", "/tmp/secret").returncode == 0, what="setup")
    marker = f"pyctr-escape-{uuid.uuid4().hex[:8]}"
    host = tmp_path / marker
    host.write_text("host")
    assert tool("cp", str(host), f"{name}:/escape/tmp/").returncode == 0
    assert tool("cp", str(host), f"{name}:/rel/tmp/{marker}-2").returncode == 0
    assert not os.path.exists(f"/tmp/{marker}") and not os.path.exists(f"/tmp/{marker}-2")
    assert tool("cp", f"{name}:/rel/tmp/secret", str(tmp_path / "got")).returncode == 0
    assert (tmp_path / "got").read_text() == "s\n"
    changes = tool("diff", name).stdout.splitlines()
    assert f"A /tmp/{marker}" in changes and f"A /tmp/{marker}-2" in changes
    if isinstance(tool, Pyctr):
        # a directory copied onto a symlink in the container: refused, never written through
        d = tmp_path / "d"
        os.makedirs(d / "sub")
        (d / "sub" / "x").write_text("x")
        cp = tool("cp", f"{d}/.", f"{name}:/dst")
        assert cp.returncode == 1 and "symbolic link" in cp.stderr, cp
        assert not os.path.exists("/etc/x")


def test_commit_then_run(tool):
    name = _changed(tool)
    image = f"h15-commit-{uuid.uuid4().hex[:8]}:v1"
    tool.made.append(image)
    cp = tool("commit", "-c", 'CMD ["cat", "/etc/motd"]', "-c", 'ENV A=1 B="two words"', "-c", "LABEL x=y",
              "-m", "the message", "-a", "me", name, image)
    assert cp.returncode == 0 and cp.stdout.startswith("sha256:"), cp
    run = tool("run", "--rm", "--network", "none", image)
    assert (run.returncode, run.stdout) == (0, "x\n"), run
    run = tool("run", "--rm", "--network", "none", image, "sh", "-c", "echo $A-$B; ls /bin/ls; ls /var /new/sub")
    assert run.stdout == "1-two words\n/new/sub:\nf\n\n/var:\nz\n", run
    fmt = "{{json .Config.Cmd}} {{.Config.Labels.x}} {{.Author}} {{.Comment}} {{len .RootFS.Layers}}"
    assert tool("inspect", "-f", fmt, image).stdout == '["cat","/etc/motd"] y me the message 2\n'
    assert tool("commit", "-c", "RUN make", name).returncode != 0
    assert tool("commit", "nosuch").returncode == 1


def test_export(tool, tmp_path):
    name = _changed(tool)
    out = tmp_path / "e.tar"
    cp = tool("export", "-o", str(out), name)
    assert cp.returncode == 0, cp
    with tarfile.open(out) as tf:
        members = {m.name: m for m in tf}
    assert "etc/motd" in members and "new/sub/f" in members and "bin/busybox" in members
    assert "bin/ls" not in members and members["lnk"].issym() and members["lnk"].linkname == "/etc"
    assert tool("export", "nosuch").returncode == 1


def test_volumes(tool):
    vol = _name("vol")
    assert tool("volume", "create", "--label", "test=h15", vol).stdout == vol + "\n"
    # copy-up: the empty volume gets the image's /etc, then keeps what a container wrote
    cp = tool("run", "--network", "none", "-v", f"{vol}:/etc", IMAGE, "sh", "-c", "grep -c root /etc/passwd; echo v > /etc/v")
    assert (cp.returncode, cp.stdout) == (0, "1\n"), cp
    cp = tool("run", "--rm", "--network", "none", "-v", f"{vol}:/mnt", IMAGE, "cat", "/mnt/v")
    assert cp.stdout == "v\n", cp
    cp = tool("volume", "rm", vol)
    assert cp.returncode == 1 and "volume is in use" in cp.stderr, cp
    # anonymous volumes: listed, dangling once the container is gone without -v, gone with rm -v
    c1, c2 = _name("anon"), _name("anon")
    for c in (c1, c2):
        assert tool("create", "--network", "none", "--name", c, "-v", "/data", IMAGE, "true").returncode == 0
    anon = {m["Destination"]: m["Name"] for m in tool.inspect(c1)["Mounts"]}["/data"]
    labels = tool("volume", "inspect", "-f", "{{json .Labels}}", anon).stdout
    assert "com.docker.volume.anonymous" in labels or labels == "null\n"   # 20.10 sets no label
    assert anon in tool("volume", "ls", "-q").stdout.split()
    anon2 = {m["Destination"]: m["Name"] for m in tool.inspect(c2)["Mounts"]}["/data"]
    assert tool("rm", "-v", c1).returncode == 0
    assert anon not in tool("volume", "ls", "-q").stdout.split()
    assert tool("rm", c2).returncode == 0
    assert anon2 in tool("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    info = tool("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Options}}", vol).stdout
    assert info == f"{vol} local local map[]\n"
    ls = tool("volume", "ls", "--filter", f"name={vol}").stdout
    assert ls == f"DRIVER    VOLUME NAME\nlocal     {vol}\n"


def test_commit_pauses_a_running_container_and_resumes_it(tool):
    name = _name("live")
    assert tool("run", "-d", "--network", "none", "--name", name, IMAGE, "sh", "-c",
                "echo live > /state; sleep 600").returncode == 0
    from integration.manager.containers import wait_until
    wait_until(lambda: tool("exec", name, "cat", "/state").stdout == "live\n", what="the file")
    image = f"h15-live-{uuid.uuid4().hex[:8]}"
    tool.made.append(image)
    cp = tool("commit", name, image)
    assert cp.returncode == 0, cp
    assert tool("inspect", "-f", "{{.State.Status}}", name).stdout == "running\n"
    assert tool("run", "--rm", "--network", "none", image, "cat", "/state").stdout == "live\n"
    cp = tool("commit", "--pause=false", name)
    assert cp.returncode == 0 and cp.stdout.startswith("sha256:"), cp
    tool.made.append(cp.stdout.strip())


def test_deep_tree_diff_export_commit(pyctr_store, tmp_path):  # noqa: F811
    """1200 directory levels made inside a container: diff, export, cp and commit handle them."""
    p = pyctr_store
    name = _name("deep")
    script = "i=0; while [ $i -lt 1200 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; echo leaf > f"
    try:
        assert p("run", "--network", "none", "--name", name, IMAGE, "sh", "-c", script).returncode == 0
        changes = p("diff", name).stdout.splitlines()
        assert len(changes) == 1201 and changes[-1] == "A /" + "d/" * 1200 + "f"
        out = tmp_path / "deep.tar"
        assert p("export", "-o", str(out), name).returncode == 0
        with tarfile.open(out) as tf:
            assert "d/" * 1200 + "f" in tf.getnames()
        image = f"h15-deep-{uuid.uuid4().hex[:8]}"
        assert p("commit", name, image).returncode == 0
        cp = p("run", "--rm", "--network", "none", "-w", "/d", image, "sh", "-c", "find . -name f | wc -l")
        assert cp.stdout == "1\n", cp
        assert p("rmi", image).returncode == 0
    finally:
        p("rm", "-f", name)
        # the deep layer goes with its image (the store's removal is iterative: shutil's is not)
        p("image", "prune")
        assert not any(n for n in os.listdir(os.path.join(p.root, "overlay2")) if n != "l"
                       and os.path.isdir(os.path.join(p.root, "overlay2", n, "diff", "d", "d")))


@pytest.mark.parametrize("victim", ["pyctr", "group"])
def test_sigkill_during_cp_into_a_stopped_container(pyctr_store, victim):  # noqa: F811
    """pyctr (or pyctr and its helper) killed mid-copy: no mount anywhere, the container's lock is
    free (it starts), what was copied is a prefix of the stream, rm removes all."""
    import signal
    import subprocess
    import time
    from integration.helpers import mountinfo
    p = pyctr_store
    name = _name("kill")
    assert p("create", "--network", "none", "--name", name, IMAGE, "sleep", "600").returncode == 0
    proc = subprocess.Popen(_argv(p) + ["cp", "-", f"{name}:/tmp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        info = tarfile.TarInfo("big")
        info.size = 64 << 20
        proc.stdin.write(info.tobuf(format=tarfile.PAX_FORMAT) + b"\0" * (1 << 20))
        proc.stdin.flush()
        time.sleep(0.5)   # the helper has mounted the container and is writing
        if victim == "pyctr":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdin.close()   # a helper left alone sees the end of its stream and gives up
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    from integration.manager.containers import wait_until
    wait_until(lambda: p("start", name).returncode == 0, timeout=30, what="the container's lock")
    assert p("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
    assert not [m for m in mountinfo.read() if m.mount_point.startswith(p.root) and "/view-" in m.mount_point]
    assert p("rm", "-f", name).returncode == 0
