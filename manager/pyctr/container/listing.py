"""What users read: `ps` (Docker's columns and wording), `inspect` (Docker's JSON shape),
`top`, `stats`, `events`."""
import json
import os
import sys
import time

from pyctr.container import state as _state
from pyctr.container.errors import CommandError, NoSuchContainer


def human_duration(seconds):
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if seconds < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _epoch(rfc3339):
    from pyctr.container.logs import parse_time
    return parse_time(rfc3339) if rfc3339 else 0.0


def status_text(rec, st, now):
    if st.status == "created":
        return "Created"
    if st.status in ("running", "paused"):
        started = ((rec.get("Run") or {}).get("StartedAtEpoch")) or now
        text = "Up " + human_duration(now - started)
        return text + " (Paused)" if st.status == "paused" else text
    finished = st.finished_at if isinstance(st.finished_at, (int, float)) else _epoch(st.finished_at)
    word = "Restarting" if st.status == "restarting" else "Exited"
    return f"{word} ({st.exit_code}) {human_duration(now - (finished or now))} ago"


def _ellipsis(s, n):
    return s if len(s) <= n else s[:n - 1] + "…"


def _command(rec, trunc=True):
    from pyctr.container.oci import argv_of
    argv = argv_of(rec["Config"])
    # as dockerd shows it: arguments with blanks in single quotes
    cmd = " ".join(f"'{a}'" if any(c.isspace() for c in a) else a for a in argv)
    if trunc:
        cmd = _ellipsis(cmd, 20)
    return json.dumps(cmd, ensure_ascii=False)


def _matches(rec, st, filters):
    """Docker's filters: the same key repeated = OR, different keys = AND."""
    by = {}
    for f in filters:
        k, eq, v = f.partition("=")
        if not eq:
            raise CommandError(f"bad format of filter (expected name=value): {f}")
        by.setdefault(k, []).append(v)
    for k, vals in by.items():
        if k == "status":
            bad = [v for v in vals if v not in ("created", "restarting", "running", "removing", "paused",
                                                 "exited", "dead")]
            if bad:
                raise CommandError(f"invalid filter 'status={bad[0]}'")
            ok = st.status in vals
        elif k == "name":
            import re
            ok = any(re.search(v, rec["Name"]) for v in vals)
        elif k == "id":
            ok = any(rec["Id"].startswith(v) for v in vals)
        elif k == "label":
            labels = rec["Config"].get("Labels") or {}
            ok = all(labels.get(v.partition("=")[0]) == v.partition("=")[2] if "=" in v
                     else v in labels for v in vals)
        elif k == "ancestor":
            ok = any(v in (rec["Config"].get("Image"), rec["Image"], rec["Image"][7:19]) or
                     rec["Image"][7:].startswith(v) for v in vals)
        elif k == "exited":
            ok = st.status == "exited" and str(st.exit_code) in vals
        elif k in ("before", "since", "volume", "network", "publish", "expose", "health", "isolation"):
            ok = True if k not in ("publish", "expose") else False
        else:
            raise CommandError(f"invalid filter '{k}'")
        if not ok:
            return False
    return True


PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS"}
STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}"
               "\t{{.PIDs}}")
STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}


def _render():
    from pyctr.container.template import render
    return render


def _print_rows(fmt, rows, headers, default_table):
    """Docker's list output: its default table, or --format (table, json, a template)."""
    from pyctr.container.formatter import format_rows
    sys.stdout.write(format_rows(fmt or default_table, rows, headers, default_table))


def ps_row(rec, st, now, trunc):
    return {"ID": rec["Id"][:12] if trunc else rec["Id"], "Image": rec["Config"].get("Image", ""),
            "Command": _command(rec, trunc), "CreatedAt": rec["Created"],
            "RunningFor": human_duration(now - _epoch(rec["Created"])) + " ago",
            "Ports": ps_ports(rec, st), "State": st.status, "Status": status_text(rec, st, now), "Size": "0B (virtual 0B)",
            "Names": rec["Name"], "Labels": ",".join(f"{k}={v}" for k, v in (rec["Config"].get("Labels") or {}).items()),
            "Mounts": ",".join(m.get("Name") or m["Source"] for m in rec.get("Mounts") or []),
            "Networks": rec["HostConfig"].get("NetworkMode", "")}


def ps(ctx, args):
    cs = ctx.containers
    now = time.time()
    recs = sorted(cs.all(), key=lambda r: r["Created"], reverse=True)
    show_all = args.all or args.latest or args.last > 0
    rows = []
    states = [(rec, _state.derive(cs, rec)) for rec in recs]
    from pyctr.container.lifecycle import sweep
    sweep(ctx, states)
    for rec, st in states:
        if not show_all and not st.running and not any(f.startswith("status=") for f in args.filter):
            continue
        if not _matches(rec, st, args.filter):
            continue
        rows.append((rec, st))
    if args.latest:
        rows = rows[:1]
    elif args.last > 0:
        rows = rows[:args.last]
    trunc = not args.no_trunc
    if args.quiet:
        for rec, _ in rows:
            print(rec["Id"][:12] if trunc else rec["Id"])
        return
    data = [ps_row(rec, st, now, trunc) for rec, st in rows]
    _print_rows(args.format, data, PS_HEADERS, PS_TABLE + ("\t{{.Size}}" if args.size else ""))


def inspect_record(ctx, rec):
    cs = ctx.containers
    st = _state.derive(cs, rec, ctx.runtime(rec))
    cfg, host = rec["Config"], rec["HostConfig"]
    from pyctr.container.oci import argv_of
    argv = argv_of(cfg)
    run = rec.get("Run") or rec.get("LastRun") or {}
    zero = "0001-01-01T00:00:00Z"
    finished = st.finished_at
    if isinstance(finished, (int, float)):
        from pyctr.container.lifecycle import now_rfc3339
        finished = now_rfc3339(finished)
    d = cs.dir(rec["Id"])
    mounts = [{"Type": m["Type"], **({"Name": m["Name"]} if m.get("Name") else {}), "Source": m["Source"],
               "Destination": m["Destination"], **({"Driver": m["Driver"]} if m.get("Driver") else {}),
               "Mode": m.get("Mode", ""), "RW": m.get("RW", True), "Propagation": m.get("Propagation", "")}
              for m in rec.get("Mounts") or []]
    docker_host = {k: v for k, v in host.items() if k not in ("Mounts", "Seccomp", "NoNewPrivileges")}
    docker_host["Mounts"] = None
    return {
        "Id": rec["Id"], "Created": rec["Created"], "Path": argv[0] if argv else "", "Args": argv[1:],
        "State": {"Status": st.status, "Running": st.running, "Paused": st.status == "paused",
                  "Restarting": st.status == "restarting", "OOMKilled": False, "Dead": False,
                  "Pid": st.pid if st.status in ("running", "paused") else 0, "ExitCode": st.exit_code,
                  "Error": st.error or "", "StartedAt": run.get("StartedAt", zero),
                  "FinishedAt": finished or rec.get("FinishedAt") or zero},
        "Image": rec["Image"], "ResolvConfPath": os.path.join(d, "resolv.conf"),
        "HostnamePath": os.path.join(d, "hostname"), "HostsPath": os.path.join(d, "hosts"),
        "LogPath": rec["LogPath"], "Name": "/" + rec["Name"], "RestartCount": rec.get("RestartCount", 0),
        "Driver": "overlay2", "Platform": rec.get("Platform", "linux"), "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "", "ExecIDs": None, "HostConfig": docker_host,
        "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": os.path.join(d, "bundle", "rootfs")}},
        "Mounts": mounts, "Config": cfg,
        "NetworkSettings": _network_settings(rec),
    }


def ps_ports(rec, st):
    """ps's PORTS: `0.0.0.0:8080->80/tcp` while running, exposed-only ports as `80/tcp`; in the order
    of Docker's DisplayablePorts (grouped by "hostip/proto", the groups sorted, then the ports)."""
    bound = ((rec.get("NetworkSettings") or {}).get("Ports") or {}) if st.running else {}
    entries = []
    for k in set(bound) | set(rec["Config"].get("ExposedPorts") or {}):
        port, _, proto = k.partition("/")
        num = int(port) if port.isdigit() else 0
        entries += [(f"{b['HostIp']}/{proto}", num, f"{b['HostIp']}:{b['HostPort']}->{k}") for b in bound.get(k) or []] \
            or [(f"/{proto}", num, k)]
    return ", ".join(text for _, _, text in sorted(entries))


def _network_settings(rec):
    """Docker's NetworkSettings: the addresses while the container runs (blank once stopped)."""
    ns = rec.get("NetworkSettings") or {}
    mode = rec["HostConfig"].get("NetworkMode", "none")
    blank = {"NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
             "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": ""}
    nets = {n: {"IPAMConfig": None, "Links": None, "Aliases": ep.get("Aliases") or None, **blank,
                **{k: v for k, v in ep.items() if k in blank}} for n, ep in (ns.get("Networks") or {}).items()}
    if not nets:
        nets = {mode: {"IPAMConfig": None, "Links": None, "Aliases": None, **blank}}
    return {"Bridge": "", "SandboxID": "", "SandboxKey": ns.get("SandboxKey", ""), "Ports": ns.get("Ports") or {},
            "IPAddress": ns.get("IPAddress", ""), "IPPrefixLen": ns.get("IPPrefixLen", 0),
            "Gateway": ns.get("Gateway", ""), "MacAddress": ns.get("MacAddress", ""), "Networks": nets}


def inspect(ctx, args):
    from pyctr.errors import ImageNotFound, PyctrError
    out, failed = [], False
    for name in args.names:
        obj = None
        if args.type != "image":
            try:
                obj = inspect_record(ctx, ctx.containers.load(ctx.containers.lookup(name)))
            except NoSuchContainer:
                obj = None
        if obj is None and args.type != "container":
            try:
                obj = _image(ctx, name)
            except ImageNotFound:
                obj = None
            except PyctrError as e:  # the image exists but its record is bad: say so, show the others
                print(f"Error: {e}", file=sys.stderr)
                failed = True
                continue
        if obj is None:
            print(f"Error: No such object: {name}", file=sys.stderr)
            failed = True
            continue
        out.append(obj)
    if args.format:
        render = _render()
        for o in out:
            print(render(args.format, o))
    else:
        print(json.dumps(out, indent=4, ensure_ascii=False))
    return 1 if failed else 0


def _image(ctx, name):
    from pyctr.cli.images import inspect_image
    image_id = ctx.images.resolve(name)
    return inspect_image(ctx.images, image_id, ctx.images.config(image_id))


def top(ctx, cid, ps_args):
    import subprocess
    rec = ctx.containers.load(cid)
    rt = ctx.runtime(rec)
    st = _state.derive(ctx.containers, rec, rt)
    if st.status not in ("running", "paused"):
        raise CommandError(f"Container {cid} is not running")
    cp = rt.run("ps", "--format", "json", cid)
    try:
        pids = set(json.loads(cp.stdout or "[]") or [])
    except ValueError:
        pids = set()
    out = subprocess.run(["ps"] + (list(ps_args) or ["-ef"]), capture_output=True, text=True)
    if out.returncode != 0:
        raise CommandError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return
    head = lines[0].split()
    if "PID" not in head:
        raise CommandError("Couldn't find PID field in ps output")
    col = head.index("PID")
    from pyctr.container import events
    events.emit(ctx, "top", rec)
    print(lines[0])
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in pids:
            print(line)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _cgroup_numbers(cid):
    base = "/sys/fs/cgroup"
    mem = _read(f"{base}/memory/pyctr/{cid}/memory.usage_in_bytes")
    if mem:
        limit = int(_read(f"{base}/memory/pyctr/{cid}/memory.limit_in_bytes") or 0)
        inactive = 0
        for line in _read(f"{base}/memory/pyctr/{cid}/memory.stat").splitlines():
            k, _, v = line.partition(" ")
            if k == "total_inactive_file":
                inactive = int(v)
        cpu = int(_read(f"{base}/cpuacct/pyctr/{cid}/cpuacct.usage") or 0)
        pids = int(_read(f"{base}/pids/pyctr/{cid}/pids.current") or 0)
        return int(mem) - inactive, limit, cpu, pids
    v2 = f"{base}/unified/pyctr/{cid}" if os.path.isdir(f"{base}/unified/pyctr/{cid}") else f"{base}/pyctr/{cid}"
    mem = int(_read(f"{v2}/memory.current") or 0)
    lim = _read(f"{v2}/memory.max")
    cpu = 0
    for line in _read(f"{v2}/cpu.stat").splitlines():
        if line.startswith("usage_usec"):
            cpu = int(line.split()[1]) * 1000
    return mem, int(lim) if lim.isdigit() else 0, cpu, int(_read(f"{v2}/pids.current") or 0)


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{n}B"
        n /= 1024


def stats(ctx, args):
    cs = ctx.containers
    recs = [cs.load(cs.lookup(r)) for r in args.containers] if args.containers else cs.all()
    chosen = [(r, _state.derive(cs, r)) for r in recs]
    chosen = [(r, s) for r, s in chosen if args.all or args.containers or s.running]
    first = {r["Id"]: (_cgroup_numbers(r["Id"])[2], time.monotonic()) for r, _ in chosen}
    time.sleep(0.5 if chosen else 0)
    host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = []
    for rec, st in chosen:
        mem, limit, cpu, pids = _cgroup_numbers(rec["Id"]) if st.running else (0, 0, 0, 0)
        limit = limit if 0 < limit < host_mem else host_mem
        cpu0, t0 = first[rec["Id"]]
        cpu_pct = (cpu - cpu0) / max(time.monotonic() - t0, 1e-6) / 1e9 * 100 if st.running else 0.0
        rows.append({"ID": rec["Id"][:12], "Container": rec["Id"][:12], "Name": rec["Name"],
                     "CPUPerc": f"{cpu_pct:.2f}%", "MemUsage": f"{_size(mem)} / {_size(limit)}",
                     "MemPerc": f"{mem * 100 / limit:.2f}%" if limit else "0.00%", "NetIO": "0B / 0B",
                     "BlockIO": "0B / 0B", "PIDs": str(pids)})
    _print_rows(args.format, rows, STATS_HEADERS, STATS_TABLE)


def events(ctx, args):
    from pyctr.container import events as ev
    from pyctr.container.logs import parse_time
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    seen = 0
    follow = until is None
    if since is None and follow:
        seen = len(ev.read(ctx))  # only what happens from now on, as Docker
    while True:
        evs = ev.read(ctx)
        for e in evs[seen:]:
            t = e["timeNano"] / 1e9
            if (since is not None and t < since) or (until is not None and t > until):
                continue
            if not _event_matches(e, args.filter):
                continue
            if args.format:
                print(_render()(args.format, e), flush=True)
                continue
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(e["Actor"]["Attributes"].items()))
            zone = time.strftime("%z", time.localtime(t))
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{e['timeNano'] % 10**9:09d}" + \
                zone[:3] + ":" + zone[3:]
            print(f"{stamp} container {e['Action']} {e['id']} ({attrs})", flush=True)
        seen = len(evs)
        if not follow or (until is not None and time.time() > until):
            return
        time.sleep(0.2)


def _event_matches(e, filters):
    by = {}
    for f in filters:
        k, _, v = f.partition("=")
        by.setdefault(k, []).append(v)
    attrs = e["Actor"]["Attributes"]
    for k, vals in by.items():
        if k == "type":
            ok = "container" in vals
        elif k == "event":
            ok = e["Action"] in vals
        elif k == "container":
            ok = any(v in (attrs.get("name"), e["id"]) or e["id"].startswith(v) for v in vals)
        elif k == "image":
            ok = attrs.get("image") in vals
        else:
            ok = True
        if not ok:
            return False
    return True
