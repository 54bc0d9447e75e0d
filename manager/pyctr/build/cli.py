"""`pyctr build`: argument parsing and the call into the builder (registered by pyctr's cli)."""
import os
import sys


def add_parser(subparsers):
    sp = subparsers.add_parser("build", help="build an image from a Dockerfile")
    sp.add_argument("-f", "--file", help="the Dockerfile (default CONTEXT/Dockerfile; '-' for stdin)")
    sp.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image (repeatable)")
    sp.add_argument("--build-arg", action="append", default=[], metavar="K=V",
                    help="a build argument (K alone takes the value of K in this environment)")
    sp.add_argument("--target", help="the stage to build (default: the last)")
    sp.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    sp.add_argument("--pull", action="store_true", help="pull every base image, even one that is present")
    sp.add_argument("--label", action="append", default=[], metavar="K=V", help="a label for the image")
    sp.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    sp.add_argument("--network", choices=("none", "host"), default="none",
                    help="RUN's network: none (the default, until pyctr has networks) or the host's")
    sp.add_argument("--runtime", default=None,
                    help="OCI runtime for RUN (default: pyrunc beside pyctr, else on PATH)")
    sp.add_argument("--insecure", action="store_true", help="pull base images over plain HTTP/unverified TLS")
    sp.add_argument("context", metavar="CONTEXT", help="the build context directory, or - for a Dockerfile on stdin")
    sp.set_defaults(fn=run)
    return sp


def _pairs(items, what, from_env=False):
    from pyctr.errors import UsageError
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        if not sep:
            if not from_env:
                raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
            if k not in os.environ:
                continue  # docker: a --build-arg K with no K in the environment is left unset
            v = os.environ[k]
        out[k] = v
    return out


def _runtime(given):
    import shutil
    from pyctr.errors import UsageError
    if given:
        path = given if "/" in given else shutil.which(given)
        if not path or not os.access(path, os.X_OK):
            raise UsageError(f"--runtime {given}: no such executable")
        return os.path.abspath(path)
    from pyctr.build.workspace import default_runtime
    found = default_runtime()
    if not found:
        raise UsageError("no OCI runtime: pyrunc is neither beside pyctr nor on PATH; give --runtime")
    return found


def _dockerfile(args):
    from pyctr.errors import PyctrError
    if args.context == "-":
        if args.file and args.file != "-":
            raise PyctrError("with CONTEXT '-' the Dockerfile comes on stdin: -f cannot name another")
        return None, sys.stdin.buffer.read(16 << 20)
    context = os.path.abspath(args.context)
    if not os.path.isdir(context):
        raise PyctrError(f"unable to prepare context: path {args.context!r} not found or not a directory")
    if args.file == "-":
        return context, sys.stdin.buffer.read(16 << 20)
    path = args.file or os.path.join(context, "Dockerfile")
    if args.file and not os.path.isabs(args.file) and not os.path.exists(args.file):
        path = os.path.join(context, args.file)
    try:
        with open(path, "rb") as f:
            return context, f.read(16 << 20)
    except FileNotFoundError:
        raise PyctrError(f"unable to prepare context: the Dockerfile ({path}) does not exist") from None
    except IsADirectoryError:
        raise PyctrError(f"unable to prepare context: the Dockerfile ({path}) is a directory") from None


def run(args):
    from pyctr.build.executor import Builder, Options
    from pyctr.image import reference
    from pyctr.image.store import Store
    for t in args.tag:
        reference.parse(t)  # a bad name fails before anything runs
    context, text = _dockerfile(args)
    opts = Options(context, text, tags=args.tag, build_args=_pairs(args.build_arg, "--build-arg", True),
                   target=args.target, no_cache=args.no_cache, pull=args.pull,
                   labels=_pairs(args.label, "--label"), quiet=args.quiet, network=args.network,
                   runtime=_runtime(args.runtime), insecure=args.insecure)
    store = Store(args.root, allow_devices=args.allow_device_nodes)
    Builder(store, opts).build()
