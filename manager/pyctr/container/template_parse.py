"""Go text/template's lexer and parser (the part of template.py that turns text into a tree).
Positions are kept so that errors read as Go's (`template: :1: function "foo" not defined`)."""
import re

from pyctr.errors import PyctrError


class TemplateError(PyctrError):
    """A template that does not parse or fails to execute. str() is Docker's message
    (`template parsing error: template: :1:7: ...`), go_message Go's own."""

    def __init__(self, go_message):
        super().__init__(f"template parsing error: {go_message}")
        self.go_message = go_message

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<rawstring>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
# Go has no limit but its stack grows; ours does not: templates users write nest a few levels
MAX_NESTING = 100
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}


class Token:
    __slots__ = ("kind", "text", "pos", "spaced")

    def __init__(self, kind, text, pos, spaced):
        self.kind, self.text, self.pos, self.spaced = kind, text, pos, spaced


class Source:
    """The template text and where each action starts: positions make Go's `:line:col` prefixes."""

    def __init__(self, text):
        self.text = text

    def line(self, pos):
        return 1 + self.text.count("\n", 0, pos)

    def where(self, pos):
        newline = self.text.rfind("\n", 0, pos)
        col = pos if newline < 0 else pos - newline - 1
        return f"{self.line(pos)}:{col}"

    def parse_error(self, pos, why):
        return TemplateError(f"template: :{self.line(pos)}: {why}")


def split_actions(src):
    """[("text", str, pos) | ("action", tokens, pos)] in order, with the trim markers applied:
    `{{- ` trims the whitespace before, ` -}}` the whitespace after, as Go's lexer does."""
    text = src.text
    items = []
    pos = 0
    trim_next = False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip(_SPACE)
        if start < 0:
            if chunk:
                items.append(("text", chunk, pos))
            return items
        body = start + 2
        trim_left = text[body:body + 1] == "-" and text[body + 1:body + 2] in tuple(_SPACE)
        if trim_left:
            chunk = chunk.rstrip(_SPACE)
            body += 2
        if chunk:
            items.append(("text", chunk, pos))
        if text.startswith("/*", body):
            end_comment = text.find("*/", body + 2)
            if end_comment < 0:
                raise src.parse_error(start, "unclosed comment")
            pos, trim_next = _close_at(text, end_comment + 2)
            if pos is None:
                raise src.parse_error(start, "comment ends before closing delimiter")
            continue
        tokens, pos, trim_next = _lex_action(src, body, start)
        items.append(("action", tokens, start))


_SPACE = " \t\r\n"


def text_skip_space(text, pos):
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def _close_at(text, pos):
    """If the action closes at pos (after optional ` -` trim marker), return (end, trim)."""
    if text.startswith("}}", pos):
        return pos + 2, False
    skipped = text_skip_space(text, pos)
    if skipped > pos and text.startswith("-}}", skipped):
        return skipped + 3, True
    return None, False


def _lex_action(src, pos, action_start):
    text = src.text
    tokens = []
    spaced = True
    while True:
        if pos >= len(text):
            raise src.parse_error(action_start, "unclosed action")
        if text.startswith("}}", pos):
            return tokens, pos + 2, False
        if text[pos] in " \t\r\n":
            end = text_skip_space(text, pos)
            if text.startswith("-}}", end) and end > pos:
                return tokens, end + 3, True
            pos, spaced = end, True
            continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            ch = text[pos]
            raise src.parse_error(pos, f"bad character U+{ord(ch):04X} {ch!r}")
        kind = m.lastgroup
        # `.5` lexes as a number but `.Name` as a field: the regex order already prefers numbers
        # only when a digit follows the dot
        tokens.append(Token(kind, m.group(), pos, spaced))
        spaced = False
        pos = m.end()


# ---------------------------------------------------------------- parse tree

class Node:
    pos = 0


class Text(Node):
    def __init__(self, text):
        self.text = text


class Literal(Node):
    def __init__(self, value, source, pos):
        self.value, self.source, self.pos = value, source, pos

    def __str__(self):
        return self.source


class Field(Node):
    """`.A.B` (root None) or `$x.A` (root a variable name) or `(pipe).A` (root a Pipe)."""

    def __init__(self, root, names, pos, text):
        self.root, self.names, self.pos, self.text = root, names, pos, text

    def __str__(self):
        return self.text


class Dot(Node):
    def __init__(self, pos):
        self.pos = pos

    def __str__(self):
        return "."


class Func(Node):
    def __init__(self, name, pos):
        self.name, self.pos = name, pos

    def __str__(self):
        return self.name


class Command(Node):
    def __init__(self, args, pos):
        self.args, self.pos = args, pos

    def __str__(self):
        return " ".join(str(a) for a in self.args)


class Pipe(Node):
    def __init__(self, decl, assign, commands, pos):
        self.decl, self.assign, self.commands, self.pos = decl, assign, commands, pos

    def __str__(self):
        text = " | ".join(str(c) for c in self.commands)
        if self.decl:
            text = ", ".join(self.decl) + (" = " if self.assign else " := ") + text
        return text


class Paren(Node):
    def __init__(self, pipe, pos):
        self.pipe, self.pos = pipe, pos

    def __str__(self):
        return f"({self.pipe})"


class Action(Node):
    def __init__(self, pipe, pos):
        self.pipe, self.pos = pipe, pos


class Branch(Node):
    """if / with / range: kind, the pipeline, the body and the else body."""

    def __init__(self, kind, pipe, body, else_body, pos):
        self.kind, self.pipe, self.body, self.else_body, self.pos = kind, pipe, body, else_body, pos


class LoopControl(Node):
    def __init__(self, kind, pos):
        self.kind, self.pos = kind, pos


class Parser:
    def __init__(self, src, funcs):
        self.src = src
        self.funcs = funcs
        self.items = split_actions(src)
        self.i = 0
        self.scopes = [{"$"}]
        self.range_depth = 0
        self.parens = 0

    def error(self, pos, why):
        return self.src.parse_error(pos, why)

    def parse(self):
        body, stop = self.list_until(())
        if stop is not None:
            raise self.error(stop[1], f"unexpected {{{{{stop[0]}}}}}")
        return body

    def list_until(self, stops):
        """Parse nodes until an action whose first word is in stops ('end', 'else'); return
        (nodes, (word, pos, remaining tokens)) or (nodes, None) at the end of the text."""
        nodes = []
        while self.i < len(self.items):
            kind, value, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(Text(value))
                continue
            tokens = value
            if not tokens:
                raise self.error(pos, "missing value for command")
            word = tokens[0].text if tokens[0].kind == "ident" else None
            if word in ("end", "else"):
                if word not in stops:
                    raise self.error(pos, f"unexpected {{{{{word}}}}}")
                return nodes, (word, pos, tokens[1:])
            if word in ("if", "with", "range"):
                nodes.append(self.branch(word, tokens[1:], pos))
            elif word in ("break", "continue"):
                if len(tokens) > 1:
                    raise self.error(pos, f"unexpected {tokens[1].text!r} in {{{{{word}}}}}")
                if not self.range_depth:
                    raise self.error(pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                nodes.append(LoopControl(word, pos))
            elif word in ("define", "template", "block"):
                raise self.error(pos, f"{{{{{word}}}}} is not supported in --format templates")
            else:
                nodes.append(Action(self.pipeline(tokens, pos, allow_decl=True), pos))
        if stops:
            raise self.error(len(self.src.text), "unexpected EOF")
        return nodes, None

    def branch(self, kind, tokens, pos):
        if len(self.scopes) > MAX_NESTING:
            raise self.error(pos, f"{{{{{kind}}}}} nested deeper than {MAX_NESTING} levels")
        if not tokens:
            raise self.error(pos, f"missing value for {kind}")
        self.scopes.append(set())
        pipe = self.pipeline(tokens, pos, allow_decl=True, in_range=(kind == "range"))
        if kind == "range":
            self.range_depth += 1
        body, stop = self.list_until(("end", "else"))
        if kind == "range":
            self.range_depth -= 1
        try:
            return self.branch_else(kind, pipe, body, stop, pos)
        finally:
            self.scopes.pop()

    def branch_else(self, kind, pipe, body, stop, pos):
        else_body = []
        word, stop_pos, rest = stop
        if word == "else":
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and kind != "range":
                # `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing this branch's {{end}}
                else_body = [self.branch(rest[0].text, rest[1:], stop_pos)]
                return Branch(kind, pipe, body, else_body, pos)
            if rest:
                raise self.error(stop_pos, f"unexpected {rest[0].text!r} in else")
            else_body, stop = self.list_until(("end",))
        elif rest:
            raise self.error(stop_pos, f"unexpected {rest[0].text!r} in end")
        return Branch(kind, pipe, body, else_body, pos)

    def declare(self, name):
        self.scopes[-1].add(name)

    def known(self, name):
        return any(name in scope for scope in self.scopes)

    def pipeline(self, tokens, pos, allow_decl=False, in_range=False):
        decl = []
        assign = False
        i = 0
        # `$x :=`, `$x =`, or in range `$i, $e :=`
        if allow_decl and tokens and tokens[0].kind == "variable":
            j = 1
            names = [tokens[0].text]
            if in_range and len(tokens) > 2 and tokens[1].kind == "comma" and tokens[2].kind == "variable":
                names.append(tokens[2].text)
                j = 3
            if len(tokens) > j and tokens[j].kind in ("declare", "assign"):
                assign = tokens[j].kind == "assign"
                if assign:
                    for name in names:
                        if not self.known(name):
                            raise self.error(tokens[0].pos, f'undefined variable "{name}"')
                decl = names
                i = j + 1
            elif len(names) > 1:
                raise self.error(tokens[1].pos, "too many declarations in command")
        commands, end = self.commands(tokens, i, pos)
        if end != len(tokens):
            raise self.error(tokens[end].pos, f"unexpected {tokens[end].text!r} in command")
        if not commands:
            raise self.error(pos, "missing value for command")
        for name in decl:
            if not assign:
                self.declare(name)
        return Pipe(decl, assign, commands, tokens[0].pos if tokens else pos)

    def commands(self, tokens, i, pos):
        commands = []
        while True:
            cmd_pos = tokens[i].pos if i < len(tokens) else pos
            args = []
            while i < len(tokens) and tokens[i].kind not in ("pipe", "rparen"):
                if args and not tokens[i].spaced:
                    raise self.error(tokens[i].pos, f"unexpected {tokens[i].text!r} in operand")
                arg, i = self.operand(tokens, i)
                args.append(arg)
            if not args:
                raise self.error(cmd_pos, "missing value for command")
            commands.append(Command(args, cmd_pos))
            if i < len(tokens) and tokens[i].kind == "pipe":
                i += 1
                if i >= len(tokens) or tokens[i].kind in ("pipe", "rparen"):
                    raise self.error(tokens[i - 1].pos, "missing command after |")
                continue
            return commands, i

    def operand(self, tokens, i):
        tok = tokens[i]
        kind = tok.kind
        node = None
        if kind == "field":
            return self.chain(None, tokens, i, tok.pos, "")
        if kind == "variable":
            if not self.known(tok.text):
                raise self.error(tok.pos, f'undefined variable "{tok.text}"')
            return self.chain(tok.text, tokens, i + 1, tok.pos, tok.text)
        if kind == "lparen":
            self.parens += 1
            if self.parens > MAX_NESTING:
                raise self.error(tok.pos, f"parentheses nested deeper than {MAX_NESTING} levels")
            depth_end = self.matching_paren(tokens, i)
            inner = tokens[i + 1:depth_end]
            if not inner:
                raise self.error(tok.pos, "missing value for parenthesized pipeline")
            pipe = self.pipeline(inner, tok.pos, allow_decl=False)
            self.parens -= 1
            node = Paren(pipe, tok.pos)
            j = depth_end + 1
            if j < len(tokens) and tokens[j].kind == "field" and not tokens[j].spaced:
                return self.chain(node, tokens, j, tok.pos, str(node))
            return node, j
        if kind == "dot":
            return Dot(tok.pos), i + 1
        if kind == "ident":
            name = tok.text
            if name in ("true", "false"):
                return Literal(name == "true", name, tok.pos), i + 1
            if name == "nil":
                return Literal(None, name, tok.pos), i + 1
            if name in _KEYWORDS:
                raise self.error(tok.pos, f"unexpected <{name}> in command")
            if name not in self.funcs:
                raise self.error(tok.pos, f'function "{name}" not defined')
            return Func(name, tok.pos), i + 1
        if kind in ("string", "rawstring", "char", "number"):
            return Literal(self.literal(tok), tok.text, tok.pos), i + 1
        raise self.error(tok.pos, f"unexpected {tok.text!r} in operand")

    def chain(self, root, tokens, i, pos, text):
        """A term followed by unspaced `.Name`s. Go reports the node at the first chained name."""
        names = []
        node_pos = pos
        while i < len(tokens) and tokens[i].kind == "field" and (not tokens[i].spaced or root is None and not names):
            if (names or root is not None) and node_pos == pos:
                node_pos = tokens[i].pos
            names.append(tokens[i].text[1:])
            text += tokens[i].text
            i += 1
        return Field(root, names, node_pos, text), i

    def matching_paren(self, tokens, i):
        depth = 0
        for j in range(i, len(tokens)):
            if tokens[j].kind == "lparen":
                depth += 1
            elif tokens[j].kind == "rparen":
                depth -= 1
                if depth == 0:
                    return j
        raise self.error(tokens[i].pos, "unclosed left paren")

    def literal(self, tok):
        text = tok.text
        try:
            if tok.kind == "rawstring":
                return text[1:-1]
            if tok.kind == "string":
                return _unquote(text)
            if tok.kind == "char":
                value = _unquote('"' + text[1:-1].replace('"', '\\"') + '"')
                if len(value) != 1:
                    raise ValueError
                return ord(value)
            clean = text.replace("_", "")
            if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|\d+)", clean):
                sign = -1 if clean.startswith("-") else 1
                body = clean.lstrip("+-")
                if re.fullmatch(r"0\d+", body):
                    return sign * int(body, 8)
                return sign * int(body, 0)
            return float(clean)
        except (ValueError, OverflowError):
            raise self.error(tok.pos, f"malformed constant: {text}") from None


_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", '"': '"', "'": "'"}


def _unquote(text):
    """A Go interpreted string literal: \\n \\t \\xHH \\uHHHH \\UHHHHHHHH \\OOO."""
    out = []
    body = text[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in _GO_ESCAPES:
            out.append(_GO_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[esc]
            out.append(chr(int(body[i + 2:i + 2 + n], 16)) if len(body[i + 2:i + 2 + n]) == n else _bad_escape())
            i += 2 + n
        elif esc in "01234567":
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            _bad_escape()
    return "".join(out)


def _bad_escape():
    raise ValueError("invalid escape")
