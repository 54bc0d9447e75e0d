"""The device cgroup's state after an ordered list of allow/deny rules (pure), as the kernel's v1
devices controller computes it and runc's devices emulator models it.

The state is a default (allow or deny everything) plus exceptions of the opposite verdict, keyed by
(type, major, minor) with None as the wildcard. Replaying rules in order: a rule of type "a" resets
the state to its verdict with no exceptions; a rule of the other verdict adds its access to the
exception of exactly that key; a rule of the default's verdict takes its access away from exactly
that key. Taking access from a key that a wildcard exception also covers cannot be said to the
kernel (it has no holes in wildcards): refused, as runc refuses it.

v1 writes the state (devices.allow/deny), v2 compiles it to BPF (devicefilter.py), systemd turns it
into DeviceAllow= (systemd.py): all three enforce one decision.
"""
from ..errors import InvalidSpec

WHERE = "linux.resources.devices"


class DeviceState:
    def __init__(self, default_allow=False, exceptions=None):
        self.default_allow = default_allow
        self.exceptions = dict(exceptions or {})  # (type, major, minor) -> access letters, "rwm" order

    def __eq__(self, other):
        return (self.default_allow, self.exceptions) == (other.default_allow, other.exceptions)

    def __repr__(self):
        return f"DeviceState(default_allow={self.default_allow}, exceptions={self.exceptions})"

    def ordered(self):
        """Exceptions in runc's order (major, minor, type; wildcards first): [(key, access)]."""
        def order(item):
            (kind, major, minor), _ = item
            return (-1 if major is None else major, -1 if minor is None else minor, kind)
        return sorted(self.exceptions.items(), key=order)

    def allows(self, kind, major, minor, access):
        """The kernel's v1 check: on a deny-by-default cgroup one exception must cover the whole
        request; on an allow-by-default one no exception may overlap it at all."""
        for (ekind, emajor, eminor), eaccess in self.exceptions.items():
            if ekind != kind or emajor not in (None, major) or eminor not in (None, minor):
                continue
            if self.default_allow and set(access) & set(eaccess):
                return False
            if not self.default_allow and set(access) <= set(eaccess):
                return True
        return self.default_allow


def _letters(access):
    return "".join(p for p in "rwm" if p in access)


def emulate(rules, start=None):
    """The DeviceState after `rules` (resources.device_rules() dicts, in order) on top of `start`
    (default: a fresh deny-all state, as runc's emulator starts)."""
    state = DeviceState() if start is None else DeviceState(start.default_allow, start.exceptions)
    for rule in rules:
        if rule["type"] == "a":
            state = DeviceState(bool(rule["allow"]))
            continue
        key = (rule["type"], rule["major"], rule["minor"])
        access = set(rule["access"])
        if bool(rule["allow"]) != state.default_allow:
            state.exceptions[key] = _letters(access | set(state.exceptions.get(key, "")))
            continue
        kind, major, minor = key
        for wider in ((kind, None, minor), (kind, major, None), (kind, None, None)):
            if wider != key and access & set(state.exceptions.get(wider, "")):
                raise InvalidSpec(WHERE, f"{_describe(rule)} cannot be applied: it would punch a hole in "
                                         f"the wildcard rule {_line(wider, state.exceptions[wider])} "
                                         f"(not supported by the devices cgroup)")
        left = _letters(set(state.exceptions.get(key, "")) - access)
        if left:
            state.exceptions[key] = left
        else:
            state.exceptions.pop(key, None)
    return state


def _line(key, access):
    kind, major, minor = key
    return f"{kind} {'*' if major is None else major}:{'*' if minor is None else minor} {access}"


def _describe(rule):
    verdict = "allow" if rule["allow"] else "deny"
    return f"{verdict} {_line((rule['type'], rule['major'], rule['minor']), rule['access'])!r}"


def v1_writes(state):
    """[(file, line)] that give a v1 devices cgroup exactly `state`: reset, then the exceptions."""
    reset = "devices.allow" if state.default_allow else "devices.deny"
    exception = "devices.deny" if state.default_allow else "devices.allow"
    return [(reset, "a *:* rwm")] + [(exception, _line(key, access)) for key, access in state.ordered()]
