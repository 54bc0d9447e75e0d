"""The state directory: <root>/<id>/{state.json, exec.fifo}.

state.json is written tmp + rename, so a reader sees the old or the new file, never half of one.
No fsync (runc's saveState has none either): a state file only describes processes, which do not
survive the crash an fsync would guard against, and on a disk-backed root it cost milliseconds at
every create. It stores only facts (init pid and its start time, cgroup paths, bundle, the config); the
status is derived on every read (state/status.py). It exists from create's first step, with
"creating": true until create has finished: first the cgroup dirs create is about to make, then
those it made, then init's identity, so that a create killed at any point leaves nothing that
`delete --force` cannot find.
"""
import os

from pyrunc import fastjson as json

from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidID, StepError
from pyrunc.state.atomic import write_atomic

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(container_id):
    # runc: ^[\w+-\.]+$ and not "." or ".."; the id becomes a directory name, so no "/" ever.
    if not container_id:
        raise InvalidID(container_id, "must not be empty")
    if container_id in (".", "..") or not set(container_id) <= _ID_CHARS:
        raise InvalidID(container_id, "only [a-zA-Z0-9_+.-] allowed, and not '.' or '..'")
    if len(container_id) > 1024:
        raise InvalidID(container_id, "longer than 1024 characters")


class StateStore:
    def __init__(self, root):
        self.root = root

    def path(self, container_id, name=""):
        return os.path.join(self.root, container_id, name) if name else os.path.join(self.root, container_id)

    def create(self, container_id):
        """Make the container's directory; the exclusive mkdir is what makes ids unique."""
        validate_id(container_id)
        try:
            os.makedirs(self.root, 0o700, exist_ok=True)
        except OSError as e:
            raise StepError("create state root", self.root, e) from None
        directory = self.path(container_id)
        try:
            os.mkdir(directory, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        except OSError as e:
            raise StepError("create state dir", directory, e) from None
        return directory

    def load(self, container_id):
        validate_id(container_id)
        try:
            with open(self.path(container_id, STATE_FILE), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        except ValueError as e:
            raise StepError("read state", self.path(container_id, STATE_FILE), e) from None

    def save(self, container_id, state):
        """state: a dict, or its JSON already encoded (bytes)."""
        final = self.path(container_id, STATE_FILE)
        data = state if isinstance(state, bytes) else json.dumps(state).encode()
        try:
            write_atomic(final, data, durable=False)
        except OSError as e:
            raise StepError("write state", final, e) from None

    def stage(self, container_id, state):
        """Write state.json's content aside; commit() puts it in place (readers see it then)."""
        staged = self.path(container_id, STATE_FILE + ".staged")
        data = state if isinstance(state, bytes) else json.dumps(state).encode()
        try:
            with open(staged, "wb") as f:
                f.write(data)
        except OSError as e:
            raise StepError("write state", staged, e) from None

    def commit(self, container_id):
        final = self.path(container_id, STATE_FILE)
        try:
            os.rename(final + ".staged", final)
        except OSError as e:
            raise StepError("write state", final, e) from None

    def exists(self, container_id):
        return os.path.isdir(self.path(container_id))

    def remove(self, container_id):
        """Remove the directory and what we put in it; idempotent."""
        directory = self.path(container_id)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                import shutil
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass

    def ids(self):
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StepError("read state root", self.root, e) from None
        return [n for n in names if not n.startswith(".") and os.path.isdir(os.path.join(self.root, n))]
