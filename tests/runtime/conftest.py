"""Unit and in-process tests of the runtime package: import pyrunc from this tree, never an
installed copy (which may be stale)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNTIME = os.path.join(REPO, "runtime")

for _path in (HERE, RUNTIME):  # HERE: for the helper module runtime_forkhelp; RUNTIME ends up first
    try:
        sys.path.remove(_path)
    except ValueError:
        pass
    sys.path.insert(0, _path)
