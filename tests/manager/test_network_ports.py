"""-p parsing (Docker's ParsePortSpec) by class: any text gives bindings or a NetworkError, never
another exception; valid specs give Docker's PortBindings; resolv.conf keeps no loopback server."""
import string

import pytest
from hypothesis import given, settings, strategies as st

from pyctr.network import files, ports
from pyctr.network.errors import NetworkError


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.digits + ":-/[].abcudptx", max_size=24))
def test_any_spec_parses_or_is_a_network_error(spec):
    try:
        out = ports.parse_publish(spec)
    except NetworkError:
        return
    for key, b in out:
        port, proto = key.split("/")
        assert 0 < int(port) < 65536 and proto in ("tcp", "udp", "sctp")
        assert set(b) == {"HostIp", "HostPort"}


@pytest.mark.parametrize("spec,want", [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1:8080:80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("127.0.0.1::53/udp", [("53/udp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("8000-8001:80-81", [("80/tcp", {"HostIp": "", "HostPort": "8000"}), ("81/tcp", {"HostIp": "", "HostPort": "8001"})]),
    ("9000-9010:80", [("80/tcp", {"HostIp": "", "HostPort": "9000-9010"})]),
])
def test_docker_specs(spec, want):
    assert ports.parse_publish(spec) == want


@settings(max_examples=100, deadline=None)
@given(servers=st.lists(st.sampled_from(["127.0.0.1", "127.0.0.53", "::1", "10.0.0.2", "fe80::1", "8.8.4.4"]),
                        max_size=4))
def test_resolv_conf_never_keeps_a_loopback_server(servers):
    host = "".join(f"nameserver {s}\n" for s in servers) + "search example.org\n"
    rec = {"HostConfig": {"NetworkMode": "bridge"}, "Config": {"Hostname": "h"}}
    text = files.resolv_text(rec, host)
    kept = [ln.split()[1] for ln in text.splitlines() if ln.startswith("nameserver")]
    assert kept and not any(s.startswith("127.") or ":" in s for s in kept)
    assert kept == ([s for s in servers if s in ("10.0.0.2", "8.8.4.4")] or ["8.8.8.8", "8.8.4.4"])
    assert "search example.org" in text
    rec["HostConfig"]["Dns"] = ["1.1.1.1"]
    assert [ln for ln in files.resolv_text(rec, host).splitlines() if ln.startswith("nameserver")] == \
        ["nameserver 1.1.1.1"]
