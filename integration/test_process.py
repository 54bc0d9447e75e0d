"""process: env, cwd, user, umask, rlimits, oomScoreAdj, noNewPrivileges; linux.sysctl."""
import os
import resource

import pytest

from integration.helpers.runtime import add_mount, describe, drop_namespace


def _status(text):
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _limits(text):
    """/proc/<pid>/limits -> {'Max open files': ('512', '1024'), ...}"""
    out = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        soft, hard = line[26:].split()[:2]
        out[name] = (soft, hard)
    return out


def test_env(runtime):
    config = runtime.config()
    config["process"]["env"] = ["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=", "MULTI=a=b"]
    out = runtime.sh("echo \"$FOO|$EMPTY|$MULTI|$PATH\"; env", config=config).stdout.splitlines()
    assert out[0] == "bar baz||a=b|/bin:/sbin"
    env = set(out[1:])
    assert {"FOO=bar baz", "EMPTY=", "MULTI=a=b", "PATH=/bin:/sbin"} <= env
    assert not any(e.startswith("PYRUNC") or e.startswith("PYTEST") for e in env), \
        f"the runtime's environment leaked into the container: {env}"


def test_env_not_inherited_from_runtime(runtime):
    config = runtime.config()
    config["process"]["env"] = ["PATH=/bin"]
    out = runtime.sh("env", config=config).stdout.split()
    names = {e.split("=", 1)[0] for e in out}
    assert names <= {"PATH", "HOME", "PWD", "SHLVL", "_"}, names


def test_cwd(runtime):
    config = runtime.config()
    config["process"]["cwd"] = "/tmp"
    assert runtime.sh("pwd", config=config).stdout == "/tmp\n"


def test_cwd_created_if_missing(runtime):
    """runc creates a missing cwd (in a writable rootfs)."""
    config = runtime.config(root={"path": "rootfs", "readonly": False})
    config["process"]["cwd"] = "/work/dir"
    assert runtime.sh("pwd", config=config).stdout == "/work/dir\n"


def test_user_uid_gid_additional_gids(runtime):
    config = runtime.config()
    config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20]}
    out = runtime.sh("id; grep -E '^(Uid|Gid|Groups):' /proc/self/status", config=config).stdout
    idline, status = out.split("\n", 1)
    assert idline.startswith("uid=1000 gid=1001"), idline
    st = _status(status)
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert sorted(int(g) for g in st["Groups"].split()) == [10, 20]


def test_user_root_has_no_supplementary_groups_from_host(runtime):
    out = runtime.sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status").stdout
    st = _status(out)
    assert st["Uid"].split() == ["0"] * 4
    assert st["Gid"].split() == ["0"] * 4
    assert st["Groups"].split() in ([], ["0"])


def test_user_with_named_passwd_entry(runtime):
    config = runtime.config()
    config["process"]["user"] = {"uid": 65534, "gid": 65534}
    assert runtime.sh("id -un; id -u", config=config).stdout == "nobody\n65534\n"


@pytest.mark.parametrize("umask,expected", [(0o077, "0077"), (0o027, "0027"), (0, "0000")])
def test_umask(runtime, umask, expected):
    config = runtime.config()
    config["process"]["user"]["umask"] = umask
    out = runtime.sh("umask; touch /tmp/f 2>/dev/null || touch /dev/shm/f; stat -c %a /dev/shm/f /tmp/f "
                     "2>/dev/null | head -1", config=config).stdout.split()
    assert out[0] == expected
    assert int(out[1], 8) == 0o666 & ~umask


def test_rlimits(runtime):
    config = runtime.config()
    config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
    ]
    out = runtime.sh("ulimit -n; ulimit -Hn; ulimit -Sn; echo ---; ulimit -a; echo ---; cat /proc/self/limits",
                     config=config).stdout
    nums, ulimit_a, limits = out.split("---\n")
    assert nums.split() == ["512", "1024", "512"]
    assert "512" in ulimit_a
    lim = _limits(limits)
    assert lim["Max open files"] == ("512", "1024")
    assert lim["Max processes"] == ("100", "200")
    assert lim["Max core file size"] == ("0", "0")
    assert lim["Max stack size"] == ("4194304", "8388608")


def test_rlimit_default_nofile(runtime):
    """runc's template sets RLIMIT_NOFILE 1024/1024."""
    assert runtime.sh("ulimit -n; ulimit -Hn").stdout.split() == ["1024", "1024"]


def test_rlimit_raise_hard_above_host_fails(runtime):
    """Without CAP_SYS_RESOURCE the hard limit cannot go above the runtime's own hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    config = runtime.config()
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    c = runtime.bundle(config)
    if _has_cap_sys_resource():
        pytest.fail("this machine's runtime has CAP_SYS_RESOURCE: the test premise is wrong")
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert c.leftovers() == []
    assert "rlimit" in cp.stderr.lower(), cp.stderr


@pytest.mark.pyrunc_only
def test_rlimit_raise_hard_error_names_the_rlimit(runtime):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    config = runtime.config()
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    c = runtime.bundle(config)
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert "RLIMIT_NOFILE" in cp.stderr, cp.stderr


def _has_cap_sys_resource():
    with open("/proc/self/status") as f:
        eff = int(_status(f.read())["CapEff"].strip(), 16)
    return bool(eff & (1 << 24))


def test_oom_score_adj(runtime):
    config = runtime.config()
    config["process"]["oomScoreAdj"] = 500
    assert runtime.sh("cat /proc/self/oom_score_adj", config=config).stdout == "500\n"


def test_oom_score_adj_untouched_when_unset(runtime):
    with open("/proc/self/oom_score_adj") as f:
        ours = f.read()
    assert runtime.sh("cat /proc/self/oom_score_adj").stdout == ours


def test_no_new_privileges(runtime):
    out = runtime.sh("grep NoNewPrivs /proc/self/status").stdout
    assert out.split() == ["NoNewPrivs:", "1"]


def test_no_new_privileges_false(runtime):
    with open("/proc/self/status") as f:
        ours = _status(f.read())["NoNewPrivs"].strip()
    config = runtime.config()
    config["process"]["noNewPrivileges"] = False
    out = runtime.sh("grep NoNewPrivs /proc/self/status", config=config).stdout
    assert out.split() == ["NoNewPrivs:", ours]


def test_sysctl_net_in_new_netns(runtime):
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host = f.read()
    config = runtime.config()
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1" if host.strip() == "0" else "0"}
    out = runtime.sh("cat /proc/sys/net/ipv4/ip_forward", config=config).stdout
    assert out.strip() == config["linux"]["sysctl"]["net.ipv4.ip_forward"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host, "sysctl leaked to the host"


def test_sysctl_ipc(runtime):
    with open("/proc/sys/kernel/shmmax") as f:
        host = f.read()
    config = runtime.config()
    config["linux"]["sysctl"] = {"kernel.shmmax": "65536", "kernel.msgmax": "4096"}
    out = runtime.sh("cat /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax", config=config).stdout
    assert out.split() == ["65536", "4096"]
    with open("/proc/sys/kernel/shmmax") as f:
        assert f.read() == host


def test_sysctl_slash_form(runtime):
    config = runtime.config()
    config["linux"]["sysctl"] = {"net/ipv4/ip_forward": "1"}
    assert runtime.sh("cat /proc/sys/net/ipv4/ip_forward", config=config).stdout == "1\n"


def test_sysctl_net_without_netns_refused(runtime):
    """A net.* sysctl would change the host's when the network namespace is shared: refused."""
    config = drop_namespace(runtime.config(), "network")
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c = runtime.bundle(config)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host = f.read()
    runtime.fail("create", "--bundle", c.bundle, c.id)
    assert c.leftovers() == []
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host


def test_args_with_spaces_and_quotes(runtime):
    c = runtime.bundle(["echo", "a b", "'c'", '"d"', "$HOME"])
    assert c.run().stdout == "a b 'c' \"d\" $HOME\n"


def test_only_stdio_fds_passed(runtime):
    out = runtime.sh("ls /proc/self/fd").stdout.split()
    # sh's own fds 0-2, plus the fd `ls` uses to read the directory
    assert set(out) <= {"0", "1", "2", "3"}, out


def test_init_parent_pid_is_zero(runtime):
    out = _status(runtime.sh("cat /proc/self/status").stdout)
    assert out["PPid"].strip() == "0"


def _without_home(config):
    config["process"]["env"] = [e for e in config["process"]["env"] if not e.startswith("HOME=")]
    return config


@pytest.mark.parametrize("uid,home", [(0, "/root"), (65534, "/"), (4242, "/")])
def test_home_from_the_image_passwd(runtime, uid, home):
    """With no HOME in process.env, HOME is the user's passwd entry's dir, else "/" (as runc)."""
    config = _without_home(runtime.config(["sh", "-c", "echo $HOME"]))
    config["process"]["user"] = {"uid": uid, "gid": uid}
    assert runtime.bundle(config).run().stdout == home + "\n"


def _plant_passwd(rootfs, trap):
    """Replace the image's /etc/passwd with a trap for a runtime that trusts it."""
    path = os.path.join(rootfs, "etc", "passwd")
    os.unlink(path)
    if trap == "fifo":
        os.mkfifo(path)  # opening it for reading blocks until a writer comes: none will
    elif trap == "directory":
        os.mkdir(path)
    else:  # 8 GiB of holes, root's entry only past the first 4 MiB that the runtime reads
        with open(path, "wb") as f:
            f.seek(5 << 20)
            f.write(b"root:x:0:0:root:/trap:/bin/sh\n")
            f.truncate(8 << 30)


@pytest.mark.runc_lacks("runc 1.1.5 hangs on a FIFO /etc/passwd, and fails the container on a directory "
                        "('is a directory') or a huge file ('token too long')")
@pytest.mark.parametrize("trap", ["fifo", "directory", "sparse"])
def test_home_lookup_in_a_hostile_image(runtime, trap):
    """An image whose /etc/passwd is a FIFO (runc 1.1.5 hangs opening it), a directory or a huge
    sparse file neither hangs nor fails `run` and `exec`: HOME is then "/"."""
    config = _without_home(runtime.config(["sh", "-c", "echo $HOME"]))
    c = runtime.bundle(config)
    _plant_passwd(c.rootfs, trap)
    assert c.run(timeout=20).stdout == "/\n"
    config = _without_home(runtime.config(["sleep", "1000"]))
    c = runtime.container(config, create=False)
    _plant_passwd(c.rootfs, trap)
    c.create(timeout=20)
    c.start()
    assert runtime.run("exec", c.id, "sh", "-c", "echo $HOME", timeout=20).stdout == "/\n"


def test_cwd_reachable_only_by_root_is_entered_before_the_user_switch(runtime):
    """runc enters cwd while still root: a non-root user may start in a dir under a 0700 root
    dir (here a tmpfs mounted mode=700), and a cwd it cannot reach by itself is still its cwd."""
    config = runtime.config()
    add_mount(config, "/secret", "tmpfs", "tmpfs", ["mode=700", "size=64k"])
    config["process"]["cwd"] = "/secret/work"
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    cp = runtime.sh("pwd; id -u; ls /secret >/dev/null 2>&1 || echo no-access", config=config)
    assert cp.stdout == "/secret/work\n1000\nno-access\n", describe(cp)
