"""pyctr's container verbs, with Docker's flags, outputs and exit codes: run, create, start, stop,
kill, restart, pause, unpause, rm, ps, logs, attach, exec, inspect (containers, then images), top,
wait, rename, port, stats, events, and the `pyctr container VERB` forms (plus prune and the hidden
cleanup the monitors run)."""
import os
import sys

VERBS = frozenset({"run", "create", "start", "stop", "kill", "restart", "pause", "unpause", "rm", "ps",
                   "logs", "attach", "exec", "inspect", "top", "wait", "rename", "port", "stats", "events",
                   "container"})
USAGE_EXIT = 125   # Docker's status for a bad flag
ERROR_EXIT = 125

NETWORK_HELP = ("bridge (the default network), a network's name, none (only a loopback), host, or "
                "container:NAME")


def _ctx(args):
    from pyctr.container.context import Context
    return Context(args.root, args.runroot, args.allow_device_nodes)


def _lookup(ctx, ref):
    return ctx.containers.lookup(ref)


def _each(args, refs, fn):
    """Docker's multi-container verbs: every ref tried, errors printed, exit 1 if any failed."""
    from pyctr.errors import PyctrError
    ctx = _ctx(args)
    failed = False
    for ref in refs:
        try:
            fn(ctx, _lookup(ctx, ref), ref)
        except PyctrError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


# --- run, create, start --------------------------------------------------------------------------
def _command(args):
    from pyctr.cli.images import command_of
    return command_of(args.command)


def cmd_create(args):
    from pyctr.container import lifecycle
    from pyctr.container.errors import ContainerError
    try:
        rec = lifecycle.create(_ctx(args), args, _command(args))
    except ContainerError as e:
        e.exit_code = 1  # Docker's `create` (unlike `run`) fails with 1
        raise
    print(rec["Id"])


def cmd_run(args):
    from pyctr.container import lifecycle
    from pyctr.container.errors import ContainerError
    if args.detach and args.attach:
        from pyctr.container.errors import CommandError
        raise CommandError("Conflicting options: -a and -d")
    if args.detach_keys is not None:
        _check_detach_keys(args.detach_keys, ContainerError)
    ctx = _ctx(args)
    rec = lifecycle.create(ctx, args, _command(args))
    cid = rec["Id"]
    if args.detach_keys is not None:  # the monitor watches for them, for every attach to come
        rec = lifecycle.set_detach_keys(ctx, cid, args.detach_keys)
    if args.detach:
        try:
            lifecycle.start(ctx, cid)
        except ContainerError:
            if args.rm:
                lifecycle.remove(ctx, cid, force=True, volumes=True)
            raise
        print(cid)
        return 0
    return _attached_run(ctx, cid, args.interactive, args.tty, args.rm, args.sig_proxy)


def _check_detach_keys(spec, err):
    try:
        from pyrunc_shim.attachproto import parse_detach_keys
        parse_detach_keys(spec)
    except ValueError as e:
        raise err(str(e)) from None


def _attached_run(ctx, cid, stdin, tty, auto_remove, sig_proxy=True):
    """Attach before the process runs, relay, then the container's status (after --rm's removal)."""
    from pyctr.container import attach, lifecycle
    from pyctr.container.errors import ContainerError
    box = {}

    def connect(rec):
        box["s"] = attach.Session(ctx, rec["Id"], stdin, tty, rec.get("DetachKeys"))

    try:
        lifecycle.start(ctx, cid, before_start=connect)
    except ContainerError:
        if "s" in box:
            box["s"].close()
        if auto_remove:
            lifecycle.remove(ctx, cid, force=True, volumes=True)
        raise
    if "s" not in box:  # it was running already (start -a): attach to it as it is
        box["s"] = attach.Session(ctx, cid, stdin, tty, ctx.containers.load(cid).get("DetachKeys"))
    restore = _proxy_signals(ctx, cid) if sig_proxy and not tty else None
    try:
        finished = box["s"].relay()
    finally:
        if restore:
            restore()
    if not finished:
        return 0  # detached: the container runs on
    code = _wait_code(ctx, cid)
    if auto_remove:
        lifecycle.remove(ctx, cid, force=True, volumes=True)
    return code


def _proxy_signals(ctx, cid):
    import signal as _signal
    from pyctr.container import lifecycle

    def forward(signum, _frame):
        try:
            lifecycle.kill(ctx, cid, str(signum))
        except Exception:  # the container may be gone already: nothing to forward to
            pass
    old = {s: _signal.signal(s, forward) for s in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP,
                                                   _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2)}
    return lambda: [_signal.signal(s, h) for s, h in old.items()]


def _wait_code(ctx, cid, timeout=None):
    from pyctr.container import lifecycle
    return lifecycle.wait_code(ctx, cid)


def cmd_start(args):
    from pyctr.container import lifecycle
    from pyctr.errors import PyctrError
    ctx = _ctx(args)
    if args.all:
        return _start_all(ctx, args)
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise PyctrError("you cannot start and attach multiple containers at once")
        cid = _lookup(ctx, args.containers[0])
        rec = ctx.containers.load(cid)
        return _attached_run(ctx, cid, args.interactive, rec["Config"].get("Tty"), rec["HostConfig"].get("AutoRemove"))
    return _each(args, args.containers, lambda c, cid, ref: (lifecycle.start(c, cid), print(ref)))


def _start_all(ctx, args):
    """After a reboot: the containers whose policy says they run (always, or unless-stopped not
    stopped by hand), as podman's restart unit does."""
    from pyctr.container import lifecycle, state
    failed = 0
    for rec in sorted(ctx.containers.all(), key=lambda r: r["Created"]):
        policy = (rec["HostConfig"].get("RestartPolicy") or {}).get("Name")
        if policy != "always" and not (policy == "unless-stopped" and not rec.get("ManuallyStopped")):
            continue
        if state.derive(ctx.containers, rec).running:
            continue
        try:
            lifecycle.start(ctx, rec["Id"])
            print(rec["Id"])
        except Exception as e:  # one container's failure does not stop the others
            print(f"Error: {rec['Name']}: {e}", file=sys.stderr)
            failed = 1
    return failed


# --- stop, kill, restart, pause, rm ----------------------------------------------------------------
def cmd_stop(args):
    from pyctr.container import lifecycle
    return _each(args, args.containers, lambda c, cid, ref: (lifecycle.stop(c, cid, args.time, args.signal),
                                                             print(ref)))


def cmd_kill(args):
    from pyctr.container import lifecycle
    return _each(args, args.containers, lambda c, cid, ref: (lifecycle.kill(c, cid, args.signal), print(ref)))


def cmd_restart(args):
    from pyctr.container import lifecycle

    def one(c, cid, ref):
        lifecycle.stop(c, cid, args.time, args.signal)
        lifecycle.start(c, cid)
        print(ref)
    return _each(args, args.containers, one)


def cmd_pause(args):
    from pyctr.container import lifecycle
    return _each(args, args.containers, lambda c, cid, ref: (lifecycle.pause(c, cid), print(ref)))


def cmd_unpause(args):
    from pyctr.container import lifecycle
    return _each(args, args.containers, lambda c, cid, ref: (lifecycle.pause(c, cid, resume=True), print(ref)))


def cmd_rm(args):
    from pyctr.container import lifecycle
    return _each(args, args.containers, lambda c, cid, ref: (lifecycle.remove(c, cid, args.force, args.volumes),
                                                             print(ref)))


def cmd_prune(args):
    from pyctr.container import lifecycle, state
    ctx = _ctx(args)
    if not args.force and sys.stdin.isatty():
        print("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
              end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    print("Deleted Containers:")
    for rec in ctx.containers.all():
        if not state.derive(ctx.containers, rec).running:
            if lifecycle.remove(ctx, rec["Id"]):
                print(rec["Id"])
    print("\nTotal reclaimed space: 0B")


def cmd_cleanup(args):
    from pyctr.container import lifecycle
    # the monitor runs this with what it inherited, the published ports' sockets among them: a
    # restart here must be able to bind them again
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) > 2:
            try:
                os.close(int(fd))
            except OSError:
                pass
    ctx = _ctx(args)
    lifecycle.cleanup(ctx, args.container)


# --- wait, logs, attach, exec ------------------------------------------------------------------------
def cmd_wait(args):
    def one(c, cid, ref):
        print(_wait_code(c, cid), flush=True)
    return _each(args, args.containers, one)


def cmd_logs(args):
    from pyctr.container import logs, state
    from pyctr.errors import PyctrError
    ctx = _ctx(args)
    cid = _lookup(ctx, args.container)
    rec = ctx.containers.load(cid)
    if (rec["HostConfig"].get("LogConfig") or {}).get("Type") == "none":
        raise PyctrError('configured logging driver does not support reading')
    tail = None
    if args.tail not in (None, "all"):
        try:
            tail = int(args.tail)
        except ValueError:
            raise PyctrError(f'invalid value for "tail": {args.tail!r}') from None
        tail = None if tail < 0 else tail
    since = logs.parse_time(args.since) if args.since else None
    until = logs.parse_time(args.until) if args.until else None
    entries = logs.read(rec["LogPath"], tail, since, until)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    logs.write(entries, args.timestamps, out, err)
    if args.follow:
        try:
            offset = os.path.getsize(rec["LogPath"])
        except OSError:
            offset = 0
        logs.follow(rec["LogPath"], lambda: state.derive(ctx.containers, ctx.containers.load(cid)).running,
                    args.timestamps, out, err, None, until, offset)


def cmd_attach(args):
    from pyctr.container import attach, state
    from pyctr.errors import PyctrError
    ctx = _ctx(args)
    cid = _lookup(ctx, args.container)
    rec = ctx.containers.load(cid)
    if state.derive(ctx.containers, rec).status not in ("running", "paused"):
        raise PyctrError("You cannot attach to a stopped container, start it first")
    if args.detach_keys is not None and args.detach_keys != rec.get("DetachKeys", args.detach_keys):
        raise PyctrError("--detach-keys: the container watches for the keys given to `run --detach-keys` "
                         f"({rec.get('DetachKeys')!r}); pyctr cannot change them while it runs")
    s = attach.Session(ctx, cid, not args.no_stdin and rec["Config"].get("OpenStdin"), rec["Config"].get("Tty"),
                       rec.get("DetachKeys"))
    if not s.relay():
        return 0
    return _wait_code(ctx, cid)


def cmd_exec(args):
    from pyctr.container import execute
    return execute.run(_ctx(args), args, _command(args))


# --- ps, inspect, top, port, rename, stats, events ------------------------------------------------
def cmd_ps(args):
    from pyctr.container import listing
    listing.ps(_ctx(args), args)


def cmd_inspect(args):
    from pyctr.container import listing
    return listing.inspect(_ctx(args), args)


def cmd_top(args):
    from pyctr.container import listing
    listing.top(_ctx(args), _lookup(_ctx(args), args.container), args.ps_args)


def cmd_port(args):
    from pyctr.network import ports
    ctx = _ctx(args)
    rec = ctx.containers.load(_lookup(ctx, args.container))
    for line in ports.port_lines(rec, getattr(args, "private_port", None)):
        print(line)


def cmd_rename(args):
    from pyctr.container import lifecycle
    lifecycle.rename(_ctx(args), args.container, args.new_name)


def cmd_stats(args):
    from pyctr.container import listing
    listing.stats(_ctx(args), args)


def cmd_events(args):
    from pyctr.container import listing
    listing.events(_ctx(args), args)


# --- the parsers -----------------------------------------------------------------------------------
def _run_flags(sp):
    import argparse
    a = sp.add_argument
    a("-d", "--detach", action="store_true", help="run in the background and print the container id")
    a("-a", "--attach", action="append", default=[], help="attach to STDIN, STDOUT or STDERR")
    a("-i", "--interactive", action="store_true", help="keep STDIN open")
    a("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    a("--rm", action="store_true", help="remove the container (and its anonymous volumes) when it exits")
    a("--name")
    a("-e", "--env", action="append", default=[])
    a("--env-file", action="append", default=[])
    a("-v", "--volume", action="append", default=[], help="bind mount HOST:CTR[:MODE] or volume NAME:CTR")
    a("--mount", action="append", default=[])
    a("--tmpfs", action="append", default=[])
    a("-w", "--workdir")
    a("-u", "--user")
    a("--entrypoint")
    a("-h", "--hostname")
    a("--help", action="help", help="show this help message and exit")
    a("-m", "--memory")
    a("--cpus")
    a("--pids-limit", type=int)
    a("--cap-add", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--privileged", action="store_true")
    a("--read-only", action="store_true")
    a("--restart", help="no, on-failure[:N], always, unless-stopped")
    a("--stop-signal")
    a("--stop-timeout", type=int)
    a("-l", "--label", action="append", default=[])
    a("--log-driver", default="json-file")
    a("--log-opt", action="append", default=[])
    a("--ulimit", action="append", default=[])
    a("--device", action="append", default=[])
    a("--security-opt", action="append", default=[])
    a("--init", action="store_true", help="run an init (tini/catatonit) as pid 1 that reaps zombies")
    a("--runtime", help="runtime binary (runc-compatible; default pyrunc)")
    a("--network", "--net", help=NETWORK_HELP)
    a("--network-alias", "--net-alias", action="append", default=[])
    a("-p", "--publish", action="append", default=[], help="[hostip:][hostport:]containerport[/udp]")
    a("-P", "--publish-all", action="store_true", help="publish every exposed port to a random host port")
    a("--expose", action="append", default=[])
    a("--add-host", action="append", default=[], help="NAME:IP")
    a("--dns", action="append", default=[])
    a("--dns-search", action="append", default=[])
    a("--dns-option", "--dns-opt", action="append", default=[])
    a("--detach-keys")
    a("--sig-proxy", default=True, type=lambda v: v.lower() not in ("false", "0"))
    a("image")
    a("command", nargs=argparse.REMAINDER)


def _define(add):
    """add(name, fn, help) -> a subparser; the same definitions for `pyctr VERB` and `pyctr container VERB`."""
    sp = add("run", cmd_run, "create and start a container from an image")
    _run_flags(sp)
    sp = add("create", cmd_create, "create a container (started later with start)")
    _run_flags(sp)
    sp = add("start", cmd_start, "start containers")
    sp.add_argument("-a", "--attach", action="store_true")
    sp.add_argument("-i", "--interactive", action="store_true")
    sp.add_argument("--all", action="store_true",
                    help="start every container whose restart policy is always (or unless-stopped and not "
                         "stopped by hand): what a boot unit runs")
    sp.add_argument("containers", nargs="*")
    for name, fn, what in (("stop", cmd_stop, "stop"), ("restart", cmd_restart, "restart")):
        sp = add(name, fn, f"{what} running containers")
        sp.add_argument("-t", "--time", "--timeout", type=int, dest="time")
        sp.add_argument("-s", "--signal")
        sp.add_argument("containers", nargs="+")
    sp = add("kill", cmd_kill, "send a signal (default KILL) to containers")
    sp.add_argument("-s", "--signal", default="KILL")
    sp.add_argument("containers", nargs="+")
    for name, fn in (("pause", cmd_pause), ("unpause", cmd_unpause)):
        sp = add(name, fn, f"{name} all processes of containers")
        sp.add_argument("containers", nargs="+")
    sp = add("rm", cmd_rm, "remove containers")
    sp.add_argument("-f", "--force", action="store_true")
    sp.add_argument("-v", "--volumes", action="store_true")
    sp.add_argument("containers", nargs="+")
    sp = add("ps", cmd_ps, "list containers")
    sp.add_argument("-a", "--all", action="store_true")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.add_argument("-n", "--last", type=int, default=-1)
    sp.add_argument("-l", "--latest", action="store_true")
    sp.add_argument("-s", "--size", action="store_true")
    sp.add_argument("--no-trunc", action="store_true")
    sp.add_argument("-f", "--filter", action="append", default=[])
    sp.add_argument("--format")
    sp = add("logs", cmd_logs, "show a container's output")
    sp.add_argument("-f", "--follow", action="store_true")
    sp.add_argument("-n", "--tail")
    sp.add_argument("--since")
    sp.add_argument("--until")
    sp.add_argument("-t", "--timestamps", action="store_true")
    sp.add_argument("--details", action="store_true")
    sp.add_argument("container")
    sp = add("attach", cmd_attach, "attach to a running container's stdio")
    sp.add_argument("--detach-keys")
    sp.add_argument("--no-stdin", action="store_true")
    sp.add_argument("--sig-proxy", default=True, type=lambda v: v.lower() not in ("false", "0"))
    sp.add_argument("container")
    import argparse
    sp = add("exec", cmd_exec, "run a command in a running container")
    sp.add_argument("-d", "--detach", action="store_true")
    sp.add_argument("-i", "--interactive", action="store_true")
    sp.add_argument("-t", "--tty", action="store_true")
    sp.add_argument("-e", "--env", action="append", default=[])
    sp.add_argument("--env-file", action="append", default=[])
    sp.add_argument("-u", "--user")
    sp.add_argument("-w", "--workdir")
    sp.add_argument("--privileged", action="store_true")
    sp.add_argument("--detach-keys")
    sp.add_argument("container")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp = add("inspect", cmd_inspect, "show containers' (or images') details as JSON")
    sp.add_argument("-f", "--format")
    sp.add_argument("-s", "--size", action="store_true")
    sp.add_argument("--type", choices=("container", "image"))
    sp.add_argument("names", nargs="+")
    sp = add("top", cmd_top, "show a container's processes")
    sp.add_argument("container")
    sp.add_argument("ps_args", nargs=argparse.REMAINDER)
    sp = add("wait", cmd_wait, "wait for containers to stop; print their exit codes")
    sp.add_argument("containers", nargs="+")
    sp = add("rename", cmd_rename, "rename a container")
    sp.add_argument("container")
    sp.add_argument("new_name")
    sp = add("port", cmd_port, "list a container's published ports")
    sp.add_argument("container")
    sp.add_argument("private_port", nargs="?")
    sp = add("stats", cmd_stats, "show containers' resource usage")
    sp.add_argument("--no-stream", action="store_true")
    sp.add_argument("-a", "--all", action="store_true")
    sp.add_argument("--no-trunc", action="store_true")
    sp.add_argument("--format")
    sp.add_argument("containers", nargs="*")
    sp = add("events", cmd_events, "show container events (from the store's log)")
    sp.add_argument("--since")
    sp.add_argument("--until")
    sp.add_argument("-f", "--filter", action="append", default=[])
    sp.add_argument("--format")
    return sp


def add_parsers(verb_parser):
    import argparse

    def top_level(name, fn, help_):
        kwargs = {"help": help_}
        if name in ("run", "create"):
            kwargs["add_help"] = False  # -h is --hostname, as Docker's
        sp = verb_parser(name, **kwargs)
        sp.set_defaults(fn=fn)
        return sp
    _define(top_level)

    sp = verb_parser("container", help="container subcommands (run, ls, ps, rm, prune, ...)")
    csub = sp.add_subparsers(dest="container_verb", metavar="SUBCOMMAND")

    def nested(name, fn, help_):
        kwargs = {"help": help_}
        if name in ("run", "create"):
            kwargs["add_help"] = False
        p = csub.add_parser(name, **kwargs)
        p.set_defaults(fn=fn)
        return p
    if isinstance(csub, argparse._SubParsersAction):
        _define(nested)
        from pyctr.cli import fsverbs
        fsverbs.define(nested)   # container cp|diff|commit|export
        ls = csub.add_parser("ls", help="list containers")
        ls.set_defaults(fn=cmd_ps)
        for a, kw in (("-a", {"dest": "all", "action": "store_true"}), ("-q", {"dest": "quiet", "action": "store_true"}),
                      ("-n", {"dest": "last", "type": int, "default": -1}), ("-l", {"dest": "latest", "action": "store_true"}),
                      ("-s", {"dest": "size", "action": "store_true"}), ("--no-trunc", {"action": "store_true"}),
                      ("-f", {"dest": "filter", "action": "append", "default": []}), ("--format", {})):
            ls.add_argument(a, **kw)
        pp = csub.add_parser("prune", help="remove all stopped containers")
        pp.add_argument("-f", "--force", action="store_true")
        pp.add_argument("--filter", action="append", default=[])
        pp.set_defaults(fn=cmd_prune)
        cp = csub.add_parser("cleanup", help=argparse.SUPPRESS)  # the monitors' exit command
        cp.add_argument("container")
        cp.set_defaults(fn=cmd_cleanup)
