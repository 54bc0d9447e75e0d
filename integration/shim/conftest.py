"""Fixtures for the shim's integration tests: a private containerd with the busybox image imported,
and the runtime under the shim (pyrunc, and runc for comparison)."""
import os
import shutil
import tempfile

import pytest

from integration.shim.containerd import REPO, Containerd
from integration.shim.images import build_docker_archive

IMAGE = "pyrunc.test/busybox:latest"
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
RUNC = shutil.which("runc") or "/usr/sbin/runc"

@pytest.fixture(scope="module")
def containerd():
    if os.geteuid() != 0:
        pytest.fail("the shim integration tests need root")
    c = Containerd()
    try:
        tar = os.path.join(c.dir, "busybox.tar")
        build_docker_archive(tar, IMAGE)
        c.ctr("image", "import", tar)
        yield c
    finally:
        problems = c.stop()
    assert not problems, f"left behind: {problems}"


@pytest.fixture(params=["pyrunc", "runc"])
def binary(request):
    return PYRUNC if request.param == "pyrunc" else RUNC


@pytest.fixture
def make_shim():
    """make(args, binary, cid, terminal=False, memory_limit=None, annotations=None, host_pid=False,
    shim=None, path=None, ...): a shim started as containerd starts it (shim: which executable,
    path: its $PATH; the other keywords go to Shim), on a fresh busybox bundle running args (with
    those annotations; host_pid: no pid namespace of its own); every shim is closed and checked at
    teardown."""
    from integration.helpers.bundle import config_for, make_bundle
    from integration.shim.shimclient import Shim
    d = tempfile.mkdtemp(prefix="pyrunc-shim-it-")
    made = []

    def make(args, binary, cid, terminal=False, memory_limit=None, annotations=None, host_pid=False, **shim_kw):
        bundle = os.path.join(d, cid)
        cfg = config_for(list(args))
        cfg["process"]["terminal"] = terminal
        if memory_limit:
            cfg["linux"].setdefault("resources", {})["memory"] = {"limit": memory_limit}
        if annotations:
            cfg["annotations"] = annotations
        if host_pid:
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
        make_bundle(bundle, config=cfg)
        s = Shim(binary, cid, bundle, os.path.join(d, "root"), **shim_kw)
        made.append(s)
        return s
    yield make
    problems = []
    for s in made:
        problems += s.close()
    shutil.rmtree(d, ignore_errors=True)
    assert not problems, problems
