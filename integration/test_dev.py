"""/dev: default device nodes, the fd and stdio links, ptmx, shm (asserted with `ls -l /dev`, `stat`)."""
import pytest

from integration.helpers import mountinfo

DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
           "tty": (5, 0)}
LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
         "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


def test_default_devices(runtime):
    script = "; ".join(f"stat -c '%n %F %t %T %a' /dev/{d}" for d in DEVICES)
    out = runtime.sh(script).stdout.splitlines()
    assert len(out) == len(DEVICES)
    for line in out:
        path, rest = line.split(" ", 1)
        kind, major, minor, mode = rest.rsplit(" ", 3)
        name = path.rsplit("/", 1)[1]
        assert kind == "character special file", line
        assert (int(major, 16), int(minor, 16)) == DEVICES[name], line
        assert mode == "666", line


def test_ls_dev(runtime):
    out = runtime.sh("ls -l /dev").stdout
    entries = {line.split()[-1] if "->" not in line else line.split()[-3]: line
               for line in out.splitlines()[1:] if line.strip()}
    for name, (major, minor) in DEVICES.items():
        line = entries[name]
        assert line.startswith("c"), line
        assert f"{major}," in line and line.split(",")[1].split()[0] == str(minor), line
    for name, target in LINKS.items():
        assert entries[name].startswith("l"), entries[name]
        assert entries[name].endswith(f"{name} -> {target}"), entries[name]
    for d in ("pts", "shm", "mqueue"):
        assert entries[d].startswith("d"), entries[d]


def test_links_resolve(runtime):
    script = "; ".join(f"echo {n}=$(readlink /dev/{n})" for n in LINKS)
    out = dict(line.split("=", 1) for line in runtime.sh(script).stdout.split())
    assert out == LINKS


def test_devices_usable(runtime):
    # /dev/stdout is exercised inside a pipe: `run` hands the test's own stdout FILE to the container,
    # and re-opening it through /dev/stdout (O_TRUNC, or O_APPEND then a write at sh's stale offset)
    # would clobber the captured output.
    cp = runtime.sh("echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1 && "
                    "head -c 16 /dev/urandom | wc -c && head -c 8 /dev/random | wc -c && "
                    "(echo x > /dev/full) 2>/dev/null || echo full-refused; (echo via-fd > /dev/stdout) | cat; "
                    "ls /dev/fd/ | grep -c '^[012]$'")
    lines = cp.stdout.split("\n")
    assert lines[0].split() == ["00", "00", "00", "00"]
    assert lines[1].strip() == "16"
    assert lines[2].strip() == "8"
    assert lines[3] == "full-refused"
    assert lines[4] == "via-fd"
    assert lines[5].strip() == "3"


def test_no_host_devices(runtime):
    """Only the default devices: /dev is a fresh tmpfs, not the host's devtmpfs."""
    out = runtime.sh("ls /dev").stdout.split()
    assert "vda" not in out and "sda" not in out and "kmsg" not in out and "mem" not in out
    assert "console" not in out, "no /dev/console without a terminal"


def test_dev_shm_is_tmpfs(runtime):
    cp = runtime.sh("cat /proc/self/mountinfo; echo ---; echo data > /dev/shm/f; cat /dev/shm/f")
    info, data = cp.stdout.split("---\n")
    shm = mountinfo.at(mountinfo.parse(info), "/dev/shm")
    assert shm is not None and shm.fstype == "tmpfs"
    assert "size=65536k" in shm.super_options
    assert data == "data\n"


def test_ptmx_opens_a_pty(runtime):
    """/dev/ptmx -> pts/ptmx of the container's own devpts instance."""
    cp = runtime.sh("stat -L -c '%t %T' /dev/ptmx; ls /dev/pts")
    lines = cp.stdout.splitlines()
    assert lines[0] == "5 2"
    assert "ptmx" in lines[1].split()


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_device_owned_by_root(runtime, name):
    assert runtime.sh(f"stat -c '%u:%g' /dev/{name}").stdout == "0:0\n"


def test_dev_listing_uid_with_user(runtime):
    """Devices stay usable for a non-root process.user."""
    config = runtime.config()
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    cp = runtime.sh("echo x > /dev/null && head -c 1 /dev/zero | wc -c", config=config)
    assert cp.stdout.strip() == "1"


def _with_devices(runtime, script, devices, user=None):
    config = runtime.config()
    config["linux"]["devices"] = devices
    if user:
        config["process"]["user"] = user
    return runtime.sh(script, config=config).stdout.splitlines()


def test_linux_devices_get_type_numbers_mode_and_owner(runtime):
    devices = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/loopish", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 5, "gid": 6},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o640},
    ]
    out = _with_devices(runtime, "stat -c '%n %F %t,%T %a %u:%g' /dev/mynull /dev/sub/loopish /dev/myfifo",
                        devices)
    assert out == ["/dev/mynull character special file 1,3 620 1000:1001",
                   "/dev/sub/loopish block special file 7,c8 600 5:6",
                   "/dev/myfifo fifo 0,0 640 0:0"], out


def test_linux_devices_mode_is_enforced(runtime):
    """Group 1001 may write (620) but not read; a process of another group may do neither."""
    devices = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620,
                "uid": 1000, "gid": 1001}]
    script = ("echo x > /dev/mynull && echo write-ok || echo write-denied; "
              "cat /dev/mynull 2>/dev/null && echo read-ok || echo read-denied")
    assert _with_devices(runtime, script, devices, {"uid": 1002, "gid": 1001}) == ["write-ok", "read-denied"]
    assert _with_devices(runtime, script, devices, {"uid": 1002, "gid": 1002}) == ["write-denied",
                                                                                    "read-denied"]


def test_read_only_dev_with_devpts_on_it(runtime, tmp_path):
    """/dev a read-only tmpfs with devpts, shm and mqueue mounted on it, and a read-only tmpfs with
    a bind below it: runc mounts them writable, sets up what goes inside, and makes them read-only
    at the end; the nodes and mounts are all there and usable, and /dev refuses new files."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("in\n")
    config = runtime.config()
    for m in config["mounts"]:
        if m["destination"] == "/dev":
            m["options"].append("ro")
    config["mounts"].append({"destination": "/ro", "type": "tmpfs", "source": "tmpfs",
                             "options": ["ro", "size=64k"]})
    config["mounts"].append({"destination": "/ro/sub", "type": "bind", "source": str(src),
                             "options": ["rbind", "ro"]})
    cp = runtime.sh("echo x > /dev/null && echo null-ok; ls /dev/pts/ptmx; cat /ro/sub/f; "
                    "touch /dev/new 2>/dev/null || echo dev-ro; touch /ro/new 2>/dev/null || echo ro-ro",
                    config=config)
    assert cp.stdout.split() == ["null-ok", "/dev/pts/ptmx", "in", "dev-ro", "ro-ro"], cp.stdout
    ms = mountinfo.parse(runtime.sh("cat /proc/self/mountinfo", config=config).stdout)
    dev = [m for m in ms if m.mount_point == "/dev"][-1]
    assert dev.readonly and "ro" not in dev.super_options, dev  # a per-mount ro, as runc makes it
