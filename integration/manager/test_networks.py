"""pyctr's networks with the real CNI plugins (Debian's containernetworking-plugins): published
ports from the host (loopback, the host's address, the container's IP), UDP, -P, restart, names and
aliases on user-defined networks, connect/disconnect, and the faults (port in use, bad specs, a
missing plugin, a killed monitor, a pyctr killed between its CNI ADD and its record, concurrent
runs). Every test ends with no veth, bridge, netns file, iptables rule or IPAM lease of pyctr's
left, and ip_forward as it was."""
import json
import os
import signal
import socket
import stat
import threading

import pytest

from integration.helpers.runtime import describe, execute
from integration.manager.containers import IMAGE, build_image_archive, private_pyctr, wait_until
from integration.manager.conftest import PYCTR
from integration.manager.networks import (HostNet, free_port, http_get, store_leftovers, udp_ask,
                                          udp_echo_in)

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_image_archive(str(tmp_path_factory.mktemp("net-image")))


@pytest.fixture
def p(archive):
    host = HostNet()
    problems = []
    try:
        with private_pyctr(archive, "pyctr-net-") as p:
            yield p
            veths = host.ports_of_new_bridges()
            ids = p("ps", "-aq", "--no-trunc").stdout.split()
            if ids:
                p("rm", "-f", *ids)
            for n in p("network", "ls", "--format", "{{.Name}}").stdout.split():
                if n not in ("bridge", "host", "none"):
                    p("network", "rm", n)
            problems = store_leftovers(p) + [f"link {n}" for n in host.new_links(veths)] + \
                [f"rule {r}" for r in host.new_rules()]
    finally:
        host.restore()
    assert not problems, f"network leftovers: {problems}"


def _ip(p, name):
    return p.inspect(name)["NetworkSettings"]["IPAddress"]


def test_published_port_reached_on_loopback_host_address_and_container_ip(p):
    port = free_port()
    cid = p("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", IMAGE, *HTTPD, check=True).stdout.strip()
    ns = p.inspect("web")["NetworkSettings"]
    assert ns["IPAddress"] and ns["Gateway"] and ns["MacAddress"] and ns["IPPrefixLen"] == 24, ns
    assert ns["Networks"]["bridge"]["IPAddress"] == ns["IPAddress"]
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert p("port", "web", check=True).stdout == f"80/tcp -> 127.0.0.1:{port}\n"
    assert p("port", "web", "80", check=True).stdout == f"127.0.0.1:{port}\n"
    assert f"127.0.0.1:{port}->80/tcp" in p("ps").stdout
    wait_until(lambda: http_get("127.0.0.1", port) == cid[:12] + "\n", what="httpd on the loopback port")
    assert http_get(ns["IPAddress"], 80) == cid[:12] + "\n"
    # the container reaches the host through its gateway, and its files are Docker's
    assert "1 packets received" in p("exec", "web", "ping", "-c1", "-W2", ns["Gateway"], check=True).stdout
    hosts = p("exec", "web", "cat", "/etc/hosts", check=True).stdout
    assert hosts.startswith("127.0.0.1\tlocalhost\n") and f"{ns['IPAddress']}\t{cid[:12]}\n" in hosts
    resolv = p("exec", "web", "cat", "/etc/resolv.conf", check=True).stdout
    assert "nameserver 127." not in resolv and "nameserver" in resolv
    # the port is held: a second container cannot take it, and nothing of its attempt is left
    cp = p("run", "-d", "--name", "web2", "-p", f"127.0.0.1:{port}:80", IMAGE, *HTTPD)
    assert cp.returncode == 125 and f"127.0.0.1:{port} failed" in cp.stderr, describe(cp)
    assert p.inspect("web2")["State"]["Status"] in ("created", "exited")
    p("rm", "-f", "web", "web2", check=True)
    with pytest.raises(OSError):
        http_get("127.0.0.1", port, timeout=1)


def test_udp_published_port(p):
    port = free_port(socket.SOCK_DGRAM)
    p("run", "-d", "--name", "udp", "-p", f"127.0.0.1:{port}:5353/udp", IMAGE, "sleep", "300", check=True)
    ns = p.inspect("udp")["NetworkSettings"]
    assert ns["Ports"] == {"5353/udp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    echo = udp_echo_in(ns["SandboxKey"], 5353)
    try:
        assert udp_ask(ns["IPAddress"], 5353) == b"echo:ping"
        assert udp_ask("127.0.0.1", port, b"via-port") == b"echo:via-port"
    finally:
        os.killpg(echo.pid, signal.SIGKILL)
        echo.wait()


def test_publish_all_exposed_and_restart_keeps_ports(p):
    cid = p("run", "-d", "--name", "all", "--expose", "80", "-P", IMAGE, *HTTPD, check=True).stdout.strip()
    # -P binds every interface, as Docker; the test's own address is its loopback
    ports = p.inspect("all")["NetworkSettings"]["Ports"]
    assert list(ports) == ["80/tcp"] and int(ports["80/tcp"][0]["HostPort"]) > 1024, ports
    assert p.inspect("all")["HostConfig"]["PortBindings"] == {}   # -P resolved at start, as Docker
    fixed = free_port()
    p("run", "-d", "--name", "fixed", "-p", f"127.0.0.1:{fixed}:80", IMAGE, *HTTPD, check=True)
    p("restart", "-t", "0", "all", "fixed", check=True)
    assert p.inspect("all")["NetworkSettings"]["Ports"] == ports
    port = int(ports["80/tcp"][0]["HostPort"])
    wait_until(lambda: http_get("127.0.0.1", port) == cid[:12] + "\n", what="httpd after restart")
    wait_until(lambda: http_get("127.0.0.1", fixed).strip() != "", what="fixed port after restart")
    p("stop", "-t", "0", "all", check=True)
    stopped = p.inspect("all")["NetworkSettings"]
    assert stopped["IPAddress"] == "" and stopped["Ports"] == {}, stopped
    assert store_leftovers(p) == [] or "all" not in str(store_leftovers(p))


def test_names_aliases_connect_disconnect(p):
    p("network", "create", "--subnet", "10.199.71.0/24", "--label", "t=1", "tnet", check=True)
    net = json.loads(p("network", "inspect", "tnet", check=True).stdout)[0]
    assert net["IPAM"]["Config"] == [{"Subnet": "10.199.71.0/24", "Gateway": "10.199.71.1"}]
    assert net["Labels"] == {"t": "1"} and net["Driver"] == "bridge"
    srv = p("run", "-d", "--name", "srv", "--network", "tnet", "--network-alias", "alpha", IMAGE, *HTTPD,
            check=True).stdout.strip()
    p("run", "-d", "--name", "cli", "--network", "tnet", IMAGE, "sleep", "300", check=True)
    for name in ("srv", "alpha"):
        assert p("exec", "cli", "wget", "-q", "-O-", f"http://{name}/hostname", check=True).stdout == srv[:12] + "\n"
    assert "1 packets received" in p("exec", "cli", "ping", "-c1", "-W2", "10.199.71.1", check=True).stdout
    members = json.loads(p("network", "inspect", "tnet", check=True).stdout)[0]["Containers"]
    assert sorted(m["Name"] for m in members.values()) == ["cli", "srv"]
    cp = p("network", "rm", "tnet")
    assert cp.returncode == 1 and "active endpoints" in cp.stderr
    # disconnect: cli leaves, srv's hosts file (same inode, bind-mounted) forgets it
    p("network", "disconnect", "tnet", "cli", check=True)
    assert "\tcli" not in p("exec", "srv", "cat", "/etc/hosts", check=True).stdout
    assert "eth0" not in p("exec", "cli", "ip", "-o", "link", check=True).stdout
    p("network", "connect", "--alias", "beta", "tnet", "cli", check=True)
    assert "cli beta" in p("exec", "srv", "cat", "/etc/hosts", check=True).stdout
    p("exec", "cli", "sh", "-c", "httpd -p 8080 -h /etc", check=True)
    assert p("exec", "srv", "wget", "-q", "-O-", "http://beta:8080/hostname", check=True).stdout.strip()
    # the default bridge network resolves no names (Docker's rule)
    cp = p("run", "--rm", "--network-alias", "x1", IMAGE, "true")
    assert cp.returncode == 125 and "user-defined networks" in cp.stderr


@pytest.mark.parametrize("spec", ["0:80", "80:0", "65536:80", "80/xyz", "1.2.3:80:80", "8000-7999:80",
                                  "8000-8002:80-81", "a:80", ":80:", "80:", "-1:80", "[::1:80:80"])
def test_invalid_port_spec_is_a_clear_error(p, spec):
    cp = p("run", f"--publish={spec}", IMAGE, "true")
    assert cp.returncode == 125 and "invalid" in cp.stderr.lower() and "Traceback" not in cp.stderr, describe(cp)
    assert p("ps", "-aq").stdout == ""


def test_overlapping_subnet_and_bad_networks(p):
    p("network", "create", "--subnet", "10.199.72.0/24", "n1", check=True)
    for args, text in ((["--subnet", "10.199.72.128/25", "n2"], "overlaps"),
                       (["--subnet", "10.199.73.0/24", "--gateway", "10.199.74.1", "n3"], "no matching subnet"),
                       (["--subnet", "nonsense", "n4"], "invalid subnet"),
                       (["n1"], "already exists"), (["bad name"], "invalid network name"),
                       (["-d", "overlay", "n5"], "not found")):
        cp = p("network", "create", *args)
        assert cp.returncode != 0 and text in cp.stderr, describe(cp)
    cp = p("run", "--network", "nosuchnet", IMAGE, "true")
    assert cp.returncode == 125 and "network nosuchnet not found" in cp.stderr
    assert sorted(p("network", "ls", "--format", "{{.Name}}").stdout.split()) == ["bridge", "host", "n1", "none"]


def test_missing_plugin_fails_start_and_leaves_nothing(p, tmp_path):
    cni = tmp_path / "cni"
    cni.mkdir()
    for name in ("bridge", "host-local", "loopback", "portmap", "tuning"):   # firewall missing
        os.symlink(f"/usr/lib/cni/{name}", cni / name)
    env = dict(os.environ, PYCTR_CNI_PATH=str(cni))
    cp = execute([PYCTR, "--root", p.root, "--runroot", p.runroot, "run", "-d", "--name", "np", IMAGE, "true"],
                 env=env)
    assert cp.returncode == 125 and "CNI plugin firewall not found" in cp.stderr, describe(cp)
    assert store_leftovers(p) == []


def test_killed_pyctr_between_add_and_record_is_swept(p, tmp_path):
    """A `tuning` that SIGKILLs pyctr: the bridge, veth and lease exist, no record says so; the next
    `ps` runs DEL from the cache written before the ADD."""
    cni = tmp_path / "cni"
    cni.mkdir()
    for name in ("bridge", "host-local", "loopback", "portmap", "firewall"):
        os.symlink(f"/usr/lib/cni/{name}", cni / name)
    killer = cni / "tuning"
    killer.write_text('#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then kill -9 $PPID; fi\ncat >/dev/null\n'
                      'echo \'{"cniVersion":"1.0.0"}\'\n')
    killer.chmod(0o755)
    env = dict(os.environ, PYCTR_CNI_PATH=str(cni))
    cp = execute([PYCTR, "--root", p.root, "--runroot", p.runroot, "run", "-d", "--name", "half", IMAGE, "true"],
                 env=env)
    assert cp.returncode == -9, describe(cp)
    assert store_leftovers(p), "the kill came too late to test anything"
    p("ps", "-a", check=True)
    assert store_leftovers(p) == []


def test_killed_monitor_releases_the_network(p):
    port = free_port()
    p("run", "-d", "--name", "mon", "-p", f"127.0.0.1:{port}:80", IMAGE, *HTTPD, check=True)
    cid = p.inspect("mon")["Id"]
    with open(os.path.join(p.root, "containers", cid, "monitor.pid")) as f:
        monitor = int(f.read())
    pid = p.inspect("mon")["State"]["Pid"]
    os.kill(monitor, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: p.inspect("mon")["State"]["Status"] == "exited", what="exited")
    p("ps", "-a", check=True)
    assert store_leftovers(p) == []
    p("start", "mon", check=True)   # the port is free again and the container gets it back
    assert p("port", "mon", check=True).stdout == f"80/tcp -> 127.0.0.1:{port}\n"


def test_concurrent_runs_get_distinct_addresses(p):
    out, threads = {}, []

    def run(i):
        out[i] = p("run", "-d", "--name", f"c{i}", IMAGE, "sleep", "300")
    for i in range(6):
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join()
    assert all(cp.returncode == 0 for cp in out.values()), [describe(cp) for cp in out.values()]
    ips = [_ip(p, f"c{i}") for i in range(6)]
    assert len(set(ips)) == 6 and all(ips), ips


def test_failed_start_releases_network_and_port(p):
    """The runtime cannot run the command (127): the ADD already happened; DEL and the port freed."""
    port = free_port()
    cp = p("run", "-d", "--name", "bad", "-p", f"127.0.0.1:{port}:80", IMAGE, "/no/such/binary")
    assert cp.returncode == 127, describe(cp)
    assert store_leftovers(p) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))   # nobody holds it any more
