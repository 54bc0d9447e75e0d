"""A stand-in for systemd's manager on a private D-Bus bus, for the --systemd-cgroup tests.

pid 1 here is not systemd, so this plays its part for the calls a runtime makes:
StartTransientUnit (scopes: really makes the scope's cgroup, and its slices, in the hierarchies
systemd manages on this kind of host and moves the PIDs in; slices: makes the directory),
StopUnit (kills what is left in the scope, removes its cgroups and the slices it made once empty),
GetUnit, ResetFailedUnit, SetUnitProperties, Subscribe, Properties.Get(Version), and the
JobRemoved signal after each job. Every call is recorded; the test reads the record with
org.pyrunc.Test.Calls() (a JSON string).

Usage: python3 fake_systemd.py   (DBUS_SYSTEM_BUS_ADDRESS names the bus); prints "ready" once it
owns org.freedesktop.systemd1; SIGTERM stops it after removing whatever it still had made.
"""
import json
import os
import signal
import sys
import time

from jeepney import (DBusAddress, HeaderFields, MessageType, new_error, new_method_return,
                     new_signal)
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

SYSTEMD = "org.freedesktop.systemd1"
OBJECT = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
# What systemd manages on a v1/hybrid host: it leaves cpuset, freezer, net_cls, ... to the runtime.
MANAGED_V1 = {"name=systemd", "memory", "cpu", "cpuacct", "blkio", "devices", "pids"}


def hierarchies():
    """[(mountpoint, keys)] of the cgroup mounts; "" is the v2 hierarchy."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if fields[3] != "/" or not rfields:
                continue
            if rfields[0] == "cgroup2":
                found.append((fields[4], [""]))
            elif rfields[0] == "cgroup":
                opts = rfields[2].split(",")
                keys = [o for o in opts if o.startswith("name=") or o in MANAGED_V1 or o in (
                    "cpuset", "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc")]
                found.append((fields[4], keys))
    return found


def expand_slice(name):
    stem = name[:-len(".slice")]
    if stem == "-":
        return ""
    path, prefix = "", ""
    for part in stem.split("-"):
        path += "/" + prefix + part + ".slice"
        prefix += part + "-"
    return path


class Fake:
    def __init__(self, conn):
        self.conn = conn
        self.units = {}   # name -> {"dirs": [...], "props": {...}}
        self.made_slices = []  # slice dirs we made, deepest last
        self.calls = []
        self.jobs = 0
        self.hier = hierarchies()

    def managed(self):
        for mountpoint, keys in self.hier:
            if "" in keys or any(k in MANAGED_V1 for k in keys):
                yield mountpoint

    def job_done(self, unit, result="done"):
        self.jobs += 1
        path = f"{OBJECT}/job/{self.jobs}"
        return path, (self.jobs, path, unit, result)

    def emit_job_removed(self, body):
        emitter = DBusAddress(OBJECT, interface=MANAGER)
        self.conn.send(new_signal(emitter, "JobRemoved", "uoss", body))

    # --- methods ---------------------------------------------------------------------------------

    def StartTransientUnit(self, name, mode, props, aux):
        if name in self.units:
            raise DBusFail(f"{SYSTEMD}.UnitExists", f"Unit {name} was already loaded or has a fragment file.")
        props = {k: v[1] for k, v in props}
        if name.endswith(".scope"):
            if not props.get("PIDs"):
                raise DBusFail("org.freedesktop.DBus.Error.InvalidArgs", "No PIDs specified, refusing.")
            slice_name = props.get("Slice", "system.slice")
        else:
            slice_name = (props.get("Wants") or ["-.slice"])[0]
        rel = expand_slice(slice_name) + "/" + name
        dirs = []
        for mp in self.managed():
            level = mp
            for part in rel.strip("/").split("/"):
                level = os.path.join(level, part)
                if not os.path.isdir(level):
                    os.mkdir(level)
                    if part.endswith(".slice") and part != name:
                        self.made_slices.append(level)
            dirs.append(level)
            for pid in props.get("PIDs") or ():
                with open(os.path.join(level, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
        self.units[name] = {"dirs": dirs, "props": props}
        path, signal_body = self.job_done(name)
        return ("o", (path,)), signal_body

    def StopUnit(self, name, mode):
        unit = self.units.pop(name, None)
        if unit is None:
            raise DBusFail(f"{SYSTEMD}.NoSuchUnit", f"Unit {name} not loaded.")
        # systemd's stop of a scope: SIGTERM, then SIGKILL what is left, then remove the cgroups.
        for d in unit["dirs"]:
            kill_tree(d)
        self.remove_empty_slices()
        path, signal_body = self.job_done(name)
        return ("o", (path,)), signal_body

    def GetUnit(self, name):
        if name not in self.units:
            raise DBusFail(f"{SYSTEMD}.NoSuchUnit", f"Unit {name} not loaded.")
        return ("o", (f"{OBJECT}/unit/{name.replace('.', '_2e').replace('-', '_2d')}",)), None

    def ResetFailedUnit(self, name):
        if name not in self.units:
            raise DBusFail(f"{SYSTEMD}.NoSuchUnit", f"Unit {name} not loaded.")
        return ("", ()), None

    def SetUnitProperties(self, name, runtime, props):
        if name not in self.units:
            raise DBusFail(f"{SYSTEMD}.NoSuchUnit", f"Unit {name} not loaded.")
        self.units[name]["props"].update({k: v[1] for k, v in props})
        return ("", ()), None

    def Subscribe(self):
        return ("", ()), None

    def Get(self, interface, prop):
        if (interface, prop) == (MANAGER, "Version"):
            return ("v", (("s", "252 (fake)"),)), None
        raise DBusFail("org.freedesktop.DBus.Error.UnknownProperty", f"no property {prop}")

    def Calls(self):
        return ("s", (json.dumps({"calls": self.calls, "units": sorted(self.units)}),)), None

    def remove_empty_slices(self):
        for d in sorted(self.made_slices, key=len, reverse=True):
            try:
                os.rmdir(d)
                self.made_slices.remove(d)
            except OSError:
                pass  # still holds another unit

    def shutdown(self):
        for unit in self.units.values():
            for d in unit["dirs"]:
                kill_tree(d)
        self.units = {}
        self.remove_empty_slices()


class DBusFail(Exception):
    def __init__(self, name, text):
        super().__init__(text)
        self.name, self.text = name, text


def kill_tree(d):
    deadline = time.monotonic() + 10
    while os.path.isdir(d):
        for dirpath, dirnames, files in os.walk(d, topdown=False):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.01)


def _jsonable(value):
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def main():
    conn = open_dbus_connection(bus="SYSTEM")
    reply = conn.send_and_get_reply(message_bus.RequestName(SYSTEMD, 4))  # DO_NOT_QUEUE
    if reply.body[0] != 1:
        sys.exit(f"could not own {SYSTEMD}: {reply.body}")
    fake = Fake(conn)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    print("ready", flush=True)
    while not stopping:
        try:
            msg = conn.receive(timeout=0.2)
        except TimeoutError:
            continue
        except InterruptedError:
            continue
        if msg.header.message_type != MessageType.method_call:
            continue
        member = msg.header.fields.get(HeaderFields.member)
        method = getattr(fake, member, None) if member and member[0].isupper() else None
        if member != "Calls":
            fake.calls.append({"method": member, "body": _jsonable(list(msg.body))})
        after = None
        try:
            if method is None:
                raise DBusFail("org.freedesktop.DBus.Error.UnknownMethod", f"no method {member}")
            (sig, body), after = method(*msg.body)
            conn.send(new_method_return(msg, sig, body))
        except DBusFail as e:
            conn.send(new_error(msg, e.name, "s", (e.text,)))
        except Exception as e:  # an unexpected failure must reach the test, not hang it
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.Failed", "s", (f"{type(e).__name__}: {e}",)))
        if after is not None:
            fake.emit_job_removed(after)
    fake.shutdown()


if __name__ == "__main__":
    main()
