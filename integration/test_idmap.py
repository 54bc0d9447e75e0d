"""Idmapped bind mounts (a mount's uidMappings/gidMappings, options idmap/ridmap), asserted from
inside the container (owners as it sees them) and on the host (owners of what it wrote).

A mount mapping maps the filesystem's ids (containerID) to the ids seen through the mount (hostID),
which the container's user namespace (if any) then maps as usual. runc 1.1.5 has no idmapped
mounts: the positive tests are runc_lacks; the error tests are pyrunc_only (runc ignores the fields).
"""
import json
import os

import pytest

from integration.test_userns import HOST_ID, NOBODY, SIZE, traversable

LACKS = pytest.mark.runc_lacks("runc 1.1.5 has no idmapped mounts")
DISK_UID = 1000  # owner of the test files on the host filesystem


def _host_dir(path, owner=DISK_UID):
    path.mkdir()
    os.chown(path, owner, owner)
    (path / "owned-by-1000").write_text("x\n")
    os.chown(path / "owned-by-1000", DISK_UID, DISK_UID)
    (path / "owned-by-root").write_text("x\n")
    traversable(path / "owned-by-1000")
    return path


def _config(runtime, script, userns=True):
    config = runtime.config(["sh", "-c", script])
    if userns:
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": SIZE}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": SIZE}]
    return config


def _mount(config, source, options, uid_maps=None, gid_maps=None, destination="/idm"):
    entry = {"destination": destination, "type": "bind", "source": str(source), "options": options}
    if uid_maps is not None:
        entry["uidMappings"] = uid_maps
    if gid_maps is not None:
        entry["gidMappings"] = gid_maps
    config["mounts"].append(entry)
    return entry


def _run(runtime, config, userns=True):
    c = runtime.bundle(config)
    if userns:
        os.chown(c.rootfs, HOST_ID, HOST_ID)
        traversable(c.rootfs)
    return c.run().stdout.split()


def _one(container_id, host_id):
    return [{"containerID": container_id, "hostID": host_id, "size": 1}]


@LACKS
def test_mount_mapping_in_a_user_namespace(runtime, tmp_path):
    """On-disk uid 1000 -> kuid HOST_ID -> root inside; root's new files are uid 1000 on disk."""
    d = _host_dir(tmp_path / "data")
    config = _config(runtime, "stat -c %u:%g /idm/owned-by-1000 /idm/owned-by-root; "
                              "echo new > /idm/made-inside && echo wrote")
    _mount(config, d, ["bind", "idmap"], _one(DISK_UID, HOST_ID), _one(DISK_UID, HOST_ID))
    out = _run(runtime, config)
    assert out == ["0:0", f"{NOBODY}:{NOBODY}", "wrote"], out
    st = os.stat(d / "made-inside")
    assert (st.st_uid, st.st_gid) == (DISK_UID, DISK_UID)


@LACKS
def test_idmap_uses_the_containers_mapping(runtime, tmp_path):
    """No mapping on the mount: the container's own (0 -> HOST_ID) makes on-disk ids appear
    unchanged inside, and root's files land as uid 0 on disk (the point of idmapped volumes)."""
    d = _host_dir(tmp_path / "data", owner=0)
    config = _config(runtime, "stat -c %u /idm/owned-by-1000 /idm/owned-by-root /; "
                              "touch /idm/made-inside && echo wrote")
    _mount(config, d, ["bind", "idmap"])
    out = _run(runtime, config)
    assert out == [str(DISK_UID), "0", "0", "wrote"], out
    st = os.stat(d / "made-inside")
    assert (st.st_uid, st.st_gid) == (0, 0)


@LACKS
def test_mount_mapping_without_a_user_namespace(runtime, tmp_path):
    d = _host_dir(tmp_path / "data")
    config = _config(runtime, "stat -c %u /idm/owned-by-1000 /idm/owned-by-root; touch /idm/made-inside; "
                              "stat -c %u /idm/made-inside", userns=False)
    _mount(config, d, ["bind", "idmap"], _one(DISK_UID, 0), _one(DISK_UID, 0))
    out = _run(runtime, config, userns=False)
    assert out == ["0", "65534", "0"], out
    assert os.stat(d / "made-inside").st_uid == DISK_UID


@LACKS
def test_ridmap_maps_submounts_and_idmap_does_not(runtime, tmp_path, host_mount):
    d = _host_dir(tmp_path / "data")
    sub = host_mount("data/sub", options="size=1m,mode=755")
    (sub / "f").write_text("x\n")
    os.chown(sub / "f", DISK_UID, DISK_UID)
    config = _config(runtime, "stat -c %u /r/sub/f /n/sub/f /n/owned-by-1000")
    maps = _one(DISK_UID, HOST_ID)
    _mount(config, d, ["rbind", "ridmap"], maps, maps, destination="/r")
    _mount(config, d, ["rbind", "idmap"], maps, maps, destination="/n")
    out = _run(runtime, config)
    # /n: only the top mount is idmapped; sub's uid 1000 is unmapped in the container's namespace
    assert out == ["0", str(NOBODY), "0"], out


@LACKS
def test_idmapped_mount_honours_ro(runtime, tmp_path):
    d = _host_dir(tmp_path / "data")
    config = _config(runtime, "touch /idm/x 2>/dev/null && echo WROTE || echo refused; "
                              "stat -c %u /idm/owned-by-1000")
    maps = _one(DISK_UID, HOST_ID)
    _mount(config, d, ["bind", "idmap", "ro"], maps, maps)
    assert _run(runtime, config) == ["refused", "0"]
    assert not (d / "x").exists()


@pytest.mark.pyrunc_only
@pytest.mark.parametrize("case,where,words", [
    ("no-mapping-no-userns", "mounts[", "idmap"),
    ("uid-only", "mounts[", "uidMappings and gidMappings"),
    ("not-bind", "mounts[", "bind mounts"),
    ("missing-source", "/nonexistent-idmap-source", "no such file"),
])
def test_bad_idmapped_mounts_are_errors(runtime, tmp_path, case, where, words):
    d = _host_dir(tmp_path / "data")
    maps = _one(DISK_UID, HOST_ID)
    config = _config(runtime, "true", userns=case != "no-mapping-no-userns")
    if case == "no-mapping-no-userns":
        _mount(config, d, ["bind", "idmap"])
    elif case == "uid-only":
        _mount(config, d, ["bind", "idmap"], maps)
    elif case == "not-bind":
        entry = _mount(config, "tmpfs", ["idmap"], maps, maps)
        entry["type"] = "tmpfs"
    else:
        _mount(config, "/nonexistent-idmap-source", ["bind", "idmap"], maps, maps)
    c = runtime.bundle(config)
    os.chown(c.rootfs, HOST_ID, HOST_ID)
    cp = c.create(check=False)
    assert cp.returncode == 1, cp.stderr
    assert where in cp.stderr and words in cp.stderr, cp.stderr
    assert c.leftovers() == []


@pytest.mark.pyrunc_only
def test_features_report_idmap(runtime):
    features = json.loads(runtime.run("features").stdout)
    assert features["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(features["mountOptions"])
