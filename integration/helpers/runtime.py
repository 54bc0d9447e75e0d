"""Drive the runtime under test (pyrunc, or runc/crun for comparison) through its command line.

Runtime-agnostic: the binary is $PYRUNC_TEST_RUNTIME if set, else <repo>/.venv/bin/pyrunc.
Every command's stdout/stderr go to temporary FILES, not pipes: a detached container inherits the
runtime's stdio and would otherwise keep a pipe open forever.
"""
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from integration.helpers import mountinfo
from integration.helpers.bundle import config_for, make_bundle, write_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_RUNTIME = os.path.join(REPO, ".venv", "bin", "pyrunc")
CGROUP_PARENT = "pyrunc-test"
DEFAULT_TIMEOUT = int(os.environ.get("PYRUNC_TEST_TIMEOUT", "60"))  # seconds per runtime command


def runtime_path():
    return os.environ.get("PYRUNC_TEST_RUNTIME") or DEFAULT_RUNTIME


_IS_PYRUNC = None


def is_pyrunc():
    """True when the runtime under test is pyrunc: $PYRUNC_TEST_IS_PYRUNC=1/0 if set, else by the
    binary's name, else by its --version text."""
    global _IS_PYRUNC
    if _IS_PYRUNC is None and os.environ.get("PYRUNC_TEST_IS_PYRUNC") in ("0", "1"):
        _IS_PYRUNC = os.environ["PYRUNC_TEST_IS_PYRUNC"] == "1"
    if _IS_PYRUNC is None:
        path = runtime_path()
        if "pyrunc" in os.path.basename(path):
            _IS_PYRUNC = True
        else:
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
            except OSError:
                out = ""
            _IS_PYRUNC = out.startswith("pyrunc")
    return _IS_PYRUNC


def assert_no_traceback(cp_or_text, what=""):
    text = cp_or_text if isinstance(cp_or_text, str) else (cp_or_text.stderr or "") + (cp_or_text.stdout or "")
    assert "Traceback" not in text, \
        f"Python traceback in runtime output {what}:\n{text}"
    if is_pyrunc():
        # pyrunc's CLI turns unexpected exceptions into "internal error in <verb>: ...": a bug too
        assert "internal error" not in text, f"pyrunc internal error {what}:\n{text}"


def describe(cp):
    return (f"argv: {cp.args}\nexit: {cp.returncode}\n--- stdout ---\n{cp.stdout}\n"
            f"--- stderr ---\n{cp.stderr}")


def execute(argv, input=None, timeout=DEFAULT_TIMEOUT, env=None, cwd=None, stdin=None):
    """Run argv with stdout/stderr captured through files; returns a CompletedProcess (text)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if input is not None:
            stdin_arg = subprocess.PIPE
        else:
            stdin_arg = stdin if stdin is not None else subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdin=stdin_arg, stdout=out, stderr=err, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            if input is not None:
                proc.communicate(input=input.encode() if isinstance(input, str) else input, timeout=timeout)
            else:
                proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            out.seek(0)
            err.seek(0)
            raise AssertionError(f"timed out after {timeout}s: {argv}\n--- stdout ---\n"
                                 f"{out.read().decode(errors='replace')}\n--- stderr ---\n"
                                 f"{err.read().decode(errors='replace')}")
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def wait_for(predicate, timeout=15, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- config helpers -----------------------------------------------------------------------------

def add_mount(config, destination, type="none", source=None, options=None):
    mount = {"destination": destination, "type": type, "source": source if source is not None else type}
    if options is not None:
        mount["options"] = list(options)
    config.setdefault("mounts", []).append(mount)
    return mount


def bind(config, source, destination, options=("rbind", "rw")):
    return add_mount(config, destination, "bind", str(source), list(options))


def set_namespace(config, ns_type, path=None):
    nss = [ns for ns in config["linux"]["namespaces"] if ns["type"] != ns_type]
    entry = {"type": ns_type}
    if path:
        entry["path"] = str(path)
    nss.append(entry)
    config["linux"]["namespaces"] = nss
    return config


def drop_namespace(config, ns_type):
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != ns_type]
    return config


# --- leftovers ----------------------------------------------------------------------------------

def _cgroup_dirs(cgroups_path):
    if not cgroups_path:
        return []
    rel = cgroups_path.strip("/")
    return [os.path.join(mp, rel) for mp, _, _ in mountinfo.cgroup_hierarchies()]


def _rootfs_of(bundle):
    config_path = os.path.join(bundle, "config.json")
    if not os.path.isfile(config_path):  # a test's FIFO or device there must not block us
        return os.path.join(bundle, "rootfs")
    try:
        with open(config_path) as f:
            path = json.load(f).get("root", {}).get("path", "rootfs")
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):  # any config.json a test wrote
        path = "rootfs"
    return os.path.join(bundle, path)


def _processes_in(rootfs):
    try:
        st = os.stat(rootfs)
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            pst = os.stat(f"/proc/{entry}/root")
        except OSError:
            continue
        if (pst.st_dev, pst.st_ino) == (st.st_dev, st.st_ino):
            found.append(int(entry))
    return found


def leftovers(root, id, bundle, cgroups_path):
    """What create/delete left behind for this container: a list of human-readable strings.

    Checks: the state dir <root>/<id>; host mounts whose path contains the bundle dir or the state
    dir; cgroup dirs for cgroups_path in every hierarchy; processes whose root is the bundle rootfs.
    """
    found = []
    bundle = os.path.realpath(str(bundle))
    state_dir = os.path.join(str(root), id)
    if os.path.lexists(state_dir):
        found.append(f"state dir {state_dir}")
    for m in mountinfo.read():
        if bundle in m.mount_point or m.mount_point.startswith(state_dir + "/") or m.mount_point == state_dir:
            found.append(f"mount {m.mount_point} ({m.fstype})")
    for d in _cgroup_dirs(cgroups_path):
        if os.path.isdir(d):
            found.append(f"cgroup dir {d}")
    for pid in _processes_in(_rootfs_of(bundle)):
        found.append(f"process {pid} ({_cmdline(pid)}) rooted in the bundle rootfs")
    return found


def alive(pid):
    """Whether pid is a live process (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def force_cleanup(root, id, bundle, cgroups_path):
    """Remove whatever leftovers() reports, by force (after a test already failed on it)."""
    bundle = os.path.realpath(str(bundle))
    for pid in _processes_in(_rootfs_of(bundle)):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for d in _cgroup_dirs(cgroups_path):
        kill_cgroup_tree(d)
    state_dir = os.path.join(str(root), id)
    for m in reversed(mountinfo.read()):
        if bundle in m.mount_point or m.mount_point.startswith(state_dir + "/") or m.mount_point == state_dir:
            subprocess.run(["umount", "-l", m.mount_point], capture_output=True)
    if os.path.lexists(state_dir):
        shutil.rmtree(state_dir, ignore_errors=True)


def kill_cgroup_tree(path):
    """SIGKILL every process in a cgroup dir (and below), then rmdir it bottom-up."""
    if not os.path.isdir(path):
        return
    for _ in range(50):
        pids = []
        for dirpath, _, files in os.walk(path):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids += [int(p) for p in f.read().split()]
                except OSError:
                    pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for dirpath, _, _ in sorted(os.walk(path), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        if not os.path.isdir(path):
            return
        time.sleep(0.05)


def remove_cgroup_parent():
    """At session end: remove /pyrunc-test in every hierarchy (only if empty of other sessions)."""
    for mp, _, _ in mountinfo.cgroup_hierarchies():
        d = os.path.join(mp, CGROUP_PARENT)
        if os.path.isdir(d):
            try:
                os.rmdir(d)
            except OSError:
                pass


# --- the runtime under test ---------------------------------------------------------------------

class Runtime:
    """The runtime binary with a private --root; tracks every container id it hands out."""

    def __init__(self, root, tmp_path, rootfs_template, name="t"):
        self.binary = runtime_path()
        self.root = str(root)
        self.tmp_path = str(tmp_path)
        self.rootfs_template = rootfs_template
        self.name = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:24] or "t"
        self.containers = []
        self._n = 0

    # commands
    def argv(self, *args, root=True):
        return [self.binary] + (["--root", self.root] if root else []) + [str(a) for a in args]

    def run(self, *args, check=True, input=None, timeout=DEFAULT_TIMEOUT, root=True, env=None, cwd=None,
            stdin=None):
        """`<runtime> --root R <args...>`; check=True asserts exit 0. Never allows a traceback."""
        cp = execute(self.argv(*args, root=root), input=input, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
        assert_no_traceback(cp, f"for {args}")
        if check and cp.returncode != 0:
            raise AssertionError("runtime command failed\n" + describe(cp))
        return cp

    def fail(self, *args, code=1, **kw):
        """Run a command that must fail with exit `code` and print a message on stderr."""
        cp = self.run(*args, check=False, **kw)
        assert cp.returncode == code, f"expected exit {code}\n" + describe(cp)
        assert cp.stderr.strip(), "a failing command must say why on stderr\n" + describe(cp)
        return cp

    def raw(self, *args, **kw):
        """The runtime with exactly these args (no --root added)."""
        return self.run(*args, root=False, **kw)

    def state(self, id):
        return json.loads(self.run("state", id).stdout)

    def list_ids(self):
        return self.run("list", "--quiet").stdout.split()

    # ids, configs, bundles
    def new_id(self):
        self._n += 1
        return f"{self.name}-{os.getpid()}-{self._n}"

    @staticmethod
    def config(args=("true",), **changes):
        """runc's default config (terminal false) with shallow top-level overrides."""
        return copy.deepcopy(config_for(list(args), **changes))

    def bundle(self, config_or_args=("true",), id=None, shared=False, cgroups_path=True, create_rootfs=True):
        """Prepare a bundle (not created) and track its id; returns a Container.

        config_or_args: a config dict (copied) or an argv list/tuple for the default config.
        shared: bind-mount a fresh host dir at /shared (rw) inside the container (Container.shared).
        cgroups_path: True sets linux.cgroupsPath to /pyrunc-test/<id>; a string sets it; None leaves
        the config alone.
        """
        id = id or self.new_id()
        if isinstance(config_or_args, dict):
            config = copy.deepcopy(config_or_args)
        else:
            config = self.config(config_or_args)
        bundle_dir = os.path.join(self.tmp_path, "b-" + id.replace("/", "_"))
        while os.path.exists(bundle_dir):
            bundle_dir += "x"
        shared_dir = None
        if shared:
            shared_dir = bundle_dir + "-shared"
            os.makedirs(shared_dir, exist_ok=True)
            bind(config, shared_dir, "/shared", ["rbind", "rw"])
        if cgroups_path is True:
            cgroups_path = f"/{CGROUP_PARENT}/{id}"
        if cgroups_path:
            config.setdefault("linux", {})["cgroupsPath"] = cgroups_path
        else:
            cgroups_path = config.get("linux", {}).get("cgroupsPath")
        if create_rootfs:
            make_bundle(bundle_dir, config=config, rootfs_template=self.rootfs_template)
        else:
            os.makedirs(bundle_dir)
            write_config(bundle_dir, config)
        c = Container(self, id, bundle_dir, config, cgroups_path, shared_dir)
        self.containers.append(c)
        return c

    def container(self, config_or_args=("true",), create=True, create_args=(), **kw):
        """A tracked container; created (`create --bundle B [create_args] ID`) unless create=False."""
        c = self.bundle(config_or_args, **kw)
        if create:
            c.create(*create_args)
        return c

    def sh(self, script, config=None, check=True, timeout=DEFAULT_TIMEOUT, run_args=(), **kw):
        """`run` a container in the foreground executing `sh -c script`; returns the CompletedProcess."""
        config = copy.deepcopy(config) if config is not None else self.config()
        config["process"]["args"] = ["sh", "-c", script]
        c = self.bundle(config, **kw)
        cp = c.run(*run_args, check=False, timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError("container script failed\n" + describe(cp))
        return cp

    def track(self, id, bundle, cgroups_path=None):
        """Track an id created outside bundle()/container() so the finalizer deletes it."""
        c = Container(self, id, str(bundle), None, cgroups_path, None)
        self.containers.append(c)
        return c

    # teardown
    def cleanup(self):
        """delete --force every tracked id, then return the list of leftovers (after removing them)."""
        problems = []
        for c in self.containers:
            cp = execute(self.argv("delete", "--force", c.id), timeout=DEFAULT_TIMEOUT)
            if "Traceback" in cp.stderr:
                problems.append(f"{c.id}: traceback from delete --force:\n{cp.stderr}")
        for c in self.containers:
            left = []
            for _ in range(3):  # runc's delete returns after SIGKILL; let the kernel finish
                left = leftovers(self.root, c.id, c.bundle, c.cgroups_path)
                if not left:
                    break
                time.sleep(0.2)
            if left:
                problems.append(f"{c.id}: left behind after delete --force: " + "; ".join(left))
                force_cleanup(self.root, c.id, c.bundle, c.cgroups_path)
        self.containers = []
        return problems


class Container:
    def __init__(self, runtime, id, bundle, config, cgroups_path, shared):
        self.runtime = runtime
        self.id = id
        self.bundle = bundle
        self.rootfs = os.path.join(bundle, "rootfs")
        self.config = config
        self.cgroups_path = cgroups_path
        self.shared = shared

    def __repr__(self):
        return f"<Container {self.id} {self.bundle}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.runtime.run("delete", "--force", self.id, check=False)
        left = leftovers(self.runtime.root, self.id, self.bundle, self.cgroups_path)
        if left:
            force_cleanup(self.runtime.root, self.id, self.bundle, self.cgroups_path)
            if exc[0] is None:
                raise AssertionError(f"{self.id}: left behind: " + "; ".join(left))

    # operations
    def create(self, *args, check=True, **kw):
        return self.runtime.run("create", "--bundle", self.bundle, *args, self.id, check=check, **kw)

    def run(self, *args, check=True, **kw):
        return self.runtime.run("run", "--bundle", self.bundle, *args, self.id, check=check, **kw)

    def start(self, check=True, **kw):
        return self.runtime.run("start", self.id, check=check, **kw)

    def kill(self, *sig, all=False, check=True):
        return self.runtime.run("kill", *(["--all"] if all else []), self.id, *sig, check=check)

    def delete(self, force=False, check=True):
        return self.runtime.run("delete", *(["--force"] if force else []), self.id, check=check)

    def state(self):
        return self.runtime.state(self.id)

    @property
    def status(self):
        return self.state()["status"]

    @property
    def pid(self):
        return self.state()["pid"]

    def wait_status(self, status, timeout=15):
        wait_for(lambda: self.status == status, timeout=timeout, what=f"{self.id} to be {status}")

    def leftovers(self):
        return leftovers(self.runtime.root, self.id, self.bundle, self.cgroups_path)

    # the host side of /shared
    def path(self, name):
        assert self.shared, "container made without shared=True"
        return os.path.join(self.shared, name)

    def wait_file(self, name, timeout=15):
        path = self.path(name)
        wait_for(lambda: os.path.exists(path), timeout=timeout, what=f"{path} to appear")
        return path

    def read(self, name, wait=True, timeout=15):
        """Content of /shared/<name>, once it exists and is complete (written via a .done marker
        or simply non-empty)."""
        path = self.path(name)
        if wait:
            wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, timeout=timeout,
                     what=f"{path} to be written")
        with open(path) as f:
            return f.read()


def release_fifo(path, data=b"x\n", timeout=15):
    """Write to a FIFO the container is (or will be) reading; fails if nobody opens it in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != 6 or time.monotonic() > deadline:  # ENXIO: no reader yet
                raise
            time.sleep(0.02)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
