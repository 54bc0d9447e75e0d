"""The shim as installed for containerd: only the shim linked onto containerd's PATH finds the pyrunc
of its own installation; a missing runtime is an error naming where it looked; the options'
IoUid/IoGid own the container's stdio pipes (with pyrunc and runc under the shim)."""
import json
import os
import uuid

import pytest

from integration.shim.conftest import PYRUNC
from integration.shim.containerd import VENV_BIN
from pyrunc_shim.events import pack_any
from pyrunc_shim.pb.containerd import runc_options_pb2, shim_pb2
from pyrunc_shim.ttrpc import framing
from pyrunc_shim.ttrpc.framing import TtrpcError

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _cid(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def shim_only_dir(tmp_path):
    """A directory holding nothing but a symlink to the venv's shim (what `ln -s` onto PATH makes)."""
    d = tmp_path / "bin"
    d.mkdir()
    os.symlink(os.path.join(VENV_BIN, "containerd-shim-pyrunc-v2"), d / "containerd-shim-pyrunc-v2")
    return str(d)


def test_runtime_found_beside_the_shim(make_shim, shim_only_dir):
    """No BinaryName, no pyrunc on PATH: the shim runs the pyrunc installed beside itself."""
    assert not any(os.path.exists(os.path.join(d, "pyrunc")) for d in SYSTEM_PATH.split(":"))
    s = make_shim(["sh", "-c", "echo hi; sleep 1000"], PYRUNC, _cid("beside"),
                  shim=os.path.join(shim_only_dir, "containerd-shim-pyrunc-v2"),
                  path=f"{shim_only_dir}:{SYSTEM_PATH}")
    s.create(options=pack_any(runc_options_pb2.Options(root=s.runtime_root)))
    with open(os.path.join(s.bundle, "options.json")) as f:
        assert json.load(f)["BinaryName"] == PYRUNC
    s.call("Start", shim_pb2.StartRequest(id=s.cid))
    assert s.call("State", shim_pb2.StateRequest(id=s.cid)).status == 2  # RUNNING


def test_missing_runtime_is_named(make_shim, shim_only_dir):
    s = make_shim(["true"], PYRUNC, _cid("missing"), shim=os.path.join(shim_only_dir, "containerd-shim-pyrunc-v2"),
                  path=f"{shim_only_dir}:{SYSTEM_PATH}")
    with pytest.raises(TtrpcError) as e:
        s.create(options=pack_any(runc_options_pb2.Options(binary_name="no-such-runtime", root=s.runtime_root)))
    assert e.value.code == framing.NOT_FOUND
    msg = e.value.message
    assert "'no-such-runtime'" in msg and VENV_BIN in msg and SYSTEM_PATH in msg, msg
    assert "Error" not in msg and "Errno" not in msg, msg
    with pytest.raises(TtrpcError) as e:
        s.create(options=pack_any(runc_options_pb2.Options(binary_name="/nonexistent/runc", root=s.runtime_root)))
    assert "'/nonexistent/runc'" in e.value.message and "Errno" not in e.value.message


def test_io_uid_gid_own_the_stdio_pipes(make_shim, binary):
    """containerd's IoUid/IoGid (user-namespaced tasks): the container's stdio pipes belong to them.
    The container runs as that user: runc gives stdio to the container's uid at init (its
    fixStdioPermissions), which then agrees."""
    s = make_shim(["sleep", "1000"], binary, _cid("iouid"))
    with open(os.path.join(s.bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["user"] = {"uid": 1234, "gid": 2345}
    with open(os.path.join(s.bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    pid = s.create(stdin=_fifo(s), stdout="file://" + os.path.join(s.dir, "out"),
                   options=pack_any(runc_options_pb2.Options(binary_name=binary, root=s.runtime_root,
                                                             io_uid=1234, io_gid=2345)))
    for fd in (0, 1, 2):
        st = os.stat(f"/proc/{pid}/fd/{fd}")
        assert (st.st_uid, st.st_gid) == (1234, 2345), fd


def _fifo(s):
    path = os.path.join(s.dir, "stdin")
    os.mkfifo(path)
    return path


def _cgroup_of(pid, hierarchy):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if hierarchy in ctrls.split(","):
                return path
    return None


@pytest.fixture
def pids_cgroup():
    """A pids cgroup of the test's own, removed after the shims in it are gone."""
    cg = f"/pyrunc-shimcg-{uuid.uuid4().hex[:8]}"
    d = "/sys/fs/cgroup/pids" + cg
    os.mkdir(d)
    yield cg
    os.rmdir(d)


def test_shim_cgroup_from_start_options(pids_cgroup, make_shim):
    """The options on start's stdin are decoded by the server start forked (not by start: no
    protobuf before the address is printed): it joins ShimCgroup before any request; options it
    cannot decode or a cgroup it cannot join fail every Create with the reason (start has
    printed the address already)."""
    good = make_shim(["true"], PYRUNC, _cid("shimcg"),
                     start_options=pack_any(runc_options_pb2.Options(shim_cgroup=pids_cgroup)))
    good.call("Connect", shim_pb2.ConnectRequest(id=good.cid))
    assert _cgroup_of(good.pid, "pids") == pids_cgroup
    missing = make_shim(["true"], PYRUNC, _cid("shimcg"),
                        start_options=pack_any(runc_options_pb2.Options(shim_cgroup=pids_cgroup + "-x")))
    with pytest.raises(TtrpcError, match=f"shim cgroup '{pids_cgroup}-x'.*in no mounted cgroup hierarchy") as e:
        missing.create()
    assert e.value.code == framing.NOT_FOUND
    garbled = make_shim(["true"], PYRUNC, _cid("shimcg"), start_options=b"\x0a\xff")
    with pytest.raises(TtrpcError, match="runtime options on stdin: malformed") as e:
        garbled.create()
    assert e.value.code == framing.INVALID_ARGUMENT
