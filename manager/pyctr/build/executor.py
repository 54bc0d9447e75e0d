"""Runs a parsed Dockerfile as Docker's classic builder does: stage by stage, one image per step
(config + history, a layer for RUN/COPY/ADD/WORKDIR, an `empty_layer` history entry for the
others), each step first looked up in the cache by parent + created_by + config.

The store lock is held only while a step writes into the store (its layer blob and layer dir, its
image, its cache record); RUN and COPY work in the build's own workspace (workspace.py)."""
import copy
import json
import os
import posixpath
import sys
import time

from pyctr.build import formats, words
from pyctr.build.cache import Cache
from pyctr.build.parser import DockerfileError, parse
from pyctr.errors import ImageNotFound, PyctrError

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
_METADATA_KEEP = ("architecture", "os", "variant", "os.version", "config", "rootfs", "history", "author")


class Options:
    def __init__(self, context, dockerfile, tags=(), build_args=None, target=None, no_cache=False, pull=False,
                 labels=None, quiet=False, network="none", runtime="pyrunc", insecure=False):
        self.context, self.dockerfile = context, dockerfile
        self.tags, self.build_args = list(tags), dict(build_args or {})
        self.target, self.no_cache, self.pull = target, no_cache, pull
        self.labels, self.quiet, self.network, self.runtime = dict(labels or {}), quiet, network, runtime
        self.insecure = insecure


class Stage:
    def __init__(self, name, index):
        self.name, self.index = name, index
        self.image_id = None      # the image of the last step (None: scratch, nothing yet)
        self.img = None           # its config
        self.blobs = []           # its layer blobs, bottom first
        self.args = {}            # ARGs declared in the stage -> value (None: no value)
        self.cmd_set = False

    @property
    def config(self):
        return self.img["config"]

    @property
    def shell(self):
        return self.config.get("Shell") or DEFAULT_SHELL

    def env_map(self):
        out = {}
        for e in self.config.get("Env") or []:
            k, _, v = e.partition("=")
            out[k] = v
        return out


def _now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _abs_path(workdir, path):
    """Docker's normalizeDest/normalizeWorkdir: relative to WORKDIR, a trailing slash kept."""
    if path.startswith("/"):
        out = path
    else:
        out = posixpath.join(workdir or "/", path)
    clean = posixpath.normpath(out)
    if (path.endswith("/") or path in (".", "./") or path.endswith("/.")) and clean != "/":
        clean += "/"
    return clean


class Builder:
    def __init__(self, store, opts, out=None):
        self.store, self.opts = store, opts
        self.out = out or sys.stdout
        self.cache = Cache(store)
        self.ws = None
        self.stages = []
        self.used_args = set()
        self.step_no = 0
        self.total = 0

    # --- output --------------------------------------------------------------------------------

    def say(self, text):
        if not self.opts.quiet:
            self.out.write(text + "\n")
            self.out.flush()

    # --- the build -------------------------------------------------------------------------------

    def build(self):
        df = parse(self.opts.dockerfile)
        self.escape = df.escape
        if not df.instructions:
            raise PyctrError("the Dockerfile (or Dockerfile.<name>) has no instructions")
        meta, i = {}, 0
        while i < len(df.instructions) and df.instructions[i].cmd == "ARG":
            i += 1
        if i == len(df.instructions) or df.instructions[i].cmd != "FROM":
            bad = df.instructions[i] if i < len(df.instructions) else df.instructions[-1]
            raise DockerfileError(bad.line, "the first instruction must be FROM (only ARG may come before it)")
        stages = []
        for ins in df.instructions[i:]:
            if ins.cmd == "FROM":
                stages.append([ins])
            else:
                stages[-1].append(ins)
        names = [self._stage_name(s[0], meta) for s in stages]
        last = len(stages) - 1
        if self.opts.target:
            if self.opts.target.lower() not in names:
                raise PyctrError(f"failed to reach build target {self.opts.target} in Dockerfile")
            last = names.index(self.opts.target.lower())
        self.total = sum(len(s) for s in stages[:last + 1]) + i
        for ins in df.instructions[:i]:
            self._announce(ins)
            self._meta_arg(ins, meta)
        self.meta = meta
        from pyctr.build.workspace import Workspace
        self.ws = Workspace(self.store.root, self.opts.runtime)
        try:
            for n, body in enumerate(stages[:last + 1]):
                st = Stage(names[n], n)
                self.stages.append(st)
                self._from(st, body[0])
                for ins in body[1:]:
                    self._step(st, ins)
                if n == last and self.opts.labels:
                    self._labels(st, self.opts.labels)
            final = self.stages[-1]
            if final.image_id is None:
                raise PyctrError("the build made no image (FROM scratch with no instruction after it)")
            self._warn_unused()
            with self.store:
                from pyctr.image import reference
                for t in self.opts.tags:
                    self.store.tag(reference.parse(t), final.image_id)
        finally:
            self.ws.close()
        if self.opts.quiet:
            self.out.write(final.image_id + "\n")
        else:
            self.say(f"Successfully built {final.image_id[7:19]}")
            for t in self.opts.tags:
                from pyctr.image import reference
                self.say(f"Successfully tagged {reference.parse(t).familiar()}")
        return final.image_id

    def _warn_unused(self):
        unused = sorted(k for k in self.opts.build_args if k not in self.used_args and k not in PROXY_ARGS)
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")

    def _meta_arg(self, ins, meta):
        for name, value in self._arg_pairs(ins, meta):
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
                self.used_args.add(name)
            meta[name] = value

    def _arg_pairs(self, ins, env):
        out = []
        for w in words._raw_words(ins.args, self.escape if hasattr(self, "escape") else "\\"):
            name, sep, value = w.partition("=")
            name = words.word(name, env)
            if not name:
                raise DockerfileError(ins.line, "ARG names can not be blank")
            out.append((name, words.word(value, env) if sep else None))
        return out

    def _stage_name(self, ins, meta):
        parts = words.words(ins.args, {k: v for k, v in meta.items() if v is not None})
        if len(parts) == 3 and parts[1].lower() == "as":
            return parts[2].lower()
        if len(parts) != 1:
            raise DockerfileError(ins.line, "FROM requires either one or three arguments")
        return None

    # --- FROM ---------------------------------------------------------------------------------------

    def _from(self, st, ins):
        self._announce(ins)
        if "platform" in ins.flags:
            raise DockerfileError(ins.line, "FROM --platform is not supported: pyctr builds images for this "
                                            "host's platform only")
        if ins.flags:
            raise DockerfileError(ins.line, f"unknown flag for FROM: --{next(iter(ins.flags))}")
        env = {k: v for k, v in self.meta.items() if v is not None}
        base = words.words(ins.args, env, self.escape)[0]
        prior = next((s for s in self.stages[:-1] if s.name and s.name == base.lower()), None)
        if prior is not None:
            st.image_id, st.img, st.blobs = prior.image_id, copy.deepcopy(prior.img), list(prior.blobs)
        elif base.lower() == "scratch":
            from pyctr.image.manifest import host_platform
            p = host_platform()
            st.img = {"architecture": p["architecture"], "os": "linux",
                      "config": {"Env": [DEFAULT_PATH]}, "rootfs": {"type": "layers", "diff_ids": []},
                      "history": []}
        else:
            image_id = self._base_image(base)
            from pyctr.image.unpack import ensure_unpacked
            with self.store:
                ensure_unpacked(self.store, image_id)
            cfg = self.store.config(image_id)
            st.image_id = image_id
            st.img = {k: copy.deepcopy(cfg[k]) for k in _METADATA_KEEP if k in cfg}
            st.img.setdefault("config", {})
            st.img.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            st.img.setdefault("history", [])
            st.blobs = self.store.layer_blobs(image_id)
            if len(st.blobs) != len(st.img["rootfs"].get("diff_ids") or []):
                raise PyctrError(f"base image {base}: its layer blobs are not in the store (no manifest); "
                                 f"pull or load it again")
        if st.image_id:
            self.say(f" ---> {st.image_id[7:19]}")
        triggers = st.config.get("OnBuild") or []
        if triggers:
            st.config["OnBuild"] = None
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            for text in triggers:
                trig = parse(text).instructions
                for t in trig:
                    if t.cmd in ("ONBUILD", "FROM", "MAINTAINER"):
                        raise DockerfileError(ins.line, f"{t.cmd} isn't allowed as an ONBUILD trigger")
                    self._dispatch(st, t)

    def _base_image(self, name):
        from pyctr.image import reference
        ref = reference.parse(name)
        if not self.opts.pull:
            try:
                return self.store.resolve(ref.familiar())
            except ImageNotFound:
                pass
        from pyctr.image.pull import pull
        from pyctr.image.registry import Client
        with self.store:
            return pull(self.store, Client(ref, insecure=self.opts.insecure), ref, quiet=True)

    # --- steps ----------------------------------------------------------------------------------------

    def _announce(self, ins):
        self.step_no += 1
        self.say(f"Step {self.step_no}/{self.total} : {ins.original}")

    def _step(self, st, ins):
        self._announce(ins)
        self._dispatch(st, ins)

    def _dispatch(self, st, ins):
        handler = getattr(self, "_i_" + ins.cmd.lower())
        try:
            handler(st, ins)
        except words.ExpansionError as e:
            raise DockerfileError(ins.line, str(e)) from None

    def _expand_env(self, st):
        env = {k: v for k, v in st.args.items() if v is not None}
        env.update(st.env_map())
        return env

    def commit(self, st, created_by, config, layer=None):
        """One step: a cache hit adopts the cached image; a miss runs layer(mount) if the step
        makes a layer, records the image and its cache record."""
        key = Cache.key(st.image_id, created_by, config)
        if not self.opts.no_cache:
            hit = self.cache.get(key)
            if hit:
                self.say(" ---> Using cache")
                self._adopt(st, hit)
                self.say(f" ---> {hit[7:19]}")
                return
        img = copy.deepcopy(st.img)
        img["config"] = config
        img["created"] = _now()
        entry = {"created": img["created"], "created_by": created_by}
        cid = os.urandom(32).hex()
        self.say(f" ---> Running in {cid[:12]}")
        blob = None
        if layer is None:
            entry["empty_layer"] = True
            with self.store:
                image_id = self._register(st, img, entry, None)
                self.cache.put(key, image_id)
        else:
            from pyctr.build.workspace import WorkingMount
            mount = WorkingMount(self.ws, self._lowers(st))
            try:
                layer(mount)
                mount.unmount()
                with self.store:
                    blob = self._commit_upper(st, img, mount)
                    image_id = self._register(st, img, entry, blob)
                    self.cache.put(key, image_id)
            finally:
                mount.remove()
        self.say(f"Removing intermediate container {cid[:12]}")
        self._adopt(st, image_id)
        self.say(f" ---> {image_id[7:19]}")

    def _adopt(self, st, image_id):
        cfg = self.store.config(image_id)
        st.image_id = image_id
        st.img = {k: cfg[k] for k in _METADATA_KEEP if k in cfg}
        st.blobs = self.store.layer_blobs(image_id)

    def _lowers(self, st):
        from pyctr.image import digest
        diff_ids = st.img["rootfs"].get("diff_ids") or []
        if not diff_ids:
            return []
        top = self.store.layerdb.get(digest.chain_ids(diff_ids)[-1])
        if not top:
            raise PyctrError("a layer of the build's working image is missing from the store (removed meanwhile?)")
        return [self.store.overlay.diff(top["cache-id"])] + self.store.overlay.lowerdirs(top["cache-id"])

    def _commit_upper(self, st, img, mount):
        """Under the store lock: the upper dir's layer tar into the content store, the upper dir
        itself into overlay2 as the layer's diff (it already has overlay's whiteout form)."""
        from pyctr.build.tarlayer import write_layer
        from pyctr.image import digest
        with self.store.content.writer(what="layer") as w:
            write_layer(mount.upper, w)
            blob = w.commit()
        # the layer store records a layer's uncompressed tar size (save streams exactly that many bytes)
        size = self.store.content.size(blob)
        diff_ids = list(img["rootfs"].get("diff_ids") or [])
        parent = digest.chain_ids(diff_ids)[-1] if diff_ids else None
        cache_id, staging = self.store.overlay.staging()
        os.rmdir(os.path.join(staging, "diff"))
        os.rename(mount.upper, os.path.join(staging, "diff"))
        self.store.commit_layer(parent, (cache_id, staging, blob, size))
        img["rootfs"] = {"type": "layers", "diff_ids": diff_ids + [blob]}
        return blob

    def _register(self, st, img, entry, blob):
        from pyctr.image import manifest as _m
        from pyctr.image.archive import _layer_media_type
        img["history"] = list(img.get("history") or []) + [entry]
        blobs = st.blobs + ([blob] if blob else [])
        config_bytes = json.dumps(img, separators=(",", ":")).encode()
        cfg_digest = self.store.content.put(config_bytes, what="config")
        layers = [{"mediaType": _layer_media_type(self.store.content.path(b)), "digest": b,
                   "size": self.store.content.size(b)} for b in blobs]
        manifest = {"schemaVersion": 2, "mediaType": _m.OCI_MANIFEST,
                    "config": {"mediaType": _m.OCI_CONFIG, "digest": cfg_digest, "size": len(config_bytes)},
                    "layers": layers}
        mdigest = self.store.content.put(json.dumps(manifest, separators=(",", ":")).encode(), what="manifest")
        image_id = self.store.add_image(config_bytes, mdigest)
        if st.image_id:
            self.store.set_meta(image_id, "parent", st.image_id)  # Docker's imagedb metadata/<id>/parent
        return image_id

    def _meta(self, st, text, change):
        cfg = copy.deepcopy(st.config)
        change(cfg)
        self.commit(st, formats.nop(cfg.get("Shell") or DEFAULT_SHELL, text), cfg)

    # --- instructions ------------------------------------------------------------------------------

    def _i_from(self, st, ins):
        raise DockerfileError(ins.line, "FROM cannot be an ONBUILD trigger")

    def _run_args(self, st):
        """The ARGs a RUN sees (declared, with a value, not shadowed by ENV), and the proxy args."""
        env = st.env_map()
        out = {k: v for k, v in st.args.items() if v is not None and k not in env}
        for k in PROXY_ARGS:
            if k in self.opts.build_args and k not in env:
                out.setdefault(k, self.opts.build_args[k])
                self.used_args.add(k)
        return out

    def _i_run(self, st, ins):
        bad = [f for f in ins.flags]
        if bad:
            raise DockerfileError(ins.line, f"RUN --{bad[0]} is a BuildKit feature pyctr build does not support")
        if ins.json is not None:
            argv = list(ins.json)
        elif ins.heredocs and ins.args.strip() == f"<<{ins.heredocs[0][0]}" or (
                ins.heredocs and ins.args.strip() in (f"<<-{ins.heredocs[0][0]}", f"<<'{ins.heredocs[0][0]}'",
                                                      f'<<"{ins.heredocs[0][0]}"')):
            argv = st.shell + [ins.heredocs[0][1]]
        elif ins.heredocs:
            script = ins.args + "\n" + "".join(body + name + "\n" for name, body, _ in ins.heredocs)
            argv = st.shell + [script]
        else:
            argv = st.shell + [ins.args]
        run_args = self._run_args(st)
        shown = {k: v for k, v in run_args.items() if k in st.args}
        created_by = " ".join(argv)
        if shown:
            created_by = f"|{len(shown)} " + " ".join(f"{k}={v}" for k, v in sorted(shown.items())) + " " + created_by
        env = list(st.config.get("Env") or [])
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH)
        env += [f"{k}={v}" for k, v in sorted(run_args.items())]

        def layer(mount):
            from pyctr.build.runner import run
            run(self.ws, mount, argv, env, st.config.get("WorkingDir"), st.config.get("User"),
                self.opts.network, " ".join(argv), self.opts.quiet, list(st.config.get("Volumes") or {}))

        self.commit(st, created_by, copy.deepcopy(st.config), layer)

    def _i_copy(self, st, ins, cmd="COPY"):
        from pyctr.build.sources import checksum
        allowed = {"from", "chown", "chmod"} if cmd == "COPY" else {"chown", "chmod"}
        for f in ins.flags:
            if f not in allowed:
                raise DockerfileError(ins.line, f"{cmd} --{f} is not supported" +
                                      (" (ADD has no --from; use COPY --from)" if f == "from" else ""))
        env = self._expand_env(st)
        args = list(ins.json) if ins.json is not None else words.words(ins.args, env, self.escape)
        if ins.json is not None:
            args = [words.word(a, env, self.escape) for a in args]
        if len(args) < 2:
            raise DockerfileError(ins.line, f"{cmd} requires at least two arguments")
        srcs, dest = args[:-1], args[-1]
        if cmd == "ADD":
            for s in srcs:
                if "://" in s or s.startswith("git@"):
                    raise PyctrError(f"ADD {s}: remote sources are not supported: pyctr build has no network "
                                     f"access for ADD; download the file into the context and ADD or COPY it")
        dest_text, dest = dest, _abs_path(st.config.get("WorkingDir"), dest)
        heredocs = {f"<<{name}": body for name, body, _ in ins.heredocs}
        chown = words.word(ins.flags["chown"], env, self.escape) if "chown" in ins.flags else None
        chmod = None
        if "chmod" in ins.flags:
            try:
                chmod = int(ins.flags["chmod"], 8)
                if not 0 <= chmod <= 0o7777:
                    raise ValueError
            except ValueError:
                raise DockerfileError(ins.line, f"invalid chmod parameter {ins.flags['chmod']!r}: "
                                                f"an octal mode is expected") from None
        with self._origin(st, ins, heredocs, srcs) as (origin, resolved):
            hashed = checksum(origin, resolved)
            chown_text = f"--chown={chown}" if chown else ""  # no space: Docker writes it so
            created_by = formats.nop(st.shell, f"{cmd} {chown_text}{hashed} in {dest_text} ", one_word=True)
            preserve = "from" in ins.flags and not chown

            def layer(mount):
                from pyctr.build.copier import Owner, copy as do_copy
                owner = self._owner(mount.merged, chown) if chown else (Owner(None, None) if preserve else Owner())
                do_copy(origin, resolved, mount.merged, dest, owner, chmod, cmd, extract=(cmd == "ADD"))

            self.commit(st, created_by, copy.deepcopy(st.config), layer)

    def _i_add(self, st, ins):
        self._i_copy(st, ins, "ADD")

    def _owner(self, rootfs, chown):
        from pyctr.build.copier import Owner
        from pyctr.image.bundle import _read_in_root
        user, _, group = chown.partition(":")
        group = group or user

        def lookup(name, path, what):
            if name.isdigit():
                return int(name)
            for line in _read_in_root(rootfs, path).splitlines():
                f = line.split(":")
                if len(f) >= 3 and f[0] == name and f[2].isdigit():
                    return int(f[2])
            raise PyctrError(f"unable to convert {what} {name!r} of --chown={chown}: no such {what} in "
                             f"the image's {path}")

        return Owner(lookup(user, "/etc/passwd", "user"), lookup(group, "/etc/group", "group"), explicit=True)

    def _origin(self, st, ins, heredocs, srcs):
        import contextlib

        from pyctr.build.ignore import load
        from pyctr.build.sources import Origin

        @contextlib.contextmanager
        def ctx():
            if heredocs and all(s in heredocs for s in srcs):
                d = os.path.join(self.ws.dir, "heredoc-" + os.urandom(4).hex())
                os.makedirs(d)
                for s in srcs:
                    with open(os.path.join(d, s[2:]), "w") as f:
                        f.write(heredocs[s])
                    os.chmod(os.path.join(d, s[2:]), 0o644)
                origin = Origin(d, None, is_context=True)
                yield origin, [x for s in srcs for x in origin.resolve(s[2:], ins.cmd)]
                return
            source = ins.flags.get("from")
            if source is None:
                if self.opts.context is None:
                    raise PyctrError(f"{ins.cmd} needs a build context: the Dockerfile came on stdin with none")
                origin = Origin(self.opts.context, load(self.opts.context))
                yield origin, [x for s in srcs for x in origin.resolve(s, ins.cmd)]
                return
            image_id = self._from_source(source, ins)
            if image_id is None:
                d = self.ws.empty
                origin = Origin(d, None, is_context=False)
                yield origin, [x for s in srcs for x in origin.resolve(s, ins.cmd)]
                return
            from pyctr.image.mount import read_only_view
            from pyctr.image import digest
            chain = digest.chain_ids(self.store.config(image_id)["rootfs"]["diff_ids"])
            with read_only_view(self.store, chain[-1]) as root:
                origin = Origin(root, None, is_context=False)
                yield origin, [x for s in srcs for x in origin.resolve(s, ins.cmd)]

        return ctx()

    def _from_source(self, name, ins):
        """COPY --from: a stage (name or index) or an image."""
        for s in self.stages[:-1]:
            if (s.name and s.name == name.lower()) or name == str(s.index):
                if s.image_id is None:
                    return None
                return s.image_id
        if name.isdigit():
            raise DockerfileError(ins.line, f"invalid from flag value {name}: refers to the current or a later stage")
        return self._base_image(name)

    def _i_workdir(self, st, ins):
        path = words.word(ins.args, self._expand_env(st), self.escape)
        wd = posixpath.normpath(posixpath.join(st.config.get("WorkingDir") or "/", path))
        cfg = copy.deepcopy(st.config)
        cfg["WorkingDir"] = wd

        def layer(mount):
            from pyctr.build.copier import Owner, Target
            Target(mount.merged, Owner(), None).mkdirs(wd)

        self.commit(st, formats.nop(st.shell, f"WORKDIR {wd}", one_word=True), cfg, layer)

    def _pairs(self, st, ins):
        """ENV/LABEL arguments: `k=v ...`, or the legacy `key value with spaces` form."""
        env = self._expand_env(st)
        raw = words._raw_words(ins.args, self.escape)
        if raw and "=" not in raw[0]:
            name, _, rest = ins.args.strip().partition(" ")
            if not rest.strip():
                raise DockerfileError(ins.line, f"{ins.cmd} must have two arguments")
            return [(words.word(name, env, self.escape), words.word(rest.strip(), env, self.escape))]
        return words.key_values(ins.args, env, self.escape, ins.cmd)

    def _i_env(self, st, ins):
        pairs = self._pairs(st, ins)

        def change(cfg):
            current = list(cfg.get("Env") or [])
            for k, v in pairs:  # a variable already set keeps its place, as Docker's
                at = next((i for i, e in enumerate(current) if e.partition("=")[0] == k), None)
                if at is None:
                    current.append(f"{k}={v}")
                else:
                    current[at] = f"{k}={v}"
            cfg["Env"] = current

        self._meta(st, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), change)

    def _i_arg(self, st, ins):
        env = self._expand_env(st)
        pairs = self._arg_pairs(ins, env)
        texts = []
        for name, default in pairs:
            value = default
            if default is None and name in self.meta:
                value = self.meta[name]
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
                self.used_args.add(name)
            st.args[name] = value
            texts.append(name if default is None else f"{name}={default}")
        self._meta(st, "ARG " + " ".join(texts), lambda cfg: None)

    def _i_label(self, st, ins):
        self._set_labels(st, self._pairs(st, ins))

    def _set_labels(self, st, pairs):
        def change(cfg):
            labels = dict(cfg.get("Labels") or {})
            labels.update(pairs)
            cfg["Labels"] = labels

        self._meta(st, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), change)

    def _labels(self, st, labels):
        self._set_labels(st, sorted(labels.items()))

    def _i_maintainer(self, st, ins):
        name = ins.args.strip()
        st.img["author"] = name
        self.commit(st, formats.nop(st.shell, f"MAINTAINER {name}"), copy.deepcopy(st.config))

    def _command(self, st, ins):
        if ins.json is not None:
            return list(ins.json)
        return st.shell + [ins.args]

    def _i_cmd(self, st, ins):
        cmd = self._command(st, ins)

        def change(cfg):
            cfg["Cmd"] = cmd

        self._meta(st, "CMD " + formats.go_q_list(cmd), change)
        st.cmd_set = True

    def _i_entrypoint(self, st, ins):
        ep = self._command(st, ins) if (ins.json is not None or ins.args.strip()) else []

        def change(cfg):
            cfg["Entrypoint"] = ep or None
            if not st.cmd_set:
                cfg["Cmd"] = None

        self._meta(st, "ENTRYPOINT " + formats.go_q_list(ep), change)

    def _i_expose(self, st, ins):
        ports = words.words(ins.args, self._expand_env(st), self.escape)
        expanded = []
        for p in ports:
            num, _, proto = p.partition("/")
            proto = (proto or "tcp").lower()
            lo, _, hi = num.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()) or proto not in ("tcp", "udp", "sctp"):
                raise DockerfileError(ins.line, f"invalid port {p!r}: expected PORT[-PORT][/tcp|udp|sctp]")
            for n in range(int(lo), int(hi or lo) + 1):
                expanded.append(f"{n}/{proto}")

        def change(cfg):
            exposed = dict(cfg.get("ExposedPorts") or {})
            exposed.update({p: {} for p in expanded})
            cfg["ExposedPorts"] = exposed

        self._meta(st, "EXPOSE " + " ".join(sorted(ports)), change)

    def _i_volume(self, st, ins):
        env = self._expand_env(st)
        vols = [words.word(v, env, self.escape) for v in ins.json] if ins.json is not None else \
            words.words(ins.args, env, self.escape)
        if not vols or any(not v.strip() for v in vols):
            raise DockerfileError(ins.line, "VOLUME specified can not be an empty string")

        def change(cfg):
            v = dict(cfg.get("Volumes") or {})
            v.update({x: {} for x in vols})
            cfg["Volumes"] = v

        self._meta(st, "VOLUME " + formats.go_v_list(vols), change)

    def _i_user(self, st, ins):
        user = words.word(ins.args, self._expand_env(st), self.escape)
        self._meta(st, f"USER {user}", lambda cfg: cfg.__setitem__("User", user))

    def _i_stopsignal(self, st, ins):
        sig = words.word(ins.args, self._expand_env(st), self.escape)
        import signal
        name = sig.upper()
        ok = sig.isdigit() or name in signal.Signals.__members__ or ("SIG" + name) in signal.Signals.__members__ \
            or name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX")
        if not ok:
            raise DockerfileError(ins.line, f"invalid signal: {sig}")
        self._meta(st, f"STOPSIGNAL {sig}", lambda cfg: cfg.__setitem__("StopSignal", sig))

    def _i_shell(self, st, ins):
        shell = list(ins.json)
        if not shell:
            raise DockerfileError(ins.line, "SHELL requires at least one argument")
        self._meta(st, "SHELL " + formats.go_v_list(shell), lambda cfg: cfg.__setitem__("Shell", shell))

    def _i_healthcheck(self, st, ins):
        rest = ins.args.strip()
        word, _, tail = rest.partition(" ")
        hc = {}
        if word.upper() == "NONE":
            if tail.strip() or ins.flags:
                raise DockerfileError(ins.line, "HEALTHCHECK NONE takes no arguments")
            hc["Test"] = ["NONE"]
        elif word.upper() == "CMD":
            tail = tail.strip()
            try:
                js = json.loads(tail) if tail.startswith("[") else None
            except ValueError:
                js = None
            if isinstance(js, list) and all(isinstance(x, str) for x in js):
                hc["Test"] = ["CMD"] + js
            else:
                hc["Test"] = ["CMD-SHELL", tail]
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod")):
                if flag in ins.flags:
                    hc[key] = formats.parse_duration(ins.flags[flag], "--" + flag)
            if "retries" in ins.flags:
                try:
                    hc["Retries"] = int(ins.flags["retries"])
                except ValueError:
                    raise DockerfileError(ins.line, f"invalid --retries value {ins.flags['retries']!r}") from None
            unknown = set(ins.flags) - {"interval", "timeout", "start-period", "retries"}
            if unknown:
                raise DockerfileError(ins.line, f"unknown flag for HEALTHCHECK: --{unknown.pop()}")
        else:
            raise DockerfileError(ins.line, f"Unknown type {word!r} in HEALTHCHECK (try CMD)")
        self._meta(st, "HEALTHCHECK " + formats.healthcheck_struct(hc), lambda cfg: cfg.__setitem__("Healthcheck", hc))

    def _i_onbuild(self, st, ins):
        trig = ins.trigger
        text = f"{trig.cmd} {ins.args.strip().partition(' ')[2].strip()}".strip()

        def change(cfg):
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [text]

        self._meta(st, f"ONBUILD {text}", change)
