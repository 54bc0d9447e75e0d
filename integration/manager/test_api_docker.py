"""`pyctr system service`: the real docker CLI and docker-py drive pyctr's store through the Docker
Engine API socket; what one makes the pyctr CLI sees; bad requests get Docker's codes."""
import json
import os
import socket
import subprocess
import time

import pytest

from integration.helpers.runtime import describe, execute
from integration.manager.containers import IMAGE, build_image_archive, private_pyctr
from integration.manager.conftest import PYCTR


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_image_archive(str(tmp_path_factory.mktemp("api-image")))


@pytest.fixture(scope="module")
def service(archive):
    with private_pyctr(archive, "pyctr-api-") as p:
        sock = os.path.join(p.root, "api.sock")
        proc = subprocess.Popen([PYCTR, "--root", p.root, "--runroot", p.runroot, "system", "service",
                                 "--time", "0", f"unix://{sock}"], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(sock):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.05)
            p.sock = sock
            yield p
        finally:
            for cid in p("ps", "-aq").stdout.split():
                p("rm", "-f", cid)
            proc.terminate()
            err = proc.communicate(timeout=20)[1]
            assert "Traceback" not in err, err
            assert not os.path.exists(sock)


def docker(service, *args, timeout=60):
    cp = execute(["docker", "-H", f"unix://{service.sock}", *args], timeout=timeout,
                 env=dict(os.environ, DOCKER_CONFIG=os.path.join(service.root, "docker-client")))
    return cp


def test_docker_cli_run_ps_logs_stop_rm(service):
    cp = docker(service, "run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (cp.returncode, cp.stdout, cp.stderr) == (3, "out\n", "err\n"), describe(cp)
    cp = docker(service, "run", "-d", "--name", "api1", IMAGE, "sh", "-c", "echo hi; sleep 60")
    assert cp.returncode == 0, describe(cp)
    cid = cp.stdout.strip()
    assert len(cid) == 64
    # the pyctr CLI sees what the API made, and the other way round
    assert service("ps", "-q", check=True).stdout.split() == [cid[:12]]
    assert docker(service, "ps", "--format", "{{.Names}} {{.State}}").stdout == "api1 running\n"
    assert docker(service, "logs", "api1").stdout == "hi\n"
    assert json.loads(docker(service, "inspect", "api1").stdout)[0]["State"]["Running"] is True
    cp = docker(service, "stop", "-t", "1", "api1")
    assert cp.returncode == 0 and cp.stdout == "api1\n", describe(cp)
    assert service.inspect("api1")["State"]["Status"] == "exited"
    assert docker(service, "rm", "api1").returncode == 0
    assert service("ps", "-aq").stdout == ""


def test_docker_cli_images_and_volumes(service):
    assert IMAGE.split(":")[0] in docker(service, "images").stdout
    assert docker(service, "volume", "create", "apivol").stdout == "apivol\n"
    assert "apivol" in service("volume", "ls", "-q").stdout.split()
    assert docker(service, "volume", "rm", "apivol").returncode == 0
    assert "apivol" not in service("volume", "ls", "-q").stdout.split()


def test_docker_py(service):
    import docker as dockerpy
    client = dockerpy.DockerClient(base_url=f"unix://{service.sock}")
    try:
        assert client.ping()
        assert client.version()["ApiVersion"] == "1.41"
        out = client.containers.run(IMAGE, ["echo", "from-py"], remove=True)
        assert out == b"from-py\n"
        c = client.containers.run(IMAGE, ["sleep", "60"], detach=True, name="py1")
        assert client.containers.get("py1").status == "running"
        c.kill()
        assert c.wait()["StatusCode"] == 137
        c.remove()
        with pytest.raises(dockerpy.errors.NotFound):
            client.containers.get("py1")
    finally:
        client.close()


def _raw(service, request):
    s = socket.socket(socket.AF_UNIX)
    s.connect(service.sock)
    try:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


@pytest.mark.parametrize("request_, status", [
    (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
     b"Content-Length: 5\r\n\r\n{nope", b"400"),
    (b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n[]", b"400"),
    (b"GET /v1.41/containers/nosuch/json HTTP/1.1\r\nHost: d\r\n\r\n", b"404"),
    (b"GET /images/nosuch:tag/json HTTP/1.1\r\nHost: d\r\n\r\n", b"404"),
    (b"DELETE /volumes/nosuch HTTP/1.1\r\nHost: d\r\n\r\n", b"404"),
    (b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 26\r\n\r\n{\"Image\": \"nosuch:latest\"}",
     b"404"),
])
def test_bad_requests(service, request_, status):
    reply = _raw(service, request_)
    assert reply.split(b" ")[1] == status, reply
    assert b'"message"' in reply or b"Content-Length: 0" not in reply
    assert b"Traceback" not in reply and b"Error:" not in reply.split(b"\r\n\r\n")[0]


def test_client_hangs_up_mid_attach(service):
    """An attach whose client leaves: the container runs on, nothing of the service is held."""
    cid = docker(service, "run", "-d", IMAGE, "sleep", "60").stdout.strip()
    s = socket.socket(socket.AF_UNIX)
    s.connect(service.sock)
    s.sendall(f"POST /containers/{cid}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
              f"Upgrade: tcp\r\n\r\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 101")
    s.close()
    assert service.inspect(cid)["State"]["Running"] is True
    assert docker(service, "rm", "-f", cid).returncode == 0


def test_docker_cli_publishes_a_port(service):
    """-p through the API (HostConfig.PortBindings) goes through the same parser as `pyctr run -p`:
    the port is served on the host, and `docker port` / pyctr's inspect agree."""
    from integration.manager.networks import free_port, http_get
    from integration.manager.containers import wait_until
    port = free_port()
    cp = docker(service, "run", "-d", "--name", "apiweb", "-p", f"127.0.0.1:{port}:80", IMAGE,
                "httpd", "-f", "-p", "80", "-h", "/etc")
    assert cp.returncode == 0, describe(cp)
    try:
        cid = cp.stdout.strip()
        assert service.inspect("apiweb")["NetworkSettings"]["Ports"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        assert docker(service, "port", "apiweb").stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
        wait_until(lambda: http_get("127.0.0.1", port) == cid[:12] + "\n", what="httpd on the published port")
    finally:
        assert docker(service, "rm", "-f", "apiweb").returncode == 0
