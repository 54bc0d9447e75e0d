"""A registry HTTP API v2 client (distribution-spec) on httpconn (a small HTTP/1.1 client).

Not requests or urllib: no dependency, a small import, and full control over redirects and
credentials. Credentials are sent only to the registry they were stored for, over the scheme and
host:port it was reached at, and to the token realm the registry's own 401 names; never to a host a
redirect points at, nor to a realm such a host names (containerd's CVE-2020-15157), nor across a
change of scheme. Redirects go only to http(s), never from https down to http. Anonymous, basic and
bearer-token auth; tokens are cached per scope. Connections are kept alive per thread (layers
download in parallel), every one of them with a connect and idle timeout, and `abort()` wakes them
all at once (an interrupted pull). Idempotent requests are retried on 429, 5xx and a reset
connection, a few times with a short backoff, as Docker does. Bodies a registry sends besides
blobs (tokens, errors, manifests) are read only up to a small limit.
"""
import json
import os
import threading
import time

from pyctr.errors import AuthError, PyctrError, RegistryError
from pyctr.image import auth as _auth

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "pyctr/0.1"
MANIFEST_MAX = 4 << 20   # as containerd and skopeo (containers/image iolimits)
SMALL_BODY_MAX = 1 << 20  # a token or an error
ERROR_DETAIL_MAX = 65536
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_DELAYS = (0.5, 1.0, 2.0)  # then give up: at most 3.5 s of waiting (and RETRY_AFTER_MAX each)
RETRY_AFTER_MAX = 5.0
TIMEOUT_ENV = "PYCTR_REGISTRY_TIMEOUT"
# what OpenSSL reports when the answer to its ClientHello is plain HTTP
_PLAIN_HTTP_REPLY = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE")
DEFAULT_TIMEOUT = 30.0


class Cancelled(PyctrError):
    """The client was aborted (an interrupted or failed pull); no more requests go out."""


class TransportError(RegistryError):
    """A request got no HTTP answer (connect, TLS, reset, timeout); cause is the OSError."""

    def __init__(self, message, cause):
        super().__init__(message)
        self.cause = cause


def default_timeout():
    """Seconds to wait for a connection or for more data from an idle registry."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    except ValueError:
        raise PyctrError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r} is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise PyctrError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r}: seconds between 0 and 1e6 expected")
    return value


def describe_oserror(e):
    """An OSError as a user reads it: no errno numbers or file descriptors, timeouts spelled out."""
    import socket
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out (no answer from the registry)"
    if getattr(e, "verify_message", None):  # ssl.SSLCertVerificationError
        return f"TLS certificate verification failed: {e.verify_message}"
    reason = getattr(e, "reason", None)  # ssl.SSLError
    if reason:
        return f"TLS error: {reason}"
    text = e.strerror if getattr(e, "strerror", None) else str(e)
    return text or e.__class__.__name__


def is_loopback(host):
    """Is host (host[:port]) on this machine's loopback (127.0.0.0/8, ::1, localhost)? Docker
    treats such registries as insecure by default (its InsecureRegistryCIDRs), resolving names."""
    import ipaddress
    import socket
    from pyctr.image.httpconn import split_netloc
    name = split_netloc(host, 0)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


class Client:
    def __init__(self, ref, insecure=False, authfile=None, timeout=None):
        self.host = ref.api_host
        self.domain = ref.domain
        self.repo = ref.path
        self.insecure = insecure  # asked for: https unverified, else plain http (ping decides)
        self.scheme = "http" if insecure else "https"
        self.verify = True
        self.timeout = timeout or default_timeout()
        self.credentials = _auth.get_credentials(ref.domain, authfile)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._every_conn = set()  # of all threads, for abort()
        self._conns_lock = threading.Lock()  # not _lock: that one is held while a token is fetched
        self._aborted = False
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
            verify = self.verify or (scheme, host) != (self.scheme, self.host)
            c = conns[key] = Connection(scheme, host, timeout=self.timeout, verify=verify)
            with self._conns_lock:
                self._every_conn.add(c)
        return c

    def reset(self):
        """Close this thread's connections (a response left half-read makes its connection unusable)."""
        for c in (getattr(self._local, "conns", None) or {}).values():
            c.close()
            with self._conns_lock:
                self._every_conn.discard(c)
        self._local.conns = {}

    def abort(self):
        """From any thread: fail every request in flight at once and refuse new ones."""
        with self._conns_lock:
            self._aborted = True
            conns = list(self._every_conn)
        for c in conns:
            c.abort()

    def _check_aborted(self):
        if self._aborted:
            raise Cancelled("the pull was interrupted")

    def _send(self, method, url, headers, body):
        from pyctr.image.httpconn import RemoteDisconnected
        scheme, netloc, path = split_url(url)
        for attempt in (0, 1):
            self._check_aborted()
            c = self._conn(scheme, netloc)
            try:
                if hasattr(body, "seek"):
                    body.seek(0)
                resp = c.request(method, path, headers, body)
                resp.url = url
                return resp
            except OSError as e:  # httpconn.ProtocolError included
                c.close()
                self._local.conns.pop((scheme, netloc), None)
                self._check_aborted()
                # a keep-alive connection the server dropped: once more on a fresh one
                if attempt or not isinstance(e, (RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    raise TransportError(f"{method} {url}: {describe_oserror(e)}", e) from None

    def _send_retrying(self, method, url, headers, body):
        """_send, and for GET and HEAD again after a 429, a 5xx or a reset connection (Docker's
        retries, bounded by RETRY_DELAYS)."""
        for delay in RETRY_DELAYS + (None,):
            try:
                resp = self._send(method, url, headers, body)
            except TransportError as e:
                if delay is None or method not in ("GET", "HEAD") or \
                        not isinstance(e.cause, (ConnectionResetError, BrokenPipeError)):
                    raise
                self.pause(delay)
                continue
            if delay is None or method not in ("GET", "HEAD") or resp.status not in RETRY_STATUSES:
                return resp
            after = resp.getheader("Retry-After") or ""
            discard(resp)
            self.pause(min(float(after), RETRY_AFTER_MAX) if after.isdigit() else delay)
        raise AssertionError("unreachable")

    def pause(self, seconds):
        """Sleep, but wake and raise Cancelled as soon as the client is aborted."""
        deadline = time.monotonic() + seconds
        while not self._aborted and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        self._check_aborted()

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
            if resp.status == 401 and attempt == 0 and self._is_registry(resp.url):
                challenge = resp.getheader("WWW-Authenticate", "")
                discard(resp)
                self._authenticate(challenge, extra_scopes, force=True)
                continue
            break
        if resp.status not in ok:
            detail = error_detail(resp)
            if resp.status == 401 and not self._is_registry(resp.url):
                # A host a redirect led to wants credentials: it gets none of the registry's.
                raise AuthError(f"{method} {resp.url}: authentication required (401) by a host the "
                                f"registry {self.host} redirected to; the registry's credentials are "
                                f"not sent there{detail}")
            if resp.status == 401:
                raise AuthError(f"{method} {url}: authentication required or refused (401){detail}")
            where = url if resp.url == url else f"{resp.url} (redirected from {url})"
            raise RegistryError(f"{method} {where}: HTTP {resp.status} {resp.reason}{detail}")
        return resp

    def _is_registry(self, url):
        """Is url on the registry itself: its scheme and host:port, which credentials are for?"""
        scheme, netloc, _ = split_url(url)
        return (scheme, netloc) == (self.scheme, self.host)

    def _request_following(self, method, url, headers, body, extra_scopes):
        headers.setdefault("User-Agent", USER_AGENT)
        check_target(method, url, None)
        for _ in range(10):
            h = dict(headers)
            if self._is_registry(url):
                auth = self._auth_header(extra_scopes)
                if auth:
                    h["Authorization"] = auth
            resp = self._send_retrying(method, url, h, body)
            if resp.status not in _REDIRECTS:
                return resp
            location = resp.getheader("Location")
            discard(resp)
            if not location:
                raise RegistryError(f"{method} {url}: redirect {resp.status} without a Location")
            import urllib.parse
            target = urllib.parse.urljoin(url, location)
            check_target(method, target, url)
            url = target
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
        """Act on the registry's own 401 challenge (never on another host's)."""
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
        realm_scheme = split_url(realm)[0] if "://" in realm else ""
        if realm_scheme not in ("http", "https"):
            raise AuthError(f"{self.host}: bearer realm {realm[:200]!r} is not an http(s) URL")
        if realm_scheme == "http" and self.scheme == "https":
            raise AuthError(f"{self.host}: refusing to send credentials to the plain-http token realm "
                            f"{realm[:200]} of an https registry")
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
            # The realm the registry itself named is where credentials go in the bearer flow.
            headers["Authorization"] = _auth.basic_header(*self.credentials)
        resp = self._send_retrying("GET", url, headers, None)
        if resp.status != 200:
            raise AuthError(f"token request to {realm} failed: HTTP {resp.status}{error_detail(resp)}")
        body = read_small(resp, SMALL_BODY_MAX, "token")
        try:
            data = json.loads(body)
        except ValueError:
            raise AuthError(f"token server {realm} returned invalid JSON") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not token or not isinstance(token, str):
            raise AuthError(f"token server {realm} returned no token")
        from pyctr.image.httpconn import _unsafe
        if _unsafe(token):
            raise AuthError(f"token server {realm} returned a token with control characters")
        return token

    def _ping_get(self):
        """GET /v2/, learning the scheme as Docker and podman do: https; for an insecure registry
        (--insecure, PYCTR_INSECURE_REGISTRIES, or one on loopback as Docker's default) https
        without certificate checks, then plain http."""
        headers = {"User-Agent": USER_AGENT}
        self.scheme = "https"
        insecure = self.insecure or is_loopback(self.host)
        self.verify = not insecure
        try:
            return self._send_retrying("GET", self.url("/v2/"), headers, None)
        except TransportError as e:
            first = e
            if not insecure:
                if getattr(e.cause, "reason", None) in _PLAIN_HTTP_REPLY:
                    raise RegistryError(f"{e}: the registry answered plain HTTP; if you trust the "
                                        f"network to it, use --insecure (or add {self.host} to "
                                        f"PYCTR_INSECURE_REGISTRIES)") from None
                raise
        self.reset()
        self.scheme = "http"
        try:
            return self._send_retrying("GET", self.url("/v2/"), headers, None)
        except TransportError as e:
            raise RegistryError(f"{e} (and over https: {describe_oserror(first.cause)})") from None

    def ping(self):
        """GET /v2/: learns the scheme and the auth challenge up front (so request bodies are not
        sent twice)."""
        resp = self._ping_get()
        status = resp.status
        challenge = resp.getheader("WWW-Authenticate", "")
        discard(resp)
        if status == 401:
            self._authenticate(challenge, ())
        elif status not in (200,):
            raise RegistryError(f"GET {self.url('/v2/')}: HTTP {status} {resp.reason} "
                                f"(not a registry v2 API?)")

    def login_check(self):
        """Verify credentials against the registry (for `pyctr login`)."""
        self.repo = "pyctr-login-check"
        resp = self._ping_get()
        discard(resp)
        if resp.status == 200:
            return
        if resp.status != 401:
            raise RegistryError(f"GET {self.url('/v2/')}: HTTP {resp.status}")
        scheme, params = _auth.parse_www_authenticate(resp.getheader("WWW-Authenticate", ""))
        if scheme == "bearer":
            self._fetch_token(params, ())
            return
        resp = self._send("GET", self.url("/v2/"), {"User-Agent": USER_AGENT,
                          "Authorization": _auth.basic_header(*self.credentials)}, None)
        discard(resp)
        if resp.status != 200:
            raise AuthError(f"login to {self.host} refused: HTTP {resp.status}")

    # --- API ----------------------------------------------------------------------------------------

    def get_manifest(self, ref):
        """(body, content type, Docker-Content-Digest) of a manifest by tag or digest; a body
        larger than MANIFEST_MAX is refused unread."""
        url = f"/v2/{self.repo}/manifests/{_manifest_ref(ref)}"
        resp = self.request("GET", url, {"Accept": ", ".join(MANIFEST_TYPES)})
        body = read_small(resp, MANIFEST_MAX, f"manifest {ref}", " (the limit of containerd and skopeo)")
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        return body, ctype, resp.getheader("Docker-Content-Digest")

    def get_blob(self, digest, offset=0):
        """The blob's response; from offset on (206, a range request) if offset is not 0."""
        if not offset:
            return self.request("GET", f"/v2/{self.repo}/blobs/{_checked(digest)}")
        return self.request("GET", f"/v2/{self.repo}/blobs/{_checked(digest)}", {"Range": f"bytes={offset}-"},
                            ok=(200, 206))

    def has_blob(self, digest):
        resp = self.request("HEAD", f"/v2/{self.repo}/blobs/{_checked(digest)}", ok=(200, 404))
        discard(resp)
        return resp.status == 200

    def mount_blob(self, digest, source_repo):
        """Cross-repository mount; True if the registry mounted it (201)."""
        import urllib.parse
        q = urllib.parse.urlencode({"mount": _checked(digest), "from": source_repo})
        resp = self.request("POST", f"/v2/{self.repo}/blobs/uploads/?{q}", {"Content-Length": "0"}, b"",
                            ok=(201, 202), extra_scopes=(f"repository:{source_repo}:pull",))
        discard(resp)
        if resp.status == 201:
            return True, None
        return False, resp.getheader("Location")

    def upload_blob(self, digest, f, size, location=None):
        import urllib.parse
        _checked(digest)
        if location is None:
            resp = self.request("POST", f"/v2/{self.repo}/blobs/uploads/", {"Content-Length": "0"}, b"",
                                ok=(202,))
            discard(resp)
            location = resp.getheader("Location")
            if not location:
                raise RegistryError(f"upload of {digest}: registry sent no Location")
        url = urllib.parse.urljoin(self.url(f"/v2/{self.repo}/blobs/uploads/"), location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        resp = self.request("PUT", url, {"Content-Type": "application/octet-stream",
                                         "Content-Length": str(size)}, f, ok=(201, 204))
        discard(resp)

    def put_manifest(self, ref, body, media_type):
        resp = self.request("PUT", f"/v2/{self.repo}/manifests/{_manifest_ref(ref)}",
                            {"Content-Type": media_type, "Content-Length": str(len(body))}, body, ok=(201, 200))
        discard(resp)
        return resp.getheader("Docker-Content-Digest")


def _checked(digest):
    from pyctr.image.digest import check
    return check(digest, "registry request")


def _manifest_ref(ref):
    """A tag or a digest, checked against their grammar before it goes into a URL."""
    from pyctr.image.reference import is_tag
    if isinstance(ref, str) and ":" in ref:
        return _checked(ref)
    if not is_tag(ref):
        raise PyctrError(f"invalid tag {ref!r}")
    return ref


def check_target(method, url, came_from):
    """Requests go to http(s) only, and a redirect never leads from https down to http."""
    scheme = split_url(url)[0] if "://" in url else ""
    if scheme not in ("http", "https"):
        raise RegistryError(f"{method} {came_from or url}: refusing to follow a redirect to "
                            f"{url[:200]!r}: not an http(s) URL" if came_from else
                            f"{method} {url[:200]!r}: not an http(s) URL")
    if came_from and split_url(came_from)[0] == "https" and scheme == "http":
        raise RegistryError(f"{method} {came_from}: refusing to follow a redirect from https down to "
                            f"plain http ({url[:200]})")


def discard(resp):
    """Be done with a response whose body does not matter: a short one is read (the connection
    stays usable), a long or unknown one is not (the connection is closed instead)."""
    if resp.remaining is not None and not resp.chunked and resp.remaining <= ERROR_DETAIL_MAX:
        try:
            resp.read()
            return
        except OSError:
            pass
    resp.close()


def read_small(resp, limit, what, why_limit=""):
    """A body that must fit in memory (a token, a manifest): at most limit bytes are read."""
    from pyctr.image.httpconn import BodyTooLarge
    try:
        return resp.read_limited(limit)
    except BodyTooLarge as e:
        raise RegistryError(f"{what} from {resp.url}: {e}{why_limit}") from None
    except OSError as e:
        raise TransportError(f"{what}: reading {resp.url}: {describe_oserror(e)}", e) from None


def split_url(url):
    """(scheme, host[:port], path?query) of an absolute URL. urllib.parse (1.5 ms of imports) is
    loaded only where a URL is joined or a query encoded: redirects, tokens, uploads."""
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, path = rest[:cut], rest[cut:].split("#", 1)[0]
    if path.startswith("?"):
        path = "/" + path
    return scheme.lower(), netloc, path or "/"


def error_detail(resp):
    """The registry's error messages (errors[].code/message) from a failed response's body, read
    up to ERROR_DETAIL_MAX bytes only; the rest of a longer body is not read."""
    try:
        text = resp.read(ERROR_DETAIL_MAX)
    except OSError:
        text = b""
    if not resp.complete:
        resp.close()
    try:
        errors = json.loads(text.decode("utf-8", "replace")).get("errors") or []
        msgs = [f"{e.get('code', '')}: {e.get('message', '')}" for e in errors]
        detail = "; ".join(msgs)
    except (ValueError, AttributeError, TypeError):
        return ""
    detail = "".join(c if c.isprintable() else "?" for c in detail)[:1000]
    return f" ({detail})" if detail else ""
