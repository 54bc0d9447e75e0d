"""cgroupsPath values that are refused, and what create plans to make (cgroups/ownership.py).

runc cleans a relative path so that it cannot climb: ".", ".." and "../../.." all become the
caller's own cgroup, and runc puts the container there; "/" is every hierarchy's root. Deleting such
a container would signal the caller or the whole host, so pyrunc refuses every path that resolves
to a hierarchy root or to the caller's cgroup or one above it (runtime-spec: "Runtimes MAY
consider certain cgroupsPath values to be invalid, and MUST generate an error").
"""
import itertools

import pytest

import hosts
from pyrunc.cgroups import manager, mountinfo
from pyrunc.cgroups.ownership import check_cgroups_path, missing_levels
from pyrunc.errors import InvalidSpec

HOSTS = {
    "v1": (hosts.V1_MOUNTINFO, hosts.V1_SELF_CGROUP),
    "hybrid": (hosts.HYBRID_MOUNTINFO, hosts.HYBRID_SELF_CGROUP),
    "v2": (hosts.V2_MOUNTINFO, hosts.V2_SELF_CGROUP),
    "v2-root": (hosts.V2_MOUNTINFO, "0::/\n"),
}


def _climbing_paths():
    """Every path of up to three "." / ".." / "" segments, with or without a trailing slash."""
    out = set()
    for n in range(1, 4):
        for parts in itertools.product([".", "..", ""], repeat=n):
            path = "/".join(parts)
            if path.strip("/"):
                out.update({path, path + "/"})
    return sorted(out)


def _open(host, path):
    mi, own = HOSTS[host]
    return manager.open_manager(path, "ctr", mountinfo_text=mi, self_cgroup_text=own)


@pytest.mark.parametrize("host", sorted(HOSTS))
@pytest.mark.parametrize("path", _climbing_paths())
def test_relative_paths_that_climb_are_refused(host, path):
    with pytest.raises(InvalidSpec) as e:
        _open(host, path)
    assert e.value.where == "linux.cgroupsPath"


@pytest.mark.parametrize("host", sorted(HOSTS))
@pytest.mark.parametrize("path", ["/", "//", "/.", "/..", "/../..", "/./..", "///.."])
def test_absolute_paths_at_a_hierarchy_root_are_refused(host, path):
    with pytest.raises(InvalidSpec) as e:
        _open(host, path)
    assert "root of the cgroup hierarchy" in str(e.value)


@pytest.mark.parametrize("host", sorted(HOSTS))
@pytest.mark.parametrize("path", ["ctr", "pod/ctr", "../x", "./x", "/docker/abc", "/../docker/abc"])
def test_paths_below_the_caller_or_elsewhere_are_accepted(host, path):
    _open(host, path)  # on v2 a relative path is below the caller's parent: a sibling, accepted


def _hierarchies(host):
    return mountinfo.cgroup_hierarchies(HOSTS[host][0], "/sys/fs/cgroup")


def _own(host):
    return mountinfo.parse_self_cgroup(HOSTS[host][1])


@pytest.mark.parametrize("host", ["v1", "hybrid", "v2"])
def test_the_callers_cgroup_and_those_above_it_are_refused_by_absolute_path_too(host):
    hierarchies = _hierarchies(host)
    own = _own(host)
    for h in hierarchies:
        mine = mountinfo.own_cgroup_dir(h, own)
        rel = mine[len(h.mountpoint):]
        if not rel:
            continue
        levels = [rel[:i] for i in range(1, len(rel) + 1) if i == len(rel) or rel[i] == "/"]
        for level in levels:  # the caller's own cgroup and every cgroup above it, below the root
            paths = manager.resolve_paths(hierarchies, "v1", level, None)
            with pytest.raises(InvalidSpec) as e:
                check_cgroups_path(level, paths, hierarchies, own)
            assert "runtime's own" in str(e.value) or "above the runtime's own" in str(e.value)


def test_missing_levels_are_what_does_not_exist_yet(tmp_path):
    root = tmp_path / "cg"
    (root / "a").mkdir(parents=True)
    h = mountinfo.Hierarchy("cgroup2", str(root))
    paths = {"": str(root / "a" / "b" / "c")}
    assert missing_levels([h], paths) == [str(root / "a" / "b"), str(root / "a" / "b" / "c")]
    (root / "a" / "b" / "c").mkdir(parents=True)
    assert missing_levels([h], paths) == []
