"""process.capabilities: all five sets as a non-root process sees them after execve (root's sets
are recomputed from the bounding set at execve, so only a non-root user shows each set), the
effect of an ambient capability, and unknown names."""
import os

import pytest

CHOWN, KILL, NET_RAW = 1 << 0, 1 << 5, 1 << 13


def _status(text):
    return {k: int(v, 16) for k, v in (line.replace("\t", "").split(":", 1) for line in text.splitlines())}


def _caps_config(runtime, script, ambient, uid=1000):
    config = runtime.config(["sh", "-c", script])
    config["process"]["user"] = {"uid": uid, "gid": uid}
    config["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_CHOWN", "CAP_KILL"],
        "ambient": ambient,
    }
    return config


def test_all_five_sets_for_a_non_root_user(runtime):
    config = _caps_config(runtime, "grep ^Cap /proc/self/status", ["CAP_CHOWN", "CAP_KILL"])
    st = _status(runtime.bundle(config).run().stdout)
    assert st == {"CapInh": CHOWN | KILL, "CapPrm": CHOWN | KILL, "CapEff": CHOWN | KILL,
                  "CapBnd": CHOWN | KILL | NET_RAW, "CapAmb": CHOWN | KILL}, st


def test_without_ambient_a_non_root_user_has_no_capabilities(runtime):
    config = _caps_config(runtime, "grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status", [])
    assert set(_status(runtime.bundle(config).run().stdout).values()) == {0}


@pytest.mark.parametrize("ambient,expected", [(["CAP_CHOWN"], "chowned"), ([], "denied")])
def test_ambient_capability_takes_effect(runtime, ambient, expected):
    config = _caps_config(runtime, "touch /tmp/f && chown 0:0 /tmp/f 2>/dev/null && echo chowned || echo denied",
                          ambient)
    config["root"]["readonly"] = False
    c = runtime.bundle(config)
    os.chmod(os.path.join(c.rootfs, "tmp"), 0o1777)
    assert c.run().stdout.strip() == expected


@pytest.mark.pyrunc_only  # runc 1.1.5 warns and ignores unknown names
@pytest.mark.parametrize("field", ["bounding", "effective", "permitted", "inheritable", "ambient"])
def test_unknown_capability_is_an_error(runtime, field):
    config = runtime.config(["true"])
    config["process"]["capabilities"][field] = ["CAP_KILL", "CAP_NO_SUCH_THING"]
    c = runtime.bundle(config)
    cp = c.create(check=False)
    assert cp.returncode == 1
    assert f"process.capabilities.{field}" in cp.stderr and "CAP_NO_SUCH_THING" in cp.stderr, cp.stderr
    assert c.leftovers() == []
