#!/usr/bin/env python3
"""Side-by-side lifecycle benchmark: pyrunc against runc and crun, in one run, interleaved.

Usage (as root):  .venv/bin/python3 bench/lifecycle.py [--iterations 30] [--runtimes pyrunc,runc,crun]

Every iteration runs each operation once per runtime, round-robin (the runtime order rotates every
iteration), so machine noise falls on all runtimes alike. Each timed single command starts after
--settle ms of quiet (default 250), so that no runtime's command rides on, or pays for, kernel state
the command before it left (see SETTLE). Timed operations, each the wall time of one
`<runtime> --root ROOT ...` command (time.perf_counter around subprocess.run):

  run     `run -b BUNDLE ID`, process.args ["true"], terminal false, stdio /dev/null (foreground:
          returns when `true` has exited); the delete afterwards is untimed
  run, back to back
          the same `run`, --burst times in a row per runtime with no settle (a burst of starts)
  create  `create -b BUNDLE ID` (init waits on exec.fifo; `true` has not run yet)
  state   `state ID` of that created container
  start   `start ID` (returns once the process has been started)
  delete  `delete ID` after the process has exited (the wait for exit is untimed)

Exit statuses are checked (and `run` of `false` must report 1), so a broken runtime cannot produce
fast fake timings: it is reported and dropped, the others go on. No pass/fail: it prints medians,
p90s and the ratios pyrunc/runc and pyrunc/crun. See bench/README.md.
"""
import argparse
import copy
import ctypes
import errno
import fcntl
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)                              # integration.helpers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # managers, bench_chart
sys.path.append(os.path.join(REPO, "runtime"))        # pyrunc, if it is not installed

from integration.helpers.bundle import make_bundle, make_rootfs, write_config  # noqa: E402
from pyrunc.spec.template import default_config  # noqa: E402

CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PARENT = "pyrunc-bench"
LOCK_FILE = "/run/pyrunc-bench.lock"
OPS = ("run", "create", "state", "start", "delete", "exec", "kill", "delete --force")
DERIVED = ("create+start+delete",)
BATCH = "create+start x50"          # summed wall of --batch create+start pairs back to back (set in main)
BURST = "run, back to back"         # each `run` of --burst runs in a row, no settle between them
MANAGER_ROWS = ("ctr run", "podman run")
# Seconds of quiet before every timed command of the single-command rows (set from --settle in
# main). A runtime that writes a pid to cgroup.procs takes the kernel's cgroup_threadgroup_rwsem for
# writing, which first waits for an RCU grace period (~10-20 ms here) unless a writer was there
# within the last grace period or so. Back to back, one runtime's command thus pays for, or rides
# on, the one before it: with the rotation, crun always ran right after runc and found the lock warm,
# while runc always ran after pyrunc (which never takes it) and found it cold. A settle makes every
# timed command start from the same quiet kernel, as when containers are started at ordinary spacing;
# the back-to-back regime (a burst of starts) has its own rows (BURST, BATCH).
SETTLE = 0.25
CMD_TIMEOUT = 60
EXIT_TIMEOUT = 30
PR_SET_CHILD_SUBREAPER = 36

# The environment every runtime command gets (see set_runtime_env).
RUNTIME_ENV = dict(os.environ)


class RuntimeFailed(Exception):
    pass


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# one runtime under test

class Runtime:
    def __init__(self, name, binary, workdir):
        self.name = name
        self.binary = binary
        self.dir = os.path.join(workdir, name)
        self.root = os.path.join(self.dir, "root")
        self.bundle = os.path.join(self.dir, "bundle")
        self.errpath = os.path.join(self.dir, "stderr")
        self.config = None
        self.version = None
        self.error = None            # set when the runtime is unavailable or failed: it is then skipped
        self.failed_at = None        # "warmup 2" / "iteration 7" if it failed during the benchmark
        self.fixups = []
        self.seq = 0
        self.samples = {op: [] for op in OPS + (BURST, BATCH) + MANAGER_ROWS}
        self.notes = {"left_after_run": 0, "cgroup_left_after_delete": 0}
        self.has_exec = False
        self.batch_bundles = []

    @property
    def ok(self):
        return self.error is None

    def setup(self, rootfs_template):
        os.makedirs(self.dir)
        os.makedirs(self.root, mode=0o700)
        self.config = copy.deepcopy(default_config(args=["true"], terminal=False))
        make_bundle(self.bundle, config=self.config, rootfs_template=rootfs_template)
        self._err = open(self.errpath, "w+b")
        # pyrunc gains `exec` in issue 5: measure it only when the binary has it
        self.has_exec = subprocess.run([self.binary, "exec", "--help"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       env=RUNTIME_ENV).returncode == 0 if self.binary else False

    def setup_batch(self, n):
        """n bundles sharing this runtime's rootfs, each with its own cgroup, so the timed batch is
        nothing but runtime commands back to back."""
        for j in range(n):
            b = os.path.join(self.dir, "batch", str(j))
            os.makedirs(b)
            cfg = copy.deepcopy(self.config)
            cfg["process"]["args"] = ["true"]
            cfg["root"] = {"path": os.path.join(self.bundle, "rootfs"), "readonly": False}
            cfg["linux"]["cgroupsPath"] = "/%s/%s-b%d" % (CGROUP_PARENT, self.name, j)
            write_config(b, cfg)
            self.batch_bundles.append(b)

    def close(self):
        err = getattr(self, "_err", None)
        if err:
            err.close()

    def new_container(self, args=("true",)):
        """Untimed: a fresh id and cgroup, written into the bundle's config.json."""
        self.seq += 1
        cid = "%s-%d" % (self.name, self.seq)
        self.config["process"]["args"] = list(args)
        self.config["linux"]["cgroupsPath"] = "/%s/%s" % (CGROUP_PARENT, cid)
        write_config(self.bundle, self.config)
        return cid

    def cmd(self, *args, capture=False, timeout=CMD_TIMEOUT, settle=False):
        """Run `<binary> --root ROOT args...`; returns (rc, seconds, stdout bytes, stderr text).

        settle: sleep SETTLE seconds first (untimed), so the command starts from a quiet kernel.

        stdin and stdout are /dev/null (stdout is a pipe only for `state`), stderr goes to a file, not
        a pipe: a created container inherits it and would keep a pipe open.
        """
        self._err.seek(0)
        self._err.truncate()
        argv = [self.binary, "--root", self.root, *args]
        if settle and SETTLE:
            time.sleep(SETTLE)
        rc, dt, out = run_timed(argv, timeout, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                                stderr=self._err, env=RUNTIME_ENV)
        err = ""
        if rc != 0:
            self._err.seek(0)
            err = self._err.read()[-4000:].decode(errors="replace").strip()
        return rc, dt, out, err

    def must(self, *args, expect=0, capture=False, settle=False):
        rc, dt, out, err = self.cmd(*args, capture=capture, settle=settle)
        if rc != expect:
            raise RuntimeFailed("`%s %s` exited %s (expected %s)%s" % (
                self.name, " ".join(args), rc, expect, (": " + err) if err else ""))
        return dt, out

    def exists(self, cid):
        return os.path.lexists(os.path.join(self.root, cid))

    # ---- the timed operations ----------------------------------------------------------------

    def op_run(self, record):
        cid = self.new_container()
        dt, _ = self.must("run", "-b", self.bundle, cid, settle=True)
        if record:
            self.samples["run"].append(dt * 1000)
        # Untimed. runc and crun remove a foreground `run`'s container themselves when it exits.
        if self.exists(cid):
            self.notes["left_after_run"] += record
            self.must("delete", "-f", cid)
        self.check_gone(cid, record)

    def op_lifecycle(self, record):
        cid = self.new_container()
        t_create, _ = self.must("create", "-b", self.bundle, cid, settle=True)
        t_state, out = self.must("state", cid, capture=True, settle=True)
        try:
            st = json.loads(out)
        except ValueError:
            raise RuntimeFailed("`%s state %s` printed no JSON: %r" % (self.name, cid, out[:200]))
        if st.get("id") != cid or st.get("status") != "created" or not st.get("pid"):
            raise RuntimeFailed("`%s state %s` after create: id=%r status=%r pid=%r" % (
                self.name, cid, st.get("id"), st.get("status"), st.get("pid")))
        t_start, _ = self.must("start", cid, settle=True)
        wait_exit(int(st["pid"]))               # untimed
        t_delete, _ = self.must("delete", cid, settle=True)
        if self.exists(cid):
            raise RuntimeFailed("`%s delete %s` exited 0 but %s is still there" % (
                self.name, cid, os.path.join(self.root, cid)))
        self.check_gone(cid, record)
        if record:
            for op, dt in (("create", t_create), ("state", t_state), ("start", t_start),
                           ("delete", t_delete)):
                self.samples[op].append(dt * 1000)

    def op_running(self, record):
        """exec and kill of a running container, then `delete --force` of another running one."""
        cid = self.new_container(("sleep", "1000"))
        self.must("create", "-b", self.bundle, cid)
        self.must("start", cid)
        _, out = self.must("state", cid, capture=True)
        pid = int(json.loads(out)["pid"])
        t_exec = None
        if self.has_exec:
            t_exec, _ = self.must("exec", cid, "true", settle=True)
        t_kill, _ = self.must("kill", cid, "KILL", settle=True)
        wait_exit(pid)                                          # untimed
        self.must("delete", cid)
        self.check_gone(cid, record)
        cid = self.new_container(("sleep", "1000"))
        self.must("create", "-b", self.bundle, cid)
        self.must("start", cid)
        t_force, _ = self.must("delete", "--force", cid, settle=True)
        if self.exists(cid):
            raise RuntimeFailed("`%s delete --force %s` exited 0 but the container is still there" % (
                self.name, cid))
        self.check_gone(cid, record)
        reap_children()
        if record:
            self.samples["kill"].append(t_kill * 1000)
            self.samples["delete --force"].append(t_force * 1000)
            if t_exec is not None:
                self.samples["exec"].append(t_exec * 1000)

    def op_burst(self, record, n):
        """`run` n times in a row with no settle: a burst of container starts, where a runtime's
        cgroup.procs write finds the lock its own previous run left warm."""
        for _ in range(n):
            cid = self.new_container()
            dt, _ = self.must("run", "-b", self.bundle, cid)
            if record:
                self.samples[BURST].append(dt * 1000)
            if self.exists(cid):
                self.must("delete", "-f", cid)
            self.check_gone(cid, record)

    def op_batch(self, record, iteration):
        """create+start of len(batch_bundles) containers back to back; wait and delete untimed."""
        ids = ["%s-b%d-%d" % (self.name, j, iteration) for j in range(len(self.batch_bundles))]
        total = 0.0
        for cid, b in zip(ids, self.batch_bundles):
            t1, _ = self.must("create", "-b", b, cid)
            t2, _ = self.must("start", cid)
            total += t1 + t2
        for cid in ids:
            deadline = time.monotonic() + EXIT_TIMEOUT
            while True:
                rc, _, out, err = self.cmd("state", cid, capture=True)
                if rc == 0 and json.loads(out).get("status") == "stopped":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeFailed("batch container %s did not stop: %s %s" % (cid, out, err))
                reap_children()
                time.sleep(0.002)
            self.must("delete", cid)
        reap_children()
        if record:
            self.samples[BATCH].append(total * 1000)

    def check_gone(self, cid, record):
        for base in cgroup_bases():
            if os.path.isdir(os.path.join(base, CGROUP_PARENT, cid)):
                self.notes["cgroup_left_after_delete"] += record
                return

    # ---- availability ------------------------------------------------------------------------

    def probe(self, env):
        """Can it run a container at all? Applies known fixups and retries; sets self.error if not."""
        if not self.binary or not os.access(self.binary, os.X_OK):
            self.error = "binary not found: %r" % (self.binary,)
            return
        stale = stale_install(self.binary) if self.name == "pyrunc" else None
        if stale:
            self.fixups.append("WARNING: " + stale)
        p = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                           env=RUNTIME_ENV)
        if p.returncode != 0:
            self.error = "`%s --version` exited %s: %s" % (
                self.binary, p.returncode, (p.stderr or p.stdout).strip()[-2000:])
            return
        self.version = p.stdout.strip().splitlines()[0] if p.stdout.strip() else "?"
        for _attempt in range(4):
            try:
                self.run_probe()
                return
            except RuntimeFailed as e:
                msg = str(e)
                if not self.apply_fixup(msg, env):
                    self.error = msg
                    self.cleanup_containers()
                    return

    def run_probe(self):
        cid = self.new_container(("true",))
        self.must("run", "-b", self.bundle, cid)
        if self.exists(cid):
            self.must("delete", "-f", cid)
        # A runtime that does not really run the process cannot report false's status.
        cid = self.new_container(("false",))
        self.must("run", "-b", self.bundle, cid, expect=1)
        if self.exists(cid):
            self.must("delete", "-f", cid)
        self.new_container(("true",))

    def apply_fixup(self, msg, env):
        if "unknown version" in msg and self.config["ociVersion"] != "1.0.2":
            # crun 1.8 only knows runtime-spec 1.0/1.1 configs; the content is the same either way.
            self.fixups.append("ociVersion %s -> 1.0.2 (%s: 'unknown version specified')" % (
                self.config["ociVersion"], self.name))
            self.config["ociVersion"] = "1.0.2"
            return True
        if "hybrid mode not supported" in msg:
            done = env.move_v2_controllers_to_v1()
            if done:
                self.fixups.append("mounted cgroup v1 %s at %s (hybrid cgroups: %s wants no "
                                   "controller left on v2; undone at exit; all runtimes run so)" % (
                                       ",".join(done), ", ".join(os.path.join(CGROUP_ROOT, c)
                                                                for c in done), self.name))
                return True
        return False

    def cleanup_containers(self):
        """Best effort: force-delete every container left under our root."""
        if not os.path.isdir(self.root):
            return
        for cid in sorted(os.listdir(self.root)):
            if not os.path.isdir(os.path.join(self.root, cid)):
                continue
            try:
                rc, _, _, err = self.cmd("delete", "-f", cid, timeout=20)
            except Exception as e:  # the stderr file may be gone after Ctrl-C in setup
                rc, err = "?", str(e)
            if rc != 0 and self.exists(cid):
                log("cleanup: `%s delete -f %s` exited %s: %s" % (self.name, cid, rc, err))


# --------------------------------------------------------------------------------------------
# machine-level setup and cleanup

class Environment:
    def __init__(self):
        self.v1_mounts = []       # (controller, mountpoint, created the dir, was enabled on v2)
        self.notes = []

    def move_v2_controllers_to_v1(self):
        """crun refuses a hybrid hierarchy whose v2 part still has controllers (here: hugetlb, which
        nothing mounts as v1). Mounting each such controller as a v1 hierarchy takes it off v2."""
        unified = os.path.join(CGROUP_ROOT, "unified")
        try:
            controllers = open(os.path.join(unified, "cgroup.controllers")).read().split()
        except OSError:
            return []
        done = []
        try:
            enabled = open(os.path.join(unified, "cgroup.subtree_control")).read().split()
        except OSError:
            enabled = []
        for c in controllers:
            path = os.path.join(CGROUP_ROOT, c)
            if os.path.ismount(path):
                continue
            was_enabled = c in enabled
            if was_enabled:
                # Enabled for v2 children (pyrunc's v2 driver does that on hybrid hosts; runc does
                # not). When no v2 cgroup below the root holds a process or passes the controller
                # further down (empty parents other sessions left, e.g. libpod_parent), nobody can
                # be using it: disable it for the run and enable it again at the end. Otherwise
                # leave it alone.
                remove_cgroup_tree(os.path.join(unified, CGROUP_PARENT))  # ours, empty by now
                if not _wait(lambda: _v2_unused(unified) or _v2_idle(unified, c), 30):
                    log("cannot move cgroup controller %s to v1: it is enabled in "
                        "%s/cgroup.subtree_control and v2 cgroups exist below; leaving it alone"
                        % (c, unified))
                    self.notes.append("%s is enabled in %s/cgroup.subtree_control and in use, so it "
                                      "could not be mounted as v1 for crun" % (c, unified))
                    continue
                if not _write_quiet(os.path.join(unified, "cgroup.subtree_control"), "-" + c):
                    continue
            created = not os.path.exists(path)
            try:
                if created:
                    os.mkdir(path, 0o755)
                # Just disabled on v2, the controller's css in idle v2 children die asynchronously;
                # until they are gone the kernel refuses to bind it to a v1 hierarchy (EBUSY).
                deadline = time.monotonic() + 5
                while True:
                    p = subprocess.run(["mount", "-t", "cgroup", "-o", c, "cgroup", path],
                                       capture_output=True, text=True)
                    if p.returncode == 0 or not was_enabled or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                if p.returncode != 0:
                    raise OSError(p.stderr.strip())
            except OSError as e:
                log("could not mount cgroup v1 %s at %s: %s" % (c, path, e))
                if created:
                    _rmdir_quiet(path)
                if was_enabled:
                    _write_quiet(os.path.join(unified, "cgroup.subtree_control"), "+" + c)
                continue
            self.v1_mounts.append((c, path, created, was_enabled))
            if was_enabled:
                self.notes.append("%s was enabled in %s/cgroup.subtree_control with no v2 cgroup "
                                  "using it: disabled it for the run" % (c, unified))
            done.append(c)
        return done

    def undo_v1_mounts(self):
        for c, path, created, was_enabled in reversed(self.v1_mounts):
            back = False
            for _attempt in range(5):
                remove_cgroup_tree(os.path.join(path, CGROUP_PARENT))
                # Other programs' runtimes (e.g. tests running meanwhile) create cgroups in the
                # hierarchy while it is mounted, and leave them empty once it is gone from their
                # view. rmdir only removes empty cgroups (no process, no child): sweep those.
                _rmdir_empty_below(path)
                # A v1 hierarchy is only destroyed on umount if it has no child cgroup left, not
                # even a dying one; otherwise it lingers unmounted and keeps the controller off v2.
                _wait(lambda: _v1_cgroup_count(c) in (None, 1), 5)
                if os.path.ismount(path):
                    subprocess.run(["umount", path], capture_output=True)
                if _wait(lambda: c in _v2_controllers(), 3):
                    back = True
                    break
                if _attempt < 4:
                    # Lingering hierarchy: mount it again (that reuses it) and unmount it now that
                    # it is empty.
                    subprocess.run(["mount", "-t", "cgroup", "-o", c, "cgroup", path],
                                   capture_output=True)
            if created and not os.path.ismount(path):
                _rmdir_quiet(path)
            self.notes.append("unmounted cgroup v1 %s from %s; %s" % (
                c, path, "it is back on cgroup v2" if back else
                "WARNING: it did not return to cgroup v2 (hierarchy still alive, see /proc/cgroups)"))
            if back and was_enabled:
                control = os.path.join(CGROUP_ROOT, "unified", "cgroup.subtree_control")
                ok = _write_quiet(control, "+" + c)
                self.notes.append("%s %s in %s as it was" % (
                    "re-enabled" if ok else "WARNING: could not re-enable", c, control))
        self.v1_mounts = []


def _rmdir_empty_below(top):
    if not os.path.ismount(top):
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
        if dirpath != top:
            _rmdir_quiet(dirpath)


def cgroup_bases():
    """Every cgroup hierarchy root under /sys/fs/cgroup (v1 controllers, unified, or pure v2)."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return [CGROUP_ROOT]
    bases = []
    for name in sorted(os.listdir(CGROUP_ROOT)):
        path = os.path.join(CGROUP_ROOT, name)
        if os.path.isdir(path) and not os.path.islink(path) and os.path.ismount(path):
            bases.append(path)
    return bases


def remove_cgroup_tree(top):
    """rmdir a cgroup directory tree bottom-up, killing what is still inside it."""
    if not os.path.isdir(top):
        return True
    ok = True
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        for attempt in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or attempt == 49:
                    log("cleanup: cannot remove cgroup %s: %s" % (dirpath, e))
                    ok = False
                    break
                _kill_cgroup_procs(dirpath)
                time.sleep(0.02)
    return ok


def _kill_cgroup_procs(path):
    try:
        pids = [int(x) for x in open(os.path.join(path, "cgroup.procs")).read().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    thawed = os.path.join(path, "freezer.state")
    if os.path.exists(thawed):
        try:
            with open(thawed, "w") as f:
                f.write("THAWED")
        except OSError:
            pass
    reap_children()


def _v2_controllers():
    try:
        return open(os.path.join(CGROUP_ROOT, "unified", "cgroup.controllers")).read().split()
    except OSError:
        return []


def _v2_unused(unified):
    try:
        stat = dict(line.split() for line in open(os.path.join(unified, "cgroup.stat")))
        return stat.get("nr_descendants") == "0" and stat.get("nr_dying_descendants") == "0"
    except (OSError, ValueError):
        return False


def _v2_idle(unified, controller):
    """No child of the v2 root has a process anywhere below it or enables `controller` further."""
    try:
        for entry in os.scandir(unified):
            if not entry.is_dir(follow_symlinks=False):
                continue
            events = open(os.path.join(entry.path, "cgroup.events")).read().split()
            if "populated" not in events or events[events.index("populated") + 1] != "0":
                return False
            if controller in open(os.path.join(entry.path, "cgroup.subtree_control")).read().split():
                return False
        return True
    except (OSError, ValueError):
        return False


def _write_quiet(path, value):
    try:
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError as e:
        log("cannot write %r to %s: %s" % (value, path, e))
        return False


def _v1_cgroup_count(controller):
    for line in open("/proc/cgroups"):
        f = line.split()
        if f and f[0] == controller:
            return int(f[2]) if f[1] != "0" else None
    return None


def _wait(pred, seconds):
    deadline = time.monotonic() + seconds
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _rmdir_quiet(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


class _Timeout(Exception):
    pass


def _on_alarm(_signum, _frame):
    raise _Timeout()


def run_timed(argv, timeout, **kwargs):
    """subprocess.run timed with perf_counter; returns (returncode, seconds, stdout).

    Not subprocess.run(timeout=...): with a timeout, Popen.wait polls with sleeps doubling from
    0.5 ms, which rounds every sample up to 0.5 * 2**k ms. Without one it blocks in waitpid; the
    timeout is an interval timer whose SIGALRM interrupts that wait (run() then kills the child).
    """
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        t0 = time.perf_counter()
        p = subprocess.run(argv, **kwargs)
        dt = time.perf_counter() - t0
        rc, out = p.returncode, p.stdout
    except _Timeout:
        dt = time.perf_counter() - t0
        rc, out = "timeout after %ss" % timeout, b""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return rc, dt, out


def set_runtime_env(workdir):
    """Python runtimes must run from cached bytecode, as an installed pyrunc does: a
    PYTHONDONTWRITEBYTECODE inherited from the caller would make every pyrunc command compile its
    modules again. The cache goes under the work directory (removed at exit), not into the tree."""
    notes = []
    if RUNTIME_ENV.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        notes.append("PYTHONDONTWRITEBYTECODE was set; removed it for the runtimes")
    RUNTIME_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(workdir, "pycache")
    notes.append("Python bytecode cache for the runtimes: PYTHONPYCACHEPREFIX=%s (filled by the "
                 "probe and warmup)" % RUNTIME_ENV["PYTHONPYCACHEPREFIX"])
    return notes


def set_subreaper():
    """Orphaned container processes (after create/start) become our children, as under a shim,
    so we can wait for their exit exactly and reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("warning: PR_SET_CHILD_SUBREAPER failed: %s" % os.strerror(ctypes.get_errno()))


def wait_exit(pid, timeout=EXIT_TIMEOUT):
    """Untimed: until container process `pid` has exited (reaped by us, or gone/zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:  # not our child: watch /proc instead
            try:
                stat = open("/proc/%d/stat" % pid).read()
                if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
            except (OSError, IndexError):
                return
        time.sleep(0.0005)
    raise RuntimeFailed("container process %d did not exit within %ss" % (pid, timeout))


def reap_children():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_children():
    """At exit: SIGKILL whatever was orphaned to us (container processes of a broken runtime)."""
    me = str(os.getpid())
    for _round in range(5):
        reap_children()
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = open("/proc/%s/stat" % entry).read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[1] == me and fields[0] != "Z":
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            reap_children()
            return
        time.sleep(0.05)


def safe_rmtree(top):
    """rm -rf that first detaches any mount a runtime may have leaked under `top` into our mount
    namespace, and never crosses into another filesystem."""
    if not os.path.exists(top):
        return
    prefix = top.rstrip("/") + "/"
    mounts = []
    for line in open("/proc/self/mountinfo"):
        mp = line.split()[4].encode().decode("unicode_escape")
        if mp.startswith(prefix):
            mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        log("cleanup: detaching leaked mount %s" % mp)
        subprocess.run(["umount", "-l", mp], capture_output=True)
    dev = os.lstat(top).st_dev
    for dirpath, dirs, files in os.walk(top, topdown=False):
        if os.lstat(dirpath).st_dev != dev:
            log("cleanup: not removing %s: another filesystem is mounted there" % dirpath)
            return
    shutil.rmtree(top, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# statistics and report

def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(samples):
    if not samples:
        return None
    return {"n": len(samples), "median": statistics.median(samples), "p90": quantile(samples, 0.9),
            "min": min(samples), "max": max(samples), "mean": statistics.fmean(samples)}


def runtime_samples(rt):
    s = {op: list(v) for op, v in rt.samples.items()}
    n = min(len(s["create"]), len(s["start"]), len(s["delete"]))
    s["create+start+delete"] = [s["create"][i] + s["start"][i] + s["delete"][i] for i in range(n)]
    return s


def all_rows():
    return OPS[:1] + (BURST,) + OPS[1:] + DERIVED + (BATCH,) + MANAGER_ROWS


def report(runtimes, env, args, wall):
    rows = all_rows()
    summaries = {rt.name: {op: summarize(v) for op, v in runtime_samples(rt).items()}
                 for rt in runtimes}
    shown = [rt for rt in runtimes if any(summaries[rt.name][op] for op in rows)]
    base = "pyrunc"
    others = [rt.name for rt in shown if rt.name != base] if base in [r.name for r in shown] else []

    out = []
    out.append("")
    done = max([len(rt.samples["run"]) for rt in runtimes] + [0])
    out.append("pyrunc lifecycle benchmark: %s iterations (+%d warmup), round-robin, %.0f s wall" % (
        args.iterations if done == args.iterations else "%d of %d" % (done, args.iterations),
        args.warmup, wall))
    out.append("settle: %g ms of quiet before each timed single command and manager run; "
               "'%s' and '%s' are back to back" % (args.settle, BURST, BATCH))
    out.append("machine: %s, %d CPUs, kernel %s, cgroups %s, python %s" % (
        platform.machine(), os.cpu_count(), platform.release(), cgroup_mode(),
        platform.python_version()))
    for rt in runtimes:
        state = "ok" if rt.ok else ("FAILED at %s" % rt.failed_at if rt.failed_at else "UNAVAILABLE")
        out.append("  %-7s %-28s %s  %s" % (rt.name, rt.binary or "-", rt.version or "", state))
        if rt.error:
            out.append("          error: %s" % _indent(rt.error, 17))
        for f in rt.fixups:
            if f.startswith("WARNING: "):
                out.append("          warning: %s" % f[len("WARNING: "):])
            else:
                out.append("          fixup: %s" % f)
    for n in env.notes:
        out.append("  note: %s" % n)
    out.append("")
    if shown:
        head = "%-20s" % "ms (median / p90)"
        for rt in shown:
            head += " %17s" % rt.name
        for o in others:
            head += " %13s" % ("%s/%s" % (base, o))
        out.append(head)
        for op in rows:
            line = "%-20s" % op
            for rt in shown:
                s = summaries[rt.name][op]
                line += " %17s" % ("%7.1f / %6.1f" % (s["median"], s["p90"]) if s else "-")
            for o in others:
                a, b = summaries[base][op], summaries[o][op]
                line += " %13s" % ("%.2fx" % (a["median"] / b["median"]) if a and b and b["median"]
                                   else "-")
            out.append(line)
        out.append("(ratios are of medians; create+start+delete is the per-iteration sum, without the "
                   "untimed wait for exit)")
        odd = []
        for rt in shown:
            if rt.notes["left_after_run"]:
                odd.append("%s: the container still existed after a foreground `run` in %d of %d "
                           "iterations (runc and crun remove it themselves)" % (
                               rt.name, rt.notes["left_after_run"], len(rt.samples["run"])))
            if rt.notes["cgroup_left_after_delete"]:
                odd.append("%s: its cgroup directory was left behind after delete %d times" % (
                    rt.name, rt.notes["cgroup_left_after_delete"]))
            counts = {len(rt.samples[k]) for k in OPS if k != "exec"}
            if len(counts) > 1 or rt.failed_at:
                odd.append("%s: stopped early or uneven samples (%s)" % (
                    rt.name, ", ".join("%s=%d" % (k, len(v)) for k, v in rt.samples.items())))
        for o in odd:
            out.append("note: " + o)
    else:
        out.append("no runtime produced samples")
    print("\n".join(out), flush=True)
    return summaries


def _indent(text, n):
    return text.replace("\n", "\n" + " " * n)


def cgroup_mode():
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return "v2"
    if os.path.ismount(os.path.join(CGROUP_ROOT, "unified")):
        return "hybrid (v1 + v2 at %s/unified)" % CGROUP_ROOT
    return "v1"


# --------------------------------------------------------------------------------------------
# --profile: where pyrunc's time goes

def interpreter_argv(path):
    """For a Python script (a console-script wrapper), its interpreter and flags from the shebang."""
    try:
        with open(path, "rb") as f:
            first = f.readline(512).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    argv = shlex.split(first[2:])
    if argv and os.path.basename(argv[0]) == "env":
        argv = argv[1:]
        if argv and argv[0] == "-S":
            argv = shlex.split(" ".join(argv[1:]))
        if argv:
            argv[0] = shutil.which(argv[0]) or argv[0]
    if not argv or "python" not in os.path.basename(argv[0]):
        return None
    return argv


def stale_install(binary):
    """If `binary` runs an installed copy of pyrunc that differs from this working tree, say so:
    scripts/setup installs a copy (not editable), so edits are not measured until it is re-run."""
    interp = interpreter_argv(binary)
    tree = os.path.join(REPO, "runtime", "pyrunc")
    if not interp or not os.path.isdir(tree):
        return None
    # -v names the file each module is loaded from: this is what the script really imports.
    p = subprocess.run(interp + ["-v", binary, "--version"], capture_output=True, text=True,
                       env=RUNTIME_ENV)
    m = re.search(r"(/\S*?/pyrunc)/__init__\.py\b", p.stderr)
    installed = m.group(1) if m else None
    if not installed or os.path.realpath(installed) == os.path.realpath(tree):
        return None
    differ = []
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            if not name.endswith(".py"):
                continue
            src = os.path.join(dirpath, name)
            dst = os.path.join(installed, os.path.relpath(src, tree))
            try:
                with open(src, "rb") as a, open(dst, "rb") as b:
                    if a.read() != b.read():
                        differ.append(os.path.relpath(src, tree))
            except OSError:
                differ.append(os.path.relpath(src, tree))
    if not differ:
        return None
    return ("the pyrunc measured (%s) is not this working tree: %d files differ or are missing "
            "(e.g. %s); re-run scripts/setup to measure the current code" % (
                installed, len(differ), ", ".join(sorted(differ)[:3])))


def parse_importtime(text):
    """-X importtime lines -> [(self_us, cumulative_us, depth, name)]."""
    entries = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            _, rest = line.split(":", 1)
            self_us, cum_us, name = rest.split("|", 2)
            depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
            entries.append((int(self_us), int(cum_us), depth, name.strip()))
        except ValueError:
            continue
    return entries


def profile_pyrunc(rt, top, summary):
    """Where pyrunc's time goes: bare interpreter startup, pyrunc's own imports, the rest."""
    print("\n=== --profile: where pyrunc's time goes (python -X importtime) ===", flush=True)
    interp = interpreter_argv(rt.binary)
    bare_names, bare_ms = set(), None
    if interp:
        prefix = interp + ["-X", "importtime", rt.binary]
        env = RUNTIME_ENV
        startup = []
        for _ in range(5):
            rc, dt, _ = run_timed(interp + ["-c", "pass"], CMD_TIMEOUT, stdin=subprocess.DEVNULL,
                                  env=env)
            startup.append(dt * 1000)
        bare_ms = min(startup)
        p = subprocess.run(interp + ["-X", "importtime", "-c", "pass"], capture_output=True,
                           text=True, env=env)
        bare_names = {e[3] for e in parse_importtime(p.stderr)}
        print("interpreter %s: bare startup (`-c pass`, min of 5) %.1f ms, %d modules imported "
              "by the bare interpreter (left out below)" % (" ".join(interp), bare_ms,
                                                           len(bare_names)))
    else:
        prefix = [rt.binary]
        env = dict(RUNTIME_ENV, PYTHONPROFILEIMPORTTIME="1")
        print("%s is not a Python script with a shebang; using PYTHONPROFILEIMPORTTIME=1" % rt.binary)

    def profiled(label, *args):
        errpath = os.path.join(rt.dir, "importtime-%s.txt" % label)
        with open(errpath, "w+b") as err:
            argv = prefix + ["--root", rt.root, *args]
            rc, wall, _ = run_timed(argv, CMD_TIMEOUT, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
            wall *= 1000
            err.seek(0)
            text = err.read().decode(errors="replace")
        entries = [e for e in parse_importtime(text) if e[3] not in bare_names]
        other = [line for line in text.splitlines() if not line.startswith("import time:")]
        own = sum(e[0] for e in entries) / 1000      # self times: no double counting of nesting
        print("\n--- pyrunc %s: exit %s, %.1f ms wall under -X importtime; %d modules beyond the "
              "bare interpreter, %.1f ms importing them (self times summed; forked children's "
              "lazy imports included)" % (label, rc, wall, len(entries), own))
        med = summary.get(label) if summary else None
        if med and bare_ms is not None:
            m = med["median"]
            print("    benchmark median %.1f ms ~= interpreter startup %.1f + pyrunc imports %.1f + "
                  "the rest %.1f" % (m, bare_ms, own, m - bare_ms - own))
        if rc != 0 and other:
            print("    stderr: " + _indent("\n".join(other[-10:]), 12))
        print("    top %d by cumulative ms (nesting shown by indent):" % top)
        for _s, c, d, n in sorted(entries, key=lambda e: -e[1])[:top]:
            print("      %8.2f  %s%s" % (c / 1000, "  " * d, n))
        print("    top %d by self ms:" % top)
        for s, _c, _d, n in sorted(entries, key=lambda e: -e[0])[:top]:
            print("      %8.2f  %s" % (s / 1000, n))
        return rc

    cid = rt.new_container()
    rc, _, _, err = rt.cmd("create", "-b", rt.bundle, cid)
    if rc != 0:
        print("(pyrunc create failed, exit %s: %s; profiling `state` of a missing container)" % (
            rc, err.splitlines()[-1] if err else ""))
    profiled("state", "state", cid)
    if rt.exists(cid):
        rt.cmd("delete", "-f", cid)
    cid = rt.new_container()
    profiled("run", "run", "-b", rt.bundle, cid)
    if rt.exists(cid):
        rt.cmd("delete", "-f", cid)
    reap_children()


# --------------------------------------------------------------------------------------------

def parse_args(argv):
    default_pyrunc = os.path.join(REPO, ".venv", "bin", "pyrunc")
    if not os.path.exists(default_pyrunc):
        default_pyrunc = shutil.which("pyrunc") or default_pyrunc
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=30, help="timed iterations (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    ap.add_argument("--runtimes", default="pyrunc,runc,crun",
                    help="comma-separated, from pyrunc,runc,crun (default: all three)")
    ap.add_argument("--json", metavar="FILE", help="write all samples and the summary as JSON")
    ap.add_argument("--pyrunc", default=default_pyrunc, help="pyrunc binary (default %(default)s)")
    ap.add_argument("--runc", default=shutil.which("runc"), help="runc binary (default %(default)s)")
    ap.add_argument("--crun", default=shutil.which("crun"), help="crun binary (default %(default)s)")
    ap.add_argument("--profile", action="store_true",
                    help="also print pyrunc's -X importtime breakdown for `state` and `run`")
    ap.add_argument("--profile-top", type=int, default=15, help="entries per --profile list")
    ap.add_argument("--settle", type=float, default=250, metavar="MS",
                    help="quiet time before each timed single command and manager run (default 250; "
                         "0 = back to back, as before)")
    ap.add_argument("--burst", type=int, default=10,
                    help="`run`s in a row per runtime for the back-to-back row (default 10)")
    ap.add_argument("--burst-iterations", type=int, default=5,
                    help="timed bursts per runtime (default 5; 0 skips the row)")
    ap.add_argument("--batch", type=int, default=50,
                    help="containers per back-to-back create+start batch (default 50)")
    ap.add_argument("--batch-iterations", type=int, default=5,
                    help="timed batches per runtime (default 5; 0 skips the row)")
    ap.add_argument("--manager-iterations", type=int, default=10,
                    help="timed `ctr run` and `podman run` per runtime (default 10; 0 skips them)")
    ap.add_argument("--png", metavar="FILE", help="also draw the medians as a bar chart (needs matplotlib)")
    ap.add_argument("--workdir", help="parent of the temporary directory (default: $TMPDIR or /tmp)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.runtimes.split(",") if n.strip()]
    bad = [n for n in names if n not in ("pyrunc", "runc", "crun")]
    if bad or not names or len(set(names)) != len(names):
        ap.error("--runtimes: a list of distinct names from pyrunc,runc,crun (got %r)" % args.runtimes)
    if args.iterations < 1 or args.warmup < 0:
        ap.error("--iterations must be >= 1 and --warmup >= 0")
    if args.batch < 1 or args.batch_iterations < 0 or args.manager_iterations < 0:
        ap.error("--batch must be >= 1, --batch-iterations and --manager-iterations >= 0")
    if args.settle < 0 or args.burst < 1 or args.burst_iterations < 0:
        ap.error("--settle must be >= 0, --burst >= 1 and --burst-iterations >= 0")
    args.names = names
    return args


def main(argv=None):
    global BATCH, SETTLE
    args = parse_args(sys.argv[1:] if argv is None else argv)
    BATCH = "create+start x%d" % args.batch
    SETTLE = args.settle / 1000
    if args.png:
        try:
            import matplotlib  # noqa: F401  (fail now, not after minutes of benchmarking)
        except ImportError:
            log("--png needs matplotlib: .venv/bin/pip install matplotlib")
            return 2
    if os.geteuid() != 0:
        log("bench/lifecycle.py needs root (containers with namespaces and cgroups)")
        return 2
    lock = open(LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log("another bench/lifecycle.py holds %s; cgroup paths would collide" % LOCK_FILE)
        return 2

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    set_subreaper()

    env = Environment()
    # The runtimes' default roots: `crun --version` (the probe) makes /run/crun whatever --root
    # says, and podman passes no --root. The ones missing now are removed at the end once empty.
    from managers import FixedDirs
    default_roots = FixedDirs(("/run/pyrunc", "/run/runc", "/run/crun"))
    workdir = tempfile.mkdtemp(prefix="pyrunc-bench-", dir=args.workdir)
    binaries = {"pyrunc": args.pyrunc, "runc": args.runc, "crun": args.crun}
    runtimes = [Runtime(n, binaries[n], workdir) for n in args.names]
    managers = []
    status = 0
    json_data = None
    summaries = None
    notes_shown = 0
    t_begin = time.monotonic()
    try:
        log("workdir %s" % workdir)
        env.notes.extend(set_runtime_env(workdir))
        template = make_rootfs(os.path.join(workdir, "rootfs-template"))
        for rt in runtimes:
            rt.setup(template)
        for rt in runtimes:
            log("probing %s (%s) ..." % (rt.name, rt.binary))
            rt.probe(env)
            if not rt.ok:
                log("  %s unavailable: %s" % (rt.name, rt.error.splitlines()[0][:300]))
            elif args.batch_iterations:
                rt.setup_batch(args.batch)
        if args.manager_iterations:
            managers = setup_managers(runtimes, env, template, workdir)
        total = args.warmup + args.iterations
        for i in range(total):
            record = i >= args.warmup
            live = [rt for rt in runtimes if rt.ok]
            if not live:
                break
            k = i % len(live)
            order = live[k:] + live[:k]           # rotate so no runtime always goes first
            steps = ["op_run", "op_lifecycle", "op_running"]
            n = i - args.warmup
            if record and n < args.burst_iterations:
                steps.append("op_burst")
            if record and n < args.batch_iterations:
                steps.append("op_batch")
            for step in steps:
                for rt in order:
                    if not rt.ok:
                        continue
                    try:
                        if step == "op_batch":
                            rt.op_batch(record, n)
                        elif step == "op_burst":
                            rt.op_burst(record, args.burst)
                        else:
                            getattr(rt, step)(record)
                    except (RuntimeFailed, OSError, ValueError, TypeError, KeyError) as e:
                        if not isinstance(e, RuntimeFailed):
                            e = "%s: %s" % (type(e).__name__, e)
                        rt.error = str(e)
                        rt.failed_at = ("iteration %d" % (i - args.warmup + 1)) if record else \
                            ("warmup %d" % (i + 1))
                        log("%s FAILED at %s, dropping it: %s" % (rt.name, rt.failed_at, e))
                        rt.cleanup_containers()
            if record and n < args.manager_iterations:
                for m in managers:
                    for rt in order:
                        time_manager(m, rt, env)
            reap_children()
            if (i + 1) % 10 == 0 or i + 1 == total:
                log("  %d/%d iterations" % (i + 1, total))
        summaries = report(runtimes, env, args, time.monotonic() - t_begin)
        notes_shown = len(env.notes)
        if args.png:
            import bench_chart
            bench_chart.draw(args.png, summaries, [rt.name for rt in runtimes], all_rows(),
                             "pyrunc vs runc vs crun: median ms (lower is better); %d iterations, %g ms settle "
                             "before each single command (back-to-back rows: none)" % (args.iterations, args.settle))
            log("wrote %s" % args.png)
        if args.profile:
            prt = next((rt for rt in runtimes if rt.name == "pyrunc"), None)
            if prt is None:
                print("\n--profile: pyrunc is not among --runtimes")
            else:
                try:
                    profile_pyrunc(prt, args.profile_top, summaries.get("pyrunc"))
                except (OSError, ValueError, RuntimeFailed) as e:
                    print("--profile failed: %s: %s" % (type(e).__name__, e))
        if args.json:
            json_data = {
                "iterations": args.iterations, "warmup": args.warmup, "settle_ms": args.settle,
                "burst": args.burst, "batch": args.batch,
                "machine": {"arch": platform.machine(), "cpus": os.cpu_count(),
                            "kernel": platform.release(), "cgroups": cgroup_mode(),
                            "python": platform.python_version()},
                "definitions": {op: d for op, d in OP_DOC.items()},
                "runtimes": {rt.name: {
                    "binary": rt.binary, "version": rt.version, "available": rt.error is None,
                    "error": rt.error, "failed_at": rt.failed_at, "fixups": rt.fixups,
                    "notes": rt.notes, "samples_ms": runtime_samples(rt),
                    "summary_ms": summaries[rt.name]} for rt in runtimes},
                "ratios_of_medians": ratios(summaries),
                "environment_notes": env.notes,   # filled in by cleanup, before it is written
            }
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        status = 130
        if summaries is None and any(rt.samples["run"] for rt in runtimes):
            print("(interrupted: partial results)")
            report(runtimes, env, args, time.monotonic() - t_begin)
            notes_shown = len(env.notes)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for m in managers:
            try:
                m.close()
            except Exception as e:
                log("cleanup %s: %s" % (m.name, e))
        cleanup(runtimes, env, workdir)
        default_roots.remove()
        try:
            os.unlink(LOCK_FILE)        # still holding it, so no other instance is running
        except OSError:
            pass
        lock.close()
        for n in env.notes[notes_shown:]:
            log("note: " + n)
        if json_data is not None:
            with open(args.json, "w") as f:
                json.dump(json_data, f, indent=2)
            log("wrote %s" % args.json)
    return status


OP_DOC = {
    "run": "wall ms of `RT --root R run -b BUNDLE ID`, args [true], stdio /dev/null; delete untimed",
    BURST: "wall ms of each `run` of --burst runs in a row (no settle between them); delete untimed",
    "create": "wall ms of `RT --root R create -b BUNDLE ID`",
    "state": "wall ms of `RT --root R state ID` of the created container (stdout to a pipe)",
    "start": "wall ms of `RT --root R start ID` (returns once the process is started)",
    "delete": "wall ms of `RT --root R delete ID` after the process exited (wait untimed)",
    "create+start+delete": "per-iteration sum of create, start and delete",
}


def setup_managers(runtimes, env, template, workdir):
    """A private containerd and a podman store with the busybox image; each runtime runs one
    container through each of them untimed first (a probe; a runtime that fails is noted and skipped
    for that manager only)."""
    import managers as mgr
    found = []
    try:
        archive = mgr.build_image(REPO, template, workdir)
    except (mgr.ManagerFailed, OSError) as e:
        env.notes.append("manager rows skipped: building the image failed: %s" % e)
        return found
    for cls in (mgr.Containerd, mgr.Podman):
        log("starting %s ..." % cls.name)
        try:
            found.append(cls(archive))
        except (mgr.ManagerFailed, OSError, subprocess.SubprocessError) as e:
            env.notes.append("%s: unavailable: %s" % (cls.name, e))
    for m in found:
        m.broken = {}
        for rt in runtimes:
            if rt.ok:
                time_manager(m, rt, env, record=False)
    return found


def time_manager(m, rt, env, record=True):
    if not rt.ok or rt.name in m.broken:
        return
    rt._err.seek(0)
    rt._err.truncate()
    argv = m.argv(rt)
    if SETTLE:
        time.sleep(SETTLE)
    rc, dt, _ = run_timed(argv, CMD_TIMEOUT * 2, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=rt._err, env=RUNTIME_ENV)
    if rc != 0:
        rt._err.seek(0)
        err = rt._err.read()[-1500:].decode(errors="replace").strip()
        m.broken[rt.name] = err
        env.notes.append("%s with %s failed (exit %s), row skipped for it: %s" % (m.name, rt.name, rc, err))
        log(env.notes[-1])
    elif record:
        rt.samples[m.name].append(dt * 1000)


def ratios(summaries):
    out = {}
    if "pyrunc" not in summaries:
        return out
    for other in summaries:
        if other == "pyrunc":
            continue
        r = {}
        for op in all_rows():
            a, b = summaries["pyrunc"].get(op), summaries[other].get(op)
            r[op] = a["median"] / b["median"] if a and b and b["median"] else None
        out["pyrunc/" + other] = r
    return out


def cleanup(runtimes, env, workdir):
    for rt in runtimes:
        try:
            rt.cleanup_containers()
        except Exception as e:
            log("cleanup %s: %s" % (rt.name, e))
        rt.close()
    kill_children()
    import managers as mgr
    for base in cgroup_bases():
        for parent in (CGROUP_PARENT,) + mgr.cgroup_parents():
            remove_cgroup_tree(os.path.join(base, parent))
    try:
        env.undo_v1_mounts()
    except Exception as e:
        log("cleanup: undoing cgroup v1 mounts: %s" % e)
    safe_rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
