"""process/hooks.py: the forked hook child ends with _exit whatever its exec raises.

Validation refuses the strings below, but the child must never depend on that: an exception that
is not an OSError (ValueError for a NUL or an empty variable name) used to unwind
the child into the caller's code, which then ran the runtime's undo (or init's remaining steps) a
second time, in a second process. Run in a fresh interpreter, so a child that escapes cannot run
pytest twice.
"""
import subprocess
import sys

import pytest

from conftest import RUNTIME

SCRIPT = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from pyrunc.process import hooks
hook = eval(sys.argv[2])
state = {"ociVersion": "1.3.0", "id": "x", "status": "creating", "pid": 1, "bundle": "/", "annotations": {}}
try:
    hooks.run_all({"hooks": {"prestart": [hook]}}, "prestart", state)
except hooks.HookError as e:
    print(f"caller {os.getpid()}: {e}")
print(f"returned {os.getpid()}")
"""


@pytest.mark.parametrize("hook", [
    {"path": "/bin/tr\0ue"},
    {"path": "/bin/true", "args": ["true", "a\0"]},
    {"path": "/bin/true", "env": ["=b"]},
], ids=["nul-in-path", "nul-in-args", "empty-env-name"])
def test_hook_child_exits_whatever_exec_raises(hook):
    cp = subprocess.run([sys.executable, "-c", SCRIPT, RUNTIME, repr(hook)], capture_output=True, text=True,
                        timeout=60)
    lines = cp.stdout.splitlines()
    assert cp.returncode == 0 and len(lines) == 2, (cp.stdout, cp.stderr)
    assert lines[0].startswith("caller ") and lines[1].startswith("returned "), lines
    assert lines[0].split(":")[0].split()[1] == lines[1].split()[1], "reported by another process"
    assert "exit status 127, output: exec: " in lines[0], lines[0]
    assert "Traceback" not in cp.stdout + cp.stderr, (cp.stdout, cp.stderr)
