"""config.json as runc reads it: what it refuses (with runc's limits and words), what it accepts
from real callers, and values that must not stall or kill the runtime before the container runs.

integration/test_hostile_configs.py generates such documents by class; these are the cases issue 13
names, each checked for its exact outcome (and against runc with PYRUNC_TEST_RUNTIME=runc).
"""
import json
import os
import stat
import time

import pytest

from integration.helpers.runtime import describe


def _limits(*limits):
    return [{"type": kind, "soft": soft, "hard": hard} for kind, soft, hard in limits]


@pytest.mark.runc_lacks("runc's init opens /proc/self/fd after setting RLIMIT_NOFILE and fails: "
                        "'too many open files'")
def test_rlimits_that_would_starve_the_runtime_take_effect_at_execve(runtime):
    # With these in force while init still ran Python: MemoryError, EMFILE. They belong to the
    # container's process, which gets them exactly.
    config = runtime.config()
    config["process"]["rlimits"] = _limits(("RLIMIT_NOFILE", 3, 3), ("RLIMIT_AS", 16 << 20, 16 << 20),
                                           ("RLIMIT_STACK", 256 << 10, 256 << 10))
    cp = runtime.sh("ulimit -n; ulimit -v; ulimit -s", config)
    assert cp.stdout.split() == ["3", "16384", "256"], describe(cp)


@pytest.mark.runc_lacks("runc's exec fails the same way as its init: 'too many open files'")
def test_exec_process_rlimits_that_would_starve_the_runtime(runtime, tmp_path):
    c = runtime.container(["sleep", "100"])
    c.start()
    process = dict(runtime.config(["sh", "-c", "ulimit -n; ulimit -v"])["process"])
    process["rlimits"] = _limits(("RLIMIT_NOFILE", 3, 3), ("RLIMIT_DATA", 4 << 20, 4 << 20),
                                 ("RLIMIT_AS", 4 << 20, 4 << 20))
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    cp = runtime.run("exec", "--process", str(path), c.id)
    assert cp.stdout.split() == ["3", "4096"], describe(cp)


def test_rlimit_values_past_int63(runtime):
    # rlim_t is unsigned 64-bit: runc takes 2**63 and up (2**64-1 is RLIM_INFINITY); busybox counts
    # the core size in 512-byte blocks.
    config = runtime.config()
    config["process"]["rlimits"] = _limits(("RLIMIT_CORE", 2 ** 63, 2 ** 64 - 1))
    cp = runtime.sh("ulimit -c; ulimit -Hc", config)
    assert cp.stdout.split() == [str(2 ** 63 // 512), "unlimited"], describe(cp)


def test_umask_keeps_the_permission_bits_of_any_uint32(runtime):
    config = runtime.config()
    config["process"]["user"]["umask"] = 2 ** 32 - 1
    cp = runtime.sh("umask", config)
    assert cp.stdout.strip() == "0777", describe(cp)


@pytest.mark.parametrize("field, value", [("uid", 2 ** 32 - 1), ("gid", 2 ** 31)])
def test_ids_that_setuid_cannot_take_are_refused(runtime, field, value):
    # setuid(4294967295) is setuid(-1): "no change", a container running as root.
    config = runtime.config(["id"])
    config["process"]["user"][field] = value
    c = runtime.bundle(config)
    cp = runtime.fail("run", "--bundle", c.bundle, c.id)
    assert "uids and gids must be in range 0-2147483647" in cp.stderr, describe(cp)
    assert cp.stdout == "", describe(cp)


def test_a_config_without_process(runtime):
    config = runtime.config()
    del config["process"]
    c = runtime.bundle(config)
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert "process property must not be empty" in cp.stderr, describe(cp)


@pytest.mark.pyrunc_only  # runc applies the memory limit after init started: "unable to set memory limit"
def test_init_killed_by_the_oom_killer_says_so(runtime):
    config = runtime.config()
    config["linux"].setdefault("resources", {})["memory"] = {"limit": 8}
    c = runtime.bundle(config)
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert cp.stderr.strip().endswith('container init was OOM-killed (memory limit too low?)"'), describe(cp)


# -- config.json itself --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [
    pytest.param("fifo", marks=pytest.mark.runc_lacks("runc opens a FIFO config.json and waits for a writer")),
    "dev-zero", "directory"])
def test_config_json_that_is_no_regular_file(runtime, kind):
    c = runtime.bundle()
    path = os.path.join(c.bundle, "config.json")
    os.unlink(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    else:
        os.mkdir(path)
    started = time.monotonic()
    cp = runtime.fail("create", "--bundle", c.bundle, c.id, timeout=20)
    assert time.monotonic() - started < 10, describe(cp)


@pytest.mark.runc_lacks("runc opens a FIFO process.json and waits for a writer")
def test_exec_process_json_that_is_a_fifo(runtime, tmp_path):
    c = runtime.container(["sleep", "100"])
    c.start()
    fifo = tmp_path / "process.json"
    os.mkfifo(fifo)
    runtime.fail("exec", "--process", str(fifo), c.id, code=255, timeout=20)  # exec's failure status, as runc


@pytest.mark.pyrunc_only
def test_config_json_larger_than_the_limit(runtime):
    c = runtime.bundle()
    with open(os.path.join(c.bundle, "config.json"), "r+b") as f:
        f.truncate(64 << 20)  # sparse: the size alone must refuse it
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert "more than the 16 MiB a JSON specification may have" in cp.stderr, describe(cp)


# -- root.path -----------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["rootfs-is-a-symlink", "symlink-inside-the-image"])
def test_root_path_through_a_symlink_is_refused(runtime, tmp_path, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    config = runtime.config()
    c = runtime.bundle(config)
    if how == "rootfs-is-a-symlink":
        os.rename(c.rootfs, str(tmp_path / "real-rootfs"))
        os.symlink(str(outside), c.rootfs)
    else:
        # An image's own symlink: root.path names a path inside rootfs that leads out of it.
        os.symlink(str(outside), os.path.join(c.rootfs, "escape"))
        config["root"]["path"] = "rootfs/escape"
        with open(os.path.join(c.bundle, "config.json"), "w") as f:
            json.dump(config, f)
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert "symlink" in cp.stderr, describe(cp)
    assert os.listdir(outside) == [], "create wrote outside the bundle"


# -- terminal ------------------------------------------------------------------------------------

def test_foreground_terminal_without_a_terminal_fails_at_once(runtime):
    # stdin /dev/null, output to files, a new session: no terminal anywhere. The shell in the
    # container would wait for ever on a pty nobody types into; runc refuses at once.
    config = runtime.config(["sh"])
    config["process"]["terminal"] = True
    c = runtime.bundle(config)
    started = time.monotonic()
    cp = runtime.fail("run", "--bundle", c.bundle, c.id, timeout=30)
    assert "open /dev/tty: no such device or address" in cp.stderr, describe(cp)
    assert time.monotonic() - started < 15


# -- what real callers send ----------------------------------------------------------------------

def podman_privileged_config(runtime, args):
    """What `podman run --privileged` writes, in the parts runc reads leniently: device modes with
    the file type bits (S_IFCHR|0666 = 8630, S_IFBLK|0660 = 25008), null members, no ociVersion."""
    config = runtime.config(args)
    del config["ociVersion"]
    config["linux"]["devices"] = [
        {"path": "/dev/podman-null", "type": "c", "major": 1, "minor": 3, "fileMode": 8630, "uid": 0, "gid": 0},
        {"path": "/dev/podman-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 25008, "uid": 0, "gid": 6},
    ]
    config["linux"]["resources"]["devices"].append({"allow": True, "access": "rwm"})
    config["linux"]["seccomp"] = None
    config["linux"]["intelRdt"] = None
    config["process"]["apparmorProfile"] = None
    config["process"]["capabilities"]["ambient"] = None
    config["hooks"] = None
    config["annotations"] = {"io.podman.annotations.privileged": "TRUE"}
    return config


def test_podman_privileged_config(runtime):
    config = podman_privileged_config(runtime, ["sh", "-c", "stat -c '%A %t:%T %g' /dev/podman-null /dev/podman-loop"])
    cp = runtime.sh(config["process"]["args"][2], config)
    assert cp.stdout.split("\n")[:2] == ["crw-rw-rw- 1:3 0", "brw-rw---- 7:0 6"], describe(cp)


def test_device_file_mode_keeps_only_permission_bits(runtime):
    config = runtime.config()
    config["linux"]["devices"] = [{"path": "/dev/modes", "type": "c", "major": 1, "minor": 3,
                                   "fileMode": stat.S_IFCHR | stat.S_IFBLK | 0o640}]
    cp = runtime.sh("stat -c %a /dev/modes", config)
    assert cp.stdout.strip() == "640", describe(cp)


@pytest.mark.parametrize("document, message", [
    ('{"memory": 5}', "memory: 5 is not of type 'object'"),
    ('{"cpu": {"cpus": "0\\u0000"}}', "cpu.cpus: contains a NUL byte"),
    ('[' * 100000, "malformed JSON"),
])
@pytest.mark.pyrunc_only  # runc words these as Go's decoder
def test_update_resources_are_read_as_config_json(runtime, document, message):
    c = runtime.container(["sleep", "100"])
    c.start()
    cp = runtime.fail("update", "-r", "-", c.id, input=document)
    assert message in cp.stderr and len(cp.stderr.strip().splitlines()) == 1, describe(cp)


@pytest.mark.runc_lacks("runc opens a FIFO resources file and waits for a writer")
def test_update_resources_file_that_is_a_fifo(runtime, tmp_path):
    c = runtime.container(["sleep", "100"])
    c.start()
    fifo = tmp_path / "resources.json"
    os.mkfifo(fifo)
    runtime.fail("update", "-r", str(fifo), c.id, timeout=20)
