"""Where a container's files are, for diff, cp, commit and export:

    upper      its own layer (overlay2/<mount id>/diff): what the container changed
    lowers     the image's layer dirs, uppermost first
    a view     the tree a command reads or writes, given to a function as a root path:
               running: /proc/<pid>/root (the container's own mounts, volumes included: `cp`)
                        or the merged overlay pyctr mounted (no volumes: `export`)
               stopped: an overlay mounted in a private mount namespace (fs/privatens.py), with
                        the volumes bound in for `cp`; it vanishes with the helper process

Stopped containers are worked on under their lock, so a `start` cannot mount the same upper layer
while a `cp` writes into it."""
import os

from pyctr.container.errors import CommandError

# What the runtime and pyctr create in a container's upper layer as mount targets. Docker keeps
# these in a hidden init layer, podman filters them (libpod/diff.go): neither `diff` nor `commit`
# shows them while they are empty stubs.
STUBS = ("/dev", "/proc", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm", "/dev/pts",
         "/dev/mqueue", "/dev/console", "/sys/fs/cgroup", "/.dockerenv", "/run/.containerenv", "/etc/mtab")


def _abs(path):
    """The absolute, normal form of a container path (normpath keeps a leading '//')."""
    return os.path.normpath("/" + path.lstrip("/"))


class ContainerFS:
    def __init__(self, ctx, rec):
        from pyctr.container import state
        self.ctx, self.rec = ctx, rec
        mount_id = rec.get("MountId")
        if not mount_id:
            raise CommandError(f"container {rec['Id'][:12]}: it has no filesystem layer")
        overlay = ctx.images.overlay
        self.mount_id = mount_id
        self.upper = overlay.diff(mount_id)
        self.work = os.path.join(overlay.dir(mount_id), "work")
        self.lowers = overlay.lowerdirs(mount_id)
        if not os.path.isdir(self.upper):
            raise CommandError(f"container {rec['Id'][:12]}: its filesystem layer is missing")
        st = state.derive(ctx.containers, rec, ctx.runtime(rec))
        self.running = st.status in ("running", "paused")
        self.pid = st.pid if self.running else 0

    def stubs(self):
        """Mount targets to leave out of diff and commit: the usual stubs and this container's
        volume, bind and tmpfs destinations."""
        out = set(STUBS)
        for m in self.rec.get("Mounts") or []:
            out.add(_abs(m["Destination"]))
        for dst in (self.rec.get("HostConfig") or {}).get("Tmpfs") or {}:
            out.add(_abs(dst))
        return out

    def volume_binds(self):
        """(destination, source dir) of the container's volumes and binds, shortest first."""
        out = []
        for m in self.rec.get("Mounts") or []:
            if m.get("Type") in ("volume", "bind") and m.get("Source"):
                out.append((_abs(m["Destination"]), m["Source"]))
        return sorted(out, key=lambda b: len(b[0]))

    # --- views ----------------------------------------------------------------------------------------
    def run_in_lowers(self, fn):
        """fn(root) on the image's tree under the container (what its upper layer changed)."""
        if len(self.lowers) == 1:
            return fn(self.lowers[0])
        return self._private(lambda target: (_mount_overlay(target, self.lowers, read_only=True), fn(target))[1])

    def run_in_merged(self, fn):
        """fn(root) on the container's own filesystem without its volumes (export)."""
        if self.running:
            merged = os.path.join(self.ctx.containers.dir(self.rec["Id"]), "bundle", "rootfs")
            return fn(merged)
        return self._private(lambda target: (_mount_overlay(target, [self.upper] + self.lowers, read_only=True),
                                             fn(target))[1])

    def run_in_container(self, fn, write=False):
        """fn(root) on what the container sees at its paths, volumes and binds included (cp)."""
        if self.running:
            return fn(f"/proc/{self.pid}/root")

        def mounted(target):
            if write:
                _mount_overlay(target, self.lowers, upper=self.upper, work=self.work)
            else:
                _mount_overlay(target, [self.upper] + self.lowers, read_only=True)
            _bind_volumes(target, self.volume_binds())
            return fn(target)
        if write:
            with self.ctx.containers.container_lock(self.rec["Id"]):
                return self._private(mounted)
        return self._private(mounted)

    def _private(self, fn):
        from pyctr.fs.privatens import run_private
        # one mount point per command: removing a directory another namespace mounts on would
        # detach that mount under a concurrent command's feet
        target = os.path.join(self.ctx.containers.dir(self.rec["Id"]), f"view-{os.getpid()}")
        os.makedirs(target, mode=0o700, exist_ok=True)
        try:
            return run_private(lambda: fn(target))
        finally:
            try:
                os.rmdir(target)
            except OSError:
                pass


def _mount_overlay(target, lowers, upper=None, work=None, read_only=False):
    from pyrunc.sys import calls, consts
    if len(lowers) == 1 and upper is None:
        calls.mount(lowers[0], target, "", consts.MS_BIND | consts.MS_REC, None)
        if read_only:
            calls.mount("", target, "", consts.MS_BIND | consts.MS_REMOUNT | consts.MS_RDONLY, None)
        return
    data = "index=off,lowerdir=" + ":".join(lowers)
    if upper:
        data += f",upperdir={upper},workdir={work}"
    if len(data) >= os.sysconf("SC_PAGE_SIZE"):
        raise CommandError(f"overlay mount options exceed one page ({len(data)} bytes)")
    calls.mount("overlay", target, "overlay", consts.MS_RDONLY if read_only else 0, data)


def _bind_volumes(target, binds):
    """Bind each volume at its destination inside target, the destination resolved inside target
    (a symlink in the container cannot send the bind to the host's tree)."""
    from pyctr.fs.resolve import open_in_root
    from pyrunc.sys import calls, consts
    for dst, src in binds:
        try:
            fd = open_in_root(target, dst, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            continue   # not a directory in the container: the runtime would have failed too
        try:
            calls.mount(src, f"/proc/self/fd/{fd}", "", consts.MS_BIND | consts.MS_REC, None)
        finally:
            os.close(fd)
