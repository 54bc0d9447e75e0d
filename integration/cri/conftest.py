"""Fixtures for the CRI tests: one private containerd with its CRI plugin per test module (see
cri.py), checked for leftovers at the end; the runtime handler under test."""
import os

import pytest

from integration.cri.cri import HANDLERS, CriContainerd


@pytest.fixture(scope="module")
def cri():
    if os.geteuid() != 0:
        pytest.fail("the CRI integration tests need root")
    c = CriContainerd()
    try:
        yield c
    finally:
        problems = c.stop()
    assert not problems, f"left behind: {problems}"


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param
