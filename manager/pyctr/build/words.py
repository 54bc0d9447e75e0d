"""Docker's shell-word processing of instruction arguments (moby/buildkit shell.Lex): quotes,
the escape character, and variable expansion ($V, ${V}, ${V:-w}, ${V-w}, ${V:+w}, ${V+w},
${V:?msg}, ${V?msg}). RUN, CMD and ENTRYPOINT are not expanded: their shell does that."""
from pyctr.errors import PyctrError


class ExpansionError(PyctrError):
    pass


def _name_end(text, i):
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] == "_"):
        j += 1
    return j


class _Lexer:
    def __init__(self, text, env, escape):
        self.text, self.env, self.escape = text, env, escape
        self.i = 0

    def words(self, split):
        """The processed words; without split, one word with whitespace kept."""
        out, cur, has = [], [], False
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if split and c in " \t\n":
                if has:
                    out.append("".join(cur))
                    cur, has = [], False
                self.i += 1
                continue
            has = True
            if c == self.escape:
                self.i += 1
                if self.i < len(t):
                    cur.append(t[self.i])
                    self.i += 1
                elif not split:
                    cur.append(c)
            elif c == "'":
                end = t.find("'", self.i + 1)
                if end < 0:
                    raise ExpansionError(f"unexpected end of statement while looking for matching single-quote in {t!r}")
                cur.append(t[self.i + 1:end])
                self.i = end + 1
            elif c == '"':
                cur.append(self._double())
            elif c == "$":
                cur.append(self._variable())
            else:
                cur.append(c)
                self.i += 1
        if has:
            out.append("".join(cur))
        return out

    def _double(self):
        t, out = self.text, []
        self.i += 1
        while self.i < len(t):
            c = t[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == self.escape and self.i + 1 < len(t) and t[self.i + 1] in ('"', "$", self.escape):
                out.append(t[self.i + 1])
                self.i += 2
            elif c == "$":
                out.append(self._variable())
            else:
                out.append(c)
                self.i += 1
        raise ExpansionError(f"unexpected end of statement while looking for matching double-quote in {t!r}")

    def _variable(self):
        t = self.text
        self.i += 1
        if self.i >= len(t):
            return "$"
        if t[self.i] != "{":
            end = _name_end(t, self.i)
            if end == self.i:
                return "$"
            name = t[self.i:end]
            self.i = end
            return self.env.get(name, "")
        end = _name_end(t, self.i + 1)
        name = t[self.i + 1:end]
        if not name:
            raise ExpansionError(f"bad substitution in {t!r}")
        self.i = end
        if self.i < len(t) and t[self.i] == "}":
            self.i += 1
            return self.env.get(name, "")
        op = ""
        while self.i < len(t) and t[self.i] in ":-+?" and len(op) < 2:
            op += t[self.i]
            self.i += 1
        if op not in (":-", "-", ":+", "+", ":?", "?"):
            raise ExpansionError(f"unsupported modifier ({op or t[self.i:self.i + 1]}) in substitution {t!r}")
        word = self._word_until_brace()
        value = self.env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return word if unset else value
        if op.endswith("+"):
            return "" if unset else word
        if unset:
            raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
        return value

    def _word_until_brace(self):
        t, out = self.text, []
        while self.i < len(t):
            c = t[self.i]
            if c == "}":
                self.i += 1
                return "".join(out)
            if c == self.escape and self.i + 1 < len(t):
                out.append(t[self.i + 1])
                self.i += 2
            elif c == "$":
                out.append(self._variable())
            elif c in "'\"":
                sub = _Lexer(t, self.env, self.escape)
                sub.i = self.i
                out.append(sub._double() if c == '"' else _single(sub))
                self.i = sub.i
            else:
                out.append(c)
                self.i += 1
        raise ExpansionError(f"missing '}}' in {t!r}")


def _single(lexer):
    end = lexer.text.find("'", lexer.i + 1)
    if end < 0:
        raise ExpansionError(f"unexpected end of statement while looking for matching single-quote in {lexer.text!r}")
    s = lexer.text[lexer.i + 1:end]
    lexer.i = end + 1
    return s


def words(text, env, escape="\\"):
    """Whitespace-separated words, quotes removed, variables expanded."""
    return _Lexer(text, env, escape).words(split=True)


def word(text, env, escape="\\"):
    """One word: quotes removed and variables expanded, whitespace kept."""
    out = _Lexer(text, env, escape).words(split=False)
    return out[0] if out else ""


def key_values(text, env, escape, what):
    """`k=v k2="v 2"` pairs (ENV, LABEL, ARG); each key and value processed as a word."""
    out = []
    for w in _raw_words(text, escape):
        k, sep, v = w.partition("=")
        if not sep:
            raise ExpansionError(f"{what} names can not be blank" if not k else f"{what}: {w!r} has no '=' value")
        k = word(k, env, escape)
        if not k:
            raise ExpansionError(f"{what} names can not be blank")
        out.append((k, word(v, env, escape)))
    return out


def _raw_words(text, escape):
    """Split on unquoted whitespace, keeping quotes and escapes for the later per-word pass."""
    out, cur, quote, i = [], [], None, 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in " \t\n":
            if cur:
                out.append("".join(cur))
                cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if quote:
        raise ExpansionError(f"unexpected end of statement while looking for matching {quote} in {text!r}")
    if cur:
        out.append("".join(cur))
    return out
