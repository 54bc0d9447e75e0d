"""The shim's log writers: formats, and rotation that loses no line while a real process writes fast
(its pipes read as the daemonless monitor reads them: whatever a read returns goes to the writer)."""
import json
import os
import re
import select
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from pyrunc_shim.logs import LogWriter  # noqa: E402

K8S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d (stdout|stderr) ([PF]) (.*)$")


def _entries(path, fmt):
    files = sorted([f for f in os.listdir(os.path.dirname(path)) if f.startswith(os.path.basename(path))],
                   key=lambda f: -int(f.rsplit(".", 1)[1]) if f[-1].isdigit() else 0)
    out = []
    for f in files:
        with open(os.path.join(os.path.dirname(path), f), errors="replace") as fh:
            for line in fh:
                if fmt == "k8s-file":
                    m = K8S.match(line.rstrip("\n"))
                    assert m, line
                    out.append((m.group(1), m.group(2) == "F", m.group(3)))
                else:
                    o = json.loads(line)
                    out.append((o["stream"], o["log"].endswith("\n"), o["log"].rstrip("\n")))
    return out


def test_k8s_and_json_formats(tmp_path):
    for fmt in ("k8s-file", "json-file"):
        p = str(tmp_path / f"{fmt}.log")
        w = LogWriter(p, fmt)
        w.write("stdout", b"one\ntw")
        w.write("stdout", b"o\n")
        w.write("stderr", b"\"quoted\" \xff\n")
        w.write("stdout", b"partial")
        w.close()
        got = _entries(p, fmt)
        assert got[:2] == [("stdout", True, "one"), ("stdout", True, "two")]
        assert got[2][0] == "stderr" and got[2][2].startswith('"quoted"')
        assert got[3] == ("stdout", False, "partial")


def test_rotation_under_fast_writes_loses_no_line(tmp_path):
    """200k lines from a real process, read as they come, into a 256 KiB-rotated log with
    enough backups to hold them all: every line is there, once, in order."""
    for fmt in ("k8s-file", "json-file"):
        p = str(tmp_path / f"c-{fmt}.log")
        n = 200000
        w = LogWriter(p, fmt, max_size=256 << 10, max_files=200)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        proc = subprocess.Popen(["sh", "-c", f"seq 1 {n}; seq 1 100 >&2"], stdout=out_w, stderr=err_w)
        os.close(out_w)
        os.close(err_w)
        streams = {out_r: "stdout", err_r: "stderr"}
        while streams:
            for fd in select.select(list(streams), [], [], 60)[0]:
                data = os.read(fd, 1 << 16)
                if data:
                    w.write(streams[fd], data)
                else:
                    del streams[fd]
                    os.close(fd)
        assert proc.wait(60) == 0
        w.close()
        got = _entries(p, fmt)
        out = [int(t) for s, full, t in got if s == "stdout"]
        assert out == list(range(1, n + 1))
        assert [int(t) for s, _, t in got if s == "stderr"] == list(range(1, 101))
        sizes = [os.path.getsize(os.path.join(tmp_path, f)) for f in os.listdir(tmp_path) if f.startswith(f"c-{fmt}")]
        assert len(sizes) > 5 and max(sizes) <= 256 << 10
