"""Classic container escapes, each attempted for real. Runtime-agnostic: the same tests must pass
against runc (PYRUNC_TEST_RUNTIME=/usr/sbin/runc), which shows the attack itself is sound.

README.md's "Security" section lists these and their outcomes; keep the two in step.
"""
import os
import shutil
import subprocess
import threading

import pytest

from integration.helpers.probe import install
from integration.helpers.runtime import describe, execute, wait_for

TEMPLATE_CAPS = "0000000020000420"  # CAP_AUDIT_WRITE | CAP_KILL | CAP_NET_BIND_SERVICE


# --- 1. symlinks pointing out of the rootfs ------------------------------------------------------

def test_mount_destination_symlink_stays_in_rootfs(runtime, tmp_path):
    """rootfs/evil -> <host dir that does not exist>: the bind lands at rootfs/<that path>, and the
    host path is never created (a runtime following the link on the host would mkdir it)."""
    host_target = tmp_path / "never-created-on-host"
    source = tmp_path / "src"
    source.mkdir()
    (source / "marker").write_text("bound\n")
    config = runtime.config(["sh", "-c", f"cat {host_target}/marker"])
    config["mounts"].append({"destination": "/evil", "type": "bind", "source": str(source),
                             "options": ["rbind", "ro"]})
    c = runtime.bundle(config)
    os.symlink(str(host_target), os.path.join(c.rootfs, "evil"))
    cp = c.run()
    assert cp.stdout == "bound\n"
    assert not os.path.lexists(host_target), "the runtime followed the symlink onto the host"
    assert os.path.isdir(os.path.join(c.rootfs, str(host_target).lstrip("/")))


@pytest.mark.parametrize("name,fstype,target", [("proc", "proc", "/tmp/fakeproc"), ("sys", "sysfs", "tmp"),
                                                ("proc", "proc", "../../../../proc")])
def test_proc_or_sys_as_symlink_is_refused(runtime, name, fstype, target):
    """rootfs/proc (or sys) a symlink: runc refuses to mount procfs or sysfs anywhere but on an
    ordinary directory (following it once let a container mount a procfs the runtime then wrote
    security settings into at the wrong place); nothing is mounted, nothing is left."""
    c = runtime.bundle(["true"])
    path = os.path.join(c.rootfs, name)
    if os.path.isdir(path) and not os.path.islink(path):
        os.rmdir(path)
    os.symlink(target, path)
    cp = c.run(check=False)
    assert cp.returncode != 0, describe(cp)
    # runc's words (quoted inside a logfmt line, so the quotes around the type are escaped)
    assert f'filesystem \\"{fstype}\\" must be mounted on ordinary directory' in cp.stderr, describe(cp)
    assert not c.leftovers(), c.leftovers()


def test_relative_dotdot_symlink_stays_in_rootfs(runtime, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "marker").write_text("bound\n")
    config = runtime.config(["sh", "-c", "cat /up/marker"])
    config["mounts"].append({"destination": "/etc/up/sub", "type": "bind", "source": str(source),
                             "options": ["rbind", "ro"]})
    c = runtime.bundle(config)
    # ../../../../../.. from rootfs/etc climbs to the host's / when resolved naively.
    os.symlink("../../../../../../../../up", os.path.join(c.rootfs, "etc", "up"))
    c.run(check=False)
    assert not os.path.lexists("/up"), "a symlink with .. escaped the rootfs"
    assert os.path.isdir(os.path.join(c.rootfs, "up", "sub"))


def test_device_path_symlink_stays_in_rootfs(runtime, tmp_path):
    host_dir = tmp_path / "host-devdir"
    host_dir.mkdir()
    config = runtime.config(["sh", "-c", f"ls {host_dir}"])
    config["linux"]["devices"] = [{"path": "/evildev/null2", "type": "c", "major": 1, "minor": 3,
                                   "fileMode": 0o666, "uid": 0, "gid": 0}]
    c = runtime.bundle(config)
    os.symlink(str(host_dir), os.path.join(c.rootfs, "evildev"))
    cp = c.run()
    assert os.listdir(host_dir) == [], "a device node was created on the host"
    assert cp.stdout.split() == ["null2"]


def test_masked_path_symlink_stays_in_rootfs(runtime, tmp_path):
    """maskedPaths/readonlyPaths entries that are symlinks to "host" paths: whatever gets masked
    is inside the container; a host file of that name keeps its content and the container reads
    its own copy."""
    config = runtime.config(["sh", "-c", "cat /data/secret; cat /etc/link-to-secret"])
    config["linux"]["maskedPaths"] = config["linux"]["maskedPaths"] + ["/etc/link-to-secret"]
    c = runtime.bundle(config)
    os.makedirs(os.path.join(c.rootfs, "data"))
    with open(os.path.join(c.rootfs, "data", "secret"), "w") as f:
        f.write("container copy\n")
    os.symlink("/data/secret", os.path.join(c.rootfs, "etc", "link-to-secret"))
    cp = c.run()
    # Both names lead to the one in-rootfs file, masked by /dev/null: nothing readable, no error.
    assert cp.stdout == ""


def test_symlink_swapped_in_during_create(runtime, tmp_path):
    """A racing process flips rootfs/race between a real directory and a symlink to a host path
    that does not exist, while create resolves and mounts onto it. Whatever wins, the host path is
    never created and nothing is mounted outside the rootfs."""
    source = tmp_path / "src"
    source.mkdir()
    host_target = tmp_path / "race-target"
    stop = threading.Event()
    failures = []
    for attempt in range(8):
        config = runtime.config(["true"])
        config["mounts"].append({"destination": "/race/x", "type": "bind", "source": str(source),
                                 "options": ["rbind", "ro"]})
        c = runtime.bundle(config)
        race = os.path.join(c.rootfs, "race")
        real, link = race + ".dir", race + ".lnk"
        os.makedirs(real + "/x")
        os.symlink(str(host_target), link)

        def flip():
            while not stop.is_set():
                for src in (link, real):
                    tmp = race + ".tmp"
                    try:
                        if os.path.isdir(src) and not os.path.islink(src):
                            shutil.copytree(src, tmp, symlinks=True)
                        else:
                            os.symlink(os.readlink(src), tmp)
                        os.rename(tmp, race)
                    except OSError:
                        pass
        stop.clear()
        t = threading.Thread(target=flip, daemon=True)
        t.start()
        try:
            cp = c.run(check=False)
        finally:
            stop.set()
            t.join()
        if os.path.lexists(host_target):
            failures.append(f"attempt {attempt}: host path created ({cp.stderr.strip()})")
            shutil.rmtree(host_target, ignore_errors=True)
    assert not failures, failures


# --- 2. the runtime's own executable (/proc/<pid>/exe) ---------------------------------------------

def _host_binary_id():
    """dev:ino of the binary a runtime process executes: the interpreter for pyrunc, else itself."""
    from integration.helpers.runtime import is_pyrunc, runtime_path
    path = runtime_path()
    if is_pyrunc():
        with open(path, "rb") as f:
            first = f.readline()
        path = first[2:].split()[0].decode() if first.startswith(b"#!") else path
    st = os.stat(os.path.realpath(path))
    return f"{st.st_dev}:{st.st_ino}"


def _joined(c, probe_binary, script):
    """Run script in a process joined to all of c's namespaces (nsenter) with the default config's
    capabilities: what a container process could do."""
    cp = execute(["nsenter", "-t", str(c.pid), "-a", "/bin/probe", "dropcaps", "/bin/sh", "-c",
                  script + "; probe caps"])
    assert cp.returncode == 0, cp.stderr
    out = dict(line.split("=", 1) for line in cp.stdout.split())
    assert out["CapEff"] == TEMPLATE_CAPS  # really the container's privileges
    return out


def test_runtime_exe_not_writable_during_create(runtime, probe_binary):
    """Between create and start the container's pid 1 is still the runtime (the host's python for
    pyrunc, the host's runc binary for runc). From inside, opening /proc/1/exe for writing (the
    CVE-2019-5736 pattern; dd with conv=notrunc count=0 writes nothing even if it opened) and
    reading /proc/1/mem must fail."""
    c = runtime.bundle(["true"])
    install(probe_binary, c.rootfs)
    c.create()
    out = _joined(c, probe_binary, "dd if=/dev/null of=/proc/1/exe conv=notrunc count=0 2>/dev/null "
                                   "&& echo exe=OPENED || echo exe=denied; "
                                   "dd if=/proc/1/mem of=/dev/null bs=1 count=1 2>/dev/null && echo mem=READ "
                                   "|| echo mem=denied")
    assert out["exe"] == "denied" and out["mem"] == "denied", out
    c.start()


@pytest.mark.runc_lacks("runc 1.1.5's init leaves /proc/1/exe resolvable to the host's runc binary")
def test_runtime_exe_unreachable_during_create(runtime, probe_binary):
    """Stronger: /proc/1/exe does not even resolve (pyrunc's init is non-dumpable until execve)."""
    c = runtime.bundle(["true"])
    install(probe_binary, c.rootfs)
    c.create()
    out = _joined(c, probe_binary, "echo exe=$(stat -L -c %d:%i /proc/1/exe 2>/dev/null || echo denied)")
    assert out["exe"] == "denied", f"/proc/1/exe resolves ({out['exe']}; host binary {_host_binary_id()})"
    c.start()


@pytest.mark.runc_lacks("runc 1.1.5's init is dumpable again once in Go: its fds are open to the container")
def test_runtime_fds_unreachable_during_create(runtime, probe_binary):
    """The runtime's fds (exec.fifo, the rootfs, host dirs) must not be reachable through
    /proc/1/fd from inside while it waits. readlink only: opening the fifo would start the
    container."""
    c = runtime.bundle(["true"])
    install(probe_binary, c.rootfs)
    c.create()
    out = _joined(c, probe_binary, "n=0; for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && n=$((n+1)); done; "
                                   "echo fds=$n")
    assert out["fds"] == "0", f"{out['fds']} fds of the runtime readable from the container"
    c.start()


# --- 3. leaked fds and host cwd (CVE-2024-21626) ---------------------------------------------------

def test_no_fds_beyond_stdio(runtime):
    cp = runtime.sh("ls -l /proc/$$/fd; true")  # two commands: $$ stays the shell, not an exec'd ls
    fds = [line.split(" -> ")[0].split()[-1] for line in cp.stdout.splitlines() if " -> " in line]
    assert fds == ["0", "1", "2"], cp.stdout


def test_cwd_is_inside_the_container(runtime):
    cp = runtime.sh("readlink /proc/self/cwd; stat -c %i / /proc/self/cwd/../../../../..")
    lines = cp.stdout.split()
    assert lines[0] == "/"
    assert lines[1] == lines[2], "walking up from cwd left the container's root"


@pytest.mark.parametrize("fd", range(3, 10))
def test_cwd_through_a_leaked_fd_fails(runtime, fd):
    """process.cwd = /proc/self/fd/N: with a leaked host fd (runc < 1.1.12) the process starts in a
    host directory. Either create refuses, or the cwd is a directory of the container."""
    config = runtime.config(["sh", "-c", "stat -c %i / ../../../../../../.. ; ls /proc/self/cwd/ | head -3"])
    config["process"]["cwd"] = f"/proc/self/fd/{fd}"
    c = runtime.bundle(config)
    cp = c.run(check=False)
    if cp.returncode == 0:
        inodes = cp.stdout.split()[:2]
        assert inodes[0] == inodes[1], f"cwd /proc/self/fd/{fd} reached outside the root: {cp.stdout}"


# --- 4. masked and read-only paths against remount attempts ---------------------------------------

def test_masked_and_readonly_paths_survive_remount_attempts(runtime):
    script = (
        "umount /proc/kcore 2>/dev/null; umount -l /proc/keys 2>/dev/null; umount /sys/firmware 2>/dev/null; "
        "mount -o remount,rw /proc/sys 2>/dev/null; mount -o remount,rw,bind /proc/sys 2>/dev/null; "
        "mount -t proc proc /mnt 2>/dev/null && echo NEWPROC; "
        "echo kcore=$(head -c 64 /proc/kcore 2>/dev/null | wc -c); "
        "echo keys=$(cat /proc/keys 2>/dev/null | wc -c); "
        "echo firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l); "
        "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo SYSCTL-WRITTEN; "
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITTEN; "
        "echo end")
    out = runtime.sh(script).stdout.split()
    assert out == ["kcore=0", "keys=0", "firmware=0", "end"], out


# --- 6. no_new_privs against setuid, and capabilities --------------------------------------------

def _suid_container(runtime, probe_binary, nnp):
    config = runtime.config(["sh", "-c", "/bin/suid ids; /bin/suid caps"])
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["process"]["noNewPrivileges"] = nnp
    c = runtime.bundle(config)
    install(probe_binary, c.rootfs, name="suid", mode=0o4755, uid=0, gid=0)
    return c.run().stdout.split()


def test_no_new_privileges_stops_setuid(runtime, probe_binary):
    out = _suid_container(runtime, probe_binary, nnp=True)
    assert out[:4] == ["1000", "1000", "1000", "1000"], "setuid root took effect under noNewPrivileges"
    assert out[4] == "CapEff=0000000000000000"


def test_setuid_without_nnp_still_bounded(runtime, probe_binary):
    """Control: without noNewPrivileges the setuid bit works (euid 0), which proves the previous test
    meaningful, and the bounding set still caps what that root gets."""
    out = _suid_container(runtime, probe_binary, nnp=False)
    assert out[:4] == ["1000", "0", "1000", "1000"]
    assert out[4] == f"CapEff={TEMPLATE_CAPS}" and out[5] == f"CapBnd={TEMPLATE_CAPS}"


def test_dropped_capabilities_absent(runtime, probe_binary):
    config = runtime.config(["sh", "-c", "probe caps"])
    caps = config["process"]["capabilities"]
    for field in ("bounding", "effective", "permitted"):
        caps[field] = ["CAP_CHOWN", "CAP_KILL"]
    caps["ambient"] = []
    c = runtime.bundle(config)
    install(probe_binary, c.rootfs)
    out = c.run().stdout.split()
    assert out == ["CapEff=0000000000000021", "CapBnd=0000000000000021"]


# --- the runtime's own interpreter: no module loaded from the container ----------------------------

_PLANTED = 'open("/planted-module-ran", "a").write(__name__ + "\\n")\n'


def _runtime_module_dirs():
    """The dirs pyrunc's interpreter imports from: its sys.path, the pyrunc package tree, encodings."""
    import ast
    from integration.helpers.runtime import runtime_path
    path = runtime_path()
    with open(path) as f:
        script = f.read()
    interpreter = script.splitlines()[0][2:].split()[0]
    setup = script.split("from pyrunc.cli import entry")[0].split("\n", 1)[1]
    probe = setup + ("import os, pyrunc, encodings\n"
                     "print(repr([p for p in sys.path if p] + [os.path.dirname(encodings.__file__)]"
                     " + [d for d, _, _ in os.walk(os.path.dirname(pyrunc.__file__))]))\n")
    cp = execute([interpreter, "-S", "-c", probe])
    assert cp.returncode == 0, cp.stderr
    return ast.literal_eval(cp.stdout.strip())


@pytest.mark.pyrunc_only
def test_runtime_never_imports_from_the_container(runtime):
    """After pivot_root (init) and setns into the mount namespace (exec), every host path the
    interpreter would import from resolves in the container. An image that plants a module at each
    of those paths must never see one run: run, exec, a terminal, hooks-free and hook configs."""
    config = runtime.config(["sleep", "100"])
    config["root"]["readonly"] = False
    config["linux"]["sysctl"] = {"kernel.domainname": "planted.test"}
    c = runtime.bundle(config)
    planted = 0
    for directory in _runtime_module_dirs():
        if not os.path.isdir(directory):
            continue
        target = os.path.join(c.rootfs, directory.lstrip("/"))
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith((".py", ".so")) or os.path.isdir(os.path.join(directory, name, "__pycache__")):
                module = name.split(".")[0]
                with open(os.path.join(target, module + ".py"), "w") as f:
                    f.write(_PLANTED)
                planted += 1
    assert planted > 100
    c.create()
    c.start()
    try:
        import pty
        master, slave = pty.openpty()  # exec -t proxies to a terminal of ours: it needs one, as runc's
        try:
            for argv in (["true"], ["-t", "true"], ["--user", "65534", "true"], ["--cap", "CAP_SYS_ADMIN", "true"]):
                cp = runtime.run("exec", *argv[:-1], c.id, argv[-1], check=False,
                                 stdin=slave if "-t" in argv else None)
                assert cp.returncode == 0, describe(cp)
        finally:
            os.close(master)
            os.close(slave)
    finally:
        c.kill("KILL")
    assert not os.path.exists(os.path.join(c.rootfs, "planted-module-ran")), \
        open(os.path.join(c.rootfs, "planted-module-ran")).read()
