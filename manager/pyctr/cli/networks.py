"""`pyctr network create|ls|inspect|rm|prune|connect|disconnect`, with Docker's flags and outputs.
A network's containers are the members its store keeps (network/store.py)."""
import sys

VERBS = frozenset({"network"})
USAGE_EXIT = 125
ERROR_EXIT = 1

LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
              "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
              "Label": lambda _name: "LABEL"}


def _ctx(args):
    from pyctr.container.context import Context
    return Context(args.root, args.runroot)


def _store(ctx):
    from pyctr.network.sandbox import store
    return store(ctx)


def _pseudo(name, driver):
    """Docker's host and none networks, listed and inspected as it shows them."""
    import hashlib
    return {"Name": name, "Id": hashlib.sha256(f"pyctr-{name}".encode()).hexdigest(), "Created": "",
            "Scope": "local", "Driver": driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False,
            "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Options": {}, "Labels": {}}


def _all(ctx):
    ns = _store(ctx)
    ns.default()
    return ns.all() + [_pseudo("host", "host"), _pseudo("none", "null")]


def _find(ctx, ref):
    if ref in ("host", "none"):
        return _pseudo(ref, "host" if ref == "host" else "null")
    return _store(ctx).load(ref)


def _with_containers(ctx, net):
    members = _store(ctx).members(net["Name"]) if net["Driver"] == "bridge" else {}
    out = dict(net)
    out["Containers"] = {cid: {"Name": m["Name"], "EndpointID": m.get("EndpointID", ""),
                               "MacAddress": m.get("MacAddress", ""),
                               "IPv4Address": f"{m['IPAddress']}/{m.get('IPPrefixLen', 0)}", "IPv6Address": ""}
                         for cid, m in sorted(members.items())}
    return out


def cmd_create(args):
    from pyctr.container.options import parse_labels
    from pyctr.network.errors import NetworkError
    if len(args.subnet) > 1 or len(args.gateway) > 1:
        raise NetworkError("pyctr networks have one IPv4 subnet (one --subnet, one --gateway)")
    net = _store(_ctx(args)).create(args.name, (args.subnet or [None])[0], (args.gateway or [None])[0],
                                    args.internal, parse_labels(args.label), args.driver)
    print(net["Id"])


def _matches(net, filters):
    from pyctr.network.errors import NetworkError
    for f in filters:
        k, _, v = f.partition("=")
        labels = net.get("Labels") or {}
        if k == "name" and v not in net["Name"] or k == "id" and not net["Id"].startswith(v) or \
                k == "driver" and net["Driver"] != v:
            return False
        if k == "label":
            lk, eq, lv = v.partition("=")
            if lk not in labels or eq and labels[lk] != lv:
                return False
        elif k not in ("name", "id", "driver", "label"):
            raise NetworkError(f"invalid filter '{k}'")
    return True


def cmd_ls(args):
    from pyctr.container.formatter import format_rows
    nets = [n for n in _all(_ctx(args)) if _matches(n, args.filter)]
    rows = []
    for n in sorted(nets, key=lambda n: n["Name"]):
        labels = n.get("Labels") or {}
        rows.append({"ID": n["Id"] if args.no_trunc else n["Id"][:12], "Name": n["Name"], "Driver": n["Driver"],
                     "Scope": n["Scope"], "IPv6": "false", "Internal": str(n["Internal"]).lower(),
                     "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                     "CreatedAt": n["Created"], "Label": lambda name, labels=labels: labels.get(name, "")})
    fmt = "{{.ID}}" if args.quiet else (args.format or LS_TABLE)
    sys.stdout.write(format_rows(fmt, rows, LS_HEADERS, default_table=LS_TABLE, go_type="*formatter.networkContext"))


def cmd_inspect(args):
    from pyctr.cli.volumes import inspect_each
    ctx = _ctx(args)
    return inspect_each(args.networks, lambda ref: _with_containers(ctx, _find(ctx, ref)), args.format)


def cmd_rm(args):
    from pyctr.cli.volumes import remove_each
    from pyctr.network.errors import NetworkError
    ns = _store(_ctx(args))

    def remove(ref):
        if ref in ("host", "none"):
            raise NetworkError(f"{ref} is a pre-defined network and cannot be removed")
        ns.remove(ref)
    return remove_each(args.networks, remove)


def cmd_prune(args):
    from pyctr.network.errors import NetworkError
    from pyctr.network.store import DEFAULT
    if not args.force:
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    ns = _store(_ctx(args))
    removed = []
    for n in ns.all():
        if n["Name"] != DEFAULT and _matches(n, args.filter) and not ns.members(n["Name"]):
            try:
                ns.remove(n["Name"])
                removed.append(n["Name"])
            except NetworkError:
                continue   # a container joined meanwhile
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed))


def cmd_connect(args):
    from pyctr.network import attach
    attach.connect(_ctx(args), args.container, args.network, args.alias)


def cmd_disconnect(args):
    from pyctr.network import attach
    attach.disconnect(_ctx(args), args.container, args.network, args.force)


def add_parsers(verb_parser):
    vp = verb_parser("network", help="manage networks (create, ls, inspect, rm, prune, connect, disconnect)")
    sub = vp.add_subparsers(dest="network_verb", metavar="COMMAND")
    sub.required = True

    sp = sub.add_parser("create", help="create a bridge network")
    sp.add_argument("name", metavar="NETWORK")
    sp.add_argument("-d", "--driver", default="bridge", help="only bridge")
    sp.add_argument("--subnet", action="append", default=[], help="IPv4 CIDR (default: a free /24 in 10.89/16)")
    sp.add_argument("--gateway", action="append", default=[], help="the bridge's address (default: subnet's .1)")
    sp.add_argument("--internal", action="store_true", help="no masquerade, no default route")
    sp.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    sp.set_defaults(fn=cmd_create)

    sp = sub.add_parser("ls", aliases=["list"], help="list networks")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.add_argument("-f", "--filter", action="append", default=[], help="name=, id=, driver=, label=K[=V]")
    sp.add_argument("--format")
    sp.add_argument("--no-trunc", action="store_true")
    sp.set_defaults(fn=cmd_ls)

    sp = sub.add_parser("inspect", help="show networks' details as JSON")
    sp.add_argument("networks", nargs="+", metavar="NETWORK")
    sp.add_argument("-f", "--format")
    sp.set_defaults(fn=cmd_inspect)

    sp = sub.add_parser("rm", aliases=["remove"], help="remove networks (not while a container uses them)")
    sp.add_argument("networks", nargs="+", metavar="NETWORK")
    sp.set_defaults(fn=cmd_rm)

    sp = sub.add_parser("prune", help="remove networks no container uses")
    sp.add_argument("-f", "--force", action="store_true")
    sp.add_argument("--filter", action="append", default=[])
    sp.set_defaults(fn=cmd_prune)

    sp = sub.add_parser("connect", help="connect a container to a network")
    sp.add_argument("--alias", action="append", default=[])
    sp.add_argument("network")
    sp.add_argument("container")
    sp.set_defaults(fn=cmd_connect)

    sp = sub.add_parser("disconnect", help="disconnect a container from a network")
    sp.add_argument("-f", "--force", action="store_true")
    sp.add_argument("network")
    sp.add_argument("container")
    sp.set_defaults(fn=cmd_disconnect)
