"""The store's undo journal: <root>/uncommitted lists what the command holding the lock has added
(blobs, layers, image records, tags with their previous targets), each line written before the
thing it names exists. A command that fails replays it backwards; one that succeeds deletes it; and
if the command was killed, the next one to take the lock finds it and undoes the rest. So a refused
or interrupted pull, load or import leaves nothing, whenever it stops."""
import json
import os


class Journal:
    def __init__(self, path):
        self.path = path
        self._fd = None

    def note(self, kind, *fields):
        """Record one addition (one O_APPEND write per line: threads may note at once)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.write(self._fd, (json.dumps([kind, *fields]) + "\n").encode())

    def entries(self):
        """The additions recorded, oldest first (a line cut short by a kill is skipped)."""
        try:
            with open(self.path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, list) and entry and all(isinstance(x, (str, type(None))) for x in entry):
                out.append(entry)
        return out

    def discard(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
