"""Build OCI bundles for tests, demos and benchmarks: a busybox rootfs and a config.json.

Independent of the runtime under test (runc can run these bundles too), so a failing test points
at the runtime, not at the bundle.
"""
import copy
import json
import os
import shutil

from pyrunc.spec.template import default_config

BUSYBOX = "/bin/busybox"


def busybox_path():
    for candidate in (BUSYBOX, "/usr/bin/busybox"):
        if os.path.exists(candidate):
            return candidate
    raise RuntimeError("busybox-static is not installed (apt-get install busybox-static)")


def make_rootfs(rootfs):
    """A minimal rootfs: static busybox, its applet links, and the usual top-level dirs."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
              "mnt", "run"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    target = os.path.join(rootfs, "bin", "busybox")
    shutil.copy2(busybox_path(), target)
    import subprocess
    applets = subprocess.run([target, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    return rootfs


def write_rootfs_tar(rootfs, path):
    """A rootfs tarball (what `pyctr import` / `docker import` take): the tree's top-level entries,
    sorted, as relative names."""
    import tarfile
    with tarfile.open(path, "w") as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    return path


_ROOTFS_CACHE = {}


def make_bundle(bundle, args=("true",), config=None, rootfs_template=None):
    """Write <bundle>/rootfs and <bundle>/config.json; returns the config dict written.

    rootfs_template: an already built rootfs to copy (hard-linking busybox) instead of building one.
    """
    os.makedirs(bundle, exist_ok=True)
    rootfs = os.path.join(bundle, "rootfs")
    if rootfs_template:
        shutil.copytree(rootfs_template, rootfs, symlinks=True, copy_function=_link_or_copy)
    else:
        make_rootfs(rootfs)
    if config is None:
        config = default_config(args=args, terminal=False)
    write_config(bundle, config)
    return config


def write_config(bundle, config):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def config_for(args, **changes):
    """default_config with terminal off and shallow overrides, e.g. hostname='x'."""
    config = copy.deepcopy(default_config(args=args, terminal=False))
    config.update(changes)
    return config
