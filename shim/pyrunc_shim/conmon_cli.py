"""`pyrunc-shim`'s command line: conmon's flags (GLib option syntax: --name value, --name=value,
-c value, -cvalue; repeatable list flags), parsed into Options without argparse (it imports re
and gettext: the daemonless monitor stays small). Pure: unit-tested."""

# (long, short, kind, attribute); kind: bool, str, int, list
FLAGS = [
    ("api-version", None, "int", "api_version"),
    ("cid", "c", "str", "cid"), ("cuuid", "u", "str", "cuuid"), ("name", "n", "str", "name"),
    ("runtime", "r", "str", "runtime"), ("bundle", "b", "str", "bundle"),
    ("container-pidfile", "p", "str", "container_pidfile"), ("conmon-pidfile", "P", "str", "conmon_pidfile"),
    ("runtime-arg", None, "list", "runtime_args"), ("runtime-opt", None, "list", "runtime_opts"),
    ("systemd-cgroup", "s", "bool", "systemd_cgroup"), ("no-pivot", None, "bool", "no_pivot"),
    ("no-new-keyring", None, "bool", "no_new_keyring"),
    ("exit-dir", None, "str", "exit_dir"), ("persist-dir", "0", "str", "persist_dir"),
    ("exit-command", None, "str", "exit_command"), ("exit-command-arg", None, "list", "exit_command_args"),
    ("exit-delay", None, "int", "exit_delay"),
    ("log-path", "l", "list", "log_paths"), ("log-level", None, "str", "log_level"),
    ("log-size-max", None, "int", "log_size_max"), ("log-max-files", None, "int", "log_max_files"),
    ("log-rotate", None, "bool", "log_rotate"), ("log-global-size-max", None, "int", "log_global_size_max"),
    ("log-tag", None, "str", "log_tag"), ("log-label", None, "list", "log_labels"),
    ("no-sync-log", None, "bool", "no_sync_log"), ("syslog", None, "bool", "syslog"),
    ("terminal", "t", "bool", "terminal"), ("stdin", "i", "bool", "stdin"),
    ("leave-stdin-open", None, "bool", "leave_stdin_open"), ("socket-dir-path", None, "str", "socket_dir_path"),
    ("full-attach", None, "bool", "full_attach"), ("detach-keys", None, "str", "detach_keys"),
    ("exec", "e", "bool", "exec_"), ("exec-process-spec", None, "str", "exec_process_spec"),
    ("exec-attach", None, "bool", "exec_attach"),
    ("sync", None, "bool", "sync"), ("timeout", "T", "int", "timeout"), ("version", None, "bool", "version"),
    ("sdnotify-socket", None, "str", "sdnotify_socket"), ("replace-listen-pid", None, "bool", "replace_listen_pid"),
    ("help", "h", "bool", "help"),
]
_LONG = {f[0]: f for f in FLAGS}
_SHORT = {f[1]: f for f in FLAGS if f[1]}
LOG_DRIVERS = ("k8s-file", "json-file", "passthrough", "none", "off", "null")

USAGE = """usage: pyrunc-shim -c ID -r RUNTIME -b BUNDLE [options]
A conmon-like monitor for one container (or one exec): runs `RUNTIME create` (or exec), then, in
the background (or in the foreground with --sync) until the process exits: writes its output to
logs, serves the attach socket, resizes its terminal, records its exit status.
  -c/--cid ID  -u/--cuuid UUID  -n/--name NAME  --api-version N
  -r/--runtime PATH  -b/--bundle DIR  -p/--container-pidfile F  -P/--conmon-pidfile F
  --runtime-arg A (before the verb, e.g. --root)  --runtime-opt A (after it)
  -s/--systemd-cgroup  --no-pivot  --no-new-keyring
  --exit-dir DIR  -0/--persist-dir DIR  --exit-command PATH  --exit-command-arg A  --exit-delay S
  -l/--log-path [k8s-file:|json-file:]PATH (repeatable; passthrough, none)  --log-size-max BYTES
  --log-max-files N (rotation keeps N files; 1, the default, truncates as conmon)  --no-sync-log
  -t/--terminal  -i/--stdin  --leave-stdin-open  --socket-dir-path DIR  --full-attach
  --detach-keys KEYS (default ctrl-p,ctrl-q; "" disables)
  -e/--exec  --exec-process-spec FILE  --sync  -T/--timeout SECONDS  --version
Environment: _OCI_SYNCPIPE (fd: {"data": pid} once created; the exit code after an exec),
_OCI_STARTPIPE (fd: one read before anything is forked)."""


# podman (containers/common's probeConmon) trusts a conmon only when the first line of --version
# matches `^conmon version (\d+).(\d+).(\d+)` at 2.0.1 or later, else it falls back to the conmon on
# PATH. The contract spoken here is conmon 2.1's: say that version first, then who we really are.
CONMON_VERSION = "2.1.6"


def version_text():
    from pyrunc_shim import __version__
    return f"conmon version {CONMON_VERSION}\npyrunc-shim version {__version__} (conmon's command line)"


class UsageError(Exception):
    pass


class Options:
    def __init__(self):
        for long, _s, kind, attr in FLAGS:
            setattr(self, attr, [] if kind == "list" else (False if kind == "bool" else None))
        self.api_version = 0
        self.exit_delay = 0
        self.log_size_max = -1
        self.log_max_files = 1
        self.timeout = 0
        self.detach_keys = None

    def logs(self):
        """--log-path values -> [(driver, path)]; a bare path is k8s-file, as conmon."""
        out = []
        for v in self.log_paths:
            driver, sep, path = v.partition(":")
            if not sep:
                driver, path = ("k8s-file", v) if v not in LOG_DRIVERS else (v, "")
            if driver not in LOG_DRIVERS:
                if driver == "journald":
                    raise UsageError("--log-path journald: not supported (k8s-file, json-file, passthrough, none)")
                raise UsageError(f"--log-path {v!r}: unknown driver {driver!r} (k8s-file, json-file, "
                                 f"passthrough, none)")
            if driver in ("k8s-file", "json-file") and not path:
                raise UsageError(f"--log-path {v!r}: {driver} needs a path")
            out.append((driver, path))
        return out


def parse(argv):
    o = Options()
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            rest += argv[i:]
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            f = _LONG.get(name)
            if f is None:
                raise UsageError(f"unknown flag {a}")
            has = bool(eq)
        elif a.startswith("-") and len(a) > 1:
            f = _SHORT.get(a[1])
            if f is None:
                raise UsageError(f"unknown flag {a}")
            val, has = a[2:], len(a) > 2
        else:
            rest.append(a)
            continue
        long, _s, kind, attr = f
        if kind == "bool":
            if has and val.lower() not in ("true", "false", "1", "0"):
                raise UsageError(f"--{long}: expected no value or true/false, got {val!r}")
            setattr(o, attr, not has or val.lower() in ("true", "1"))
            continue
        if not has:
            if i >= len(argv):
                raise UsageError(f"--{long} needs a value")
            val = argv[i]
            i += 1
        if kind == "int":
            try:
                val = int(val)
            except ValueError:
                raise UsageError(f"--{long}: {val!r} is not an integer") from None
        if kind == "list":
            getattr(o, attr).append(val)
        else:
            setattr(o, attr, val)
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    if o.help or o.version:
        return o
    for flag, attr in (("--cid", "cid"), ("--runtime", "runtime"), ("--bundle", "bundle")):
        if not getattr(o, attr):
            raise UsageError(f"{flag} is required")
    if o.exec_ and not o.exec_process_spec:
        raise UsageError("--exec needs --exec-process-spec")
    if o.log_max_files < 1:
        raise UsageError(f"--log-max-files: {o.log_max_files} (at least 1)")
    if o.log_rotate and o.log_max_files == 1:
        o.log_max_files = 2
    o.logs()  # driver errors before anything is forked
    return o
