"""linux.personality, LSM labels on a host without an LSM, the features document's security
sections, and `spec --rootless` output actually running (user namespace)."""
import json
import os

import pytest

from integration.helpers.probe import install
from integration.test_userns import traversable


@pytest.mark.runc_lacks("runc 1.1.5 does not apply linux.personality")
def test_personality_linux32(runtime, probe_binary):
    config = runtime.config(["sh", "-c", "uname -m; probe personality"])
    config["linux"]["personality"] = {"domain": "LINUX32"}
    c = runtime.bundle(config)
    install(probe_binary, c.rootfs)
    out = c.run().stdout.split()
    assert out == ["i686", "8"], out  # PER_LINUX32


def _lsm_available(name):
    if name == "apparmor":
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                return f.read().startswith("Y")
        except OSError:
            return False
    return os.path.exists("/sys/fs/selinux/enforce")


@pytest.mark.pyrunc_only  # runc 1.1.5 silently runs unconfined when the host lacks the LSM
@pytest.mark.parametrize("field,value,lsm", [("apparmorProfile", "docker-default", "apparmor"),
                                             ("selinuxLabel", "system_u:system_r:container_t:s0", "selinux"),
                                             ("mountLabel", "system_u:object_r:container_file_t:s0", "selinux")])
def test_lsm_label_on_host_without_it_is_an_error(runtime, field, value, lsm):
    if _lsm_available(lsm):
        pytest.fail(f"this host runs {lsm}: the test needs a host without it (write the positive test)")
    config = runtime.config(["true"])
    (config["linux"] if field == "mountLabel" else config["process"])[field] = value
    c = runtime.bundle(config)
    cp = c.create(check=False)
    assert cp.returncode == 1
    assert field in cp.stderr and "not enabled" in cp.stderr, cp.stderr
    assert c.leftovers() == []


@pytest.mark.pyrunc_only
def test_features_security_sections(runtime):
    features = json.loads(runtime.run("features").stdout)
    linux = features["linux"]
    assert "user" in linux["namespaces"]
    seccomp = linux["seccomp"]
    assert seccomp["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in seccomp["actions"] and "SCMP_ACT_KILL_PROCESS" in seccomp["actions"]
    assert "SCMP_CMP_MASKED_EQ" in seccomp["operators"]
    assert "SCMP_ARCH_X86_64" in seccomp["archs"]
    assert "SECCOMP_FILTER_FLAG_LOG" in seccomp["supportedFlags"]
    assert linux["apparmor"]["enabled"] is _lsm_available("apparmor")
    assert linux["selinux"]["enabled"] is _lsm_available("selinux")


def test_spec_rootless_config_runs(runtime):
    """`spec --rootless` maps only the caller (root here, size 1): the container's root is host root
    but everything else about it is namespaced. The output runs unchanged (terminal off, a real
    command, our cgroup): mqueue, the read-only /sys bind and the cgroup mount all work inside."""
    c = runtime.bundle(["true"])
    os.unlink(os.path.join(c.bundle, "config.json"))
    runtime.run("spec", "--rootless", "--bundle", c.bundle)
    with open(os.path.join(c.bundle, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; for d in /dev/mqueue /sys /sys/fs/cgroup; "
                                 "do awk -v d=$d '$5 == d {for (i = 7; $i != \"-\"; i++); print $6, $(i + 1); exit}' "
                                 "/proc/self/mountinfo; done; "
                                 "touch /sys/x 2>/dev/null || echo sys-ro"]
    config["linux"]["cgroupsPath"] = c.cgroups_path
    with open(os.path.join(c.bundle, "config.json"), "w") as f:
        json.dump(config, f)
    traversable(c.rootfs)
    out = c.run().stdout.splitlines()
    assert out[0].split() == ["0", str(os.geteuid()), "1"]
    assert out[1].split()[1] == "mqueue"
    assert out[2].split()[0].split(",")[0] == "ro" and out[2].split()[1] == "sysfs"
    assert out[3].split()[1] in ("tmpfs", "cgroup2")  # v1/hybrid: a tmpfs of hierarchies
    assert out[4] == "sys-ro"
