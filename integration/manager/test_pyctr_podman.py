"""Interoperability with podman: pyctr save (docker-archive and oci-archive) -> podman load, podman save ->
pyctr load -> bundle."""
import json
import os

from integration.helpers.runtime import DEFAULT_RUNTIME, describe, execute
from integration.manager.registry import need
from integration.manager.test_pyctr_registry import run_bundle


_RUNROOTS = {}


def podman(tmp_path, *args):
    import tempfile
    base = tmp_path / "podman"
    # podman refuses a runroot longer than 50 characters: a short one under /tmp, removed at the end
    if str(tmp_path) not in _RUNROOTS:
        _RUNROOTS[str(tmp_path)] = tempfile.mkdtemp(prefix="pyctr-podrun-")
    runroot = _RUNROOTS[str(tmp_path)]
    argv = [need("podman"), "--root", str(base / "root"), "--runroot", runroot,
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]
    cp = execute(argv, timeout=300)
    assert cp.returncode == 0, describe(cp)
    return cp


def test_pyctr_save_loads_in_podman_and_back(pyctr, rootfs_tar, tmp_path):
    pyctr.run("import", "-c", 'CMD ["/bin/sh", "-c", "echo from-podman-archive; cat /etc/motd"]', rootfs_tar,
              "localhost/pyctr/bb:1")
    image_id = json.loads(pyctr.run("inspect", "localhost/pyctr/bb:1").stdout)[0]["Id"]
    archive = str(tmp_path / "saved.tar")
    pyctr.run("save", "-o", archive, "localhost/pyctr/bb:1")
    podman(tmp_path, "load", "-i", archive)
    images = json.loads(podman(tmp_path, "images", "--format", "json").stdout)
    assert any(i["Id"] == image_id[7:] for i in images), images
    assert any("localhost/pyctr/bb:1" in (i.get("Names") or []) for i in images), images
    podman(tmp_path, "tag", "localhost/pyctr/bb:1", "localhost/podman/bb:2")
    back = str(tmp_path / "podman-saved.tar")
    podman(tmp_path, "save", "-o", back, "localhost/podman/bb:2")
    other = type(pyctr)(str(tmp_path / "root2"), pyctr.authfile)
    cp = other.run("load", "-i", back)
    assert "Loaded image: localhost/podman/bb:2" in cp.stdout, cp.stdout
    bundle = str(tmp_path / "bundle")
    other.run("bundle", "localhost/podman/bb:2", bundle)
    try:
        cp = run_bundle(DEFAULT_RUNTIME, bundle, tmp_path, "pyctr-podman")
        assert cp.returncode == 0 and cp.stdout.splitlines()[:2] == ["from-podman-archive", "made for pyctr tests"], \
            describe(cp)
    finally:
        other.run("umount", bundle)
    podman(tmp_path, "rmi", "-a", "-f")


def test_pyctr_oci_archive_loads_in_podman_and_in_pyctr(pyctr, rootfs_tar, tmp_path):
    pyctr.run("import", "-c", 'CMD ["/bin/sh", "-c", "echo from-oci-archive; cat /etc/motd"]', rootfs_tar,
              "localhost/pyctr/oci:1")
    image_id = json.loads(pyctr.run("inspect", "localhost/pyctr/oci:1").stdout)[0]["Id"]
    archive = str(tmp_path / "saved-oci.tar")
    pyctr.run("save", "--format", "oci-archive", "-o", archive, "localhost/pyctr/oci:1")
    podman(tmp_path, "load", "-i", archive)
    images = json.loads(podman(tmp_path, "images", "--format", "json").stdout)
    assert any(i["Id"] == image_id[7:] and "localhost/pyctr/oci:1" in (i.get("Names") or []) for i in images), \
        images
    cp = podman(tmp_path, "image", "inspect", "localhost/pyctr/oci:1")
    assert json.loads(cp.stdout)[0]["Config"]["Cmd"][-1] == "echo from-oci-archive; cat /etc/motd"
    podman(tmp_path, "rmi", "-a", "-f")
    other = type(pyctr)(str(tmp_path / "root2"), pyctr.authfile)
    assert "Loaded image: localhost/pyctr/oci:1" in other.run("load", "-i", archive).stdout
    bundle = str(tmp_path / "bundle")
    other.run("bundle", "localhost/pyctr/oci:1", bundle)
    try:
        cp = run_bundle(DEFAULT_RUNTIME, bundle, tmp_path, "pyctr-oci-archive")
        assert cp.returncode == 0 and cp.stdout.splitlines()[:2] == ["from-oci-archive", "made for pyctr tests"], \
            describe(cp)
    finally:
        other.run("umount", bundle)
    # an unknown format is a usage error, not a traceback
    cp = pyctr.run("save", "--format", "tarball", "-o", archive, "localhost/pyctr/oci:1", check=False)
    assert cp.returncode != 0 and "invalid choice" in cp.stderr


def teardown_module():
    import shutil
    for d in _RUNROOTS.values():
        shutil.rmtree(d, ignore_errors=True)


def test_hostile_import_refused_and_cleaned(pyctr, tmp_path):
    import io
    import tarfile
    path = str(tmp_path / "evil.tar")
    with tarfile.open(path, "w") as tf:
        for name, kind, link in (("etc", tarfile.DIRTYPE, ""), ("etc/ok", tarfile.REGTYPE, ""),
                                 ("esc", tarfile.SYMTYPE, str(tmp_path)), ("esc/pwned", tarfile.REGTYPE, "")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            tf.addfile(info, io.BytesIO(b""))
    cp = pyctr.fail("import", path, "evil:1")
    assert "entry 'esc/pwned'" in cp.stderr and "symbolic link" in cp.stderr, cp.stderr
    assert not os.path.exists(tmp_path / "pwned")
    assert pyctr.layers() == [] and pyctr.overlay_dirs() == []
    assert "evil" not in pyctr.run("images").stdout
