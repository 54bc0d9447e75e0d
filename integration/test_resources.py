"""linux.resources take effect (not only get written), and pause/resume, events and update work.

Effects are measured from the host's cgroup files (cpu usage, pids.current) or seen from inside the
container (an OOM kill, a device open refused); never by how long a command took.
"""
import json
import os
import subprocess
import time

import pytest

from integration.helpers import mountinfo
from integration.helpers.runtime import bind, describe, wait_for

MiB = 1 << 20


def _hierarchies():
    return {mp: (fstype, opts) for mp, fstype, opts in mountinfo.cgroup_hierarchies()}


def cg_dir(c, controller):
    """The container's cgroup dir holding `controller`'s files (v1 hierarchy, else unified)."""
    rel = c.cgroups_path.strip("/")
    for mp, (fstype, opts) in _hierarchies().items():
        if fstype == "cgroup" and controller in opts.split(","):
            return os.path.join(mp, rel)
    for mp, (fstype, _) in _hierarchies().items():
        if fstype == "cgroup2":
            return os.path.join(mp, rel)
    raise AssertionError(f"no hierarchy for {controller}")


def cg_read(c, controller, name):
    with open(os.path.join(cg_dir(c, controller), name)) as f:
        return f.read().strip()


def cpu_usage_ns(c):
    d = cg_dir(c, "cpuacct")
    if os.path.exists(os.path.join(d, "cpuacct.usage")):
        with open(os.path.join(d, "cpuacct.usage")) as f:
            return int(f.read())
    with open(os.path.join(d, "cpu.stat")) as f:
        stat = dict(line.split() for line in f)
    return int(stat["usage_usec"]) * 1000


def with_resources(runtime, args, resources, shared=False):
    config = runtime.config(args)
    config["linux"]["resources"] = {**config["linux"].get("resources", {}), **resources}
    return runtime.container(config, shared=shared)


class EventReader:
    """`events` streaming into a file; lines() parses what it has written so far."""

    def __init__(self, runtime, c, tmp_path, *args):
        self.path = os.path.join(tmp_path, f"events-{c.id}.jsonl")
        self.out = open(self.path, "wb")
        self.err = open(self.path + ".err", "wb")
        self.proc = subprocess.Popen(runtime.argv("events", *args, c.id), stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL)

    def lines(self):
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stderr(self):
        with open(self.path + ".err") as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.out.close()
        self.err.close()


def test_memory_hog_is_oom_killed_and_events_reports_it(runtime, tmp_path):
    script = ("while [ ! -e /shared/go ]; do sleep 0.05; done; "
              "dd if=/dev/zero of=/dev/null bs=100M count=1; echo $? > /shared/rc; sleep 1000")
    c = with_resources(runtime, ["sh", "-c", script],
                       {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, shared=True)
    assert int(cg_read(c, "memory", "memory.limit_in_bytes")) == 32 * MiB
    c.start()
    events = EventReader(runtime, c, tmp_path, "--interval", "1s")
    try:
        wait_for(lambda: any(e["type"] == "stats" for e in events.lines()), timeout=30,
                 what="a first stats event")
        open(c.path("go"), "w").close()
        # dd's 100M buffer cannot fit in 32M: the kernel kills it, the shell sees 128+9.
        assert c.read("rc", timeout=30).strip() == "137"
        wait_for(lambda: any(e["type"] == "oom" for e in events.lines()), timeout=30,
                 what="an oom event:\n" + events.stderr())
        oom = next(e for e in events.lines() if e["type"] == "oom")
        assert oom["id"] == c.id
        assert c.status == "running", "only the hog dies, not the container"
        stats = [e for e in events.lines() if e["type"] == "stats"][-1]["data"]
        assert stats["memory"]["usage"]["limit"] == 32 * MiB
    finally:
        events.close()


# Every shell forks two more forever; the limit is what holds it. Init forks its sleep first and
# then only waits, so it outlives the bomb's shells that die on a refused fork.
BOMB = ["sh", "-c", "sleep 1000 & sh -c 'b() { b & b; }; b' 2>/dev/null; wait"]


def test_fork_bomb_stops_at_pids_limit(runtime):
    c = with_resources(runtime, BOMB, {"pids": {"limit": 16}})
    assert cg_read(c, "pids", "pids.max") == "16"
    c.start()
    wait_for(lambda: int(cg_read(c, "pids", "pids.events").split()[1]) > 0, timeout=30,
             what="pids.events to count a refused fork")
    for _ in range(5):
        assert int(cg_read(c, "pids", "pids.current")) <= 16
        time.sleep(0.1)
    c.kill("KILL", all=True)
    c.wait_status("stopped")
    c.delete()


def test_cpu_quota_of_half_a_core_holds_a_busy_loop_near_half(runtime):
    c = with_resources(runtime, ["sh", "-c", "while :; do :; done"],
                       {"cpu": {"quota": 50000, "period": 100000}})
    c.start()
    time.sleep(0.5)
    u0, t0 = cpu_usage_ns(c), time.monotonic()
    time.sleep(4)
    u1, t1 = cpu_usage_ns(c), time.monotonic()
    share = (u1 - u0) / ((t1 - t0) * 1e9)
    # The quota caps it at 0.5; a shared, loaded machine may give it less, never much more.
    assert 0.1 < share < 0.6, f"busy loop got {share:.2f} of a core under a 0.5 quota"
    with open(os.path.join(cg_dir(c, "cpu"), "cpu.stat")) as f:
        stat = dict(line.split() for line in f)
    assert int(stat["nr_throttled"]) > 0


def test_pause_stops_progress_and_resume_restarts_it(runtime):
    c = runtime.container(["sh", "-c", "while :; do :; done"])
    c.start()
    runtime.run("pause", c.id)
    assert c.status == "paused"
    time.sleep(0.2)  # let the freeze settle before sampling
    u0 = cpu_usage_ns(c)
    time.sleep(1)
    assert cpu_usage_ns(c) - u0 < 5_000_000, "a paused container used CPU"
    runtime.run("resume", c.id)
    assert c.status == "running"
    u1 = cpu_usage_ns(c)
    wait_for(lambda: cpu_usage_ns(c) - u1 > 50_000_000, timeout=30, what="the loop to run again")


def test_pause_and_resume_refuse_wrong_states(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    cp = runtime.fail("resume", c.id)
    assert "not paused" in cp.stderr
    c.kill("KILL")
    c.wait_status("stopped")
    cp = runtime.fail("pause", c.id)
    assert "not running" in cp.stderr


def test_update_changes_a_running_containers_limits(runtime):
    c = with_resources(runtime, ["sleep", "1000"], {"pids": {"limit": 50}, "memory": {"limit": 64 * MiB}})
    c.start()
    runtime.run("update", "--pids-limit", "20", "--memory", "48M", "--cpu-quota", "20000",
                "--cpu-period", "100000", c.id)
    assert cg_read(c, "pids", "pids.max") == "20"
    assert int(cg_read(c, "memory", "memory.limit_in_bytes")) == 48 * MiB
    assert cg_read(c, "cpu", "cpu.cfs_quota_us") == "20000"
    # go-runc's form: --resources=- with the runtime-spec object on stdin.
    runtime.run("update", "--resources=-", c.id, input=json.dumps({"pids": {"limit": 7}}))
    assert cg_read(c, "pids", "pids.max") == "7"
    assert int(cg_read(c, "memory", "memory.limit_in_bytes")) == 48 * MiB, "untouched by the update"
    # ... and the new limit holds: the 8th process cannot be forked.
    pids_before = int(cg_read(c, "pids", "pids.current"))
    assert pids_before == 1


def test_update_takes_effect_on_a_fork_bomb(runtime):
    c = with_resources(runtime, BOMB, {"pids": {"limit": 40}})
    c.start()
    wait_for(lambda: int(cg_read(c, "pids", "pids.events").split()[1]) > 0, timeout=30,
             what="the bomb to hit 40")
    runtime.run("update", "--pids-limit", "5", c.id)
    # A lower limit kills nothing, but as the bomb's shells exit no fork replaces them.
    wait_for(lambda: int(cg_read(c, "pids", "pids.current")) <= 5, timeout=30,
             what="pids.current to fall to the new limit")
    for _ in range(5):
        assert int(cg_read(c, "pids", "pids.current")) <= 5
        time.sleep(0.1)
    c.kill("KILL", all=True)
    c.wait_status("stopped")
    c.delete()


def test_update_rejects_bad_input(runtime, tmp_path):
    c = runtime.container(["sleep", "1000"])
    c.start()
    cp = runtime.fail("update", "--memory", "lots", c.id)
    assert "memory" in cp.stderr
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    runtime.fail("update", "-r", str(bad), c.id)


def test_events_stats_once(runtime):
    c = with_resources(runtime, ["sleep", "1000"], {"pids": {"limit": 9}, "memory": {"limit": 64 * MiB}})
    c.start()
    cp = runtime.run("events", "--stats", c.id)
    lines = cp.stdout.strip().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "stats" and event["id"] == c.id
    data = event["data"]
    assert data["pids"] == {"current": 1, "limit": 9}
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["cpu"]["usage"]["total"] > 0
    assert "hugetlb" in data and "blkio" in data


def test_denied_device_cannot_be_opened(runtime):
    """The default device rules deny /dev/kmsg even when its node is bind-mounted in."""
    config = runtime.config(["sh", "-c", "head -c1 /kmsg; echo rc=$?; head -c1 /dev/null; echo null=$?"])
    bind(config, "/dev/kmsg", "/kmsg", ["bind", "ro"])
    c = runtime.bundle(config)
    cp = c.run(check=False)
    assert "Operation not permitted" in cp.stderr, describe(cp)
    assert "rc=1" in cp.stdout and "null=0" in cp.stdout, describe(cp)


V2_ONLY_HOST = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.mark.skipif(V2_ONLY_HOST, reason="the refusal is for v1 and hybrid hosts; a v2 host applies unified")
def test_unified_keys_on_a_v1_or_hybrid_host_are_refused_before_anything_is_applied(runtime, tmp_path):
    """runc's v1 managers refuse linux.resources.unified on a v1 or hybrid host (cgroup2 there has
    no controllers), at create and at update, before writing any limit: nothing half-applied."""
    unified = {"memory.max": str(32 * MiB), "pids.max": "5"}
    config = runtime.config(["sleep", "1000"])
    config["linux"]["resources"].update(memory={"limit": 64 * MiB}, unified=unified)
    c = runtime.bundle(config)
    cp = c.create(check=False)
    assert cp.returncode == 1 and "cannot use unified on cgroup v1" in cp.stderr, describe(cp)
    assert not c.leftovers(), c.leftovers()
    c = with_resources(runtime, ["sleep", "1000"], {"pids": {"limit": 50}, "memory": {"limit": 64 * MiB}})
    c.start()
    update = tmp_path / "r.json"
    update.write_text(json.dumps({"pids": {"limit": 20}, "unified": unified}))
    cp = runtime.fail("update", "-r", str(update), c.id)
    assert "cannot use unified on cgroup v1" in cp.stderr, describe(cp)
    assert cg_read(c, "pids", "pids.max") == "50"
    assert int(cg_read(c, "memory", "memory.limit_in_bytes")) == 64 * MiB


def test_delete_force_reaches_every_process_of_a_paused_container(runtime):
    c = runtime.container(["sh", "-c", "sleep 1000 & sleep 1000 & sh -c 'sleep 1000 & wait' & wait"])
    c.start()
    wait_for(lambda: len(json.loads(runtime.run("ps", "--format", "json", c.id).stdout)) >= 5,
             what="the container's processes")
    pids = json.loads(runtime.run("ps", "--format", "json", c.id).stdout)
    runtime.run("pause", c.id)
    assert c.status == "paused"
    c.delete(force=True)
    for pid in pids:
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what=f"pid {pid} to be gone")
    assert not c.leftovers()


def test_kill_all_reaches_a_paused_containers_children(runtime):
    c = runtime.container(["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    c.start()
    wait_for(lambda: len(json.loads(runtime.run("ps", "--format", "json", c.id).stdout)) == 3,
             what="the container's processes")
    runtime.run("pause", c.id)
    c.kill("KILL", all=True)
    c.wait_status("stopped")
    assert json.loads(runtime.run("ps", "--format", "json", c.id).stdout) in ([], None)
    c.delete()


def test_linux_devices_entry_stays_denied_by_resources(runtime):
    """linux.devices creates /dev/kmsg, but only resources.devices may allow it (runc): under the
    default deny-all it cannot be opened for writing (a write-only open needs no capability, so
    only the device cgroup refuses it); a later allow rule opens it. Nothing is written to it."""
    script = "(: > /dev/kmsg); echo w=$?; (: > /dev/null); echo null=$?"
    config = runtime.config(["sh", "-c", script])
    config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
                                   "fileMode": 0o666, "uid": 0, "gid": 0}]
    cp = runtime.bundle(config).run(check=False)
    assert cp.returncode == 0, describe(cp)
    assert "w=1" in cp.stdout and "null=0" in cp.stdout, describe(cp)
    assert "Operation not permitted" in cp.stderr, describe(cp)
    config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 11,
                                                    "access": "w"})
    cp = runtime.bundle(config).run(check=False)
    assert "w=0" in cp.stdout and "null=0" in cp.stdout, describe(cp)
