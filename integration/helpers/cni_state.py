"""libcni's default state dir, /var/lib/cni: the result cache (results/<network>-<container>-<ifname>)
and host-local's default dataDir (networks/<network>/). containerd 1.6's CRI plugin has no setting
for the cache dir, and podman's CNI backend uses both, so tests and benchmarks that drive them with
private config still write there: this takes back what one network of theirs left, and the dirs that
did not exist before."""
import os
import shutil

CNI_STATE = "/var/lib/cni"
_DIRS = (CNI_STATE, os.path.join(CNI_STATE, "results"), os.path.join(CNI_STATE, "networks"))


class DefaultCniState:
    def __init__(self):
        self.missing = [d for d in _DIRS if not os.path.exists(d)]

    @staticmethod
    def leftovers(network):
        """The paths the network named network still has in the default state dir."""
        results = os.path.join(CNI_STATE, "results")
        found = [os.path.join(results, n) for n in _listdir(results) if n.startswith(network + "-")]
        ipam = os.path.join(CNI_STATE, "networks", network)
        return found + ([ipam] if os.path.isdir(ipam) else [])

    def remove(self, network):
        """Remove network's leftovers, then the default dirs this object found missing, if empty."""
        for path in self.leftovers(network):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        for d in reversed(self.missing):
            try:
                os.rmdir(d)
            except OSError:
                pass  # someone else's state is in it


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
