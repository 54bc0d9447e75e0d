"""handover.py: the state's fds, the memfd round trip, and a real exec into another program that gets
exactly the named fds (and no other) with the state."""
import marshal
import os
import subprocess
import sys
import textwrap

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

import pytest  # noqa: E402

from pyrunc_shim import handover  # noqa: E402


def _io(base):
    return {"terminal": False, "uris": ["", "", ""], "console": -1, "stdin_w": base, "term_err": -1,
            "out": [["stdout", base + 1, base + 2, b"", True], ["stderr", base + 3, -1, b"x", True]],
            "in": [base + 4, base, b"", False]}


def _container(cid, base, oom):
    return {"id": cid, "procs": [{"cid": cid, "exec_id": "", "io": _io(base)}], "oom": oom}


def _state(oom=None, *more):
    oom = {"v1": 26, "dir": "/x"} if oom is None else oom
    return {"listener": 3, "conns": [4, 5], "service": {"containers": [_container("c", 21, oom), *more]}}


def test_fds_are_exactly_those_the_state_names():
    st = _state()
    assert handover.wake_fds(st) == [3, 4, 5, 26]
    assert handover.state_fds(st) == [3, 4, 5, 21, 22, 23, 24, 25, 26]
    st = _state({"v2": "/sys/fs/cgroup/x/memory.events", "last": 0})
    assert handover.wake_fds(st) == [3, 4, 5]


def test_every_container_of_a_pod_is_handed_over():
    """A grouped shim: each container's pumps and OOM eventfd are kept across the exec."""
    st = _state(None, _container("sidecar", 31, {"v1": 36, "dir": "/y"}), _container("gone", 41, None))
    assert [p["cid"] for p in handover.procs(st)] == ["c", "sidecar", "gone"]
    assert handover.wake_fds(st) == [3, 4, 5, 26, 36]
    assert handover.state_fds(st) == [3, 4, 5] + list(range(21, 27)) + list(range(31, 37)) + list(range(41, 46))


def test_load_reads_the_memfd_and_makes_the_fds_close_on_exec_again():
    r, w = os.pipe()
    os.set_inheritable(r, True)
    st = {"v": handover.VERSION, "fds": [r], "pending": b"\x00\xff" * 40000}
    fd = os.memfd_create("t", 0)
    os.write(fd, marshal.dumps(st))
    assert handover.load(fd) == st
    assert not os.get_inheritable(r)
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by load
    os.close(r)
    os.close(w)


def test_load_refuses_another_version():
    fd = os.memfd_create("t", 0)
    os.write(fd, marshal.dumps({"v": handover.VERSION + 1, "fds": []}))
    with pytest.raises(handover.BadState):
        handover.load(fd)


def test_exec_into_passes_the_named_fds_and_closes_the_others(tmp_path):
    """A child execs itself (exec_into) into a small program that reports its fds and its state."""
    report = tmp_path / "report"
    child = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {os.path.join(_REPO, "shim")!r})
        from pyrunc_shim import handover
        if sys.argv[-1] == "after":
            st = handover.load(handover.state_fd(sys.argv))
            fds = []
            for f in os.listdir("/proc/self/fd"):
                try:
                    if int(f) > 2 and not os.readlink(f"/proc/self/fd/{{f}}").startswith("/proc/"):
                        fds.append(int(f))
                except OSError:
                    pass  # listdir's own fd, closed since
            with open({str(report)!r}, "w") as f:
                f.write(repr((st["marker"], st["fds"], sorted(fds), os.read(st["listener"], 5))))
            sys.exit(0)
        keep_r, keep_w = os.pipe()
        drop_r, drop_w = os.pipe()
        os.write(keep_w, b"hello")
        st = {{"executable": sys.executable, "flags": [], "marker": "m", "listener": keep_r, "conns": [],
              "service": {{"containers": []}}}}
        handover.exec_into(st, lambda state, fd: [sys.executable, sys.argv[0], handover.STATE_FLAG, str(fd),
                                                  "after"])
    """)
    script = tmp_path / "child.py"
    script.write_text(child)
    cp = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    marker, named, open_fds, data = eval(report.read_text())
    assert marker == "m" and data == b"hello"
    assert len(named) == 1 and open_fds == named  # the listener pipe; the other one (close-on-exec) is gone


def test_a_v1_state_from_before_grouping_is_taken_over():
    """A shim upgraded in place while lean: the old lean mode hands its one container over."""
    io = _io(21)
    old = {"v": 1, "fds": [], "listener": 3, "conns": [4], "service": {
        "namespace": "k8s.io", "default_binary": "pyrunc", "runtime_root": None, "bundle": "/b", "mounted": ["/b/rootfs"],
        "io_owner": [0, 0], "runtime": ["/bin/pyrunc", "/run/r", "/b", False], "init": True, "init_deleted": False,
        "procs": [{"cid": "c1", "exec_id": "", "io": io}, {"cid": "c1", "exec_id": "e1", "io": _io(31)}],
        "oom": {"v1": 26, "dir": "/x"}}}
    fd = os.memfd_create("t", 0)
    os.write(fd, marshal.dumps(old))
    st = handover.load(fd)
    assert st["v"] == handover.VERSION
    [c] = st["service"]["containers"]
    assert (c["id"], c["bundle"], c["mounted"], c["runtime"][0]) == ("c1", "/b", ["/b/rootfs"], "/bin/pyrunc")
    assert [p["exec_id"] for p in handover.procs(st)] == ["", "e1"]
    assert handover.wake_fds(st) == [3, 4, 26]
