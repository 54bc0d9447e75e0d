"""linux.personality: the execution domain (personality(2)) the container's process runs under."""
from pyrunc.errors import StepError

PER_LINUX, PER_LINUX32 = 0x0000, 0x0008
DOMAINS = {"LINUX": PER_LINUX, "LINUX32": PER_LINUX32}


def apply(personality):
    if not personality:
        return
    domain = personality.get("domain", "LINUX")
    if domain not in DOMAINS:
        raise StepError("linux.personality.domain", repr(domain), "unknown execution domain")
    if personality.get("flags"):
        # The spec defines no flag values yet (runc rejects them too).
        raise StepError("linux.personality.flags", repr(personality["flags"]), "flags are not supported")
    from pyrunc.sys.calls import personality as set_personality
    try:
        set_personality(DOMAINS[domain])
    except OSError as e:
        raise StepError("set personality", domain, e) from None
