"""The two host-wide things the bridge plugin leaves to its caller: removing a network's bridge once
no container uses it (the plugin makes it, never removes it; podman 5 does the same), and telling
the user when the plugin turned on net.ipv4.ip_forward (isGateway needs it for outbound traffic)."""
import os
import subprocess
import sys

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def ip_forward():
    try:
        with open(IP_FORWARD) as f:
            return f.read().strip()
    except OSError:
        return ""


def note_ip_forward(before, network):
    if before == "0" and ip_forward() == "1":
        print(f"pyctr: net.ipv4.ip_forward was 0; the CNI bridge plugin set it to 1 (network {network}: "
              f"containers reach beyond the host through it)", file=sys.stderr)


def _leases(store, net):
    d = os.path.join(store.ipam_dir, net)
    try:
        return [n for n in os.listdir(d) if n != "lock" and not n.startswith("last_reserved_ip")]
    except FileNotFoundError:
        return []


def remove_if_unused(store, rec):
    """Called with the network store's lock held (no ADD can be in flight on this network)."""
    name = rec["Name"]
    if store.members(name) or _leases(store, name):
        return
    br = rec["Options"]["com.docker.network.bridge.name"]
    if os.path.exists(f"/sys/class/net/{br}"):
        subprocess.run(["ip", "link", "delete", br, "type", "bridge"], capture_output=True, close_fds=True)
