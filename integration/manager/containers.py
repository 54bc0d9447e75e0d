"""Helpers for the container tests: a pyctr with a private --root and --runroot whose containers,
mounts, monitors, cgroups and runtime state are checked and removed at teardown, and a private
dockerd (Debian's docker.io, no bridge or iptables) loaded with the same busybox image."""
import contextlib
import json
import os
import tempfile
import shutil
import signal
import subprocess
import time

from integration.helpers import mountinfo
from integration.helpers.bundle import make_rootfs, write_rootfs_tar
from integration.helpers.runtime import assert_no_traceback, describe, execute, wait_for
from integration.manager.conftest import PYCTR

IMAGE = "pyctr-test/busybox:latest"


def build_image_archive(d):
    """busybox-static rootfs -> pyctr import (CMD sh) -> pyctr save: a docker-archive both load."""
    rootfs = make_rootfs(os.path.join(d, "rootfs"))
    tar = os.path.join(d, "rootfs.tar")
    write_rootfs_tar(rootfs, tar)
    store, archive = os.path.join(d, "build-store"), os.path.join(d, "busybox.tar")
    for argv in (["import", "-c", 'CMD ["sh"]', tar, IMAGE], ["save", "-o", archive, IMAGE]):
        cp = execute([PYCTR, "--root", store, *argv], timeout=300)
        assert cp.returncode == 0, describe(cp)
    shutil.rmtree(store, ignore_errors=True)
    return archive


def _processes_naming(text):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            continue
    return out


class Pyctr:
    name = "pyctr"

    def __init__(self, base):
        self.root = os.path.join(base, "root")
        self.runroot = os.path.join(base, "run")

    def __call__(self, *args, check=False, timeout=120, input=None):
        cp = execute([PYCTR, "--root", self.root, "--runroot", self.runroot, *args], timeout=timeout,
                     input=input)
        assert_no_traceback(cp, f"for pyctr {args}")
        assert "internal error" not in cp.stderr, describe(cp)
        if check:
            assert cp.returncode == 0, describe(cp)
        return cp

    def inspect(self, name):
        return json.loads(self("inspect", name, check=True).stdout)[0]

    def argv(self, *args):
        return [PYCTR, "--root", self.root, "--runroot", self.runroot, *args], None

    def container_ids(self):
        """Every container this store ever created (its event log), for the cgroup check: other
        stores' containers may run meanwhile."""
        ids = set()
        for name in ("events.log.1", "events.log"):
            try:
                with open(os.path.join(self.root, "containers", name)) as f:
                    ids.update(json.loads(line)["id"] for line in f if line.strip())
            except (OSError, ValueError, KeyError):
                continue
        return ids

    def leftovers(self):
        """What a test left: containers (removed), then anything they held (a problem even so)."""
        problems = []
        ids = self("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            self("rm", "-f", *ids)
        for pid in _processes_naming(self.root):
            problems.append(f"process {pid} naming the store")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for m in reversed(mountinfo.read()):
            if m.mount_point.startswith((self.root, self.runroot)):
                problems.append(f"mount {m.mount_point}")
                execute(["umount", "-l", m.mount_point])
        layers = self("mounts").stdout.strip()
        if layers:
            problems.append(f"container layers {layers.splitlines()}")
        sockets = os.path.join(self.runroot, "s")
        if os.path.isdir(sockets) and os.listdir(sockets):
            problems.append(f"attach socket links {os.listdir(sockets)}")
        rt = os.path.join(self.runroot, "runtime")
        if os.path.isdir(rt) and os.listdir(rt):
            problems.append(f"runtime state {os.listdir(rt)}")
        ours = self.container_ids()
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{ctrl}/pyctr"
            left = sorted(ours & set(os.listdir(d))) if os.path.isdir(d) else []
            if left:
                problems.append(f"cgroups {d}/{left}")
            try:
                os.rmdir(d)  # the parent the runtime made (fails, harmlessly, while anyone uses it)
            except OSError:
                pass
        return problems


def wait_until(pred, timeout=30, what="condition"):
    return wait_for(pred, timeout, 0.05, what)


def popen(p, *args):
    return subprocess.Popen([PYCTR, "--root", p.root, "--runroot", p.runroot, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@contextlib.contextmanager
def private_pyctr(archive, prefix):
    """A Pyctr on fresh directories with the image loaded; fails the test on leftovers."""
    base = tempfile.mkdtemp(prefix=prefix)
    p = Pyctr(base)
    try:
        p("load", "-i", archive, check=True)
        yield p
    finally:
        problems = p.leftovers()
        from pyctr.fs.remove import remove_tree
        remove_tree(base)  # iterative: a test's container may have made a tree deeper than shutil reaches
        assert not problems, f"pyctr leftovers: {problems}"


def on_pty(argv, env, steps, timeout=30):
    """Run argv on a new pty; steps: (text to wait for in the output, bytes to type then).
    Returns (all output, exit status)."""
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env or dict(os.environ))
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        for want, typed in steps + [(None, None)]:
            while want is not None and want.encode() not in out:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {want!r} in the pty output: {out!r}")
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            if typed:
                os.write(fd, typed)
        status = None
        while status is None and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                    continue
                except OSError:  # EIO: every holder of the pty's other end is gone
                    pass
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
        if status is None:
            raise AssertionError(f"{argv[:6]} did not exit; output: {out!r}")
        return out.decode(errors="replace"), status
    finally:
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass  # exited and collected above
