"""The runtime options containerd hands a shim, as one dict of containerd's runc Options keys
(BinaryName, Root, SystemdCgroup, NoPivotRoot, NoNewKeyring, ShimCgroup, IoUid, IoGid, ...).

They come as a protobuf Any, in Create.options and marshalled on the stdin of `start`, of one of
three types (containerd 1.6, runtime/v2/runc/options and pkg/runtimeoptions):
  containerd.runc.v1.Options         what a client that knows this shim is runc-like sends
  containerd.linux.runc.CreateOptions  the legacy type containerd's client still sends to any runtime
                                     that is not io.containerd.runc.* (`ctr run --no-pivot`)
  runtimeoptions.v1.Options          `ctr --runtime-config-path` and the CRI plugin for a runtime
                                     type it does not know: ConfigPath names a TOML file of the keys
                                     above (CRI drops any other key of the runtime's options table)
"""
from pyrunc_shim import errors

CONFIG_MAX = 1 << 20  # an options TOML file is a few lines; refuse to read a huge or endless one
_STRINGS = ("BinaryName", "Root", "CriuPath", "ShimCgroup", "CriuImagePath", "CriuWorkPath")
_BOOLS = ("SystemdCgroup", "NoPivotRoot", "NoNewKeyring")
_IDS = ("IoUid", "IoGid")
_KEYS = {k.lower(): k for k in _STRINGS + _BOOLS + _IDS}


def _runc_v1(value):
    from pyrunc_shim.pb.containerd import runc_options_pb2
    o = runc_options_pb2.Options()
    o.ParseFromString(value)
    return {"BinaryName": o.binary_name, "Root": o.root, "CriuPath": o.criu_path,
            "SystemdCgroup": o.systemd_cgroup, "NoPivotRoot": o.no_pivot_root,
            "NoNewKeyring": o.no_new_keyring, "ShimCgroup": o.shim_cgroup, "IoUid": o.io_uid,
            "IoGid": o.io_gid, "CriuImagePath": o.criu_image_path, "CriuWorkPath": o.criu_work_path}


def _legacy_create(value):
    """The checkpoint fields (open_tcp, external_unix_sockets, terminal, file_locks,
    empty_namespaces, cgroups_mode) only matter to a restore, which this shim does not do."""
    from pyrunc_shim.pb.containerd import runctypes_pb2
    o = runctypes_pb2.CreateOptions()
    o.ParseFromString(value)
    return {"NoPivotRoot": o.no_pivot_root, "NoNewKeyring": o.no_new_keyring,
            "ShimCgroup": o.shim_cgroup, "IoUid": o.io_uid, "IoGid": o.io_gid,
            "CriuImagePath": o.criu_image_path, "CriuWorkPath": o.criu_work_path}


def _read_config(path):
    import os
    import stat
    try:
        # O_NONBLOCK: a FIFO named here must not hang the open; it is refused below
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise errors.invalid(f"runtime options {path}: not a regular file")
            data = f.read(CONFIG_MAX + 1)
    except OSError as e:
        raise errors.invalid(f"runtime options {path}: {e.strerror or e}") from None
    if len(data) > CONFIG_MAX:
        raise errors.invalid(f"runtime options {path}: larger than {CONFIG_MAX} bytes")
    return data


def _toml(text, where):
    import tomllib
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise errors.invalid(f"runtime options {where}: not TOML ({e})") from None


def _checked(raw, where):
    """TOML keys to containerd's names (BurntSushi/toml, which containerd decodes with, matches
    them case-insensitively and ignores unknown ones), each of the type runc's Options field has."""
    opts = {}
    for key, value in raw.items():
        name = _KEYS.get(key.lower())
        if name is None:
            continue
        if name in _STRINGS:
            ok = isinstance(value, str) and "\0" not in value
            want = "a string"
        elif name in _BOOLS:
            ok, want = isinstance(value, bool), "true or false"
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 32
            want = "an integer from 0 to 4294967295"
        if not ok:
            raise errors.invalid(f"runtime options {where}: {key} must be {want}, not {value!r}")
        opts[name] = value
    return opts


def _runtimeoptions(value):
    from pyrunc_shim.pb.containerd import runtimeoptions_pb2
    o = runtimeoptions_pb2.Options()
    o.ParseFromString(value)
    if o.config_body:
        return _checked(_toml(o.config_body, "config_body"), "config_body")
    if o.config_path:
        data = _read_config(o.config_path)
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise errors.invalid(f"runtime options {o.config_path}: not UTF-8 text") from None
        return _checked(_toml(text, o.config_path), o.config_path)
    return {}


_DECODERS = {"containerd.runc.v1.Options": _runc_v1,
             "containerd.linux.runc.CreateOptions": _legacy_create,
             "runtimeoptions.v1.Options": _runtimeoptions}


def decode(type_url, value):
    """-> the options set (empty strings, false and 0 are "not set", as in Go's zero values)."""
    if not type_url:
        return {}
    name = type_url.rsplit("/", 1)[-1]
    decoder = _DECODERS.get(name)
    if decoder is None:
        raise errors.invalid(f"runtime options: unsupported type {type_url!r} "
                             f"(expected one of {', '.join(sorted(_DECODERS))})")
    try:
        opts = decoder(value)
    except errors.ShimError:
        raise
    except Exception as e:  # protobuf's DecodeError and kin: a malformed message
        raise errors.invalid(f"runtime options {name}: malformed ({type(e).__name__})") from None
    return {k: v for k, v in opts.items() if v not in ("", None, False, 0)}


def from_any(any_msg):
    return decode(any_msg.type_url, any_msg.value) if any_msg is not None else {}


def from_start_stdin(data):
    """`start` gets the task's options Any marshalled on stdin (containerd's binary.Start)."""
    if not data:
        return {}
    from google.protobuf import any_pb2
    msg = any_pb2.Any()
    try:
        msg.ParseFromString(data)
    except Exception as e:
        raise errors.invalid(f"runtime options on stdin: malformed ({type(e).__name__})") from None
    return from_any(msg)
