"""`run`/`create` flags -> Docker's Config and HostConfig (the shapes `inspect` shows), with
Docker's rules and error wording; pure (no filesystem), unit-tested."""
import os
import sys

from pyctr.container.errors import ContainerError

_SIGNALS = None


def signal_number(spec):
    """'TERM', 'SIGTERM', 'term', '15' -> 15; ContainerError for anything else."""
    import signal
    s = str(spec).strip()
    if s.isdigit():
        n = int(s)
        if 0 < n < 65:
            return n
        raise ContainerError(f"invalid signal: {spec}")
    name = s.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(signal.Signals, name))
    except AttributeError:
        raise ContainerError(f"invalid signal: {spec}") from None


def parse_bytes(spec, what):
    """Docker's RAMInBytes (512, 64k, 64m, 1.5g: binary units), as pyrunc's update parses it."""
    from pyrunc.errors import UsageError
    from pyrunc.lifecycle.update import ram_in_bytes
    try:
        n = ram_in_bytes(str(spec), what)
    except UsageError:
        n = -2
    if n < 0:
        raise ContainerError(f"invalid {what}: {spec!r} (a size such as 64m or 1g)")
    return n


def parse_env(pairs, env_files, lookup=os.environ.get):
    """-e K=V, -e K (copied from here, dropped if unset), --env-file lines (`#` at line start)."""
    out = []
    for path in env_files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)
        except OSError as e:
            raise ContainerError(f"open {path}: {e.strerror.lower()}") from None
        for line in text.splitlines():
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            out.append(stripped)
    out += list(pairs)
    env = []
    for item in out:
        key, eq, _ = item.partition("=")
        if not key:
            raise ContainerError(f"invalid environment variable: {item}")
        if eq:
            env.append(item)
        else:
            v = lookup(key)
            if v is not None:
                env.append(f"{key}={v}")
    return env


def config_env(image_env, user_env):
    """dockerd's merge of the image's Env into the container's Config.Env: the user's variables
    first, then the image's that the user did not set."""
    if not user_env:
        return list(image_env)
    keys = {e.partition("=")[0] for e in user_env}
    return list(user_env) + [e for e in image_env if e.partition("=")[0] not in keys]


def merge_env(image_env, env):
    """Image Env overridden key by key by the container's."""
    keys = {e.partition("=")[0]: i for i, e in enumerate(image_env)}
    merged = list(image_env)
    for e in env:
        k = e.partition("=")[0]
        if k in keys:
            merged[keys[k]] = e
        else:
            keys[k] = len(merged)
            merged.append(e)
    return merged


def parse_labels(items):
    labels = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise ContainerError(f"invalid label: {item!r}")
        labels[k] = v
    return labels


def parse_restart(spec):
    """no | always | unless-stopped | on-failure[:N] -> {"Name", "MaximumRetryCount"}."""
    name, _, count = (spec or "no").partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise ContainerError(f"invalid restart policy: {spec}")
    if count and name != "on-failure":
        raise ContainerError("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    try:
        n = int(count) if count else 0
    except ValueError:
        raise ContainerError(f"invalid restart policy: maximum retry count must be an integer: {count!r}") from None
    if n < 0:
        raise ContainerError("invalid restart policy: maximum retry count cannot be negative")
    return {"Name": "" if name == "no" and not spec else name, "MaximumRetryCount": n}


def parse_ulimit(spec):
    name, eq, vals = spec.partition("=")
    soft, _, hard = vals.partition(":")
    try:
        soft_v = int(soft)
        hard_v = int(hard) if hard else soft_v
    except ValueError:
        raise ContainerError(f"invalid ulimit argument: {spec}") from None
    if not eq or not name.isalpha():
        raise ContainerError(f"invalid ulimit argument: {spec}")
    if soft_v > hard_v:
        raise ContainerError(f"ulimit soft limit must be less than or equal to hard limit: {soft_v} > {hard_v}")
    return {"Name": name.lower(), "Soft": soft_v, "Hard": hard_v}


def parse_device(spec):
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0].startswith("/"):
        raise ContainerError(f"invalid device mode or path: {spec}")
    host = parts[0]
    inner, perms = host, "rwm"
    if len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
            perms = parts[1]
        else:
            inner = parts[1]
    elif len(parts) == 3:
        inner, perms = parts[1], parts[2]
    if not inner.startswith("/") or not perms or not set(perms) <= set("rwm"):
        raise ContainerError(f"invalid device mode or path: {spec}")
    return {"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms}


_BIND_MODES = {"ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave", "private", "rprivate",
               "nocopy", "consistent", "cached", "delegated"}


def parse_volume(spec):
    """-v: DEST (anonymous volume), SRC:DEST[:MODE]; absolute SRC = bind, else a named volume."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2:
        if parts[0].startswith("/") and not parts[1].startswith("/"):
            raise ContainerError(f"invalid volume specification: '{spec}'")  # DEST:MODE alone
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise ContainerError(f"invalid volume specification: '{spec}'")
    if not dst.startswith("/"):
        raise ContainerError(f"invalid volume specification: '{spec}': invalid mount config for type "
                             f"\"{'bind' if src.startswith('/') else 'volume'}\": invalid mount path: "
                             f"'{dst}' mount path must be absolute")
    modes = [m for m in mode.split(",") if m]
    if any(m not in _BIND_MODES for m in modes) or len(set(modes)) != len(modes) or \
            ("ro" in modes and "rw" in modes):
        raise ContainerError(f"invalid mode: {mode}")
    if src and not src.startswith("/") and not _volume_name_ok(src):
        raise ContainerError(f"invalid volume specification: '{spec}': \"{src}\" includes invalid characters "
                             f"for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you "
                             f"intended to pass a host directory, use absolute path")
    propagation = next((m for m in modes if m.endswith(("shared", "slave", "private"))), "")
    return {"Type": "bind" if src.startswith("/") else "volume", "Source": src,
            "Destination": os.path.normpath(dst), "RW": "ro" not in modes, "Mode": mode,
            "Propagation": propagation or ("rprivate" if src.startswith("/") else ""),
            "NoCopy": "nocopy" in modes, "CreateSource": True}


def _volume_name_ok(name):
    from pyctr.container.names import NAME_RE
    return len(name) >= 2 and bool(NAME_RE.match(name)) or (len(name) == 1 and name.isalnum())


def parse_mount(spec):
    """--mount type=bind|volume|tmpfs,src=,dst=,ro,bind-propagation=,tmpfs-size=,tmpfs-mode=..."""
    m = {"Type": "volume", "Source": "", "Destination": "", "RW": True, "Mode": "", "Propagation": "",
         "NoCopy": False, "CreateSource": False, "TmpfsOptions": {}}
    for field in spec.split(","):
        k, eq, v = field.partition("=")
        k = k.strip().lower()
        if k in ("readonly", "ro"):
            m["RW"] = not eq or v.lower() not in ("1", "true")
            continue
        if not eq:
            raise ContainerError(f"invalid argument \"{spec}\" for \"--mount\" flag: invalid field '{field}' "
                                 f"must be a key=value pair")
        if k == "type":
            if v not in ("bind", "volume", "tmpfs"):
                raise ContainerError(f"invalid argument \"{spec}\" for \"--mount\" flag: invalid mount type {v!r}")
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("destination", "dst", "target"):
            m["Destination"] = v
        elif k == "bind-propagation":
            m["Propagation"] = v
        elif k == "bind-create-src":
            m["CreateSource"] = v.lower() in ("", "1", "true")
        elif k == "volume-nocopy":
            m["NoCopy"] = v.lower() in ("", "1", "true")
        elif k == "tmpfs-size":
            m["TmpfsOptions"]["SizeBytes"] = parse_bytes(v, "tmpfs-size")
        elif k == "tmpfs-mode":
            try:
                m["TmpfsOptions"]["Mode"] = int(v, 8)
            except ValueError:
                raise ContainerError(f"invalid tmpfs-mode {v!r}") from None
        elif k in ("consistency", "volume-driver", "volume-label", "volume-opt", "volume-subpath"):
            continue
        else:
            raise ContainerError(f"invalid argument \"{spec}\" for \"--mount\" flag: unexpected key '{k}' in '{field}'")
    if not m["Destination"].startswith("/"):
        raise ContainerError(f"invalid argument \"{spec}\" for \"--mount\" flag: target must be an absolute path")
    if m["Type"] == "bind" and not m["Source"].startswith("/"):
        raise ContainerError(f"invalid argument \"{spec}\" for \"--mount\" flag: invalid mount config for "
                             f"type \"bind\": source must be an absolute path")
    m["Destination"] = os.path.normpath(m["Destination"])
    return m


def parse_tmpfs(spec):
    path, _, opts = spec.partition(":")
    if not path.startswith("/"):
        raise ContainerError(f"invalid tmpfs mount path {path!r}: must be absolute")
    return os.path.normpath(path), opts


def parse_security_opts(items):
    """-> (seccomp: None (default) | "unconfined" | path, no_new_privileges)"""
    seccomp, nnp = None, False
    for item in items:
        k, sep, v = item.partition("=" if "=" in item else ":")
        if k == "no-new-privileges":
            nnp = not sep or v.lower() in ("true", "1", "")
        elif k == "seccomp" and v:
            seccomp = None if v == "builtin" else v
        elif k in ("label", "apparmor", "systempaths"):
            continue  # no LSM on this host; accepted as Docker does where it has none
        else:
            raise ContainerError(f"Invalid --security-opt: {item!r}")
    return seccomp, nnp


def network_mode(spec):
    """none, host, container:NAME, or a network's name (bridge, the default; checked at create)."""
    spec = spec or "bridge"
    if spec == "default":
        return "bridge"
    if spec.startswith("container:") and len(spec) == 10:
        raise ContainerError("--network container: needs a container's name or id")
    return spec


def network_options(args, exposed):
    """Config.ExposedPorts additions and the HostConfig network fields of -p/-P/--add-host/--dns*."""
    from pyctr.network import ports
    from pyctr.network.errors import NetworkError
    try:
        expose, bindings = ports.bindings(args.publish)
        expose.update({ports.port_key(e): {} for e in args.expose})
    except NetworkError as e:
        raise ContainerError(str(e)) from None
    for h in args.add_host:
        name, sep, ip = h.partition(":")
        if not sep or not name or not ip:
            raise ContainerError(f"invalid argument {h!r} for \"--add-host\" flag: bad format for add-host: {h!r}")
        if ip == "host-gateway":
            continue
        import ipaddress
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ContainerError(f"invalid argument {h!r} for \"--add-host\" flag: invalid IP address in "
                                 f"add-host: {ip!r}") from None
    for d in args.dns:
        import ipaddress
        try:
            ipaddress.ip_address(d)
        except ValueError:
            raise ContainerError(f"invalid argument {d!r} for \"--dns\" flag: {d} is not an ip address") from None
    return expose, {
        "PortBindings": bindings, "PublishAllPorts": bool(args.publish_all),
        "ExtraHosts": list(args.add_host) or None, "Dns": list(args.dns), "DnsSearch": list(args.dns_search),
        "DnsOptions": list(args.dns_option)}


def build(args, image_ref, image_id, image_config):
    """(Config, HostConfig) for `run`/`create` args; image_config is the image's config["config"]."""
    icfg = image_config or {}
    command = list(args.command)
    if args.rm and args.restart and parse_restart(args.restart)["Name"] not in ("", "no"):
        raise ContainerError("conflicting options: cannot specify both --restart and --rm")
    entrypoint = icfg.get("Entrypoint")
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else None
        cmd = command or None  # a new entrypoint drops the image's Cmd, as Docker
    else:
        cmd = command or icfg.get("Cmd")
    if not (entrypoint or cmd):
        raise ContainerError("no command specified")
    env = config_env(list(icfg.get("Env") or []), parse_env(args.env, args.env_file))
    labels = dict(icfg.get("Labels") or {})
    labels.update(parse_labels(args.label))
    stop_signal = args.stop_signal or icfg.get("StopSignal") or ""
    if stop_signal:
        signal_number(stop_signal)
    config = {
        "Hostname": args.hostname or "", "Domainname": "", "User": args.user if args.user is not None
        else icfg.get("User", ""), "AttachStdin": bool(args.interactive and not args.detach),
        "AttachStdout": not args.detach, "AttachStderr": not args.detach,
        "ExposedPorts": icfg.get("ExposedPorts"), "Tty": bool(args.tty), "OpenStdin": bool(args.interactive),
        "StdinOnce": bool(args.interactive and not args.detach), "Env": env, "Cmd": cmd,
        "Image": image_ref, "Volumes": icfg.get("Volumes"),
        "WorkingDir": args.workdir if args.workdir is not None else icfg.get("WorkingDir", ""),
        "Entrypoint": entrypoint, "OnBuild": icfg.get("OnBuild"), "Labels": labels,
    }
    if stop_signal:
        config["StopSignal"] = stop_signal
    if args.stop_timeout is not None:
        config["StopTimeout"] = args.stop_timeout
    if config["WorkingDir"] and not config["WorkingDir"].startswith("/"):
        raise ContainerError(f"the working directory '{config['WorkingDir']}' is invalid, it needs to be an "
                             f"absolute path")
    log_config = {}
    for opt in args.log_opt:
        k, eq, v = opt.partition("=")
        if not eq or k not in ("max-size", "max-file", "compress", "labels", "env", "tag"):
            raise ContainerError(f"unknown log opt '{k}' for json-file log driver")
        log_config[k] = v
    if "max-size" in log_config:
        parse_bytes(log_config["max-size"], "max-size")
    if "max-file" in log_config:
        if not log_config["max-file"].isdigit() or int(log_config["max-file"]) < 1:
            raise ContainerError("max-file cannot be less than 1")
    if args.log_driver not in ("json-file", "none"):
        raise ContainerError(f"log driver {args.log_driver!r} is not supported (json-file, none)")
    cpus = 0
    if args.cpus is not None:
        try:
            cpus = int(round(float(args.cpus) * 1e9))
        except ValueError:
            raise ContainerError(f"invalid argument {args.cpus!r} for \"--cpus\" flag") from None
        if cpus < 0 or cpus > (os.cpu_count() or 1) * 1e9:
            raise ContainerError(f"range of CPUs is from 0.01 to {os.cpu_count() or 1}.00, as there are only "
                                 f"{os.cpu_count() or 1} CPUs available")
    memory = parse_bytes(args.memory, "memory") if args.memory else 0
    if memory and memory < 6291456:
        raise ContainerError("Minimum memory limit allowed is 6MB")
    seccomp, nnp = parse_security_opts(args.security_opt)
    mounts = [parse_volume(v) for v in args.volume] + [parse_mount(m) for m in args.mount]
    dests = [m["Destination"] for m in mounts] + [parse_tmpfs(t)[0] for t in args.tmpfs]
    dup = next((d for d in dests if dests.count(d) > 1), None)
    if dup:
        raise ContainerError(f"Duplicate mount point: {dup}")
    net = network_mode(args.network)
    if args.runtime:
        from pyctr.container.runtime import resolve
        resolve(args.runtime)  # a clear error now, before anything is made
    host = {
        "Binds": list(args.volume) or None, "NetworkMode": net,
        "RestartPolicy": parse_restart(args.restart) if args.restart else {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": bool(args.rm), "CapAdd": list(args.cap_add) or None, "CapDrop": list(args.cap_drop) or None,
        "Privileged": bool(args.privileged), "ReadonlyRootfs": bool(args.read_only),
        "SecurityOpt": list(args.security_opt) or None,
        "Tmpfs": {p: o for p, o in map(parse_tmpfs, args.tmpfs)} or None,
        "LogConfig": {"Type": args.log_driver, "Config": log_config},
        "Memory": memory, "NanoCpus": cpus,
        "PidsLimit": args.pids_limit if args.pids_limit and args.pids_limit > 0 else None,
        "Ulimits": [parse_ulimit(u) for u in args.ulimit] or None,
        "Devices": [parse_device(d) for d in args.device] or [],
        "Init": True if args.init else None, "Runtime": args.runtime or "pyrunc",
        "Mounts": mounts, "Seccomp": seccomp, "NoNewPrivileges": nnp,
    }
    exposed, net_host = network_options(args, config["ExposedPorts"])
    if net.startswith("container:") and (net_host["PortBindings"] or args.network_alias):
        raise ContainerError("conflicting options: port publishing and the container type network mode")
    if net == "host" and net_host["PortBindings"]:
        print("WARNING: Published ports are discarded when using host network mode", file=sys.stderr)
        net_host["PortBindings"] = {}
    host.update(net_host)
    config["ExposedPorts"] = {**(config["ExposedPorts"] or {}), **exposed} or None
    for cap in (args.cap_add or []) + (args.cap_drop or []):
        _cap_name(cap)
    return config, host


def _cap_name(cap):
    from pyctr.container.caps import ALL_CAPS
    c = cap.upper()
    if c == "ALL":
        return c
    c = c if c.startswith("CAP_") else "CAP_" + c
    if c not in ALL_CAPS:
        raise ContainerError(f"invalid capability: {cap!r}")
    return c
