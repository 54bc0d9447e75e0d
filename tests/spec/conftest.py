"""Import pyrunc from this tree (the installed copy may be stale) and keep the validator cache of
the test session out of /var/cache/pyrunc."""
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"

sys.path.insert(0, str(REPO / "runtime"))


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pyrunc-cache")
    old = os.environ.get("PYRUNC_CACHE_DIR")
    os.environ["PYRUNC_CACHE_DIR"] = str(directory)
    yield directory
    if old is None:
        os.environ.pop("PYRUNC_CACHE_DIR", None)
    else:
        os.environ["PYRUNC_CACHE_DIR"] = old
