"""Image configs (image-spec config.md) checked before they enter the store, as Docker and podman
check them when they decode one: a field of the wrong type, a `created` that is not an RFC 3339
time, a diff id that is not a digest, or more layers than Docker stacks, and the image is refused.
What is stored is then safe for every command to read (listing, inspect, bundle, save, push)."""
import json
import re

from pyctr.errors import PyctrError

# moby layer/layer_store.go maxLayerDepth: Docker refuses an image of more layers (overlay2 can
# stack 128 lowerdirs; a container's own layer and an init layer go on top).
MAX_LAYERS = 125

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


class InvalidConfig(PyctrError):
    def __init__(self, what, why):
        super().__init__(f"{what}: invalid image config: {why}")
        self.why = why


def _is_str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _check_time(v, field, fail):
    if not isinstance(v, str) or not _RFC3339.match(v):
        fail(f"{field} must be an RFC 3339 time string, not {json.dumps(v)[:60]}")


def _check_container_config(cfg, fail):
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        fail("config must be an object")
    for key in ("User", "WorkingDir", "StopSignal", "Domainname", "Hostname"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            fail(f"config.{key} must be a string")
    for key in ("Env", "OnBuild"):
        if cfg.get(key) is not None and not _is_str_list(cfg[key]):
            fail(f"config.{key} must be a list of strings")
    for key in ("Entrypoint", "Cmd", "Shell"):  # Docker's strslice: a string is a one-word list
        v = cfg.get(key)
        if v is not None and not isinstance(v, str) and not _is_str_list(v):
            fail(f"config.{key} must be a list of strings")
    for key in ("ExposedPorts", "Volumes", "Labels", "Healthcheck"):
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            fail(f"config.{key} must be an object")
    labels = cfg.get("Labels") or {}
    if not all(isinstance(v, str) for v in labels.values()):
        fail("config.Labels values must be strings")


def parse(config_bytes, what="image config"):
    """The config as a dict, or InvalidConfig saying which field is wrong."""
    def fail(why):
        raise InvalidConfig(what, why)

    try:
        config = json.loads(config_bytes)
    except (ValueError, RecursionError):
        fail("not valid JSON")
    if not isinstance(config, dict):
        fail("not a JSON object")
    if config.get("created") is not None:
        _check_time(config["created"], "created", fail)
    for key in ("author", "architecture", "os", "variant", "os.version"):
        if config.get(key) is not None and not isinstance(config[key], str):
            fail(f"{key} must be a string")
    if config.get("os.features") is not None and not _is_str_list(config["os.features"]):
        fail("os.features must be a list of strings")
    _check_container_config(config.get("config"), fail)
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict):
        fail("rootfs is missing or not an object")
    if rootfs.get("type") != "layers":
        fail(f"rootfs.type must be \"layers\", not {json.dumps(rootfs.get('type'))[:40]}")
    diff_ids = rootfs.get("diff_ids")
    if diff_ids is None:
        diff_ids = []
    if not isinstance(diff_ids, list):
        fail("rootfs.diff_ids must be a list")
    for d in diff_ids:
        if not isinstance(d, str) or not _DIGEST.match(d):
            fail(f"rootfs.diff_ids holds {json.dumps(d)[:80]}, not a sha256 digest")
    check_layer_count(len(diff_ids), what)
    history = config.get("history")
    if history is not None:
        if not isinstance(history, list):
            fail("history must be a list")
        for i, h in enumerate(history):
            if not isinstance(h, dict):
                fail(f"history[{i}] must be an object")
            if h.get("created") is not None:
                _check_time(h["created"], f"history[{i}].created", fail)
            for key in ("created_by", "author", "comment"):
                if h.get(key) is not None and not isinstance(h[key], str):
                    fail(f"history[{i}].{key} must be a string")
            if h.get("empty_layer") is not None and not isinstance(h["empty_layer"], bool):
                fail(f"history[{i}].empty_layer must be a boolean")
    return config


def check_layer_count(n, what="image"):
    if n > MAX_LAYERS:
        raise PyctrError(f"{what}: {n} layers is more than the {MAX_LAYERS} an image may stack "
                         f"(max depth exceeded, as Docker says); nothing was stored")


def diff_ids(config):
    """The diff ids of a config parse() accepted."""
    return (config.get("rootfs") or {}).get("diff_ids") or []
