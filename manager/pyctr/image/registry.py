"""A registry HTTP API v2 client (distribution-spec) on httpconn (a small HTTP/1.1 client).

Not requests or urllib: no dependency, a small import, and full control over redirects, which
matters: the Authorization header is sent only to the registry host itself, never
to a host a redirect points at (spec.md#api). Anonymous, basic and bearer-token auth; tokens are
cached per scope. Connections are kept alive per thread (layers download in parallel).
"""
import json
import threading

from pyctr.errors import AuthError, RegistryError
from pyctr.image import auth as _auth

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "pyctr/0.1"


class Client:
    def __init__(self, ref, insecure=False, authfile=None, timeout=60):
        self.host = ref.api_host
        self.domain = ref.domain
        self.repo = ref.path
        self.scheme = "http" if insecure else "https"
        self.timeout = timeout
        self.credentials = _auth.get_credentials(ref.domain, authfile)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens = {}       # scope -> token
        self._challenge = None  # (scheme, params) from the registry's last 401
        self.actions = "pull"

    # --- transport ---------------------------------------------------------------------------------

    def _conn(self, scheme, host):
        from pyctr.image.httpconn import Connection
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        key = (scheme, host)
        c = conns.get(key)
        if c is None:
            c = conns[key] = Connection(scheme, host, timeout=self.timeout)
        return c

    def reset(self):
        """Close this thread's connections (a response left half-read makes its connection unusable)."""
        for c in (getattr(self._local, "conns", None) or {}).values():
            c.close()
        self._local.conns = {}

    def _send(self, method, url, headers, body):
        from pyctr.image.httpconn import RemoteDisconnected
        scheme, netloc, path = split_url(url)
        for attempt in (0, 1):
            c = self._conn(scheme, netloc)
            try:
                if hasattr(body, "seek"):
                    body.seek(0)
                return c.request(method, path, headers, body)
            except OSError as e:  # httpconn.ProtocolError included
                c.close()
                self._local.conns.pop((scheme, netloc), None)
                # a keep-alive connection the server dropped: once more on a fresh one
                if attempt or not isinstance(e, (RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    raise RegistryError(f"{method} {url}: {e.__class__.__name__}: {e}") from None

    def url(self, path):
        return f"{self.scheme}://{self.host}{path}"

    def scope(self):
        return f"repository:{self.repo}:{self.actions}"

    def request(self, method, path_or_url, headers=None, body=None, ok=(200,), extra_scopes=()):
        """Send with auth and redirects; returns the response (status in ok) or raises RegistryError.

        The caller reads (or closes) the response body.
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        for attempt in range(2):
            resp = self._request_following(method, url, dict(headers or {}), body, extra_scopes)
            if resp.status == 401 and attempt == 0:
                challenge = resp.getheader("WWW-Authenticate", "")
                resp.read()
                self._authenticate(challenge, extra_scopes, force=True)
                continue
            break
        if resp.status not in ok:
            text = resp.read(65536).decode("utf-8", "replace")
            detail = _error_detail(text)
            if resp.status == 401:
                raise AuthError(f"{method} {url}: authentication required or refused (401){detail}")
            raise RegistryError(f"{method} {url}: HTTP {resp.status} {resp.reason}{detail}")
        return resp

    def _request_following(self, method, url, headers, body, extra_scopes):
        headers.setdefault("User-Agent", USER_AGENT)
        origin = split_url(url)[1]
        for _ in range(10):
            h = dict(headers)
            if split_url(url)[1] == origin:
                auth = self._auth_header(extra_scopes)
                if auth:
                    h["Authorization"] = auth
            resp = self._send(method, url, h, body)
            if resp.status not in _REDIRECTS:
                return resp
            location = resp.getheader("Location")
            resp.read()
            if not location:
                raise RegistryError(f"{method} {url}: redirect {resp.status} without a Location")
            import urllib.parse
            url = urllib.parse.urljoin(url, location)
            if resp.status == 303:
                method, body = "GET", None
        raise RegistryError(f"{method} {url}: too many redirects")

    # --- auth --------------------------------------------------------------------------------------

    def _scopes(self, extra):
        return (self.scope(),) + tuple(extra)

    def _auth_header(self, extra_scopes):
        if not self._challenge:
            return None
        scheme, _ = self._challenge
        if scheme == "bearer":
            token = self._tokens.get(self._scopes(extra_scopes))
            return f"Bearer {token}" if token else None
        if scheme == "basic" and self.credentials:
            return _auth.basic_header(*self.credentials)
        return None

    def _authenticate(self, header, extra_scopes, force=False):
        scheme, params = _auth.parse_www_authenticate(header)
        with self._lock:
            self._challenge = (scheme, params)
            if scheme == "basic":
                if not self.credentials:
                    raise AuthError(f"{self.host} requires a login (basic auth); run `pyctr login {self.domain}`")
                return
            if scheme != "bearer":
                raise AuthError(f"{self.host}: unsupported authentication scheme {scheme!r}")
            scopes = self._scopes(extra_scopes)
            if scopes in self._tokens and not force:
                return
            self._tokens[scopes] = self._fetch_token(params, scopes)

    def _fetch_token(self, params, scopes):
        realm = params.get("realm")
        if not realm:
            raise AuthError(f"{self.host}: bearer challenge without a realm")
        query = []
        if params.get("service"):
            query.append(("service", params["service"]))
        for s in scopes:
            query.append(("scope", s))
        import urllib.parse
        sep = "&" if "?" in realm else "?"
        url = realm + sep + urllib.parse.urlencode(query)
        headers = {"User-Agent": USER_AGENT}
        if self.credentials:
            # The token server is where credentials go in the bearer flow (never the redirect target).
            headers["Authorization"] = _auth.basic_header(*self.credentials)
        resp = self._send("GET", url, headers, None)
        body = resp.read()
        if resp.status != 200:
            raise AuthError(f"token request to {realm} failed: HTTP {resp.status}"
                            f"{_error_detail(body.decode('utf-8', 'replace'))}")
        try:
            data = json.loads(body)
        except ValueError:
            raise AuthError(f"token server {realm} returned invalid JSON") from None
        token = data.get("token") or data.get("access_token")
        if not token:
            raise AuthError(f"token server {realm} returned no token")
        return token

    def ping(self):
        """GET /v2/: learns the auth challenge up front (so request bodies are not sent twice)."""
        resp = self._send("GET", self.url("/v2/"), {"User-Agent": USER_AGENT}, None)
        resp.read()
        if resp.status == 401:
            self._authenticate(resp.getheader("WWW-Authenticate", ""), ())
        elif resp.status not in (200,):
            raise RegistryError(f"GET {self.url('/v2/')}: HTTP {resp.status} {resp.reason} "
                                f"(not a registry v2 API?)")

    def login_check(self):
        """Verify credentials against the registry (for `pyctr login`)."""
        self.repo = "pyctr-login-check"
        resp = self._send("GET", self.url("/v2/"), {"User-Agent": USER_AGENT}, None)
        resp.read()
        if resp.status == 200:
            return
        if resp.status != 401:
            raise RegistryError(f"GET /v2/ on {self.host}: HTTP {resp.status}")
        scheme, params = _auth.parse_www_authenticate(resp.getheader("WWW-Authenticate", ""))
        if scheme == "bearer":
            self._fetch_token(params, ())
            return
        resp = self._send("GET", self.url("/v2/"), {"User-Agent": USER_AGENT,
                          "Authorization": _auth.basic_header(*self.credentials)}, None)
        resp.read()
        if resp.status != 200:
            raise AuthError(f"login to {self.host} refused: HTTP {resp.status}")

    # --- API ---------------------------------------------------------------------------------------

    def get_manifest(self, ref):
        resp = self.request("GET", f"/v2/{self.repo}/manifests/{ref}", {"Accept": ", ".join(MANIFEST_TYPES)})
        body = resp.read()
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        return body, ctype, resp.getheader("Docker-Content-Digest")

    def get_blob(self, digest):
        return self.request("GET", f"/v2/{self.repo}/blobs/{digest}")

    def has_blob(self, digest):
        resp = self.request("HEAD", f"/v2/{self.repo}/blobs/{digest}", ok=(200, 404))
        resp.read()
        return resp.status == 200

    def mount_blob(self, digest, source_repo):
        """Cross-repository mount; True if the registry mounted it (201)."""
        import urllib.parse
        q = urllib.parse.urlencode({"mount": digest, "from": source_repo})
        resp = self.request("POST", f"/v2/{self.repo}/blobs/uploads/?{q}", {"Content-Length": "0"}, b"",
                            ok=(201, 202), extra_scopes=(f"repository:{source_repo}:pull",))
        resp.read()
        if resp.status == 201:
            return True, None
        return False, resp.getheader("Location")

    def upload_blob(self, digest, f, size, location=None):
        import urllib.parse
        if location is None:
            resp = self.request("POST", f"/v2/{self.repo}/blobs/uploads/", {"Content-Length": "0"}, b"",
                                ok=(202,))
            resp.read()
            location = resp.getheader("Location")
            if not location:
                raise RegistryError(f"upload of {digest}: registry sent no Location")
        url = urllib.parse.urljoin(self.url(f"/v2/{self.repo}/blobs/uploads/"), location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        resp = self.request("PUT", url, {"Content-Type": "application/octet-stream",
                                         "Content-Length": str(size)}, f, ok=(201, 204))
        resp.read()

    def put_manifest(self, ref, body, media_type):
        resp = self.request("PUT", f"/v2/{self.repo}/manifests/{ref}",
                            {"Content-Type": media_type, "Content-Length": str(len(body))}, body, ok=(201, 200))
        resp.read()
        return resp.getheader("Docker-Content-Digest")


def split_url(url):
    """(scheme, host[:port], path?query) of an absolute URL. urllib.parse (1.5 ms of imports) is
    loaded only where a URL is joined or a query encoded: redirects, tokens, uploads."""
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, path = rest[:cut], rest[cut:].split("#", 1)[0]
    if path.startswith("?"):
        path = "/" + path
    return scheme.lower(), netloc, path or "/"


def _error_detail(text):
    try:
        errors = json.loads(text).get("errors") or []
        msgs = [f"{e.get('code', '')}: {e.get('message', '')}" for e in errors]
        return " (" + "; ".join(msgs) + ")" if msgs else ""
    except (ValueError, AttributeError):
        return ""
