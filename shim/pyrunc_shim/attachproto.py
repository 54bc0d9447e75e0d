"""The attach socket's wire format (conmon's) and detach keys (Docker's), shared by the threaded
attach server and the daemonless monitor; pure, no imports beyond builtins.
  - SOCK_SEQPACKET; every output packet is one byte naming the stream (2 stdout, 3 stderr)
    followed by the data; input packets are raw stdin bytes.
  - Detach keys as Docker spells them: "ctrl-p,ctrl-q" (the default), a comma-separated list of
    single characters or ctrl-<a-z@[\\]^_>; a client that types the sequence is let go without
    closing the container's stdin, and the sequence itself never reaches the container."""

STDOUT = 2
STDERR = 3
PACKET = 8192  # stream byte included: what podman's and our clients read at once
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def packets(stream, data):
    """Output data -> the packets that carry it."""
    head = bytes((stream,))
    n = PACKET - 1
    return [head + data[i:i + n] for i in range(0, len(data), n)]


def parse_detach_keys(spec):
    """'ctrl-p,ctrl-q' -> b'\\x10\\x11'; '' -> b'' (detaching disabled). ValueError names the key."""
    out = bytearray()
    if not spec:
        return b""
    for key in spec.split(","):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k))
        elif k.lower().startswith("ctrl-") and len(k) == 6:
            c = k[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
            else:
                raise ValueError(f"detach keys {spec!r}: unknown key {key!r}")
        else:
            raise ValueError(f"detach keys {spec!r}: unknown key {key!r} (a character or ctrl-<a-z@[\\]^_>)")
    return bytes(out)


class DetachMatcher:
    """One attach client's input: feed(data) -> (bytes for the container, detached?). A prefix of
    the sequence at the end of one packet is held until the next shows whether it continues."""

    def __init__(self, keys):
        self.keys = keys
        self.held = b""

    def feed(self, data):
        keys = self.keys
        if not keys:
            return data, False
        if not self.held and keys[0] not in data:
            return data, False
        out = bytearray()
        held = self.held
        for b in data:
            if b == keys[len(held)]:
                held += bytes((b,))
                if len(held) == len(keys):
                    self.held = b""
                    return bytes(out), True
                continue
            out += held
            held = b""
            if b == keys[0]:
                held = bytes((b,))
            else:
                out.append(b)
        self.held = held
        return bytes(out), False
