#!/usr/bin/env python3
"""`exec ID true` timed side by side: pyrunc against runc and crun, in one run, interleaved.

Usage (as root):  .venv/bin/python3 bench/exec.py [--iterations 30] [--runtimes pyrunc,runc,crun] [--json F]

Built on bench/lifecycle.py and sharing its conventions: the same runtime probing (with its crun
fixups on hybrid cgroups), the same config and busybox rootfs, warmup iterations, the runtime order
rotating each iteration, wall time of one command per sample (perf_counter around subprocess.run,
stdio /dev/null), medians, p90s, ratios of medians, --json with every sample, the same lock file
and cleanup. Each runtime runs one long-lived container (`sleep`, started untimed); a sample is one
foreground `<runtime> --root R exec ID true`, which must exit 0 (and, before timing, `exec ID false`
must give 1, so a runtime that does not really run the process cannot post fast fake numbers).
"""
import fcntl
import json
import os
import platform
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lifecycle as lc  # noqa: E402  (puts the repo and runtime/ on sys.path itself)

OPS = ("exec",)
OP_DOC = {"exec": "wall ms of `RT --root R exec ID true` in a running `sleep` container, stdio /dev/null"}


class ExecRuntime(lc.Runtime):
    def __init__(self, name, binary, workdir):
        super().__init__(name, binary, workdir)
        self.samples = {"exec": []}
        self.cid = None

    def start_container(self):
        """Untimed: the container every exec goes into."""
        cid = self.new_container(("sleep", "100000"))
        self.must("run", "-d", "-b", self.bundle, cid)
        self.cid = cid
        self.must("exec", cid, "false", expect=1)
        self.must("exec", cid, "true")

    def op_exec(self, record):
        dt, _ = self.must("exec", self.cid, "true")
        if record:
            self.samples["exec"].append(dt * 1000)


def report(runtimes, args, wall):
    summaries = {rt.name: {"exec": lc.summarize(rt.samples["exec"])} for rt in runtimes}
    out = ["", "pyrunc exec benchmark: %d iterations (+%d warmup), round-robin, %.0f s wall" % (
        args.iterations, args.warmup, wall),
        "machine: %s, %d CPUs, kernel %s, cgroups %s, python %s" % (
            platform.machine(), os.cpu_count(), platform.release(), lc.cgroup_mode(),
            platform.python_version())]
    for rt in runtimes:
        state = "ok" if rt.ok else ("FAILED at %s" % rt.failed_at if rt.failed_at else "UNAVAILABLE")
        out.append("  %-7s %-28s %s  %s" % (rt.name, rt.binary or "-", rt.version or "", state))
        if rt.error:
            out.append("          error: %s" % rt.error.replace("\n", "\n" + " " * 17))
        out += ["          fixup: %s" % f for f in rt.fixups]
    out.append("")
    out.append("%-20s %s" % ("ms", " ".join("%17s" % rt.name for rt in runtimes)))
    line = "%-20s" % "exec true (median)"
    for rt in runtimes:
        s = summaries[rt.name]["exec"]
        line += " %17s" % ("%7.1f / %6.1f" % (s["median"], s["p90"]) if s else "-")
    out.append(line.replace("(median)", "(med/p90)"))
    ratios = {}
    base = summaries.get("pyrunc", {}).get("exec")
    for rt in runtimes:
        other = summaries[rt.name]["exec"]
        if rt.name != "pyrunc" and base and other:
            ratios["pyrunc/" + rt.name] = base["median"] / other["median"]
            out.append("ratio pyrunc/%s: %.2fx (of medians)" % (rt.name, ratios["pyrunc/" + rt.name]))
    print("\n".join(out), flush=True)
    return summaries, ratios


def main(argv=None):
    args = lc.parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        lc.log("bench/exec.py needs root (containers with namespaces and cgroups)")
        return 2
    lock = open(lc.LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lc.log("another benchmark holds %s; cgroup paths would collide" % lc.LOCK_FILE)
        return 2

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    lc.set_subreaper()
    env = lc.Environment()
    workdir = tempfile.mkdtemp(prefix="pyrunc-bench-exec-", dir=args.workdir)
    binaries = {"pyrunc": args.pyrunc, "runc": args.runc, "crun": args.crun}
    runtimes = [ExecRuntime(n, binaries[n], workdir) for n in args.names]
    status, json_data = 0, None
    t_begin = time.monotonic()
    try:
        env.notes.extend(lc.set_runtime_env(workdir))
        template = lc.make_rootfs(os.path.join(workdir, "rootfs-template"))
        for rt in runtimes:
            rt.setup(template)
        for rt in runtimes:
            lc.log("probing %s (%s) ..." % (rt.name, rt.binary))
            rt.probe(env)
        # Only once every probe is done: a crun fixup on hybrid cgroups remounts controllers.
        for rt in runtimes:
            if rt.ok:
                try:
                    rt.start_container()
                except lc.RuntimeFailed as e:
                    rt.error = str(e)
            if not rt.ok:
                lc.log("  %s unavailable: %s" % (rt.name, rt.error.splitlines()[0][:300]))
        total = args.warmup + args.iterations
        for i in range(total):
            live = [rt for rt in runtimes if rt.ok]
            if not live:
                break
            k = i % len(live)
            for rt in live[k:] + live[:k]:
                try:
                    rt.op_exec(i >= args.warmup)
                except lc.RuntimeFailed as e:
                    rt.error = str(e)
                    rt.failed_at = "iteration %d" % (i + 1)
                    lc.log("%s FAILED at %s, dropping it: %s" % (rt.name, rt.failed_at, e))
            lc.reap_children()
        summaries, ratios = report(runtimes, args, time.monotonic() - t_begin)
        for n in env.notes:
            print("note: " + n)
        if args.json:
            json_data = {
                "iterations": args.iterations, "warmup": args.warmup, "definitions": OP_DOC,
                "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "kernel": platform.release(),
                            "cgroups": lc.cgroup_mode(), "python": platform.python_version()},
                "runtimes": {rt.name: {"binary": rt.binary, "version": rt.version, "available": rt.error is None,
                                       "error": rt.error, "failed_at": rt.failed_at, "fixups": rt.fixups,
                                       "samples_ms": rt.samples, "summary_ms": summaries[rt.name]}
                             for rt in runtimes},
                "ratios_of_medians": {k: {"exec": v} for k, v in ratios.items()},
                "environment_notes": env.notes,
            }
    except KeyboardInterrupt:
        lc.log("interrupted; cleaning up")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lc.cleanup(runtimes, env, workdir)
        try:
            os.unlink(lc.LOCK_FILE)
        except OSError:
            pass
        lock.close()
        if json_data is not None:
            with open(args.json, "w") as f:
                json.dump(json_data, f, indent=2)
            lc.log("wrote %s" % args.json)
    return status


if __name__ == "__main__":
    sys.exit(main())
