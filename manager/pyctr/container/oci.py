"""A container's OCI config.json, built at every start from its record (Config, HostConfig as
`create` stored them), the image config and the mounted rootfs (for USER lookups and WORKDIR)."""
import os
import shutil

from pyctr.container import caps as _caps
from pyctr.container.errors import ContainerError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_BINARIES = ("docker-init", "tini-static", "catatonit")
INIT_PATH = "/sbin/docker-init"
_RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
            "rss", "rtprio", "rttime", "sigpending", "stack", "as"}


def argv_of(config):
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def find_init():
    for name in INIT_BINARIES:
        path = shutil.which(name)
        if path:
            return os.path.realpath(path)
    raise ContainerError("--init: no init binary found on this host (docker-init, tini-static or catatonit); "
                         "install tini or catatonit")


def _mounts(rec, rootfs, ctr_dir, peers):
    from pyrunc.spec.template import default_config
    host = rec["HostConfig"]
    mounts = default_config()["mounts"]
    for m in mounts:
        if m["destination"] == "/dev/shm":
            m["options"] = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        if host.get("Privileged") and m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    for dst, opts in (host.get("Tmpfs") or {}).items():
        options = ["noexec", "nosuid", "nodev"] + [o for o in opts.split(",") if o]
        mounts.append({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": options})
    user_dests = set()
    for m in rec.get("Mounts") or []:
        user_dests.add(m["Destination"])
        if m["Type"] == "tmpfs":
            t = m.get("TmpfsOptions") or {}
            options = ["nosuid", "nodev"] + ([f"size={t['SizeBytes']}"] if t.get("SizeBytes") else []) + \
                      ([f"mode={t['Mode']:o}"] if t.get("Mode") is not None else [])
            mounts.append({"destination": m["Destination"], "type": "tmpfs", "source": "tmpfs",
                           "options": options})
            continue
        src = m["Source"]
        if not os.path.exists(src):
            raise ContainerError(f"error while mounting volume '{m['Destination']}': bind source path does not "
                                 f"exist: {src}")
        options = ["rbind", "rw" if m.get("RW", True) else "ro", m.get("Propagation") or "rprivate"]
        mounts.append({"destination": m["Destination"], "type": "bind", "source": src, "options": options})
    from pyctr.network.files import write_all
    for dst, src in write_all(ctr_dir, rec, peers).items():
        if dst not in user_dests:
            mounts.append({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
    return mounts


def _namespaces(pid_of, rec):
    net = rec["HostConfig"].get("NetworkMode") or "none"
    nss = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if net == "none":
        nss.append({"type": "network"})
    elif net != "host" and not net.startswith("container:"):   # joined: made and wired by network/attach.py
        nss.append({"type": "network", "path": rec["NetworkSettings"]["SandboxKey"]})
    elif net.startswith("container:"):
        pid = pid_of(net[10:])
        nss.append({"type": "network", "path": f"/proc/{pid}/ns/net"})
    return nss


def _resources(host):
    res = {"devices": [{"allow": False, "access": "rwm"}]}
    if host.get("Privileged"):
        res["devices"] = [{"allow": True, "access": "rwm"}]
    if host.get("Memory"):
        res["memory"] = {"limit": host["Memory"]}
    if host.get("NanoCpus"):
        res["cpu"] = {"period": 100000, "quota": host["NanoCpus"] * 100000 // 1000000000}
    res["pids"] = {"limit": host["PidsLimit"] if host.get("PidsLimit") else -1}
    return res


def _devices(host, res):
    devs = []
    for d in host.get("Devices") or []:
        try:
            st = os.stat(d["PathOnHost"])
        except OSError as e:
            raise ContainerError(f"error gathering device information while adding custom device "
                                 f"\"{d['PathOnHost']}\": {e.strerror.lower()}") from None
        import stat
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else None
        if kind is None:
            raise ContainerError(f"error gathering device information while adding custom device "
                                 f"\"{d['PathOnHost']}\": not a device node")
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        devs.append({"path": d["PathInContainer"], "type": kind, "major": major, "minor": minor,
                     "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0})
        res["devices"].append({"allow": True, "type": kind, "major": major, "minor": minor,
                               "access": d["CgroupPermissions"]})
    return devs


def build(rec, rootfs, ctr_dir, pid_of, peers=()):
    """pid_of(NAME) -> the pid of the running container NAME (for --network container:NAME);
    peers: the names on its networks, for its /etc/hosts."""
    from pyctr.image.bundle import resolve_user
    from pyrunc.spec.template import default_config
    cfg, host = rec["Config"], rec["HostConfig"]
    argv = argv_of(cfg)
    if not argv:
        raise ContainerError("no command specified")
    spec = default_config(args=argv, terminal=bool(cfg.get("Tty")))
    proc = spec["process"]
    if host.get("Init"):
        argv = [INIT_PATH, "--"] + argv
        proc["args"] = argv
    # dockerd's order: its PATH and HOSTNAME (and TERM), then the container's Env replacing or appending
    from pyctr.container.options import merge_env
    base = [DEFAULT_PATH, f"HOSTNAME={cfg['Hostname']}"] + (["TERM=xterm"] if cfg.get("Tty") else [])
    env = merge_env(base, list(cfg.get("Env") or []))
    proc["env"] = env
    uid, gid, extra = resolve_user(rootfs, cfg.get("User"))
    # libcontainer's GetExecUser: no supplementary group found -> the primary one
    proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra or [gid]}
    cwd = cfg.get("WorkingDir") or "/"
    if cwd != "/":
        from pyctr.container.rootfs import mkdir_in_root
        mkdir_in_root(rootfs, cwd)  # Docker creates a missing WORKDIR (root-owned)
    proc["cwd"] = cwd
    caps = _caps.effective(host.get("CapAdd"), host.get("CapDrop"), host.get("Privileged"))
    proc["capabilities"] = {"bounding": caps, "effective": list(caps), "permitted": list(caps)}
    proc["noNewPrivileges"] = bool(host.get("NoNewPrivileges"))
    proc["rlimits"] = [{"type": "RLIMIT_" + u["Name"].upper(), "soft": u["Soft"], "hard": u["Hard"]}
                       for u in host.get("Ulimits") or [] if u["Name"] in _RLIMITS]
    bad = [u["Name"] for u in host.get("Ulimits") or [] if u["Name"] not in _RLIMITS]
    if bad:
        raise ContainerError(f"invalid ulimit type: {bad[0]}")
    spec["root"] = {"path": "rootfs", "readonly": bool(host.get("ReadonlyRootfs"))}
    spec["hostname"] = cfg["Hostname"]
    spec["mounts"] = _mounts(rec, rootfs, ctr_dir, peers)
    if host.get("Init"):
        spec["mounts"].append({"destination": INIT_PATH, "type": "bind", "source": find_init(),
                               "options": ["rbind", "ro"]})
    linux = spec["linux"]
    linux["namespaces"] = _namespaces(pid_of, rec)
    if host.get("NetworkMode") == "host":
        spec["hostname"] = os.uname().nodename
    linux["resources"] = _resources(host)
    linux["devices"] = _devices(host, linux["resources"])
    linux["cgroupsPath"] = f"/pyctr/{rec['Id']}"
    if host.get("Privileged"):
        linux.pop("maskedPaths", None)
        linux.pop("readonlyPaths", None)
    else:
        linux["maskedPaths"] += ["/proc/timer_list", "/sys/devices/virtual/powercap"]
        linux["maskedPaths"] = sorted(set(linux["maskedPaths"]))
        from pyctr.container import seccomp
        prof = host.get("Seccomp")
        if prof is None:
            linux["seccomp"] = seccomp.default_profile(caps)
        elif prof != "unconfined":
            linux["seccomp"] = seccomp.from_file(prof, caps)
    annotations = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
    if annotations:
        spec["annotations"] = annotations
    return spec
