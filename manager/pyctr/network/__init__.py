"""pyctr's networks, built on the CNI plugins (bridge, host-local, portmap, firewall, loopback,
tuning): pyctr runs them, it never makes a veth or an iptables rule itself."""
