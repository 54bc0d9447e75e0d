"""Digests, diff ids and chain ids (image-spec config.md)."""
import hashlib


def sha256_bytes(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids):
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(n))."""
    out = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out


def split(digest):
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        from pyctr.errors import PyctrError
        raise PyctrError(f"unsupported or malformed digest {digest!r}")
    return alg, hexpart
