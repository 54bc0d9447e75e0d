"""Image references as Docker normalises them."""
import pytest

from pyctr.errors import InvalidReference
from pyctr.image.reference import parse

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text,name,tag,digest,familiar", [
    ("busybox", "docker.io/library/busybox", "latest", None, "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox", "1.36", None, "busybox:1.36"),
    ("docker.io/busybox", "docker.io/library/busybox", "latest", None, "busybox:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app", "v1", None, "user/app:v1"),
    ("user/app", "docker.io/user/app", "latest", None, "user/app:latest"),
    (f"host:5000/a/b@{D}", "host:5000/a/b", None, D, f"host:5000/a/b@{D}"),
    (f"host:5000/a/b:t@{D}", "host:5000/a/b", "t", D, f"host:5000/a/b:t@{D}"),
    ("localhost/x", "localhost/x", "latest", None, "localhost/x:latest"),
    ("127.0.0.1:5000/x:y", "127.0.0.1:5000/x", "y", None, "127.0.0.1:5000/x:y"),
    ("quay.io/a/b/c:1.0-rc_1", "quay.io/a/b/c", "1.0-rc_1", None, "quay.io/a/b/c:1.0-rc_1"),
])
def test_parse(text, name, tag, digest, familiar):
    r = parse(text)
    assert (r.name, r.tag, r.digest, r.familiar()) == (name, tag, digest, familiar)


def test_api_host_of_docker_hub():
    assert parse("busybox").api_host == "registry-1.docker.io"
    assert parse("host:5000/x").api_host == "host:5000"


def test_ref_prefers_digest():
    assert parse(f"x/y:t@{D}").ref == D
    assert parse("x/y:t").ref == "t"


@pytest.mark.parametrize("text,why", [
    ("", "empty"),
    ("Busybox", "lowercase"),
    ("busybox:bad tag", "invalid tag"),
    ("busybox@sha256:abc", "invalid digest"),
    ("a//b", "invalid repository"),
    ("-a/b", "invalid"),
    ("busybox:" + "x" * 129, "invalid tag"),
    ("x/" + "a" * 300, "longer than"),
])
def test_invalid(text, why):
    with pytest.raises(InvalidReference, match=why):
        parse(text)
