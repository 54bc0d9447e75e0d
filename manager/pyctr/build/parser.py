"""Dockerfile parsing, as Docker's (moby buildkit frontend/dockerfile/parser): parser directives
(`# syntax=`, `# escape=`) at the top, comments, line continuations with the escape character,
JSON (exec) or shell form arguments, `--flag=value` options, and simple heredocs (`<<EOF`, `<<-EOF`,
quoted delimiters) after RUN, COPY and ADD.

Words are expanded later, per instruction, with the stage's variables (words.py)."""
import json
import re

from pyctr.errors import PyctrError


class DockerfileError(PyctrError):
    def __init__(self, line, why):
        super().__init__(f"Dockerfile parse error line {line}: {why}")
        self.line = line


INSTRUCTIONS = frozenset({"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                          "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                          "HEALTHCHECK", "SHELL"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"^--([a-z][a-z0-9-]*)(?:=(.*))?$", re.S)


class Instruction:
    """One instruction: `cmd` upper-cased, `flags` {name: value}, `args` the argument text after
    the flags (shell form) or `json` the exec-form list, `heredocs` [(name, body, expand)]."""

    def __init__(self, cmd, rest, line, original):
        self.cmd, self.line, self.original = cmd, line, original
        self.flags, self.heredocs, self.json = {}, [], None
        self.args = rest

    def __repr__(self):
        return f"Instruction({self.cmd} {self.args!r} line {self.line})"


class Dockerfile:
    def __init__(self, instructions, directives, escape):
        self.instructions, self.directives, self.escape = instructions, directives, escape


def _directives(lines):
    """Leading `# key=value` lines; they end at the first line that is anything else."""
    found = {}
    for line in lines:
        m = _DIRECTIVE.match(line.strip())
        if not m:
            break
        key = m.group(1).lower()
        if key in found:
            raise DockerfileError(1, f"only one {key} parser directive can be used")
        found[key] = m.group(2)
    escape = found.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(1, f"invalid escape token '{escape}' does not match ` or \\")
    return found, escape


def _continues(line, escape):
    """Docker's `\\[ \t]*$`: the escape character last on the line (trailing blanks allowed)."""
    return line.rstrip(" \t").endswith(escape)


def parse(text):
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DockerfileError(1, "the Dockerfile is not UTF-8 text") from None
    text = text.lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").split("\n")
    directives, escape = _directives(lines)
    out = []
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = []
        while _continues(line, escape) and i < len(lines):
            parts.append(line.rstrip(" \t")[:-1])
            line = lines[i]
            i += 1
            while i < len(lines) and (not line.strip() or line.strip().startswith("#")):
                line = lines[i]  # comments and empty lines inside a continuation are dropped
                i += 1
        if _continues(line, escape):
            line = line.rstrip(" \t")[:-1]
        parts.append(line)
        logical = "".join(parts).strip()
        if not logical:
            continue  # only an escape character (and blanks): nothing to run
        ins = _instruction(logical, start, escape)
        i = _read_heredocs(ins, lines, i)
        out.append(ins)
    return Dockerfile(out, directives, escape)


def _instruction(logical, line, escape, nested=False):
    m = re.match(r"^(\S+)(?:\s+(.*))?$", logical, re.S)
    word, rest = m.group(1), (m.group(2) or "").strip()
    cmd = word.upper()
    if cmd not in INSTRUCTIONS:
        raise DockerfileError(line, f"unknown instruction: {word}")
    ins = Instruction(cmd, rest, line, logical)
    if cmd == "ONBUILD":
        if not rest:
            raise DockerfileError(line, "ONBUILD requires at least one argument")
        trigger = _instruction(rest, line, escape, nested=True)
        if trigger.cmd in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(line, f"{trigger.cmd} isn't allowed as an ONBUILD trigger")
        ins.trigger = trigger
        return ins
    if cmd in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
        rest = _take_flags(ins, rest, line)
    ins.args = rest
    if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "VOLUME", "COPY", "ADD") and rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None  # Docker: not valid JSON means the shell form
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            ins.json = value
    if cmd == "SHELL" and ins.json is None:
        raise DockerfileError(line, "SHELL requires the arguments to be in JSON form")
    if cmd in ("RUN", "COPY", "ADD") and ins.json is None:
        ins.heredocs = [(m.group(3), None, m.group(2) == "", m.group(1) == "-")
                        for m in _HEREDOC.finditer(rest)]
    if not rest and cmd not in ("RUN", "CMD", "ENTRYPOINT") and not nested:
        raise DockerfileError(line, f"{cmd} requires at least one argument")
    return ins


def _take_flags(ins, rest, line):
    while rest.startswith("--"):
        word, _, tail = rest.partition(" ")
        m = _FLAG.match(word)
        if not m:
            raise DockerfileError(line, f"invalid flag {word!r} for {ins.cmd}")
        name, value = m.group(1), m.group(2)
        ins.flags[name] = "" if value is None else value
        rest = tail.lstrip()
    return rest


def _read_heredocs(ins, lines, i):
    """Fill each heredoc's body from the lines after the instruction; returns the next line index."""
    filled = []
    for name, _, expand, strip_tabs in ins.heredocs:
        body = []
        while True:
            if i >= len(lines):
                raise DockerfileError(ins.line, f"unterminated heredoc {name}")
            line = lines[i]
            i += 1
            if (line.lstrip("\t") if strip_tabs else line) == name:
                break
            body.append(line.lstrip("\t") if strip_tabs else line)
        filled.append((name, "\n".join(body) + "\n", expand))
    ins.heredocs = filled
    return i
