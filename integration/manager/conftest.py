"""Fixtures for pyctr's integration tests: `pyctr` (the installed CLI with a private --root whose
mounts are undone at teardown, failing the test if any was left), `registry`/`token_registry`
(a real docker-registry on 127.0.0.1), `rootfs_tar` (a busybox rootfs tarball)."""
import os
import subprocess

import pytest

from integration.helpers import mountinfo
from integration.helpers.bundle import make_rootfs, write_rootfs_tar
from integration.helpers.runtime import REPO, assert_no_traceback, describe, execute
from integration.manager.registry import Registry, TokenServer

PYCTR = os.path.join(REPO, ".venv", "bin", "pyctr")


class Pyctr:
    def __init__(self, root, authfile):
        self.root, self.authfile = root, authfile
        self.extra_env = {}

    def env(self):
        return dict(os.environ, REGISTRY_AUTH_FILE=self.authfile, **self.extra_env)

    def run(self, *args, check=True, input=None, timeout=300):
        cp = execute([PYCTR, "--root", self.root, *args], input=input, timeout=timeout, env=self.env())
        assert_no_traceback(cp, f"for pyctr {args}")
        assert "internal error" not in cp.stderr, describe(cp)
        if check and cp.returncode != 0:
            raise AssertionError("pyctr failed\n" + describe(cp))
        return cp

    def fail(self, *args, **kw):
        cp = self.run(*args, check=False, **kw)
        assert cp.returncode != 0, "expected failure\n" + describe(cp)
        assert cp.stderr.strip().splitlines()[-1].startswith("Error: "), describe(cp)
        return cp

    def popen(self, *args):
        return subprocess.Popen([PYCTR, "--root", self.root, *args], env=self.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def listdir(self, rel):
        """Names in a dir of the store; none if the store (created lazily, removed again by a
        command that failed before storing anything) or the dir does not exist."""
        d = os.path.join(self.root, rel)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def layers(self):
        d = os.path.join(self.root, "image/overlay2/layerdb/sha256")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def overlay_dirs(self):
        d = os.path.join(self.root, "overlay2")
        return sorted(n for n in os.listdir(d) if n != "l") if os.path.isdir(d) else []


@pytest.fixture(scope="session", autouse=True)
def host_network_restored():
    """Containers join pyctr's bridge network by default and the CNI bridge plugin turns on
    ip_forward: the host's value back at the end (and the plugins' shared chains, if these tests
    made them and nobody else uses them)."""
    from integration.manager.networks import HostNet
    before = HostNet()
    yield
    before.restore()


@pytest.fixture
def pyctr(tmp_path):
    assert os.access(PYCTR, os.X_OK), f"{PYCTR} missing: run scripts/setup"
    p = Pyctr(str(tmp_path / "pyctr-root"), str(tmp_path / "auth.json"))
    yield p
    problems = []
    if os.path.isdir(p.root):
        cp = execute([PYCTR, "--root", p.root, "mounts"])
        for line in cp.stdout.splitlines():
            name = line.split("\t")[0]
            problems.append(f"pyctr mount {line} left")
            execute([PYCTR, "--root", p.root, "umount", name])
    for m in reversed(mountinfo.read()):
        if m.mount_point.startswith(str(tmp_path)):
            problems.append(f"mount {m.mount_point}")
            execute(["umount", "-l", m.mount_point])
    if problems:
        pytest.fail("leftovers:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def registry(tmp_path):
    r = Registry(str(tmp_path / "registry"))
    yield r
    r.stop()


@pytest.fixture
def token_registry(tmp_path):
    workdir = tmp_path / "token-registry"
    workdir.mkdir()
    token = TokenServer(str(workdir))
    r = Registry(str(workdir), token=token)
    r.token = token
    yield r
    r.stop()
    token.stop()


@pytest.fixture
def htpasswd_registry(tmp_path):
    r = Registry(str(tmp_path / "htpasswd-registry"), htpasswd=("bob", "builder"))
    yield r
    r.stop()


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory):
    d = tmp_path_factory.mktemp("bbrootfs")
    rootfs = make_rootfs(str(d / "rootfs"))
    with open(os.path.join(rootfs, "etc", "motd"), "w") as f:
        f.write("made for pyctr tests\n")
    path = str(d / "rootfs.tar")
    write_rootfs_tar(rootfs, path)
    return path
