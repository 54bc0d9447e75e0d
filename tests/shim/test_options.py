"""The runtime options containerd sends the shim (Create.options and start's stdin): the three
types real callers send, decoded to runc's option keys; anything else a clear INVALID_ARGUMENT."""
import os
import sys

import pytest
from hypothesis import given, settings, strategies as st

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from pyrunc_shim import options  # noqa: E402
from pyrunc_shim.errors import ShimError  # noqa: E402
from pyrunc_shim.events import pack_any  # noqa: E402
from pyrunc_shim.pb.containerd import runc_options_pb2, runctypes_pb2, runtimeoptions_pb2  # noqa: E402
from pyrunc_shim.ttrpc import framing  # noqa: E402


def test_legacy_create_options_of_ctr_no_pivot():
    """`ctr run --no-pivot` on a runtime that is not io.containerd.runc.*: containerd.linux.runc.CreateOptions."""
    msg = pack_any(runctypes_pb2.CreateOptions(no_pivot_root=True, no_new_keyring=True, shim_cgroup="/s",
                                               io_uid=7, io_gid=8, open_tcp=True, empty_namespaces=["net"]))
    assert msg.type_url.rsplit("/", 1)[-1] == "containerd.linux.runc.CreateOptions"
    assert options.from_any(msg) == {"NoPivotRoot": True, "NoNewKeyring": True, "ShimCgroup": "/s",
                                     "IoUid": 7, "IoGid": 8}


def test_runc_options_all_keys():
    msg = pack_any(runc_options_pb2.Options(binary_name="runc", root="/r", systemd_cgroup=True, no_pivot_root=True,
                                            shim_cgroup="/s", io_uid=1, io_gid=2))
    assert options.from_any(msg) == {"BinaryName": "runc", "Root": "/r", "SystemdCgroup": True,
                                     "NoPivotRoot": True, "ShimCgroup": "/s", "IoUid": 1, "IoGid": 2}


def test_runtimeoptions_config_path_of_cri(tmp_path):
    """containerd's CRI plugin sends runtimeoptions.v1.Options{TypeUrl, ConfigPath} for a runtime type it
    does not know; keys are matched case-insensitively (BurntSushi/toml) and unknown ones ignored."""
    path = tmp_path / "pyrunc.toml"
    path.write_text('binaryname = "/usr/bin/crun"\nRoot = "/run/x"\nSystemdCgroup = true\nIoUid = 5\nOther = 1\n')
    msg = pack_any(runtimeoptions_pb2.Options(type_url="io.containerd.pyrunc.v1.options", config_path=str(path)))
    assert options.from_any(msg) == {"BinaryName": "/usr/bin/crun", "Root": "/run/x", "SystemdCgroup": True,
                                     "IoUid": 5}
    assert options.from_start_stdin(msg.SerializeToString()) == options.from_any(msg)


def _invalid(msg_or_bytes):
    with pytest.raises(ShimError) as e:
        if isinstance(msg_or_bytes, bytes):
            options.from_start_stdin(msg_or_bytes)
        else:
            options.from_any(msg_or_bytes)
    assert e.value.code == framing.INVALID_ARGUMENT
    return e.value.message


def test_config_path_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, want in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                       (tmp_path / "missing", "No such file")):
        msg = _invalid(pack_any(runtimeoptions_pb2.Options(config_path=str(path))))
        assert str(path) in msg and want in msg
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (options.CONFIG_MAX + 1))
    assert "larger than" in _invalid(pack_any(runtimeoptions_pb2.Options(config_path=str(big))))


def test_unsupported_type_names_the_accepted_ones():
    msg = pack_any(runc_options_pb2.CheckpointOptions())
    text = _invalid(msg)
    assert "unsupported type 'containerd.runc.v1.CheckpointOptions'" in text
    assert "containerd.linux.runc.CreateOptions" in text


_KEYS = list(options._STRINGS + options._BOOLS + options._IDS)
_TOML_VALUES = st.one_of(st.booleans(), st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
                         st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False),
                         st.lists(st.integers(0, 9), max_size=2))


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + "".join(c if c.isalnum() else f"\\U{ord(c):08x}" for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return repr(v)


def _well_typed(key, v):
    if key in options._STRINGS:
        return isinstance(v, str) and "\0" not in v
    if key in options._BOOLS:
        return isinstance(v, bool)
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_KEYS), _TOML_VALUES)
def test_every_key_type_checked(key, value):
    """Each key with a value of any TOML type: accepted as is when it has its field's type, otherwise
    an error naming the key; never another exception."""
    body = f"{key} = {_toml_value(value)}\n"
    msg = pack_any(runtimeoptions_pb2.Options(config_body=body))
    if _well_typed(key, value):
        got = options.from_any(msg)
        assert got.get(key, value) == value
    else:
        assert key in _invalid(msg)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["containerd.runc.v1.Options", "containerd.linux.runc.CreateOptions",
                        "runtimeoptions.v1.Options", "x.Unknown", ""]), st.binary(max_size=64))
def test_malformed_messages_are_invalid_argument(name, value):
    """Arbitrary bytes as any type's value, and as start's stdin: options or INVALID_ARGUMENT."""
    from google.protobuf import any_pb2
    for attempt in (lambda: options.decode(f"types.googleapis.com/{name}" if name else "", value),
                    lambda: options.from_start_stdin(value),
                    lambda: options.from_start_stdin(any_pb2.Any(type_url=name, value=value).SerializeToString())):
        try:
            assert isinstance(attempt(), dict)
        except ShimError as e:
            assert e.code == framing.INVALID_ARGUMENT
