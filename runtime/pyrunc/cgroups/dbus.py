"""Talking to systemd's manager over D-Bus, for the systemd cgroup driver (systemd.py).

jeepney (pure Python, no C extension, no threads) speaks the wire protocol in-process: one
connection subscribes to JobRemoved *before* StartTransientUnit/StopUnit is sent, so the job's end
can never be missed, which a busctl subprocess per call could not do. It is imported here only,
and this module only with --systemd-cgroup.

The bus is the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the standard socket), as go-systemd (and
so runc) uses it. Message bodies are built by the pure *_call() functions, unit-tested as such.
"""
from ..errors import StepError

SYSTEMD = "org.freedesktop.systemd1"
OBJECT = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"

# runc waits 30 s for systemd to finish a job.
JOB_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0

NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"


class DBusError(Exception):
    """An error reply: name (e.g. org.freedesktop.systemd1.NoSuchUnit) and systemd's message."""

    def __init__(self, name, message):
        super().__init__(f"{message} ({name})" if message else name)
        self.name, self.message = name, message


# --- pure: (method, signature, body) of each call ------------------------------------------------

def start_transient_unit_call(unit, properties):
    """properties: [(name, (dbus signature, value))], e.g. ("PIDs", ("au", [1234]))."""
    return "StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", list(properties), [])


def stop_unit_call(unit):
    return "StopUnit", "ss", (unit, "replace")


def reset_failed_unit_call(unit):
    return "ResetFailedUnit", "s", (unit,)


def get_unit_call(unit):
    return "GetUnit", "s", (unit,)


def set_unit_properties_call(unit, properties):
    # runtime=True: the change lives until the unit goes, like the transient unit itself.
    return "SetUnitProperties", "sba(sv)", (unit, True, list(properties))


def parse_version(text):
    """Manager.Version ("252 (252.22-1~deb12u1)", "v255") -> 252; 0 when unreadable."""
    digits = ""
    for ch in text.lstrip("v"):
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


# --- the connection ------------------------------------------------------------------------------

def bus_address():
    import os
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/var/run/dbus/system_bus_socket"


class Systemd:
    """A connection to systemd's manager; use as a context manager."""

    def __init__(self):
        from jeepney.io.blocking import open_dbus_connection
        try:
            self.conn = open_dbus_connection(bus="SYSTEM", auth_timeout=5.0)
        except (OSError, ValueError, RuntimeError) as exc:
            raise StepError("connect to systemd over D-Bus", bus_address(), exc) from None
        self._version = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()

    def call(self, method, signature, body, interface=MANAGER):
        from jeepney import DBusAddress, MessageType, new_method_call
        from jeepney.low_level import HeaderFields

        msg = new_method_call(DBusAddress(OBJECT, SYSTEMD, interface), method, signature, body)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=CALL_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise StepError(f"call systemd {method}", bus_address(), exc) from None
        if reply.header.message_type == MessageType.error:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DBusError(reply.header.fields.get(HeaderFields.error_name, "?"), text)
        return reply.body

    def version(self):
        if self._version is None:
            try:
                (sig_value,) = self.call("Get", "ss", (MANAGER, "Version"),
                                         interface="org.freedesktop.DBus.Properties")
                self._version = parse_version(sig_value[1])
            except DBusError:
                self._version = 0
        return self._version

    def _job(self, what, unit, method, signature, body):
        """Run a job-returning call and wait for its JobRemoved; returns the job's result string."""
        from collections import deque

        from jeepney import MatchRule, message_bus

        # The bus resolves the well-known sender name; signals arrive from systemd's unique name,
        # so the local filter cannot name the sender.
        bus_rule = MatchRule(type="signal", sender=SYSTEMD, path=OBJECT, interface=MANAGER,
                             member="JobRemoved")
        local_rule = MatchRule(type="signal", path=OBJECT, interface=MANAGER, member="JobRemoved")
        queue = deque()
        with self.conn.filter(local_rule, queue=queue):
            self.conn.send_and_get_reply(message_bus.AddMatch(bus_rule), timeout=CALL_TIMEOUT)
            try:
                self.call("Subscribe", "", ())  # systemd sends job signals only to subscribers
            except DBusError:
                pass  # "already subscribed" and the like: the signal still comes
            (job,) = self.call(method, signature, body)
            import time
            deadline = time.monotonic() + JOB_TIMEOUT
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise TimeoutError
                    msg = self.conn.recv_until_filtered(queue, timeout=left)
                except (TimeoutError, OSError) as exc:
                    raise StepError(what, unit, f"systemd job {job} did not finish "
                                    f"in {JOB_TIMEOUT:g}s ({exc or 'timeout'})") from None
                _id, path, _unit, result = msg.body
                if path == job:
                    return result

    def start_transient_unit(self, unit, properties, ignore_exists=False):
        """Start the unit and wait until systemd has done it (runc's startUnit)."""
        call = start_transient_unit_call(unit, properties)
        try:
            result = self._job("start systemd unit", unit, *call)
        except DBusError as exc:
            if exc.name != UNIT_EXISTS:
                raise StepError("start systemd unit", unit, exc) from None
            if ignore_exists:
                return  # a slice that is already there is what was asked for
            # A leftover failed unit of the same name: have systemd forget it and try once more.
            self.reset_failed(unit)
            try:
                result = self._job("start systemd unit", unit, *call)
            except DBusError as exc2:
                why = ("already exists (another container with this cgroupsPath?)"
                       if exc2.name == UNIT_EXISTS else exc2)
                raise StepError("start systemd unit", unit, why) from None
        if result != "done":
            self.reset_failed(unit)
            raise StepError("start systemd unit", unit, f"systemd job result {result!r}")

    def stop_unit(self, unit):
        """Stop the unit and wait; a unit systemd no longer has (it stops an emptied scope by
        itself) is already what we want."""
        try:
            self._job("stop systemd unit", unit, *stop_unit_call(unit))
        except DBusError as exc:
            if exc.name != NO_SUCH_UNIT:
                raise StepError("stop systemd unit", unit, exc) from None
        self.reset_failed(unit)

    def reset_failed(self, unit):
        try:
            self.call(*reset_failed_unit_call(unit))
        except DBusError:
            pass  # not failed, or gone: nothing to forget

    def set_unit_properties(self, unit, properties):
        try:
            self.call(*set_unit_properties_call(unit, properties))
        except DBusError as exc:
            raise StepError("set systemd unit properties", unit, exc) from None

    def get_unit(self, unit):
        """The unit's object path, or None when systemd has no such unit loaded."""
        try:
            return self.call(*get_unit_call(unit))[0]
        except DBusError as exc:
            if exc.name == NO_SUCH_UNIT:
                return None
            raise StepError("get systemd unit", unit, exc) from None
