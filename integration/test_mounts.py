"""Mounts from config.json, as seen from inside the container through /proc/self/mountinfo."""
import os

import pytest

from integration.helpers import mountinfo
from integration.helpers.runtime import add_mount, bind, describe, execute, release_fifo


def _mounts(runtime, config=None, script="cat /proc/self/mountinfo"):
    return mountinfo.parse(runtime.sh(script, config=config).stdout)


def _at(mounts, path):
    m = mountinfo.at(mounts, path)
    assert m is not None, f"no mount at {path}:\n" + "\n".join(x.raw for x in mounts)
    return m


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "file").write_text("from-host\n")
    return d


def test_default_mounts(runtime):
    ms = _mounts(runtime)
    assert _at(ms, "/proc").fstype == "proc"
    assert _at(ms, "/dev").fstype == "tmpfs"
    assert _at(ms, "/dev/pts").fstype == "devpts"
    assert _at(ms, "/dev/shm").fstype == "tmpfs"
    assert _at(ms, "/dev/mqueue").fstype == "mqueue"
    sys_ = _at(ms, "/sys")
    assert sys_.fstype == "sysfs"
    assert sys_.readonly


def test_no_host_mounts_visible(runtime):
    """After pivot_root the host's mounts are gone from the container's table."""
    ms = _mounts(runtime)
    points = {m.mount_point for m in ms}
    assert "/" in points
    host_only = {m.mount_point for m in mountinfo.read()} - {"/", "/proc", "/sys", "/dev", "/dev/pts",
                                                            "/dev/shm", "/sys/fs/cgroup"}
    leaked = {p for p in points if p in host_only and not p.startswith("/sys/fs/cgroup")}
    assert not leaked, f"host mounts visible inside: {leaked}"


def test_bind_ro(runtime, src):
    config = runtime.config()
    bind(config, src, "/mnt/ro", ["bind", "ro"])
    cp = runtime.sh("cat /mnt/ro/file; touch /mnt/ro/new && echo WROTE || echo denied; "
                    "cat /proc/self/mountinfo", config=config)
    lines = cp.stdout.splitlines()
    assert lines[0] == "from-host"
    assert lines[1] == "denied"
    assert _at(mountinfo.parse(cp.stdout), "/mnt/ro").readonly
    assert not (src / "new").exists()


def test_bind_rw(runtime, src):
    config = runtime.config()
    bind(config, src, "/mnt/rw", ["bind", "rw"])
    runtime.sh("echo from-container > /mnt/rw/out", config=config)
    assert (src / "out").read_text() == "from-container\n"


def test_bind_of_a_file(runtime, src):
    config = runtime.config()
    bind(config, src / "file", "/etc/bound-file", ["bind", "ro"])
    assert runtime.sh("cat /etc/bound-file", config=config).stdout == "from-host\n"


def test_bind_relative_source_is_relative_to_bundle(runtime):
    config = runtime.config(["cat", "/mnt/data/f"])
    bind(config, "data", "/mnt/data", ["bind", "ro"])
    c = runtime.bundle(config)
    os.makedirs(os.path.join(c.bundle, "data"))
    with open(os.path.join(c.bundle, "data", "f"), "w") as f:
        f.write("rel\n")
    assert c.run().stdout == "rel\n"


def test_rbind_includes_submounts_bind_does_not(runtime, tmp_path, host_mount):
    top = tmp_path / "top"
    top.mkdir()
    (top / "sub").mkdir()
    host_mount("top/sub")
    (top / "sub" / "in-submount").write_text("x")
    config = runtime.config()
    bind(config, top, "/mnt/rbind", ["rbind", "ro"])
    bind(config, top, "/mnt/bind", ["bind", "ro"])
    cp = runtime.sh("ls /mnt/rbind/sub; echo ---; ls /mnt/bind/sub; echo ---; cat /proc/self/mountinfo",
                    config=config)
    rbind_ls, bind_ls, info = cp.stdout.split("---\n")
    assert rbind_ls.split() == ["in-submount"]
    assert bind_ls.split() == []
    ms = mountinfo.parse(info)
    assert _at(ms, "/mnt/rbind/sub").fstype == "tmpfs"
    assert mountinfo.at(ms, "/mnt/bind/sub") is None
    assert _at(ms, "/mnt/rbind").readonly


def test_tmpfs_with_options(runtime):
    config = runtime.config()
    add_mount(config, "/mnt/t", "tmpfs", "tmpfs", ["nosuid", "nodev", "size=1m", "mode=1770", "noexec"])
    cp = runtime.sh("stat -c %a /mnt/t; cat /proc/self/mountinfo", config=config)
    mode, _, info = cp.stdout.partition("\n")
    assert mode == "1770"
    m = _at(mountinfo.parse(info), "/mnt/t")
    assert m.fstype == "tmpfs"
    assert "size=1024k" in m.super_options
    assert "mode=1770" in m.super_options
    for flag in ("nosuid", "nodev", "noexec"):
        assert flag in m.options, m.raw
    assert not m.readonly


def test_tmpfs_ro(runtime):
    config = runtime.config()
    add_mount(config, "/mnt/t", "tmpfs", "tmpfs", ["ro", "size=64k"])
    cp = runtime.sh("touch /mnt/t/x 2>/dev/null && echo WROTE || echo denied", config=config)
    assert cp.stdout == "denied\n"


def test_proc_and_sysfs(runtime):
    cp = runtime.sh("cat /proc/self/mountinfo; echo ---; ls /sys; echo ---; "
                    "touch /sys/x 2>/dev/null && echo WROTE || echo denied")
    info, sys_ls, write = cp.stdout.split("---\n")
    ms = mountinfo.parse(info)
    assert _at(ms, "/proc").fstype == "proc"
    assert _at(ms, "/sys").fstype == "sysfs" and _at(ms, "/sys").readonly
    assert "kernel" in sys_ls.split() and "class" in sys_ls.split()
    assert write == "denied\n"


def test_devpts_newinstance(runtime):
    ms = _mounts(runtime)
    pts = _at(ms, "/dev/pts")
    assert pts.fstype == "devpts"
    assert "ptmxmode=666" in pts.super_options
    assert "mode=620" in pts.super_options
    assert "gid=5" in pts.super_options
    host_pts = [m for m in mountinfo.read() if m.fstype == "devpts"]
    # a new instance: a different superblock (device) from every host devpts
    assert pts.dev not in {m.dev for m in host_pts}


def test_mqueue(runtime):
    m = _at(_mounts(runtime), "/dev/mqueue")
    assert m.fstype == "mqueue"
    for flag in ("nosuid", "nodev", "noexec"):
        assert flag in m.options


def test_cgroup_mount(runtime, hierarchies):
    """The `cgroup` mount shows the container's own cgroups under /sys/fs/cgroup (read-only)."""
    cp = runtime.sh("ls /sys/fs/cgroup; echo ---; cat /proc/self/mountinfo; echo ---; "
                    "cat /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/cgroup.procs")
    entries, info, procs = cp.stdout.split("---\n")
    entries = entries.split()
    ms = mountinfo.parse(info)
    v1 = [(mp, key) for mp, fstype, key in hierarchies if fstype == "cgroup" and not key.startswith("name=")]
    for mp, key in v1:
        name = os.path.basename(mp)
        assert name in entries, f"{name} missing from /sys/fs/cgroup: {entries}"
        m = _at(ms, f"/sys/fs/cgroup/{name}")
        assert m.fstype == "cgroup"
        assert m.readonly
    if not v1:  # pure cgroup v2
        assert _at(ms, "/sys/fs/cgroup").fstype == "cgroup2"
    # the container's cgroup is the root of what it sees: its own processes only
    assert "1" in procs.split()
    assert len(procs.split()) <= 5


def test_cgroup_mount_readonly(runtime):
    cp = runtime.sh("mkdir /sys/fs/cgroup/pids/x 2>/dev/null && echo MADE || echo denied")
    assert cp.stdout == "denied\n"


def test_bind_propagation_rprivate(runtime, host_mount):
    shared = host_mount(shared=True)
    config = runtime.config()
    bind(config, shared, "/mnt/p", ["rbind", "rprivate"])
    m = _at(_mounts(runtime, config), "/mnt/p")
    assert m.tag("shared") is None and m.tag("master") is None, m.raw


def test_bind_propagation_rslave(runtime, host_mount):
    shared = host_mount(shared=True)
    host_group = mountinfo.at(mountinfo.read(), str(shared)).tag("shared")
    assert host_group
    config = runtime.config()
    bind(config, shared, "/mnt/p", ["rbind", "rslave"])
    m = _at(_mounts(runtime, config), "/mnt/p")
    assert m.tag("master") == host_group, m.raw
    assert m.tag("shared") is None


def test_bind_propagation_rslave_receives_host_mounts(runtime, host_mount):
    """A slave bind sees what the host mounts under the source after the container started."""
    shared = host_mount(shared=True)
    (shared / "later").mkdir()
    config = runtime.config(["sh", "-c", "touch /shared/ready; read x < /shared/go; "
                                         "ls /mnt/p/later > /shared/seen; echo end >> /shared/seen"])
    bind(config, shared, "/mnt/p", ["rbind", "rslave"])
    c = runtime.container(config, shared=True)
    os.mkfifo(c.path("go"))
    c.start()
    c.wait_file("ready")
    sub = shared / "later"
    cp = execute(["mount", "-t", "tmpfs", "-o", "size=64k", "late", str(sub)])
    assert cp.returncode == 0, cp.stderr
    (sub / "late-file").write_text("x")
    release_fifo(c.path("go"))
    c.wait_status("stopped")
    assert c.read("seen").split() == ["late-file", "end"]
    c.delete()


def test_bind_propagation_shared(runtime, host_mount):
    shared = host_mount(shared=True)
    config = runtime.config()
    bind(config, shared, "/mnt/p", ["rbind", "shared"])
    m = _at(_mounts(runtime, config), "/mnt/p")
    assert m.tag("shared") is not None, m.raw


def test_readonly_rootfs(runtime):
    config = runtime.config(root={"path": "rootfs", "readonly": True})
    cp = runtime.sh("touch /x 2>/dev/null && echo WROTE || echo denied; cat /proc/self/mountinfo",
                    config=config)
    result, _, info = cp.stdout.partition("\n")
    assert result == "denied"
    assert _at(mountinfo.parse(info), "/").readonly
    # the mounts on top of a read-only root are still writable
    assert runtime.sh("touch /dev/shm/x && echo ok", config=config).stdout == "ok\n"


def test_writable_rootfs(runtime):
    config = runtime.config(["sh", "-c", "echo hi > /written; cat /written"],
                            root={"path": "rootfs", "readonly": False})
    c = runtime.bundle(config)
    assert c.run().stdout == "hi\n"
    with open(os.path.join(c.rootfs, "written")) as f:
        assert f.read() == "hi\n"


_RUNC_ROOT_SHARED = pytest.mark.runc_lacks(
    "runc 1.1.5 makes the rootfs bind private before pivot_root and never re-applies a `shared` "
    "rootfsPropagation to / afterwards")


@pytest.mark.parametrize("propagation,tag", [
    ("private", None), ("rprivate", None), ("slave", "master"), ("rslave", "master"),
    pytest.param("shared", "shared", marks=_RUNC_ROOT_SHARED),
    pytest.param("rshared", "shared", marks=_RUNC_ROOT_SHARED)])
def test_rootfs_propagation(runtime, propagation, tag):
    config = runtime.config()
    config["linux"]["rootfsPropagation"] = propagation
    root = _at(_mounts(runtime, config), "/")
    if tag is None:
        assert root.tag("shared") is None and root.tag("master") is None, root.raw
    elif tag == "shared":
        assert root.tag("shared") is not None, root.raw
    else:
        # a slave of nothing is private when the host's / is private: accept either master or private,
        # but never shared
        assert root.tag("shared") is None, root.raw


def test_mounts_applied_in_order(runtime, src):
    """A tmpfs, then a bind inside it: the bind destination is created inside the tmpfs."""
    config = runtime.config()
    add_mount(config, "/mnt/a", "tmpfs", "tmpfs", ["size=64k"])
    bind(config, src, "/mnt/a/b/c", ["bind", "ro"])
    cp = runtime.sh("cat /mnt/a/b/c/file; cat /proc/self/mountinfo", config=config)
    assert cp.stdout.startswith("from-host\n")
    ms = mountinfo.parse(cp.stdout)
    a, c = _at(ms, "/mnt/a"), _at(ms, "/mnt/a/b/c")
    assert c.parent_id == a.mount_id


def test_later_mount_shadows_earlier(runtime, src):
    config = runtime.config()
    bind(config, src, "/mnt/x", ["bind", "ro"])
    add_mount(config, "/mnt/x", "tmpfs", "tmpfs", ["size=64k"])
    cp = runtime.sh("ls /mnt/x | wc -l", config=config)
    assert cp.stdout.strip() == "0"


def test_mount_destination_created(runtime, src):
    """Destinations missing in the (read-only) rootfs are created."""
    config = runtime.config()
    bind(config, src, "/new/deep/dir", ["bind", "ro"])
    assert runtime.sh("cat /new/deep/dir/file", config=config).stdout == "from-host\n"


def test_no_pivot(runtime):
    c = runtime.bundle(["sh", "-c", "hostname; cat /bin/busybox > /dev/null && echo rootfs-ok; "
                                    "ls / | grep -c ^bin$"])
    cp = c.run("--no-pivot")
    assert cp.stdout.split() == ["runc", "rootfs-ok", "1"]


@pytest.mark.parametrize("run_args", [(), ("--no-pivot",)], ids=["pivot", "no-pivot"])
def test_no_bare_proc_reachable_from_a_nested_user_namespace(runtime, run_args):
    """runc's no_pivot.bats: a process that makes its own user namespace inside the container may
    mount procfs only where a fully visible one exists (the kernel's mount_too_revealing), and the
    container's /proc is not (its masked paths are locked over it). Without pivot_root the host's
    /proc stayed reachable in the mount namespace under the chroot: runc detaches it first."""
    script = "mount -t proc none /proc 2>&1 && echo MOUNTED || echo DENIED"
    config = runtime.config(["unshare", "-mrpf", "sh", "-c", script])
    # Not root: mapping uid 0 into a new user namespace needs CAP_SETFCAP, any other uid nothing.
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    cp = runtime.bundle(config).run(*run_args, check=False)
    assert "DENIED" in cp.stdout and "MOUNTED" not in cp.stdout, describe(cp)
    assert "permission denied" in cp.stdout.lower(), describe(cp)  # EPERM from mount(2), not a missing tool


def test_no_pivot_create(runtime):
    c = runtime.container(["sh", "-c", "cat /proc/self/mountinfo > /shared/mi"], shared=True,
                          create_args=["--no-pivot"])
    c.start()
    c.wait_status("stopped")
    ms = mountinfo.parse(c.read("mi"))
    assert _at(ms, "/proc").fstype == "proc"
    c.delete()


@pytest.fixture
def hierarchies():
    return mountinfo.cgroup_hierarchies()


def _tmpcopyup_tree(rootfs):
    data = os.path.join(rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    with open(os.path.join(data, "file"), "w") as f:
        f.write("from-image\n")
    os.chown(os.path.join(data, "file"), 1000, 1001)
    os.chmod(os.path.join(data, "file"), 0o604)  # readable without CAP_DAC_OVERRIDE
    with open(os.path.join(data, "sub", "deep"), "w") as f:
        f.write("deep\n")
    os.chmod(os.path.join(data, "sub"), 0o750)
    os.symlink("/etc/passwd", os.path.join(data, "abs-link"))


def _with_fifo(rootfs):
    _tmpcopyup_tree(rootfs)
    os.mkfifo(os.path.join(rootfs, "data", "fifo"))
    os.chmod(os.path.join(rootfs, "data", "fifo"), 0o620)


def _run_in(runtime, config, script, prepare):
    config["process"]["args"] = ["sh", "-c", script]
    c = runtime.bundle(config)
    prepare(c.rootfs)
    cp = c.run(check=False)
    assert cp.returncode == 0, cp.stderr
    return c, cp


def test_tmpfs_tmpcopyup_copies_what_it_covers(runtime):
    """runc's tmpcopyup: the tmpfs starts with a copy of the image's directory (files, owners,
    modes, subdirectories, symlinks as symlinks, a fifo without opening it); writes go to the
    tmpfs, the image's directory is untouched."""
    config = runtime.config()
    add_mount(config, "/data", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=755", "tmpcopyup"])
    script = ("cat /data/file /data/sub/deep; stat -c '%a %u %g %F' /data/file /data/sub; "
              "readlink /data/abs-link; echo new > /data/new; grep ' /data ' /proc/self/mountinfo")
    c, cp = _run_in(runtime, config, script, _tmpcopyup_tree)
    lines = cp.stdout.splitlines()
    assert lines[:5] == ["from-image", "deep", "604 1000 1001 regular file", "750 0 0 directory",
                         "/etc/passwd"], cp.stdout
    assert " - tmpfs " in lines[5], lines[5]
    assert not os.path.exists(os.path.join(c.rootfs, "data", "new"))


@pytest.mark.runc_lacks("runc 1.1.5's tmpcopyup skips a fifo, then fails to lchown it")
def test_tmpfs_tmpcopyup_special_files(runtime):
    """A fifo (never opened: a copy that read it would hang) is recreated with its mode."""
    config = runtime.config()
    add_mount(config, "/data", "tmpfs", "tmpfs", ["tmpcopyup"])
    _, cp = _run_in(runtime, config, "stat -c '%a %F' /data/fifo; grep ' /data ' /proc/self/mountinfo",
                    _with_fifo)
    assert cp.stdout.splitlines()[0] == "620 fifo"
    assert " - tmpfs " in cp.stdout


def test_tmpfs_tmpcopyup_ro(runtime):
    config = runtime.config()
    add_mount(config, "/data", "tmpfs", "tmpfs", ["ro", "tmpcopyup"])
    _, cp = _run_in(runtime, config, "cat /data/file; touch /data/x 2>/dev/null && echo WROTE || echo denied",
                    _tmpcopyup_tree)
    assert cp.stdout == "from-image\ndenied\n"


def test_tmpfs_tmpcopyup_never_copies_from_the_host(runtime, tmp_path):
    """The covered directory is a symlink to a host path: resolved inside the rootfs, as every
    mount destination is, so the host directory's contents never reach the container."""
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (secret / "key").write_text("host\n")
    config = runtime.config()
    add_mount(config, "/data", "tmpfs", "tmpfs", ["tmpcopyup"])
    _, cp = _run_in(runtime, config, "ls -A /data; ls -A " + str(secret),
                    lambda rootfs: os.symlink(str(secret), os.path.join(rootfs, "data")))
    assert "key" not in cp.stdout
    assert sorted(os.listdir(secret)) == ["key"]
