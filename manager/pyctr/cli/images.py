"""pyctr's image verbs: pull, push, login, images, tag, rmi, inspect (of images), save, load, import,
export, mount, bundle; each imports what it needs when it runs."""
import os
import sys


def _store(args, lock=True):
    from pyctr.image.store import Store
    s = Store(args.root, allow_devices=args.allow_device_nodes)
    return s.lock() if lock else s


def _client(args, ref):
    from pyctr.image.registry import Client
    return Client(ref, insecure=args.insecure or ref.domain in _insecure_env(), authfile=args.authfile)


def _insecure_env():
    return [h for h in os.environ.get("PYCTR_INSECURE_REGISTRIES", "").split(",") if h]


def cmd_pull(args):
    from pyctr.image import reference
    from pyctr.image.pull import pull
    ref = reference.parse(args.image)
    with _store(args) as store:
        image_id = pull(store, _client(args, ref), ref, platform=args.platform, quiet=args.quiet,
                        unpack=not args.no_unpack)
    print(image_id if args.quiet else f"Status: downloaded {ref.familiar()}\n{image_id}")


def cmd_push(args):
    from pyctr.image import reference
    from pyctr.image.push import push
    with _store(args) as store:
        image_id = store.resolve(args.image)
        ref = reference.parse(args.destination or args.image)
        push(store, _client(args, ref), image_id, ref, quiet=args.quiet, source=args.image)


def cmd_login(args):
    from pyctr.image import auth
    from pyctr.image.reference import parse
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not args.username or password is None:
        raise _usage("login needs --username and --password or --password-stdin")
    domain = args.server
    ref = parse(f"{domain}/pyctr-login-check" if "." in domain or ":" in domain or domain == "localhost"
                else "pyctr-login-check")
    client = _client(args, ref)
    client.credentials = (args.username, password)
    client.login_check()
    path = auth.store_credentials(ref.domain, args.username, password, args.authfile)
    print(f"Login Succeeded (credentials in {path})")


def cmd_logout(args):
    from pyctr.image import auth
    from pyctr.image.reference import parse
    ref = parse(f"{args.server}/x" if "." in args.server or ":" in args.server else "x")
    if not auth.remove_credentials(ref.domain, args.authfile):
        from pyctr.errors import PyctrError
        raise PyctrError(f"not logged in to {args.server}")
    print(f"Removed login credentials for {args.server}")


def _size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000


def _image_size(store, image_id):
    """Uncompressed size of the unpacked layers, as Docker shows; a layer that is still only a blob
    (pulled with --no-unpack) counts its blob's size, as containerd shows."""
    total, blobs = 0, None
    for i, c in enumerate(store.chain(image_id)):
        info = store.layerdb.get(c)
        if info:
            total += int(info["size"] or 0)
            continue
        if blobs is None:
            blobs = store.layer_blobs(image_id)
        if i < len(blobs) and store.content.has(blobs[i]):
            total += store.content.size(blobs[i])
    return total


def cmd_images(args):
    import json
    from pyctr.errors import PyctrError
    store = _store(args, lock=False)
    rows = []
    ids = store.image_ids()
    parents = {store.get_meta(i, "parent") for i in ids}  # a build's intermediate images, hidden as Docker's
    for image_id in ids:
        tags = [t for t in store.tags_of(image_id) if "@" not in t] or ["<none>:<none>"]
        if tags == ["<none>:<none>"] and image_id in parents:
            continue
        try:  # one bad record is listed as far as it can be, and never hides the others
            created, size = store.config(image_id).get("created") or "", _image_size(store, image_id)
        except PyctrError as e:
            print(f"Warning: {e} (remove it with `pyctr rmi {image_id[7:19]}`)", file=sys.stderr)
            created, size = "", 0
        for t in tags:
            repo, _, tag = t.rpartition(":")
            rows.append((repo, tag, image_id, created, size))
    rows.sort(key=lambda r: (r[0], r[1]))
    if args.quiet:
        for r in dict.fromkeys(r[2][7:19] for r in rows):
            print(r)
        return
    if args.format == "json":
        print(json.dumps([{"Repository": r[0], "Tag": r[1], "Id": r[2], "Created": r[3], "Size": r[4]}
                          for r in rows], indent=1))
        return
    print(f"{'REPOSITORY':<40} {'TAG':<16} {'IMAGE ID':<14} {'CREATED':<22} SIZE")
    for r in rows:
        print(f"{r[0]:<40} {r[1]:<16} {r[2][7:19]:<14} {r[3][:19]:<22} {_size(r[4])}")


def cmd_tag(args):
    from pyctr.image import reference
    with _store(args) as store:
        image_id = store.resolve(args.source)
        store.tag(reference.parse(args.target), image_id)


def cmd_rmi(args):
    with _store(args) as store:
        for name in args.images:
            for action, what in store.remove_image(name, force=args.force):
                print(f"{action}: {what}")


def cmd_prune(args):
    with _store(args) as store:
        removed = store.prune(all_images=args.all)
    for action, what in removed:
        print(f"{action}: {what}")


def inspect_image(store, image_id, cfg):
    """`inspect`'s object for an image (the CLI's and the API's)."""
    chain = store.chain(image_id)
    top = store.layerdb.get(chain[-1]) if chain else None
    mdigest = store.manifest_digest(image_id)
    return {
        "Id": image_id,
        "RepoTags": [t for t in store.tags_of(image_id) if "@" not in t],
        "RepoDigests": [t for t in store.tags_of(image_id) if "@" in t] +
                       ([] if not mdigest else []),
        "ManifestDigest": mdigest,
        "Comment": cfg.get("comment", ""),  # a commit's -m
        "Created": cfg.get("created"), "Author": cfg.get("author", ""),
        "Architecture": cfg.get("architecture"), "Os": cfg.get("os"),
        "Config": cfg.get("config") or {}, "Size": _image_size(store, image_id),
        "GraphDriver": {"Name": "overlay2", "Data": {
            "UpperDir": store.overlay.diff(top["cache-id"]) if top else "",
            "LowerDir": ":".join(store.overlay.lowerdirs(top["cache-id"])) if top else ""}},
        "RootFS": {"Type": "layers", "Layers": (cfg.get("rootfs") or {}).get("diff_ids", [])},
        # false after `pull --no-unpack` until the layers are first used
        "Unpacked": all(store.layerdb.get(c) for c in chain),
    }


def cmd_inspect(args):
    import json
    from pyctr.errors import PyctrError
    store = _store(args, lock=False)
    out, failed = [], []
    for name in args.images:
        try:  # as docker: the images that can be shown are, the others are errors at the end
            image_id = store.resolve(name)
            cfg = store.config(image_id)
        except PyctrError as e:
            failed.append(e)
            continue
        out.append(inspect_image(store, image_id, cfg))
    print(json.dumps(out, indent=4))
    if failed:
        for e in failed[:-1]:
            print(f"Error: {e}", file=sys.stderr)
        raise failed[-1]


def cmd_history(args):
    store = _store(args, lock=False)
    cfg = store.config(store.resolve(args.image))
    print(f"{'CREATED':<22} {'CREATED BY':<60} COMMENT")
    for h in reversed(cfg.get("history") or []):
        by = (h.get("created_by") or "").replace("\n", " ")
        by = by if len(by) <= 58 else by[:55] + "..."
        print(f"{(h.get('created') or '')[:19]:<22} {by:<60} {h.get('comment', '')}")


def _out(path):
    if not path or path == "-":
        if sys.stdout.isatty():
            raise _usage("refusing to write a tar archive to a terminal; use -o FILE")
        return sys.stdout.buffer, False
    return open(path + ".tmp", "wb"), True


def _finish(f, path, ok):
    f.close()
    if ok:
        os.rename(path + ".tmp", path)
    else:
        os.unlink(path + ".tmp")


def write_output(path, write):
    """write(f) to the -o file (complete or absent: written beside, renamed at the end) or stdout."""
    f, is_file = _out(path)
    ok = False
    try:
        write(f)
        ok = True
    finally:
        if is_file:
            _finish(f, path, ok)
        else:
            f.flush()


def cmd_save(args):
    from pyctr.image.archive import save
    with _store(args) as store:
        write_output(args.output, lambda f: save(store, args.images, f, args.format))


def cmd_load(args):
    from pyctr.image.archive import load
    with _store(args) as store:
        loaded = load(store, args.input or "-")
    for tag, image_id in loaded:
        print(f"Loaded image: {tag}" if tag else f"Loaded image ID: {image_id}")


def cmd_import(args):
    from pyctr.image.archive import import_tarball
    with _store(args) as store:
        image_id = import_tarball(store, args.file, args.reference, args.change, args.message or "")
    print(image_id)


def cmd_export(args):
    from pyctr.image.archive import export
    with _store(args) as store:
        image_id = store.resolve(args.image)
        write_output(args.output, lambda f: export(store, image_id, f))


def cmd_mount(args):
    from pyctr.image.mount import mount_rw
    with _store(args) as store:
        image_id = store.resolve(args.image)
        name = args.name or "mount-" + os.urandom(6).hex()
        print(mount_rw(store, image_id, name))


def cmd_umount(args):
    from pyctr.image.bundle import mount_name
    from pyctr.image.mount import umount
    with _store(args) as store:
        for target in args.targets:
            name = target
            if not store.layerdb.get_mount(name):
                for m in store.layerdb.list_mounts():
                    if m["target"] == os.path.abspath(target):
                        name = m["name"]
                        break
                else:
                    if os.path.isdir(target):
                        name = mount_name(target)
            umount(store, name)


def cmd_mounts(args):
    store = _store(args, lock=False)
    for m in store.layerdb.list_mounts():
        print(f"{m['name']}\t{m['target']}")


def cmd_bundle(args):
    from pyctr.image.bundle import make_bundle
    with _store(args) as store:
        image_id = store.resolve(args.image)
        print(make_bundle(store, image_id, args.directory, command_of(args.command) or None, args.tty))


def command_of(words):
    """The command argparse.REMAINDER collected, without the `--` that may separate it."""
    return words[1:] if words[:1] == ["--"] else words


def _usage(msg):
    from pyctr.errors import UsageError
    return UsageError(msg)


VERBS = frozenset({"pull", "push", "login", "logout", "images", "ls", "image", "tag", "rmi", "inspect",
                   "history", "save", "load", "import", "export", "mount", "umount", "unmount",
                   "unbundle", "mounts", "bundle"})


def add_parsers(verb_parser):
    """Defines the image verbs through verb_parser(name, **kwargs) (see cli.build_parser)."""
    import argparse

    def reg(sp):
        sp.add_argument("--insecure", "--tls-verify=false", dest="insecure", action="store_true",
                        help="an insecure registry: https without certificate checks, else plain "
                             "HTTP (as Docker; the default for registries on loopback)")
        sp.add_argument("--authfile", help="Docker-style credentials file")

    sp = verb_parser("pull", help="pull an image from a registry")
    reg(sp)
    sp.add_argument("--platform", help="os/arch[/variant] (default: this host)")
    sp.add_argument("--no-unpack", "--skip-unpack", dest="no_unpack", action="store_true",
                    help="only fetch and verify the blobs (as `ctr pull --skip-unpack`); the layers are "
                         "unpacked the first time the image is mounted, bundled or exported")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.add_argument("image")
    sp.set_defaults(fn=cmd_pull)

    sp = verb_parser("push", help="push an image to a registry")
    reg(sp)
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.add_argument("image")
    sp.add_argument("destination", nargs="?")
    sp.set_defaults(fn=cmd_push)

    sp = verb_parser("login", help="store credentials for a registry")
    reg(sp)
    sp.add_argument("-u", "--username")
    sp.add_argument("-p", "--password")
    sp.add_argument("--password-stdin", action="store_true")
    sp.add_argument("server")
    sp.set_defaults(fn=cmd_login)

    sp = verb_parser("logout", help="remove stored credentials")
    sp.add_argument("--authfile")
    sp.add_argument("server")
    sp.set_defaults(fn=cmd_logout)

    for name in ("images", "ls"):
        sp = verb_parser(name, help="list images")
        sp.add_argument("-q", "--quiet", action="store_true")
        sp.add_argument("--format", choices=("table", "json"), default="table")
        sp.set_defaults(fn=cmd_images)

    sp = verb_parser("image", help="image subcommands (prune, ls, rm)")
    isub = sp.add_subparsers(dest="image_verb", metavar="SUBCOMMAND")
    pp = isub.add_parser("prune", help="remove untagged images and unused layers")
    pp.add_argument("-a", "--all", action="store_true")
    pp.add_argument("-f", "--force", action="store_true")
    pp.set_defaults(fn=cmd_prune)
    lp = isub.add_parser("ls")
    lp.add_argument("-q", "--quiet", action="store_true")
    lp.add_argument("--format", choices=("table", "json"), default="table")
    lp.set_defaults(fn=cmd_images)
    rp = isub.add_parser("rm")
    rp.add_argument("-f", "--force", action="store_true")
    rp.add_argument("images", nargs="+")
    rp.set_defaults(fn=cmd_rmi)

    sp = verb_parser("tag", help="add a name to an image")
    sp.add_argument("source")
    sp.add_argument("target")
    sp.set_defaults(fn=cmd_tag)

    sp = verb_parser("rmi", help="remove images")
    sp.add_argument("-f", "--force", action="store_true")
    sp.add_argument("images", nargs="+")
    sp.set_defaults(fn=cmd_rmi)

    sp = verb_parser("inspect", help="show image details as JSON")
    sp.add_argument("images", nargs="+")
    sp.set_defaults(fn=cmd_inspect)

    sp = verb_parser("history", help="show an image's history")
    sp.add_argument("image")
    sp.set_defaults(fn=cmd_history)

    sp = verb_parser("save", help="write images as a docker-archive or an OCI archive")
    sp.add_argument("-o", "--output")
    sp.add_argument("--format", default="docker-archive", choices=("docker-archive", "oci-archive"),
                    help="archive format (default docker-archive, what `docker save` writes)")
    sp.add_argument("images", nargs="+")
    sp.set_defaults(fn=cmd_save)

    sp = verb_parser("load", help="load a docker-archive or OCI archive")
    sp.add_argument("-i", "--input")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.set_defaults(fn=cmd_load)

    sp = verb_parser("import", help="make a one-layer image from a rootfs tarball")
    sp.add_argument("-c", "--change", action="append", default=[])
    sp.add_argument("-m", "--message")
    sp.add_argument("file")
    sp.add_argument("reference", nargs="?")
    sp.set_defaults(fn=cmd_import)

    sp = verb_parser("export", help="write an image's flattened filesystem as a tar")
    sp.add_argument("-o", "--output")
    sp.add_argument("image")
    sp.set_defaults(fn=cmd_export)

    sp = verb_parser("mount", help="overlay-mount an image with a fresh upper layer; prints the path")
    sp.add_argument("--name")
    sp.add_argument("image")
    sp.set_defaults(fn=cmd_mount)

    for name in ("umount", "unmount", "unbundle"):
        sp = verb_parser(name, help="unmount a `mount` or `bundle` and delete its upper layer")
        sp.add_argument("targets", nargs="+", metavar="NAME|PATH|BUNDLE")
        sp.set_defaults(fn=cmd_umount)

    sp = verb_parser("mounts", help="list pyctr mounts")
    sp.set_defaults(fn=cmd_mounts)

    sp = verb_parser("bundle", help="make an OCI bundle (overlay rootfs + config.json) from an image")
    sp.add_argument("-t", "--tty", action="store_true")
    sp.add_argument("image")
    sp.add_argument("directory")
    # everything after IMAGE DIR is the command, options included, as Docker parses `run`
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp.set_defaults(fn=cmd_bundle)

