"""Dockerfile instructions applied to an image config, as `commit -c` (and `import -c`) take them:
CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR, in Docker's forms
(JSON array or shell form; `ENV k=v k2="a b"` or the legacy `ENV k v`)."""
import json
import posixpath
import shlex

from pyctr.container.errors import ContainerError

VALID = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _json_or_shell(rest):
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", rest]


def _pairs(word, rest):
    """`k=v k2="v 2"` or the legacy `k v w` (one pair, the rest the value)."""
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise ContainerError(f"{word}: {e}") from None
    if not words:
        raise ContainerError(f"{word} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise ContainerError(f"{word} names can not be blank" if not key else f"{word} must have two arguments")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise ContainerError(f"{word} names can not be blank" if not key else
                                 f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        out.append((key, value))
    return out


def apply_changes(config, changes):
    """config (an image config's "config" dict) with the instructions applied; a new dict."""
    cfg = json.loads(json.dumps(config or {}))
    cmd_set = False
    for line in changes or ():
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word not in VALID:
            raise ContainerError(f"{word} is not a valid change command")
        if word == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
            cmd_set = True
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest) if rest else None
            if not cmd_set:
                cfg["Cmd"] = None   # as a Dockerfile: a new ENTRYPOINT drops the inherited CMD
        elif word == "ENV":
            env = list(cfg.get("Env") or [])
            for key, value in _pairs(word, rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            cfg["Env"] = env
        elif word == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(word, rest))
            cfg["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                port, _, proto = p.partition("/")
                if not port or not all(c.isdigit() or c == "-" for c in port) or proto not in ("", "tcp", "udp", "sctp"):
                    raise ContainerError(f"invalid containerPort: {p}")
                ports[f"{port}/{proto or 'tcp'}"] = {}
            cfg["ExposedPorts"] = ports
        elif word == "VOLUME":
            paths = json.loads(rest) if rest.startswith("[") else rest.split()
            if not paths or not all(isinstance(p, str) and p for p in paths):
                raise ContainerError("VOLUME specified can not be an empty string")
            vols = dict(cfg.get("Volumes") or {})
            vols.update({p: {} for p in paths})
            cfg["Volumes"] = vols
        elif word == "WORKDIR":
            cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", rest))
        elif word == "USER":
            if not rest:
                raise ContainerError("USER requires exactly one argument")
            cfg["User"] = rest
        elif word == "STOPSIGNAL":
            if not rest:
                raise ContainerError("STOPSIGNAL requires exactly one argument")
            cfg["StopSignal"] = rest
        elif word == "ONBUILD":
            trigger = rest.partition(" ")[0].upper()
            if trigger in ("ONBUILD", "FROM", "MAINTAINER") or not trigger:
                raise ContainerError(f"{trigger or 'ONBUILD'} isn't allowed as an ONBUILD trigger")
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
    return cfg
