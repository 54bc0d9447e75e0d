""".dockerignore, with Docker's rules (moby/patternmatcher): one pattern a line, `#` lines are
comments, each pattern trimmed and Clean'ed with a leading `/` dropped, Go filepath.Match syntax
plus `**` (any number of directories, none included), `!` re-includes, the last match wins, and a
pattern that matches a parent directory matches everything under it."""
import posixpath
import re


def _clean(pattern):
    p = posixpath.normpath(pattern)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    if len(p) > 1 and p.startswith("/"):
        p = p[1:]
    return p


def _regex(pattern):
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    i += 1
                out.append(".*" if i + 1 >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise ValueError(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


class Pattern:
    def __init__(self, text):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:].strip()
        self.text = _clean(text)
        self.dirs = self.text.split("/")
        self.regex = _regex(self.text)


class Matcher:
    def __init__(self, patterns):
        self.patterns = [Pattern(p) for p in patterns]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def ignored(self, path):
        """Whether the context-relative path (slash-separated) is ignored."""
        path = _clean(path)
        parent_dirs = path.split("/")[:-1]
        matched = False
        for p in self.patterns:
            m = p.regex.match(path) is not None
            for n in range(1, len(parent_dirs) + 1):  # patternmatcher's MatchesOrParentMatches
                if m:
                    break
                m = p.regex.match("/".join(parent_dirs[:n])) is not None
            if m:
                matched = not p.exclusion
        return matched


def parse(text):
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line or line == "!":
            continue
        out.append(line)
    return out


def load(context_dir):
    """The matcher of a context's .dockerignore (an empty one without the file)."""
    import os
    try:
        with open(os.path.join(context_dir, ".dockerignore"), "rb") as f:
            text = f.read(1 << 20).decode("utf-8", "replace")
    except FileNotFoundError:
        text = ""
    try:
        return Matcher(parse(text))
    except ValueError as e:
        from pyctr.errors import PyctrError
        raise PyctrError(f".dockerignore: {e}") from None
