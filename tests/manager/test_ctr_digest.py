"""Chain ids (image-spec config.md) and manifests/platform selection."""
import hashlib
import re

import pytest

from pyctr.errors import PyctrError
from pyctr.image import manifest
from pyctr.image.digest import chain_ids


def test_chain_ids():
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_ids([]) == []


def test_platform_selection():
    index = {"manifests": [
        {"mediaType": manifest.OCI_MANIFEST, "digest": "sha256:1", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": manifest.OCI_MANIFEST, "digest": "sha256:2", "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": manifest.OCI_MANIFEST, "digest": "sha256:3", "platform": {"os": "windows", "architecture": "amd64"}}]}
    assert manifest.select(index, manifest.parse_platform("linux/amd64"))["digest"] == "sha256:2"
    assert manifest.select(index, manifest.parse_platform("linux/arm64/v8"))["digest"] == "sha256:1"
    with pytest.raises(PyctrError, match="no image for platform linux/s390x.*available: linux/amd64, linux/arm64/v8"):
        manifest.select(index, manifest.parse_platform("linux/s390x"))


def test_schema1_refused():
    with pytest.raises(PyctrError, match="schema 1"):
        manifest.media_type(b'{"schemaVersion": 1, "fsLayers": []}', "application/json")


@pytest.mark.parametrize("index", [{"manifests": 5}, {"manifests": [1]}, {"manifests": [{"platform": "linux"}]},
                                   {"manifests": [None]}])
def test_malformed_index_is_refused_not_an_internal_error(index):
    with pytest.raises(PyctrError, match="not a list of descriptors"):
        manifest.select(index, manifest.parse_platform("linux/amd64"))


@pytest.mark.parametrize("doc", [{"config": {"digest": "sha256:" + "a" * 64}, "layers": 5},
                                 {"config": {"digest": "sha256:" + "a" * 64}, "layers": ["x"]}])
def test_malformed_layers_are_refused_not_an_internal_error(doc):
    with pytest.raises(PyctrError, match="not a list of descriptors"):
        manifest.check_manifest(doc)


@pytest.mark.parametrize("mt", ["application/vnd.example+json", "application/vnd.oci.image.config.v1+json"])
def test_a_named_unknown_manifest_type_is_refused(mt):
    body = b'{"schemaVersion": 2, "config": {}, "layers": []}'
    with pytest.raises(PyctrError, match=re.escape(f"unsupported manifest media type {mt!r}")):
        manifest.media_type(body, mt)
    assert manifest.media_type(body, "application/json")[1] == manifest.OCI_MANIFEST
