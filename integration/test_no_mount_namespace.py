"""A config without a mount namespace: runc makes the container's mounts in its own mount
namespace, below the rootfs, and chroots into it (no pivot_root, no read-only remounts), and it
refuses masked or read-only paths. Every runtime runs here inside `unshare --mount`, so that runc's
own steps (it makes "/" a slave and leaves its mounts behind) never reach the host's namespace."""
import os

import pytest

from integration.helpers.runtime import describe, drop_namespace, execute

MARKER = "the container's own rootfs\n"


def _config(runtime, script):
    config = drop_namespace(runtime.config(["sh", "-c", script]), "mount")
    del config["linux"]["maskedPaths"], config["linux"]["readonlyPaths"]
    return config


def _run_unshared(runtime, config, after=""):
    """`run` in a private mount namespace: its id first, then the container's output, `rc=N`, and
    what the shell command `after` prints there once the container is gone ($ROOTFS is set)."""
    c = runtime.bundle(config)
    with open(os.path.join(c.rootfs, "marker"), "w") as f:
        f.write(MARKER)
    script = 'readlink /proc/self/ns/mnt; "$@"; echo "rc=$?"; ' + after
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            *runtime.argv("run", "--bundle", c.bundle, c.id)]
    cp = execute(argv, env=dict(os.environ, ROOTFS=os.path.realpath(c.rootfs)))
    return c, cp


def test_runs_chrooted_in_the_runtimes_mount_namespace(runtime):
    script = ("readlink /proc/self/ns/mnt; echo pid=$$; cat /marker; "
              "grep -q ' /dev/shm ' /proc/self/mountinfo && echo shm-mounted; "
              "touch /written 2>/dev/null && echo rootfs-writable")
    c, cp = _run_unshared(runtime, _config(runtime, script))
    lines = cp.stdout.splitlines()
    assert lines[-1] == "rc=0", describe(cp)
    assert lines[1] == lines[0], "the container shares the runtime's mount namespace\n" + describe(cp)
    # its own pid namespace and /proc, the bundle's rootfs as "/", the config's mounts in it, and
    # root.readonly not applied (runc skips finalizing the rootfs without a mount namespace)
    assert lines[2:-1] == ["pid=1", MARKER.strip(), "shm-mounted", "rootfs-writable"], describe(cp)


def test_masked_or_read_only_paths_need_a_mount_namespace(runtime):
    config = _config(runtime, "true")
    config["linux"]["maskedPaths"] = ["/proc/kcore"]
    c, cp = _run_unshared(runtime, config)
    assert cp.stdout.splitlines()[-1] == "rc=1", describe(cp)
    assert "unable to restrict sys entries without a private MNT namespace" in cp.stderr, describe(cp)
    assert not c.leftovers(), c.leftovers()


@pytest.mark.runc_lacks("runc 1.1.5 leaves the container's mounts below the rootfs after delete")
def test_no_mount_is_left_below_the_rootfs(runtime):
    after = 'grep -c -F " $ROOTFS/" /proc/self/mountinfo'
    c, cp = _run_unshared(runtime, _config(runtime, "true"), after)
    assert cp.stdout.splitlines()[-2:] == ["rc=0", "0"], describe(cp)


@pytest.mark.runc_lacks("runc 1.1.5 leaves the mounts of a failed create below the rootfs")
def test_failed_create_leaves_no_mount_below_the_rootfs(runtime):
    after = 'grep -c -F " $ROOTFS/" /proc/self/mountinfo'
    config = _config(runtime, "true")
    config["process"]["args"] = ["/no/such/binary"]
    c, cp = _run_unshared(runtime, config, after)
    assert cp.stdout.splitlines()[-2:] == ["rc=1", "0"], describe(cp)
    assert not c.leftovers(), c.leftovers()


@pytest.mark.runc_lacks("runc 1.1.5 runs an exec'd process on the runtime's root, not the container's")
def test_exec_runs_in_the_containers_root(runtime):
    c = runtime.bundle(_config(runtime, "sleep 1000"))
    with open(os.path.join(c.rootfs, "marker"), "w") as f:
        f.write(MARKER)
    rt = " ".join(runtime.argv())
    script = (f"{rt} create --bundle {c.bundle} {c.id} && {rt} start {c.id} && "
              f"{rt} exec {c.id} cat /marker; echo rc=$?; {rt} delete -f {c.id}")
    cp = execute(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    assert cp.stdout.splitlines() == [MARKER.strip(), "rc=0"], describe(cp)
