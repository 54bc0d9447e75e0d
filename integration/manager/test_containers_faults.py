"""pyctr containers under faults: SIGKILL of the monitor or of pyctr itself, a reboot (runtime
state gone), racing commands. The next command sees the truth and `rm -f` removes everything."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from integration.manager.containers import IMAGE, build_image_archive, popen, private_pyctr, wait_until


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_image_archive(str(tmp_path_factory.mktemp("ctr-image")))


@pytest.fixture
def p(archive):
    with private_pyctr(archive, "pyctr-flt-") as p:
        yield p


def _monitor(p, cid):
    with open(os.path.join(p.root, "containers", cid, "monitor.pid")) as f:
        return int(f.read())


def test_container_outlives_pyctr_and_its_monitor_kill_is_seen(p):
    cid = p("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    assert p.inspect(cid)["State"]["Running"]  # the pyctr that started it has exited
    os.kill(_monitor(p, cid), signal.SIGKILL)
    time.sleep(0.2)
    assert p.inspect(cid)["State"]["Running"]  # the container itself still runs: the runtime says so
    cp = p("rm", "-f", cid)
    assert cp.returncode == 0, cp
    assert p("ps", "-aq").stdout == ""


def test_sigkill_of_pyctr_during_run_then_rm_f(p):
    """pyctr killed at several points of a foreground run: whatever it left, rm -f removes."""
    for delay in (0.05, 0.15, 0.3, 0.6):
        proc = popen(p, "run", "--name", f"k{int(delay * 100)}", IMAGE, "sleep", "30")
        time.sleep(delay)
        proc.kill()
        proc.communicate()
    ids = p("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        assert p("rm", "-f", *ids).returncode == 0
    assert p("ps", "-aq").stdout == ""


def test_reboot_shows_exited_and_start_all_brings_back_always(p):
    always = p("run", "-d", "--restart", "always", IMAGE, "sleep", "60", check=True).stdout.strip()
    plain = p("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    # a reboot: every process gone, the runtime's tmpfs state gone
    for cid in (always, plain):
        pid = p.inspect(cid)["State"]["Pid"]
        os.kill(_monitor(p, cid), signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    shutil.rmtree(os.path.join(p.runroot, "runtime"))
    for cid in (always, plain):  # and the cgroups (empty now) go with the reboot
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{ctrl}/pyctr/{cid}"
            if os.path.isdir(d):
                wait_until(lambda: subprocess.run(["rmdir", d]).returncode == 0, 10, f"{d} to be empty")
    for cid in (always, plain):
        st = p.inspect(cid)["State"]
        assert (st["Status"], st["Running"]) == ("exited", False), st
    cp = p("start", "--all")
    assert cp.stdout.split() == [always], cp
    assert p.inspect(always)["State"]["Running"] and not p.inspect(plain)["State"]["Running"]
    assert p("rm", "-f", always, plain).returncode == 0


def test_racing_stop_and_rm(p):
    cid = p("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    procs = [popen(p, "stop", "-t", "1", cid), popen(p, "rm", "-f", cid), popen(p, "kill", cid)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err and b"internal error" not in err, err
    wait_until(lambda: p("ps", "-aq").stdout == "", 10, "the removal")


def test_killed_create_and_rm_and_unmonitored_exit_are_swept_by_ps(p):
    """What killed commands leave, `ps` cleans: a create killed before its record (layer and
    directory), a removal killed after its rename, a container that exited with its monitor
    and cleanup gone (its rootfs stays mounted until then)."""
    import json
    for delay in (0.02, 0.05, 0.08, 0.12):
        proc = popen(p, "create", IMAGE, "true")
        time.sleep(delay)
        proc.kill()
        proc.communicate()
    cid = p("run", "-d", IMAGE, "sh", "-c", "sleep 0.5", check=True).stdout.strip()
    os.kill(_monitor(p, cid), signal.SIGKILL)  # nobody will write its exit file or clean up
    wait_until(lambda: not p.inspect(cid)["State"]["Running"], 10, "the exit")
    rootfs = os.path.join(p.root, "containers", cid, "bundle", "rootfs")
    p("ps", "-a", check=True)
    with open("/proc/self/mountinfo") as f:
        assert rootfs not in f.read()
    assert p.inspect(cid)["State"]["ExitCode"] == 255  # no exit file: Docker's code for a lost exit
    ids = p("ps", "-aq", "--no-trunc").stdout.split()
    assert p("rm", "-f", *ids).returncode == 0
    assert p("mounts").stdout == ""
    assert not [n for n in os.listdir(os.path.join(p.root, "containers")) if len(n) >= 64], \
        json.dumps(os.listdir(os.path.join(p.root, "containers")))


@pytest.mark.parametrize("verb", [["stop", "-t", "1"], ["rm", "-f"], ["restart", "-t", "0"]])
def test_sigkill_of_pyctr_during_stop_rm_restart(p, verb):
    """pyctr killed at several points of stop, rm -f, restart: the next command sees the truth
    (no container both gone and running, no lock held) and rm -f removes everything."""
    for delay in (0.01, 0.05, 0.1, 0.2):
        cid = p("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
        proc = popen(p, *verb, cid)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        cp = p("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}")
        assert cp.returncode == 0, cp
        rows = dict(line.split() for line in cp.stdout.splitlines())
        if cid in rows:
            running = rows[cid] == "running"
            pid = p.inspect(cid)["State"]["Pid"]
            assert running == (pid > 0 and os.path.exists(f"/proc/{pid}")), (rows, pid)
            assert p("rm", "-f", cid).returncode == 0
        else:
            assert "No such container" in p("rm", "-f", cid).stderr
    assert p("ps", "-aq").stdout == ""


def test_cleanup_of_a_removed_container_is_quiet(p):
    """The monitor's exit command often comes after the container was removed (run --rm in the
    foreground removes it itself): nothing to do, status 0, no error."""
    cid = p("create", IMAGE, "true", check=True).stdout.strip()
    p("rm", cid, check=True)
    cp = p("container", "cleanup", cid)
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "", ""), cp
