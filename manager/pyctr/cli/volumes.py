"""`pyctr volume create|ls|inspect|rm|prune`, with Docker's flags and outputs. Which volumes are in
use comes from the container records (a container uses the volumes in its Mounts until removed)."""
import sys

VERBS = frozenset({"volume"})
USAGE_EXIT = 125   # Docker's status for a bad flag
ERROR_EXIT = 1

LS_TABLE = "table {{.Driver}}\t{{.Name}}"
LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
              "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
              "Availability": "AVAILABILITY", "Status": "STATUS", "Label": lambda _name: "LABEL"}


def store(args):
    from pyctr.container.context import Context
    from pyctr.container.volumes import store as container_volumes
    return container_volumes(Context(args.root, args.runroot))


def cmd_create(args):
    from pyctr.volume.errors import VolumeError
    if args.name and args.name_flag and args.name != args.name_flag:
        raise VolumeError(f"conflicting options: either specify --name or provide positional arg, not both")
    from pyctr.container.options import parse_labels   # KEY=VALUE lists, as run's --label
    vol, _ = store(args).create(args.name or args.name_flag, args.driver, parse_labels(args.label),
                                parse_labels(args.opt))
    print(vol["Name"])


def ls_row(vol):
    labels = vol["Labels"] or {}
    return {"Availability": "N/A", "Driver": vol["Driver"], "Group": "N/A",
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())), "Links": "N/A",
            "Mountpoint": vol["Mountpoint"], "Name": vol["Name"], "Scope": vol["Scope"], "Size": "N/A",
            "Status": "N/A", "Label": lambda name: labels.get(name, "")}


def cmd_ls(args):
    from pyctr.container.formatter import format_rows
    vols = store(args).list(args.filter)
    fmt = "{{.Name}}" if args.quiet else (args.format or LS_TABLE)
    sys.stdout.write(format_rows(fmt, [ls_row(v) for v in vols], LS_HEADERS, default_table=LS_TABLE,
                                 go_type="*formatter.volumeContext"))


def cmd_inspect(args):
    from pyctr.container import gofmt
    st = store(args)
    return inspect_each(args.volumes, st.get, args.format, lambda vol: dict(
        vol, Labels=vol["Labels"] or gofmt.NIL_MAP, Options=vol["Options"] or gofmt.NIL_MAP))


def inspect_each(names, get, fmt, view=lambda obj: obj):
    """Docker's `inspect` of volumes or networks: JSON (or a Go template per object) of those
    found, an error printed for each not found, exit 1 if any was not."""
    from pyctr.errors import PyctrError
    found, failed = [], False
    for name in names:
        try:
            found.append(get(name))
        except PyctrError as e:
            print(f"Error: {e}", file=sys.stderr)
            failed = True
    if fmt:
        from pyctr.container import template
        compiled = template.compile(fmt)
        for obj in found:
            print(compiled.execute(view(obj)))
    else:
        print(docker_json(found))
    return 1 if failed else 0


def docker_json(obj):
    """JSON as `docker inspect` prints it: 4-space indent, <, > and & escaped (Go's encoder)."""
    import json   # not at the top: every pyctr command imports this module's parser definitions
    text = json.dumps(obj, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cmd_rm(args):
    st = store(args)
    return remove_each(args.volumes, lambda name: st.remove(name, force=args.force))


def remove_each(names, remove):
    """Docker's `rm` of volumes or networks: each name printed once removed, each error printed,
    exit 1 if any failed."""
    from pyctr.errors import PyctrError
    failed = False
    for name in names:
        try:
            remove(name)
        except PyctrError as e:
            print(f"Error: {e}", file=sys.stderr)
            failed = True
            continue
        print(name)
    return 1 if failed else 0


def human_size(n):
    """go-units HumanSize: decimal units, 4 significant digits (`123.5kB`)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    size = float(n)
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{units[i]}"


def cmd_prune(args):
    if not args.force:
        sys.stdout.write("WARNING! This will remove all local volumes not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    removed, reclaimed = store(args).prune(args.filter, all_volumes=args.all)
    if removed:
        print("Deleted Volumes:")
        for name in removed:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")


def add_parsers(verb_parser):
    vp = verb_parser("volume", help="manage volumes (create, ls, inspect, rm, prune)")
    sub = vp.add_subparsers(dest="volume_verb", metavar="COMMAND")
    sub.required = True

    sp = sub.add_parser("create", help="create a volume")
    sp.add_argument("name", nargs="?", metavar="VOLUME")
    sp.add_argument("--name", dest="name_flag", help="the volume's name (or give it as the argument)")
    sp.add_argument("-d", "--driver", default="local", help="volume driver (only local)")
    sp.add_argument("--label", action="append", default=[], help="a label KEY=VALUE (repeatable)")
    sp.add_argument("-o", "--opt", action="append", default=[],
                    help="local driver option: type=tmpfs,device=tmpfs,o=size=64m or type=none,o=bind,device=/dir")
    sp.set_defaults(fn=cmd_create)

    for name, aliases in (("ls", ["list"]),):
        sp = sub.add_parser(name, aliases=aliases, help="list volumes")
        sp.add_argument("-q", "--quiet", action="store_true", help="only names")
        sp.add_argument("-f", "--filter", action="append", default=[],
                        help="dangling=true|false, name=SUBSTRING, label=KEY[=VALUE], driver=local")
        sp.add_argument("--format", help="Go template, 'table ...' or 'json'")
        sp.set_defaults(fn=cmd_ls)

    sp = sub.add_parser("inspect", help="show volumes' details as JSON")
    sp.add_argument("volumes", nargs="+", metavar="VOLUME")
    sp.add_argument("-f", "--format", help="Go template")
    sp.set_defaults(fn=cmd_inspect)

    sp = sub.add_parser("rm", aliases=["remove"], help="remove volumes (not while a container uses them)")
    sp.add_argument("volumes", nargs="+", metavar="VOLUME")
    sp.add_argument("-f", "--force", action="store_true", help="no error for a volume that does not exist")
    sp.set_defaults(fn=cmd_rm)

    sp = sub.add_parser("prune", help="remove unused local volumes (Docker 20.10's rule: named ones too)")
    sp.add_argument("-f", "--force", action="store_true", help="do not ask")
    sp.add_argument("-a", "--all", action="store_true", help="accepted for Docker 23+ scripts; 20.10 prunes all")
    sp.add_argument("--filter", action="append", default=[], help="label=KEY[=VALUE], label!=KEY[=VALUE]")
    sp.set_defaults(fn=cmd_prune)
