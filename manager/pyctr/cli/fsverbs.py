"""The verbs that read or write a container's files: cp, diff, commit, export (also as `pyctr
container VERB`). `export NAME` exports a container, as Docker's does; a NAME that is no container
but an image keeps pyctr's older image export working."""

VERBS = frozenset({"cp", "diff", "commit", "export"})
USAGE_EXIT = 125   # Docker's status for a bad flag
ERROR_EXIT = 1


def _ctx(args):
    from pyctr.container.context import Context
    return Context(args.root, args.runroot, args.allow_device_nodes)


def _bool(text):
    value = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}.get(text.lower())
    if value is None:
        import argparse
        raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")
    return value


def split_cp_arg(arg):
    """Docker's splitCpArg: (container or None, path); a path starting with / or . is local even
    with a colon in it."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def cmd_cp(args):
    from pyctr.container import cp
    from pyctr.container.errors import CommandError
    src_ctr, src = split_cp_arg(args.src)
    dst_ctr, dst = split_cp_arg(args.dest)
    if src_ctr and dst_ctr:
        raise CommandError("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise CommandError("must specify at least one container source")
    if (src_ctr and not src) or (dst_ctr and not dst):
        raise CommandError("filepath can not be empty")   # Docker: `c:` alone names no path
    ctx = _ctx(args)
    if src_ctr:
        cp.copy_from(ctx, ctx.containers.lookup(src_ctr), src_ctr, src, dst, args.archive, args.follow_link)
    else:
        cp.copy_to(ctx, ctx.containers.lookup(dst_ctr), dst_ctr, src, dst, args.archive, args.follow_link)


def cmd_diff(args):
    from pyctr.container.diff import print_changes
    from pyctr.container.fsview import ContainerFS
    ctx = _ctx(args)
    print_changes(ContainerFS(ctx, ctx.containers.load(ctx.containers.lookup(args.container))))


def cmd_commit(args):
    from pyctr.container.commit import commit
    ctx = _ctx(args)
    pause = args.pause and not args.no_pause
    image_id = commit(ctx, ctx.containers.lookup(args.container), args.repository, args.change,
                      args.message or "", args.author or "", pause)
    print(image_id)


def cmd_export(args):
    from pyctr.cli.images import write_output
    from pyctr.container.errors import NoSuchContainer
    from pyctr.container.export import export
    ctx = _ctx(args)
    try:
        cid = ctx.containers.lookup(args.container)
    except NoSuchContainer:
        if not _is_image(args):
            raise
        from pyctr.cli.images import cmd_export as export_image
        args.image = args.container
        return export_image(args)
    write_output(args.output, lambda f: export(ctx, cid, f))


def _is_image(args):
    from pyctr.errors import PyctrError
    from pyctr.image.store import Store
    try:
        Store(args.root).resolve(args.container)
        return True
    except PyctrError:
        return False


def define(add):
    """The verbs' parsers; add(name, fn, help) makes one (top level or under `container`)."""
    sp = add("cp", cmd_cp, "copy files between a container and the host (CONTAINER:PATH, '-' = tar stream)")
    sp.add_argument("-a", "--archive", action="store_true", help="keep the source's uid/gid")
    sp.add_argument("-L", "--follow-link", action="store_true", help="follow a symbolic link in SRC")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output (pyctr prints none)")
    sp.add_argument("src", metavar="SRC")
    sp.add_argument("dest", metavar="DEST")

    sp = add("diff", cmd_diff, "list a container's changed files (A added, C changed, D deleted)")
    sp.add_argument("container", metavar="CONTAINER")

    sp = add("commit", cmd_commit, "create an image from a container's changes")
    sp.add_argument("-a", "--author")
    sp.add_argument("-c", "--change", action="append", default=[],
                    help="a Dockerfile instruction (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR)")
    sp.add_argument("-m", "--message")
    sp.add_argument("-p", "--pause", type=_bool, nargs="?", const=True, default=True,
                    help="pause the container during the commit (default true)")
    sp.add_argument("--no-pause", action="store_true", help="do not pause")
    sp.add_argument("container", metavar="CONTAINER")
    sp.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")

    sp = add("export", cmd_export, "write a container's filesystem as a tar (an image's if NAME is no container)")
    sp.add_argument("-o", "--output", help="write to this file instead of stdout")
    sp.add_argument("container", metavar="CONTAINER")


def add_parsers(verb_parser):
    def top_level(name, fn, help_):
        sp = verb_parser(name, help=help_)
        sp.set_defaults(fn=fn)
        return sp
    define(top_level)
