"""Registry authentication: WWW-Authenticate parsing, bearer tokens, credentials in Docker's format.

Credentials live in a Docker-style config.json (`{"auths": {"<host>": {"auth": base64(user:pass)}}}`):
--authfile, else $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
"""
import base64
import json
import os

from pyctr.errors import PyctrError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def parse_www_authenticate(header):
    """'Bearer realm="x",service="y",scope="a,b"' -> ('bearer', {'realm': 'x', ...}).

    Parameter values may be quoted strings holding commas and backslash escapes (RFC 7235).
    """
    header = (header or "").strip()
    scheme, _, rest = header.partition(" ")
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        j = i
        while j < n and rest[j] not in "= ,":
            j += 1
        key = rest[i:j].strip().lower()
        i = j
        while i < n and rest[i] == " ":
            i += 1
        if i >= n or rest[i] != "=":
            if key:
                params[key] = ""
            continue
        i += 1
        while i < n and rest[i] == " ":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            i += 1
            value = "".join(out)
        else:
            j = i
            while j < n and rest[j] != ",":
                j += 1
            value = rest[i:j].strip()
            i = j
        if key:
            params[key] = value
    return scheme.lower(), params


def auth_file(explicit=None):
    if explicit:
        return explicit
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return os.environ["REGISTRY_AUTH_FILE"]
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _key(domain):
    return DOCKER_HUB_KEY if domain in ("docker.io", "index.docker.io", "registry-1.docker.io") else domain


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise PyctrError(f"credentials file {path} is not valid JSON: {e}") from None


def get_credentials(domain, path=None):
    """(username, password) for a registry host, or None."""
    entry = _load(auth_file(path)).get("auths", {}).get(_key(domain))
    if not entry:
        return None
    raw = entry.get("auth")
    if raw:
        try:
            user, _, password = base64.b64decode(raw).decode().partition(":")
        except ValueError:
            raise PyctrError(f"credentials for {domain} in {auth_file(path)} are not valid base64") from None
        return user, password
    if entry.get("username"):
        return entry["username"], entry.get("password", "")
    return None


def store_credentials(domain, user, password, path=None):
    path = auth_file(path)
    data = _load(path)
    data.setdefault("auths", {})[_key(domain)] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as f:
        json.dump(data, f, indent="\t")
    os.rename(tmp, path)
    return path


def remove_credentials(domain, path=None):
    path = auth_file(path)
    data = _load(path)
    if data.get("auths", {}).pop(_key(domain), None) is None:
        return False
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as f:
        json.dump(data, f, indent="\t")
    os.rename(tmp, path)
    return True


def basic_header(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
