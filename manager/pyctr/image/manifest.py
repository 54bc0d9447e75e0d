"""Manifests, indexes and platform selection (image-spec manifest.md, image-index.md)."""
import json
import os

from pyctr.errors import PyctrError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP,
               "application/vnd.oci.image.layer.nondistributable.v1.tar",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
               "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_platform():
    machine = os.uname().machine
    arch = _ARCH.get(machine, machine)
    variant = {"arm64": "v8", "arm": "v7"}.get(arch, "")
    return {"os": "linux", "architecture": arch, "variant": variant}


def parse_platform(text):
    if not text:
        return host_platform()
    parts = text.split("/")
    if len(parts) < 2:
        raise PyctrError(f"invalid platform {text!r}: expected os/arch[/variant]")
    return {"os": parts[0], "architecture": parts[1], "variant": parts[2] if len(parts) > 2 else ""}


# Content-Types that say nothing about which manifest it is (a registry that stored one without)
_UNTYPED = ("", "application/json", "application/octet-stream", "text/plain")


def media_type(body, header_type):
    """The manifest's own mediaType if set, else the Content-Type; guessed from its shape only if
    neither names a type. A type that is named and unknown is refused, never taken for another."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise PyctrError("registry returned a manifest that is not valid JSON") from None
    if not isinstance(doc, dict):
        raise PyctrError("registry returned a manifest that is not a JSON object")
    mt = doc.get("mediaType") or header_type or ""
    if not isinstance(mt, str):
        raise PyctrError(f"manifest mediaType {str(mt)[:100]!r} is not a string")
    if mt in INDEXES + MANIFESTS:
        return doc, mt
    if doc.get("schemaVersion") == 1 or "schema1" in mt:
        raise PyctrError("Docker schema 1 manifests are not supported (deprecated by Docker)")
    if mt in _UNTYPED:
        if "manifests" in doc:
            return doc, OCI_INDEX
        if "config" in doc and "layers" in doc:
            return doc, OCI_MANIFEST
    raise PyctrError(f"unsupported manifest media type {mt[:200]!r} (supported: "
                     f"{', '.join(INDEXES + MANIFESTS)})")


def select(index, platform):
    """The descriptor in an index matching platform (os, architecture, variant if given)."""
    entries = index.get("manifests", [])
    if not isinstance(entries, list) or not all(
            isinstance(d, dict) and isinstance(d.get("platform") or {}, dict) for d in entries):
        raise PyctrError("the image index's manifests are not a list of descriptors")
    candidates = []
    for desc in entries:
        p = desc.get("platform") or {}
        if p.get("os") != platform["os"] or p.get("architecture") != platform["architecture"]:
            continue
        if desc.get("mediaType") not in MANIFESTS + (None,):
            continue
        variant = p.get("variant", "")
        if platform.get("variant") and variant and variant != platform["variant"]:
            continue
        candidates.append(desc)
    if not candidates:
        available = sorted({"/".join(x for x in ((d.get("platform") or {}).get("os"),
                                                   (d.get("platform") or {}).get("architecture"),
                                                   (d.get("platform") or {}).get("variant")) if x)
                            for d in index.get("manifests", [])})
        want = "/".join(x for x in (platform["os"], platform["architecture"], platform.get("variant")) if x)
        raise PyctrError(f"no image for platform {want} in the index (available: {', '.join(available)})")
    return candidates[0]


def check_manifest(doc):
    cfg = doc.get("config")
    if not isinstance(cfg, dict) or "digest" not in cfg:
        raise PyctrError("manifest has no config descriptor")
    layers = doc.get("layers", [])
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise PyctrError("manifest's layers are not a list of descriptors")
    for layer in layers:
        if layer.get("mediaType") not in LAYER_TYPES:
            raise PyctrError(f"unsupported layer media type {str(layer.get('mediaType'))[:200]!r}")
    return cfg, layers
