"""pyctr's networking next to Docker's: a private dockerd whose default network is a bridge this
test makes (no iptables: its ports go through docker-proxy; pyctr's through the portmap plugin), the
same `run -p` on both: the same answer on the host port, `port` lines, ps PORTS, the
HostConfig.PortBindings/Config.ExposedPorts that -p/-P/--expose store, and NetworkSettings' keys."""

import pytest

from integration.helpers.runtime import execute
from integration.manager.containers import IMAGE, build_image_archive, private_pyctr, wait_until
from integration.manager.networks import HostNet, free_port, http_get
from integration.manager.test_containers_docker import DockerCli
from integration.peers.test_docker import loaded_dockerd

BRIDGE, ADDR = "pctdk0", "10.199.90.1/24"
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_image_archive(str(tmp_path_factory.mktemp("netdk-image")))


@pytest.fixture(scope="module")
def docker(archive):
    try:
        for argv in (["ip", "link", "add", BRIDGE, "type", "bridge"], ["ip", "addr", "add", ADDR, "dev", BRIDGE],
                     ["ip", "link", "set", BRIDGE, "up"]):
            assert execute(argv).returncode == 0
        with loaded_dockerd(archive, "pyctr-ndk-", bridge=BRIDGE) as d:
            yield DockerCli(d)
    finally:
        execute(["ip", "link", "delete", BRIDGE])


@pytest.fixture
def pyctr(archive):
    host = HostNet()
    try:
        with private_pyctr(archive, "pyctr-ndk-") as p:
            yield p
    finally:
        host.restore()


def test_published_port_same_as_docker(docker, pyctr):
    for tool in (docker, pyctr):
        port = free_port()
        cid = tool("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "--expose", "90", IMAGE, *HTTPD,
                   check=True).stdout.strip()
        try:
            wait_until(lambda: http_get("127.0.0.1", port) == cid[:12] + "\n", what=f"{tool.name} port")
            assert tool("port", "web", check=True).stdout == f"80/tcp -> 127.0.0.1:{port}\n", tool.name
            assert tool("port", "web", "80/tcp", check=True).stdout == f"127.0.0.1:{port}\n", tool.name
            ps = tool("ps", "--format", "{{.Ports}}", check=True).stdout.strip()
            assert ps == f"90/tcp, 127.0.0.1:{port}->80/tcp", (tool.name, ps)   # Docker's order
            ns = tool.inspect("web")["NetworkSettings"]
            assert ns["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}], tool.name
            assert ns["Ports"]["90/tcp"] is None, ns["Ports"]
            ep = ns["Networks"]["bridge"]
            assert ep["IPAddress"] == ns["IPAddress"] and ep["Gateway"] == ns["Gateway"] != "", tool.name
            assert http_get(ns["IPAddress"], 80) == cid[:12] + "\n"
        finally:
            tool("rm", "-f", "web")


@pytest.mark.parametrize("flags", [["-p", "8080:80"], ["-p", "127.0.0.1:8080:80/udp"], ["-p", "80"],
                                   ["-p", "8000-8001:80-81"], ["-p", "127.0.0.1::53/udp"], ["--expose", "7000", "-P"],
                                   ["-p", "9000:90", "-p", "9001:90"]])
def test_port_bindings_stored_as_docker(docker, pyctr, flags):
    got = {}
    for tool in (docker, pyctr):
        tool("create", "--name", "c1", *flags, IMAGE, "true", check=True)
        try:
            rec = tool.inspect("c1")
            got[tool.name] = (rec["HostConfig"]["PortBindings"], rec["HostConfig"]["PublishAllPorts"],
                              sorted(rec["Config"]["ExposedPorts"] or {}))
        finally:
            tool("rm", "-f", "c1")
    assert got["pyctr"] == got["docker"]
