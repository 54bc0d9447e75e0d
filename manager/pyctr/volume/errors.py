"""Volume errors in Docker's words (the CLI prints them after `Error: `; exit 1)."""
from pyctr.errors import PyctrError


class VolumeError(PyctrError):
    pass


class NoSuchVolume(VolumeError):
    def __init__(self, name, verb="get"):
        super().__init__(f"{verb} {name}: no such volume")
        self.name = name


class VolumeInUse(VolumeError):
    def __init__(self, name, users):
        super().__init__(f"remove {name}: volume is in use - [{', '.join(users)}]")
