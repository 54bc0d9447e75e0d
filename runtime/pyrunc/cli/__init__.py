"""The `pyrunc` command: global flags, dispatch to one module per verb, exit-code policy.

Verb modules are imported only when chosen, so `pyrunc state` pays for `state` alone.
"""
import os
import sys

from pyrunc.cli.flags import Flag, parse, usage_text
from pyrunc.errors import PyruncError, UsageError

PROG = "pyrunc"

GLOBAL_FLAGS = [
    Flag("root", "str", "/run/pyrunc", "root directory for storage of container state (this should be located in tmpfs)"),
    Flag("log", "str", "", "set the log file to write pyrunc logs to (default is stderr)"),
    Flag("log-format", "str", "text", "set the log format ('text' (default), or 'json')"),
    Flag("debug", "bool", help="enable debug logging"),
    Flag("systemd-cgroup", "bool", help="enable systemd cgroup support"),
    Flag("rootless", "str", "auto", "accepted as runc's ('true', 'false', or 'auto'); rootless containers "
         "are not supported yet: create and run need root"),
    Flag("criu", "str", "criu", "path to the criu binary used for checkpoint and restore", hidden=True),
    Flag("help|h", "bool", help="show help"),
    Flag("version|v", "bool", help="print the version"),
]

# verb -> (module, one-line summary)
COMMANDS = {
    "create": ("create", "create a container"),
    "start": ("start", "executes the user defined process in a created container"),
    "run": ("run", "create and run a container"),
    "exec": ("exec", "execute new process inside the container"),
    "state": ("state", "output the state of a container"),
    "kill": ("kill", "kill sends the specified signal (default: SIGTERM) to the container's init process"),
    "delete": ("delete", "delete any resources held by the container often used with detached container"),
    "list": ("list", "lists containers started by pyrunc with the given root"),
    "ps": ("ps", "ps displays the processes running inside a container"),
    "pause": ("pause", "pause suspends all processes inside the container"),
    "resume": ("resume", "resumes all processes that have been previously paused"),
    "events": ("events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics"),
    "update": ("update", "update container resource constraints"),
    "features": ("features", "show the enabled features"),
    "spec": ("spec", "create a new specification file"),
    "seccomp": ("seccomp", "record a seccomp profile from --trace files"),
}


class Context:
    """What every verb gets from the global flags."""

    def __init__(self, opts):
        self.root = opts["root"]
        self.log_path = opts["log"]
        self.log_format = opts["log_format"]
        self.debug = opts["debug"]
        self.systemd_cgroup = opts["systemd_cgroup"]
        self.rootless = opts["rootless"]

    def store(self):
        from pyrunc.state.store import StateStore
        return StateStore(self.root)


def _version_text():
    from pyrunc import OCI_VERSION, __version__
    return (f"{PROG} version {__version__}\ncommit: {__version__}\nspec: {OCI_VERSION}\n"
            f"python: {sys.version.split()[0]}\n")


def _main_help():
    lines = [f"NAME:\n   {PROG} - an Open Container Initiative runtime in Python\n",
             f"USAGE:\n   {PROG} [global options] command [command options] [arguments...]\n", "COMMANDS:"]
    lines += [f"   {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines.append("\nGLOBAL OPTIONS:")
    for flag in GLOBAL_FLAGS:
        if not flag.hidden:
            names = ", ".join(("--" if len(n) > 1 else "-") + n for n in flag.names)
            lines.append(f"   {names:<28} {flag.help}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from pyrunc.log import configure, logger
    try:
        opts, rest = parse(GLOBAL_FLAGS, argv, stop_at_positional=True)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 1
    if opts["log_format"] not in ("text", "json"):
        sys.stderr.write(f"{PROG}: invalid log-format: {opts['log_format']}\n")
        return 1
    try:
        configure(opts["log"], opts["log_format"], opts["debug"])
    except OSError as e:
        sys.stderr.write(f"{PROG}: cannot open log file {opts['log']}: {e.strerror.lower()}\n")
        return 1
    if opts["version"]:
        sys.stdout.write(_version_text())
        return 0
    if not rest or rest[0] == "help":
        if len(rest) > 1 and rest[1] in COMMANDS:
            return main([rest[1], "--help"])
        sys.stdout.write(_main_help())
        return 0
    command, args = rest[0], rest[1:]
    if command not in COMMANDS:
        logger.error(f"No help topic for '{command}'")
        return 1
    # __import__, not importlib.import_module: the importlib package (and warnings under it) is
    # 0.3 ms of every start.
    name = f"pyrunc.cli.{COMMANDS[command][0]}"
    __import__(name)
    module = sys.modules[name]
    try:
        cmd_opts, positional = parse(module.FLAGS + [Flag("help|h", "bool")], args,
                                     stop_at_positional=getattr(module, "STOP_AT_POSITIONAL", False),
                                     command=command)
        if cmd_opts.pop("help"):
            sys.stdout.write(usage_text(PROG, command, module.FLAGS, module.USAGE, COMMANDS[command][1]))
            return 0
        ctx = Context(opts)
        if opts["root"] in ("", "/"):
            raise UsageError("option --root argument must be a non-root path")
        ctx.root = os.path.abspath(opts["root"])
        return module.run(ctx, cmd_opts, positional) or 0
    except PyruncError as e:
        prefix = f"{PROG} {command} failed: " if command in ("create", "run", "exec") else ""
        logger.error(prefix + str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: say what and where, never dump a traceback on the user
        import traceback
        frame = traceback.extract_tb(e.__traceback__)[-1]
        logger.error(f"internal error in {command}: {type(e).__name__}: {e} "
                     f"({os.path.basename(frame.filename)}:{frame.lineno})")
        if opts["debug"]:
            logger.debug("".join(traceback.format_exception(e)))
        return 1


def entry():
    """The console script: no cyclic collection while the verb's modules load (pyrunc/startup.py),
    and exit without interpreter teardown (milliseconds at every start)."""
    from pyrunc import startup
    startup.quiet()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code)


def require_id(positional, command, extra=False):
    """The first positional argument is the container id; runc's wording when it is missing."""
    if not positional:
        raise UsageError(f'"{PROG} {command}" requires a container id argument')
    if not extra and len(positional) > 1:
        raise UsageError(f'"{PROG} {command}" requires exactly 1 argument(s)')
    return positional[0]
