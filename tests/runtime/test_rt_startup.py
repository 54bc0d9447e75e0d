"""pyrunc/startup.py: collection off for a command's startup, back on (startup frozen) for the long ones."""
import os
import subprocess
import sys

RUNTIME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "runtime")

SCRIPT = """
import gc, sys
sys.path.insert(0, sys.argv[1])
from pyrunc import startup
startup.quiet()
assert not gc.isenabled()
startup.long_running()
assert gc.isenabled() and gc.get_freeze_count() > 0
startup.long_running()  # twice is harmless
print("ok")
"""


def test_quiet_then_long_running():
    cp = subprocess.run([sys.executable, "-S", "-c", SCRIPT, RUNTIME], capture_output=True, text=True)
    assert cp.stdout == "ok\n", cp.stderr


def test_a_foreground_run_collects_again(tmp_path):
    """wait_foreground turns collection on: a container that runs for days must not grow the runtime."""
    script = SCRIPT.split("from pyrunc import startup")[0] + (
        "from pyrunc import startup\nstartup.quiet()\n"
        "import os\nfrom pyrunc.lifecycle.foreground import wait_foreground\n"
        "pid = os.fork()\nif pid == 0:\n    os._exit(3)\n"
        "code = wait_foreground(pid)\nprint(code, gc.isenabled())\n")
    cp = subprocess.run([sys.executable, "-S", "-c", script, RUNTIME], capture_output=True, text=True)
    assert cp.stdout == "3 True\n", cp.stderr
