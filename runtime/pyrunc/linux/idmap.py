"""Idmapped bind mounts (runtime-spec: a mount's uidMappings/gidMappings, options idmap/ridmap).

The kernel only lets a process with CAP_SYS_ADMIN over the source filesystem's user namespace (the
host's, for host paths) idmap a mount, and only while the mount is detached. So the runtime does it
before spawning init: open_tree(OPEN_TREE_CLONE) makes a detached copy of the source,
mount_setattr(MOUNT_ATTR_IDMAP) attaches a user namespace carrying the mapping, and init, after it
has its own mount namespace, places the tree with move_mount onto the destination resolved inside
the rootfs (linux/mounts.py). The user namespace comes from a short-lived helper child that
unshares CLONE_NEWUSER and whose maps the runtime writes; its /proc/<pid>/ns/user fd keeps the
namespace alive after the helper is gone.

A mapping maps the filesystem's ids (containerID) to the ids the mount shows (hostID), exactly as
a user namespace maps its ids to its parent's: with {"containerID": 1000, "hostID": 100000} a file
owned by uid 1000 on disk belongs to kuid 100000 through the mount, which is root in a container
whose user namespace maps 0 -> 100000; a file that root creates there is written as uid 1000.
"""
import os

from pyrunc.errors import InvalidSpec, StepError

_OPTIONS = ("idmap", "ridmap")


def _is_idmapped(entry):
    options = entry.get("options") or ()
    return bool(entry.get("uidMappings") or entry.get("gidMappings")
                or any(o in _OPTIONS for o in options))


def needed(config):
    return any(_is_idmapped(m) for m in config.get("mounts") or ())


class Request:
    """One idmapped mount: config index, host source, whether the tree and the idmap are recursive,
    and where the mapping comes from (("maps", uid, gid) or ("userns", path))."""

    def __init__(self, index, source, recursive_tree, recursive_idmap, mapping):
        self.index, self.source = index, source
        self.recursive_tree, self.recursive_idmap = recursive_tree, recursive_idmap
        self.mapping = mapping


def plan(config, bundle):
    """Pure: the idmapped mounts of config, validated. Raises InvalidSpec naming the mount."""
    linux = config.get("linux") or {}
    userns = next((ns for ns in linux.get("namespaces") or () if ns.get("type") == "user"), None)
    requests = []
    for i, entry in enumerate(config.get("mounts") or ()):
        if not _is_idmapped(entry):
            continue
        where = f"mounts[{i}]"
        options = entry.get("options") or ()
        uid, gid = entry.get("uidMappings"), entry.get("gidMappings")
        if bool(uid) != bool(gid):
            raise InvalidSpec(where, "idmapped mounts need both uidMappings and gidMappings")
        if not ("bind" in options or "rbind" in options or entry.get("type") == "bind"):
            raise InvalidSpec(where, "idmap and ridmap are supported on bind mounts only")
        if uid:
            mapping = ("maps", uid, gid)
        elif userns is not None and userns.get("path"):
            mapping = ("userns", userns["path"])
        elif userns is not None and linux.get("uidMappings") and linux.get("gidMappings"):
            mapping = ("maps", linux["uidMappings"], linux["gidMappings"])
        else:
            raise InvalidSpec(where, "idmap needs uidMappings and gidMappings on the mount or a user "
                                     "namespace with mappings for the container")
        for field, maps in (("uidMappings", mapping[1]), ("gidMappings", mapping[2])) if uid else ():
            for j, m in enumerate(maps):
                if m.get("size", 0) <= 0:
                    raise InvalidSpec(f"{where}.{field}[{j}].size", "must be positive")
        source = entry.get("source") or ""
        if not os.path.isabs(source):
            source = os.path.join(bundle, source)
        requests.append(Request(i, source, "rbind" in options, "ridmap" in options, mapping))
    return requests


def prepare(config, bundle):
    """The detached idmapped trees, {mount index: fd}; the caller closes them (close_all)."""
    requests = plan(config, bundle)
    trees, namespaces = {}, {}
    try:
        for request in requests:
            key = repr(request.mapping)
            if key not in namespaces:
                namespaces[key] = _userns_fd(request)
            trees[request.index] = _idmapped_tree(request, namespaces[key])
    except BaseException:
        close_all(trees)
        raise
    finally:
        close_all(namespaces)
    return trees


def close_all(fds):
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass


def _idmapped_tree(request, userns_fd):
    from pyrunc.sys import consts as c
    from pyrunc.sys.calls import mount_setattr, open_tree
    flags = c.OPEN_TREE_CLONE | c.OPEN_TREE_CLOEXEC | (c.AT_RECURSIVE if request.recursive_tree else 0)
    try:
        fd = open_tree(-100, request.source, flags)  # AT_FDCWD: source is absolute
    except OSError as e:
        raise StepError("idmapped mount: open source", request.source, e) from None
    try:
        mount_setattr(fd, "", c.AT_EMPTY_PATH | (c.AT_RECURSIVE if request.recursive_idmap else 0),
                      c.MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    except OSError as e:
        os.close(fd)
        e.filename = None
        raise StepError("idmapped mount: set the mapping on", request.source, e) from None
    return fd


def _userns_fd(request):
    if request.mapping[0] == "userns":
        path = request.mapping[1]
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise StepError("idmapped mount: open user namespace", path, e) from None
    _, uid, gid = request.mapping
    return mapped_userns(uid, gid)


def mapped_userns(uid_mappings, gid_mappings):
    """An fd of a fresh user namespace with these mappings (made by a helper child, then reaped)."""
    from pyrunc.linux.userns import format_mappings, write_map
    from pyrunc.sys import consts as c
    from pyrunc.sys.calls import unshare
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            unshare(c.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # EOF when the runtime has the namespace (or died)
            status = 0
        finally:
            os._exit(status)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise StepError("idmapped mount: create user namespace", None, "helper process failed")
        write_map(f"/proc/{pid}/uid_map", format_mappings(uid_mappings))
        write_map(f"/proc/{pid}/gid_map", format_mappings(gid_mappings))
        try:
            return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise StepError("idmapped mount: open user namespace", f"/proc/{pid}/ns/user", e) from None
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
