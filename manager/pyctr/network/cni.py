"""Running CNI plugins (spec 1.0.0, `cni:SPEC.md`): ADD in the conflist's order, each given the
previous result; DEL in reverse order with the cached ADD result (DEL is repeatable and runs even
after a failed ADD). The plugins run in the host netns with CNI_* in their environment and the
plugin's execution config on stdin; an error is the JSON they print on stdout."""
import json
import os
import subprocess

from pyctr.network.errors import NetworkError, PluginError

CNI_PATH = os.environ.get("PYCTR_CNI_PATH", "/usr/lib/cni")
PLUGIN_TIMEOUT = 60


def plugin_binary(kind):
    for d in CNI_PATH.split(":"):
        path = os.path.join(d, kind)
        if os.access(path, os.X_OK):
            return path
    raise NetworkError(f"CNI plugin {kind} not found in {CNI_PATH} (install containernetworking-plugins)")


def check_plugins(conflist):
    for p in conflist["plugins"]:
        plugin_binary(p["type"])


def _exec_config(conflist, plugin, runtime_config, prev):
    conf = {k: v for k, v in plugin.items() if k != "capabilities"}
    conf["cniVersion"], conf["name"] = conflist["cniVersion"], conflist["name"]
    caps = plugin.get("capabilities") or {}
    rc = {k: v for k, v in runtime_config.items() if caps.get(k)}
    if rc:
        conf["runtimeConfig"] = rc
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def _invoke(conflist, plugin, command, env, runtime_config, prev):
    binary = plugin_binary(plugin["type"])
    conf = _exec_config(conflist, plugin, runtime_config, prev)
    e = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    e.update(env, CNI_COMMAND=command, CNI_PATH=CNI_PATH)
    try:
        cp = subprocess.run([binary], input=json.dumps(conf).encode(), env=e, capture_output=True,
                            timeout=PLUGIN_TIMEOUT, close_fds=True)
    except subprocess.TimeoutExpired:
        raise PluginError(plugin["type"], command, conflist["name"], f"no answer in {PLUGIN_TIMEOUT}s") from None
    except OSError as err:
        raise PluginError(plugin["type"], command, conflist["name"], err.strerror) from None
    if cp.returncode != 0:
        msg = ""
        try:
            j = json.loads(cp.stdout)
            msg = j.get("msg", "") + (f": {j['details']}" if j.get("details") else "")
        except (ValueError, AttributeError):
            pass
        msg = msg or cp.stderr.decode(errors="replace").strip() or f"exit status {cp.returncode}"
        raise PluginError(plugin["type"], command, conflist["name"], msg)
    if command != "ADD":
        return None
    try:
        return json.loads(cp.stdout)
    except ValueError:
        raise PluginError(plugin["type"], command, conflist["name"], "its result is not JSON") from None


def _env(cid, netns, ifname, args):
    env = {"CNI_CONTAINERID": cid, "CNI_IFNAME": ifname, "CNI_NETNS": netns or ""}
    if args:
        env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in args.items())
    return env


def add(conflist, cid, netns, ifname, args, runtime_config, on_result=None):
    """on_result(result) after each plugin: a caller killed mid-chain has cached what DEL needs
    (the firewall plugin removes its rules only for the addresses its prevResult names)."""
    result = None
    env = _env(cid, netns, ifname, args)
    for plugin in conflist["plugins"]:
        result = _invoke(conflist, plugin, "ADD", env, runtime_config, result)
        if on_result:
            on_result(result)
    return result


def delete(conflist, cid, netns, ifname, args, runtime_config, result):
    """DEL through every plugin in reverse order; every one is tried, the first error raised."""
    env = _env(cid, netns, ifname, args)
    first = None
    for plugin in reversed(conflist["plugins"]):
        try:
            _invoke(conflist, plugin, "DEL", env, runtime_config, result)
        except NetworkError as e:
            first = first or e
    if first:
        raise first
