"""Network errors, with Docker's wording where it has one."""
from pyctr.errors import PyctrError


class NetworkError(PyctrError):
    exit_code = 125


class NoSuchNetwork(NetworkError):
    exit_code = 1

    def __init__(self, name):
        super().__init__(f"network {name} not found")


class PluginError(NetworkError):
    """A CNI plugin failed: which plugin, which command, and its message."""

    def __init__(self, plugin, command, network, msg):
        super().__init__(f"CNI {command} of network {network} failed in plugin {plugin}: {msg}")
