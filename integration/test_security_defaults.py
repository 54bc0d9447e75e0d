"""What runc's default template asks for beyond issue 2's explicit list: the capability sets,
maskedPaths and readonlyPaths. A runtime that skips them runs the container with the runtime's own
full root privileges and an open /proc."""
import os

from integration.helpers import mountinfo

TEMPLATE_CAPS = (1 << 29) | (1 << 5) | (1 << 10)  # CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE


def _status(text):
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}


def test_capabilities_are_the_configured_ones(runtime):
    st = _status(runtime.sh("cat /proc/self/status").stdout)
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert int(st[field], 16) == TEMPLATE_CAPS, f"{field}={st[field]}"


def test_capabilities_enforced(runtime):
    """Without CAP_SYS_ADMIN even root inside cannot mount; without CAP_CHOWN it cannot chown."""
    cp = runtime.sh("mount -t tmpfs x /dev/shm 2>/dev/null && echo MOUNTED || echo denied; "
                    "touch /dev/shm/f; chown 1:1 /dev/shm/f 2>/dev/null && echo CHOWNED || echo denied")
    assert cp.stdout == "denied\ndenied\n"


def test_masked_paths(runtime):
    """Each masked path that exists here is covered: files by /dev/null (reads empty), dirs by an empty
    read-only tmpfs. Paths missing on this kernel are skipped (as runc does)."""
    config = runtime.config()
    masked = [p for p in config["linux"]["maskedPaths"] if os.path.exists(p)]
    assert masked, "no masked path exists on this machine"
    script = "cat /proc/self/mountinfo; echo ---; " + "; ".join(
        f"echo {p}=$(cat {p} 2>/dev/null | wc -c)" if os.path.isfile(p) else f"echo {p}=$(ls -A {p} | wc -l)"
        for p in masked)
    info, _, sizes = runtime.sh(script, config=config).stdout.partition("---\n")
    ms = mountinfo.parse(info)
    for line in sizes.split():
        path, n = line.split("=")
        assert n == "0", f"{path} is not masked: {n} bytes/entries visible"
        assert mountinfo.at(ms, path) is not None, f"no mount over {path}"


def test_readonly_paths(runtime):
    config = runtime.config()
    ms = mountinfo.parse(runtime.sh("cat /proc/self/mountinfo", config=config).stdout)
    paths = [p for p in config["linux"]["readonlyPaths"] if os.path.exists(p)]
    assert "/proc/sys" in paths
    for path in paths:
        m = mountinfo.at(ms, path)
        assert m is not None and m.readonly, f"{path} is not a read-only mount"
