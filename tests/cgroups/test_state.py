"""to_state/from_state: state, kill and delete rebuild the manager without reading the host's mounts."""
import json

import pytest

import hosts
from pyrunc.cgroups import manager, mountinfo
from pyrunc.errors import StepError


@pytest.mark.parametrize("text,own", [
    (hosts.V1_MOUNTINFO, hosts.V1_SELF_CGROUP),
    (hosts.HYBRID_MOUNTINFO, hosts.HYBRID_SELF_CGROUP),
    (hosts.V2_MOUNTINFO, hosts.V2_SELF_CGROUP),
])
def test_round_trip_through_json(text, own, monkeypatch):
    m = manager.open_manager(None, "abc", mountinfo_text=text, self_cgroup_text=own)
    m.created = ["/sys/fs/cgroup/memory/user.slice/abc"]
    data = json.loads(json.dumps(m.to_state()))

    def forbidden(*_):
        pytest.fail("from_state must not look at the host's mounts")
    for name in ("read_mountinfo", "read_self_cgroup", "parse_mountinfo", "cgroup_hierarchies"):
        monkeypatch.setattr(mountinfo, name, forbidden)
    again = manager.from_state(data)
    assert type(again) is type(m)
    assert (again.version, again.paths, again.created) == (m.version, m.paths, m.created)
    assert again.hierarchies == m.hierarchies


def test_bad_state():
    with pytest.raises(StepError, match="load cgroup state"):
        manager.from_state({"version": "v2"})
    with pytest.raises(StepError, match="unknown cgroup version 'v3'"):
        manager.from_state({"version": "v3", "paths": {}, "hierarchies": []})


def test_importing_the_manager_stays_cheap():
    import subprocess
    import sys
    import os
    runtime = os.path.join(os.path.dirname(__file__), "..", "..", "runtime")
    code = ("import sys; import pyrunc.cgroups.manager; "
            "heavy = {'ctypes', 'json', 'subprocess', 'dataclasses', 'typing', 'signal', 'select'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-S", "-c", code], env={"PYTHONPATH": runtime},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
