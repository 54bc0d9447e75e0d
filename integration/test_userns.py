"""User namespaces (linux.uidMappings/gidMappings), asserted from inside the container and on the host.

The runtime writes the mappings from outside while its child waits; container root is then host uid
HOST_ID, an unprivileged uid. Runtime-agnostic (runc passes these too). The bundle's rootfs dir is
owned by the mapped root, as for any userns container (`chown 100000: rootfs`): the rest of the
template stays host-root-owned and so reads as nobody inside.
"""
import os
import stat

import pytest

HOST_ID, SIZE = 100000, 65536
NOBODY = 65534


def traversable(path):
    """The mapped root is "other" to host-root-owned dirs: pytest's 0700 tmp dirs must let it pass."""
    path = os.path.dirname(os.path.abspath(path))
    while path != "/":
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if not mode & 0o001:
            os.chmod(path, mode | 0o001)
        path = os.path.dirname(path)


def userns_config(runtime, script):
    config = runtime.config(["sh", "-c", script])
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": SIZE}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": SIZE}]
    return config


def _bundle(runtime, script, shared_owner=HOST_ID, **kw):
    c = runtime.bundle(userns_config(runtime, script), shared=True, **kw)
    os.chown(c.rootfs, HOST_ID, HOST_ID)
    traversable(c.rootfs)
    os.chown(c.shared, shared_owner, shared_owner)
    return c


def test_container_root_is_an_unprivileged_host_uid(runtime):
    c = _bundle(runtime, "id -u > /shared/uid; cat /proc/self/uid_map > /shared/uid_map; "
                         "cat /proc/self/gid_map > /shared/gid_map; touch /shared/made-by-root; "
                         "stat -c %u /bin > /shared/bin-owner")
    c.run()
    assert c.read("uid").strip() == "0"
    assert c.read("uid_map").split() == ["0", str(HOST_ID), str(SIZE)]
    assert c.read("gid_map").split() == ["0", str(HOST_ID), str(SIZE)]
    st = os.stat(c.path("made-by-root"))
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID), "container root created a file as host root"
    assert c.read("bin-owner").strip() == str(NOBODY)  # host root is unmapped inside


def test_container_root_cannot_write_host_root_files(runtime, tmp_path):
    """A bind mount of a host-root-owned directory: root inside has no power over it."""
    host_dir = tmp_path / "host-owned"
    host_dir.mkdir(mode=0o755)
    (host_dir / "secret").write_text("host\n")
    os.chmod(host_dir / "secret", 0o644)
    config = userns_config(runtime, "echo x > /hostdir/new 2>/dev/null && echo WROTE-NEW > /shared/r; "
                                    "echo x >> /hostdir/secret 2>/dev/null && echo WROTE-SECRET >> /shared/r; "
                                    "chmod 777 /hostdir 2>/dev/null && echo CHMOD >> /shared/r; "
                                    "echo done >> /shared/r")
    config["mounts"].append({"destination": "/hostdir", "type": "bind", "source": str(host_dir),
                             "options": ["rbind", "rw"]})
    c = runtime.bundle(config, shared=True)
    os.chown(c.rootfs, HOST_ID, HOST_ID)
    traversable(c.rootfs)
    os.chown(c.shared, HOST_ID, HOST_ID)
    c.run()
    assert c.read("r") == "done\n"
    assert not (host_dir / "new").exists()
    assert (host_dir / "secret").read_text() == "host\n"
    assert stat.S_IMODE(os.stat(host_dir).st_mode) == 0o755


def test_devices_are_usable_without_mknod(runtime):
    """mknod is refused in a user namespace: the default devices come from the host by bind mount."""
    c = _bundle(runtime, "stat -c '%t,%T' /dev/null /dev/zero > /shared/nums; "
                         "echo hi > /dev/null && head -c 3 /dev/zero | wc -c > /shared/zero; "
                         "mknod /tmp/n c 1 3 2>/dev/null && echo MKNOD > /shared/mknod || echo refused > /shared/mknod")
    c.run()
    assert c.read("nums").split() == ["1,3", "1,5"]
    assert c.read("zero").strip() == "3"
    assert c.read("mknod").strip() == "refused"


def test_capabilities_are_namespaced(runtime):
    """Even CAP_SYS_ADMIN inside is only over the container's own namespaces: mounting over a host
    path's mount is still confined to the container's mount namespace, and the host's hostname
    is untouched (sethostname applies to the container's uts namespace)."""
    host_name = os.uname().nodename
    config = userns_config(runtime, "hostname changed-inside && hostname > /shared/h")
    caps = config["process"]["capabilities"]
    for field in ("bounding", "effective", "permitted"):
        caps[field] = caps[field] + ["CAP_SYS_ADMIN"]
    c = runtime.bundle(config, shared=True)
    os.chown(c.rootfs, HOST_ID, HOST_ID)
    traversable(c.rootfs)
    os.chown(c.shared, HOST_ID, HOST_ID)
    c.run()
    assert c.read("h").strip() == "changed-inside"
    assert os.uname().nodename == host_name


def _locked_source_config(runtime, host_mount, options, script):
    source = host_mount("locked-src", options="size=1m,nosuid,nodev,mode=1777")
    (source / "f").write_text("x\n")
    config = userns_config(runtime, script)
    config["mounts"].append({"destination": "/locked", "type": "bind", "source": str(source),
                             "options": options})
    c = runtime.bundle(config)
    os.chown(c.rootfs, HOST_ID, HOST_ID)
    traversable(c.rootfs)
    return c, source


@pytest.mark.runc_lacks("runc 1.1.5 remounts without the locked flags and gets EPERM")
def test_bind_remount_keeps_the_sources_locked_flags(runtime, host_mount):
    """The source is nosuid,nodev on the host: in a user namespace those flags are locked, so the
    `ro` remount must carry them (else EPERM). The result is ro and still nosuid,nodev."""
    c, source = _locked_source_config(
        runtime, host_mount, ["bind", "ro"],
        "grep ' /locked ' /proc/self/mountinfo | cut -d' ' -f6; "
        "touch /locked/new 2>/dev/null && echo WROTE || echo refused")
    opts, outcome = c.run().stdout.split()
    assert set(opts.split(",")) >= {"ro", "nosuid", "nodev"}, opts
    assert outcome == "refused"
    assert not (source / "new").exists()


@pytest.mark.pyrunc_only  # runc 1.1.5 fails with a bare EPERM
def test_bind_remount_clearing_a_locked_flag_is_a_clear_error(runtime, host_mount):
    c, _ = _locked_source_config(runtime, host_mount, ["bind", "ro", "suid"], "true")
    cp = c.create(check=False)
    assert cp.returncode == 1
    assert "/locked" in cp.stderr and "'suid'" in cp.stderr and "locked" in cp.stderr, cp.stderr
    assert c.leftovers() == []


def test_readonly_rootfs_on_a_nosuid_mount(runtime, host_mount, rootfs_template):
    """A read-only rootfs whose host mount is nosuid,nodev: the ro remount keeps the locked flags."""
    import shutil
    store = host_mount("rootfs-store", options="size=32m,nosuid,nodev,mode=755")
    rootfs = store / "rootfs"
    shutil.copytree(rootfs_template, rootfs, symlinks=True)
    config = userns_config(runtime, "awk '$5 == \"/\" {print $6}' /proc/self/mountinfo; "
                                    "touch /x 2>/dev/null && echo WROTE || echo refused")
    config["root"] = {"path": str(rootfs), "readonly": True}
    c = runtime.bundle(config, create_rootfs=False)
    os.chown(rootfs, HOST_ID, HOST_ID)
    traversable(rootfs)
    opts, outcome = c.run().stdout.split()
    assert set(opts.split(",")) >= {"ro", "nosuid", "nodev"}, opts
    assert outcome == "refused"
