"""OOM kills of the container's cgroup: cgroup v1 memory.oom_control through an eventfd registered in
cgroup.event_control; cgroup v2 memory.events' oom_kill counter, polled."""
import os
import threading
import time


def _cgroup_paths(pid):
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def watch(pid, on_oom, log):
    try:
        paths = _cgroup_paths(pid)
    except OSError:
        return
    if "memory" in paths and os.path.isdir("/sys/fs/cgroup/memory"):
        d = "/sys/fs/cgroup/memory" + paths["memory"]
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC)
            ctl = os.open(os.path.join(d, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            with open(os.path.join(d, "cgroup.event_control"), "w") as f:
                f.write(f"{efd} {ctl}")
        except OSError as e:
            log(f"oom watch {d}: {e}")
            return

        def loop():
            try:
                while True:
                    os.eventfd_read(efd)
                    # the eventfd also fires when the cgroup is removed: only a live cgroup had an OOM
                    if not os.path.isdir(d):
                        break
                    on_oom()
            except OSError:
                pass
            finally:
                os.close(efd)
                os.close(ctl)
        threading.Thread(target=loop, daemon=True).start()
        return
    unified = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else None
    if unified and "" in paths:
        events = unified + paths[""] + "/memory.events"

        def poll():
            last = 0
            while True:
                try:
                    with open(events) as f:
                        kv = dict(line.split() for line in f)
                except OSError:
                    return
                n = int(kv.get("oom_kill", 0))
                if n > last:
                    on_oom()
                last = n
                time.sleep(1)
        threading.Thread(target=poll, daemon=True).start()
