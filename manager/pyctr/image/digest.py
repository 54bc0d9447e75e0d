"""Digests, diff ids and chain ids (image-spec config.md, descriptor.md#digests)."""
import hashlib
import re

# descriptor.md: algorithm-component (separator algorithm-component)* ":" encoded; the registered
# algorithms' encodings are lowercase hex of an exact length
_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+", re.ASCII)


def sha256_bytes(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids):
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(n))."""
    out = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out


def check(digest, what="digest"):
    """digest, if it is a well-formed digest of a registered algorithm (sha256 or sha512, in
    lowercase hex of exactly their length); else a PyctrError naming what carried it. Every digest
    a peer sends passes here before it goes into a URL or a path."""
    from pyctr.errors import PyctrError
    if not isinstance(digest, str) or not _GRAMMAR.fullmatch(digest):
        raise PyctrError(f"{what}: malformed digest {_short(digest)}")
    alg, _, encoded = digest.partition(":")
    if alg not in _HEX_LENGTH:
        raise PyctrError(f"{what}: unsupported digest algorithm {_short(alg)} in {_short(digest)}")
    if len(encoded) != _HEX_LENGTH[alg] or not _LOWER_HEX.fullmatch(encoded):
        raise PyctrError(f"{what}: malformed {alg} digest {_short(digest)} "
                         f"({_HEX_LENGTH[alg]} lowercase hex digits expected)")
    return digest


def _short(value):
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def split(digest):
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        from pyctr.errors import PyctrError
        raise PyctrError(f"unsupported or malformed digest {_short(digest)}")
    return alg, hexpart
