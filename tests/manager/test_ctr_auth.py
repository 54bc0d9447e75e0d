"""WWW-Authenticate parsing and Docker-format credentials."""
import json

from pyctr.image import auth


def test_bearer_challenge():
    scheme, p = auth.parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull,push"')
    assert scheme == "bearer"
    assert p == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                 "scope": "repository:library/busybox:pull,push"}


def test_quoted_escapes_and_spaces():
    scheme, p = auth.parse_www_authenticate('Bearer realm = "a\\"b", error="insufficient_scope" , x=tok')
    assert p == {"realm": 'a"b', "error": "insufficient_scope", "x": "tok"}


def test_basic_challenge():
    assert auth.parse_www_authenticate('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


def test_credentials_round_trip(tmp_path):
    path = str(tmp_path / "config.json")
    auth.store_credentials("host:5000", "alice", "s3:cret", path)
    auth.store_credentials("docker.io", "bob", "pw", path)
    data = json.load(open(path))
    assert set(data["auths"]) == {"host:5000", "https://index.docker.io/v1/"}
    assert auth.get_credentials("host:5000", path) == ("alice", "s3:cret")
    assert auth.get_credentials("docker.io", path) == ("bob", "pw")
    assert auth.remove_credentials("host:5000", path)
    assert auth.get_credentials("host:5000", path) is None
    assert not auth.remove_credentials("host:5000", path)
