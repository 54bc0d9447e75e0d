"""Fixtures for the shim's integration tests: a private containerd with the busybox image imported,
and the runtime under the shim (pyrunc, and runc for comparison)."""
import os
import shutil

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
