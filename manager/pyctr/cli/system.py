"""`pyctr system service [--time SECONDS] [unix:///path.sock]`: the Docker Engine API on a unix
socket (pyctr/api/), over the same store as the CLI. aiohttp is imported only here."""
VERBS = frozenset({"system"})
USAGE_EXIT = 125
ERROR_EXIT = 125

DEFAULT_SOCKET = "unix:///run/pyctr/pyctr.sock"


def cmd_service(args):
    from pyctr.api.server import serve
    from pyctr.container.context import Context
    from pyctr.errors import UsageError
    uri = args.uri or DEFAULT_SOCKET
    if not uri.startswith("unix://") or len(uri) <= len("unix://"):
        raise UsageError(f"{uri}: only unix:///PATH sockets are served")
    if args.time < 0:
        raise UsageError(f"--time {args.time}: must be 0 (serve forever) or more seconds")
    return serve(Context(args.root, args.runroot, args.allow_device_nodes), uri[len("unix://"):], args.time)


def add_parsers(verb_parser):
    vp = verb_parser("system", help="the Docker Engine API service")
    sub = vp.add_subparsers(dest="system_verb", metavar="COMMAND")
    sub.required = True
    sp = sub.add_parser("service", help="serve the Docker Engine API (v1.41) on a unix socket")
    sp.add_argument("-t", "--time", type=float, default=5,
                    help="exit after this many idle seconds (0: serve forever; default 5, as podman)")
    sp.add_argument("uri", nargs="?", metavar="URI", help=f"unix:///PATH (default {DEFAULT_SOCKET})")
    sp.set_defaults(fn=cmd_service)
