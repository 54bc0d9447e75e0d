"""pyctr's command line: the top-level parser and the dispatch; each verb group (images.py,
containers.py, ...) defines its verbs' parsers and runs them, importing what it needs when it runs.

Errors print as `Error: <message>` on stderr. Image verbs exit 1 (2 for usage), as podman does;
container verbs exit as Docker's do: 125 for pyctr's own errors and bad flags, else the
container's status. No Python traceback reaches a user (PYCTR_DEBUG=1 shows one for an unexpected
failure).
"""
import os
import sys

from pyctr import __version__
from pyctr.cli import build, containers, fsverbs, images, networks, system, volumes

# verb groups in the order their verbs are defined; a later group's verb of the same name wins
_GROUPS = (images, containers, volumes, networks, fsverbs, build, system)
_VERBS = frozenset().union(*(g.VERBS for g in _GROUPS))


def _group_of(verb):
    for g in reversed(_GROUPS):
        if verb in g.VERBS:
            return g
    return None


class _Unbuilt:
    """Stands in for the subparser of a verb that is not being run: takes its definition, keeps
    nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


def _verb(argv):
    """The verb in argv (the first word after the global options), or None."""
    args = iter(argv)
    for a in args:
        if a == "--":
            return next(args, None)
        if len(a) > 2 and ("--root".startswith(a) or "--runroot".startswith(a)):  # they take a value
            next(args, None)
        elif not a.startswith("-"):
            return a
    return None


def _help_formatter(prog):
    """argparse's HelpFormatter at the terminal's width as shutil.get_terminal_size finds it, but
    without importing shutil (argparse would, for every argument added; it imports bz2 and lzma,
    ~1.5 ms at every command)."""
    import argparse
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return argparse.HelpFormatter(prog, width=(columns or 80) - 2)


def build_parser(only=None):
    """The command line; with only=VERB, just that verb's subcommand is built (building all of
    them costs ~5 ms, at every command), which parses that verb's arguments the same way."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("formatter_class", _help_formatter)
            super().__init__(*args, **kwargs)

    p = Parser(prog="pyctr", description="Daemonless Docker-like container and image manager.")
    p.add_argument("--root", default=os.environ.get("PYCTR_ROOT", "/var/lib/pyctr"),
                   help="store root (default /var/lib/pyctr)")
    p.add_argument("--runroot", default=os.environ.get("PYCTR_RUNROOT"),
                   help="containers' runtime state, monitors' sockets (a tmpfs; default /run/pyctr/<hash of root>)")
    p.add_argument("--allow-device-nodes", action="store_true",
                   help="let layers create device nodes (refused by default)")
    p.add_argument("--version", action="version", version=f"pyctr version {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    defined = {}

    for group in _GROUPS:
        def verb_parser(name, _group=group, **kwargs):
            if only not in (None, name) or _group is not _group_of(name):
                return _Unbuilt()
            defined[name] = sub.add_parser(name, **kwargs)
            return defined[name]
        group.add_parsers(verb_parser)
    return p


def main(argv=None):
    from pyctr.errors import PyctrError
    argv = sys.argv[1:] if argv is None else argv
    verb = _verb(argv)
    group = _group_of(verb)
    parser = build_parser(verb if group else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        # Docker's bad-flag status is 125; image verbs keep argparse's 2, as podman's do
        return getattr(group, "USAGE_EXIT", 2) if e.code == 2 else e.code
    fn = getattr(args, "fn", None)
    if fn is None:
        build_parser().print_help(sys.stderr)  # all the verbs, not just the one given
        return 2
    try:
        return fn(args) or 0
    except PyctrError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:
        print(f"Error: {args.verb}: {e}", file=sys.stderr)
        return getattr(group, "ERROR_EXIT", 1)
    except Exception as e:  # a bug: say so without a traceback unless asked
        if os.environ.get("PYCTR_DEBUG"):
            raise
        print(f"Error: internal error in {args.verb}: {e.__class__.__name__}: {e}", file=sys.stderr)
        return getattr(group, "ERROR_EXIT", 1)


def entry():
    """The console script: exit without the interpreter's teardown, which is ~6 ms of module and
    garbage collection at the end of every command (pyrunc's entry does the same). Everything a
    command writes is closed or flushed by then; its worker threads have been joined."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code)
