"""Namespaces: new ones for pid, uts, ipc, net, mount, cgroup; joining existing ones by path."""
import os

import pytest

from integration.helpers.runtime import drop_namespace, execute, set_namespace

NS_KINDS = ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
NS_TYPE = {"pid": "pid", "net": "network", "ipc": "ipc", "uts": "uts", "mnt": "mount", "cgroup": "cgroup"}


def _inside_ns(runtime, config=None):
    script = " ".join(f"echo {k}=$(readlink /proc/self/ns/{k});" for k in NS_KINDS)
    out = runtime.sh(script, config=config).stdout
    return dict(line.split("=", 1) for line in out.split())


def test_pid_namespace_init_is_pid_1(runtime):
    out = runtime.sh("echo $$; cat /proc/1/status | grep -E '^(Name|Pid|PPid):'").stdout.splitlines()
    assert out[0] == "1"
    status = dict(line.split(":\t") for line in out[1:])
    assert status["Pid"] == "1"
    assert status["PPid"] == "0"
    assert status["Name"] == "sh"


def test_pid_namespace_only_container_processes(runtime):
    out = runtime.sh("ls /proc | grep -E '^[0-9]+$' | wc -l").stdout
    # sh, ls, grep, wc: a handful, never the host's processes
    assert int(out) <= 5


def test_uts_hostname(runtime):
    config = runtime.config(hostname="box-1")
    assert runtime.sh("hostname; cat /proc/sys/kernel/hostname", config=config).stdout == "box-1\nbox-1\n"
    assert os.uname().nodename != "box-1"


@pytest.mark.runc_lacks("runc 1.1.5 ignores `domainname` (added in runc 1.2)")
def test_uts_domainname(runtime):
    config = runtime.config(hostname="h", domainname="example.test")
    assert runtime.sh("cat /proc/sys/kernel/domainname", config=config).stdout == "example.test\n"


def test_new_namespaces_differ_from_host(runtime):
    inside = _inside_ns(runtime, set_namespace(runtime.config(), "cgroup"))
    for kind in NS_KINDS:
        assert inside[kind] != os.readlink(f"/proc/self/ns/{kind}"), f"{kind} namespace is the host's"


def test_network_namespace_has_only_lo(runtime):
    out = runtime.sh("tail -n +3 /proc/net/dev | cut -d: -f1; ls /sys/class/net").stdout.split()
    assert sorted(out) == ["lo", "lo"]


def test_loopback_present(runtime):
    out = runtime.sh("cat /sys/class/net/lo/ifindex").stdout
    assert out.strip() == "1"


def _lo_flags(runtime, config=None):
    return int(runtime.sh("cat /sys/class/net/lo/flags", config=config).stdout, 16)


def test_new_network_namespace_has_lo_up(runtime, netns):
    """runc and crun bring `lo` up in a network namespace they create (IFF_UP, 0x1), and leave a
    namespace joined by path as it is (a fresh `ip netns add` one has lo down)."""
    assert _lo_flags(runtime) & 0x1
    assert not _lo_flags(runtime, set_namespace(runtime.config(), "network", netns)) & 0x1


def test_no_network_namespace_shares_host(runtime):
    config = drop_namespace(runtime.config(), "network")
    inside = _inside_ns(runtime, config)
    assert inside["net"] == os.readlink("/proc/self/ns/net")


def test_ipc_namespace_isolated(runtime):
    """A SysV shm id created on the host is not visible inside."""
    out = runtime.sh("cat /proc/sysvipc/shm | wc -l").stdout
    assert int(out) == 1  # header only


def test_join_network_namespace_by_path(runtime, netns):
    config = set_namespace(runtime.config(), "network", netns)
    inside = _inside_ns(runtime, config)
    assert inside["net"] == f"net:[{os.stat(netns).st_ino}]"


def test_join_ipc_and_uts_namespaces_of_a_process(runtime, ns_holder):
    pid = ns_holder("ipc", "uts")
    config = runtime.config()
    set_namespace(config, "ipc", f"/proc/{pid}/ns/ipc")
    set_namespace(config, "uts", f"/proc/{pid}/ns/uts")
    config["hostname"] = "joined-uts"
    inside = _inside_ns(runtime, config)
    assert inside["ipc"] == os.readlink(f"/proc/{pid}/ns/ipc")
    assert inside["uts"] == os.readlink(f"/proc/{pid}/ns/uts")
    # the hostname was set in the joined namespace, not the host's
    cp = execute(["nsenter", "-t", str(pid), "-u", "hostname"])
    assert cp.stdout.strip() == "joined-uts", cp
    assert os.uname().nodename != "joined-uts"


def test_join_pid_namespace_sees_holder(runtime, ns_holder):
    """Joining a pid namespace by path: the holder's process is visible inside."""
    pid = ns_holder("pid")
    config = set_namespace(runtime.config(), "pid", f"/proc/{pid}/ns/pid")
    out = runtime.sh("echo $$; cat /proc/1/comm", config=config).stdout.split()
    assert out[0] != "1"
    assert out[1] == "sleep"


def test_join_nonexistent_namespace_path_fails(runtime, tmp_path):
    config = set_namespace(runtime.config(), "network", str(tmp_path / "no-such-ns"))
    c = runtime.bundle(config)
    cp = runtime.fail("create", "--bundle", c.bundle, c.id)
    assert c.leftovers() == []
    assert "no-such-ns" in cp.stderr


def test_join_wrong_namespace_type_fails(runtime, netns):
    """A network namespace file given as the uts namespace is refused (setns checks the type)."""
    config = set_namespace(runtime.config(), "uts", netns)
    c = runtime.bundle(config)
    runtime.fail("create", "--bundle", c.bundle, c.id)
    assert c.leftovers() == []


@pytest.mark.parametrize("kind", ["ipc", "uts", "cgroup"])
def test_without_namespace_shares_host(runtime, kind):
    config = drop_namespace(runtime.config(), NS_TYPE[kind])
    if kind == "uts":
        config.pop("hostname", None)
    inside = _inside_ns(runtime, config)
    assert inside[kind] == os.readlink(f"/proc/self/ns/{kind}")
