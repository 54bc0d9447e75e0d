"""Image references as Docker parses them (distribution/reference normalize.go).

`busybox` is docker.io/library/busybox:latest; a first component is a registry host only if it has a
`.` or a `:` or is `localhost` (and is not all-lowercase-free of those); a digest pins the content.
"""
import re

from pyctr.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
DEFAULT_API_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*\Z")
_DOMAIN_RE = re.compile(rf"{_DOMAIN}\Z")
# Go's \w (the grammar's) is ASCII only; Python's would take any letter or digit of Unicode
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")
NAME_TOTAL_MAX = 255


class Reference:
    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain, path, tag=None, digest=None):
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    @property
    def name(self):
        """Fully qualified repository name: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self):
        """Docker's short form: busybox, user/app, host:5000/a/b."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len("library/"):] if self.path.startswith("library/") else self.path
        return self.name

    @property
    def api_host(self):
        return DEFAULT_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def ref(self):
        """What to ask the registry's manifests endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag):
        return Reference(self.domain, self.path, tag or DEFAULT_TAG, None)

    def __str__(self):
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self):
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __repr__(self):
        return f"Reference({str(self)!r})"


def parse(text, default_tag=True):
    """Parse and normalise a reference; tag defaults to latest unless a digest is given."""
    if not text:
        raise InvalidReference(text, "empty reference")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(text, f"invalid digest {digest!r}")
        if not digest.startswith("sha256:") or len(digest) != 71 or digest != digest.lower():
            raise InvalidReference(text, f"unsupported digest {digest!r} (sha256 with 64 lowercase hex "
                                         f"digits expected)")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(text, f"invalid tag {tag!r}")
    i = rest.find("/")
    first = rest[:i] if i >= 0 else ""
    if i < 0 or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, rest
    else:
        domain, path = first, rest[i + 1:]
        if not _DOMAIN_RE.match(domain):
            raise InvalidReference(text, f"invalid registry host {domain!r}")
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if path.lower() != path:
        raise InvalidReference(text, "repository name must be lowercase")
    if not _PATH.match(path):
        raise InvalidReference(text, f"invalid repository name {path!r}")
    if len(domain) + 1 + len(path) > NAME_TOTAL_MAX:
        raise InvalidReference(text, f"repository name longer than {NAME_TOTAL_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_digest(text):
    return bool(_DIGEST.match(text or ""))


def is_tag(text):
    return bool(_TAG.match(text or ""))
