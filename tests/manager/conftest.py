"""Unit tests of pyctr: import pyctr and pyrunc from this tree, never an installed copy."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for _p in (os.path.join(REPO, "runtime"), os.path.join(REPO, "manager")):
    try:
        sys.path.remove(_p)
    except ValueError:
        pass
    sys.path.insert(0, _p)
if REPO not in sys.path:  # integration.manager.hostile_archive, the archive builder both trees use
    sys.path.append(REPO)
