"""Go's text/template, the subset Docker's `--format`/`-f` users write, run on decoded JSON.

Docker parses the format with Go's text/template plus its own functions (`json split join title
lower upper pad truncate`, `cli/templates/templates.go`) and executes it on the inspect JSON; we do
the same on the dicts pyctr builds with Docker's JSON names. What is covered: text and actions with
`{{-`/`-}}` trimming and `{{/* */}}` comments; fields `.A.B`, `$`, `$var.A`, `(pipe).A`; pipelines
with `|`; `$x := pipe` and `$x = pipe`; `if`/`else if`/`else`, `range` (lists, maps in key order,
ints; `$i, $e :=`; `else`; `break`/`continue`), `with`/`else`; Go's builtins `and or not len index
slice print printf println eq ne lt le gt ge html js urlquery`. Not covered (a clear parse error):
`define`, `template`, `block`, `call`.

Go's behaviour on a map[string]interface{} is kept: a missing key prints `<no value>` (as does JSON
null), a field on a string/list/number is an execution error, and errors read as Go's
(`template: :1:7: executing "" at <.Name.Foo>: can't evaluate field Foo in type string`); Docker
prefixes them with `template parsing error: ` (str(TemplateError); `go_message` is Go's).
"""
import functools

from pyctr.container import gofmt
from pyctr.container.template_funcs import FUNCS, HEADER_FUNCS, MISSING, FuncError, truth
from pyctr.container.template_parse import (Action, Branch, Dot, Field, Func, Literal, LoopControl,
                                            Paren, Parser, Source, TemplateError, Text)

__all__ = ["Template", "TemplateError", "compile", "render", "is_table"]


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    def __init__(self, node, why):
        super().__init__(why)
        self.node, self.why = node, why


class _Exec:
    def __init__(self, src, funcs, root):
        self.src = src
        self.funcs = funcs
        self.out = []
        self.vars = [("$", root)]

    def fail(self, node, why):
        raise _ExecError(node, why)

    def lookup(self, name):
        for var, value in reversed(self.vars):
            if var == name:
                return value
        return MISSING

    def set_var(self, name, value):
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return

    def walk(self, nodes, dot):
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(self.printable(value, node))
            elif isinstance(node, Branch):
                self.branch(node, dot)
            elif isinstance(node, LoopControl):
                raise _Break() if node.kind == "break" else _Continue()

    def printable(self, value, node):
        if value is MISSING:
            return gofmt.NO_VALUE
        return gofmt.format_value(value)

    def scoped(self, body, dot):
        mark = len(self.vars)
        try:
            self.walk(body, dot)
        finally:
            del self.vars[mark:]

    def branch(self, node, dot):
        mark = len(self.vars)
        try:
            value = self.pipe(node.pipe, dot)
            if node.kind == "range":
                self.range(node, value, dot, mark)
                return
            if truth(value):
                self.scoped(node.body, value if node.kind == "with" else dot)
            else:
                self.scoped(node.else_body, dot)
        finally:
            del self.vars[mark:]

    def range(self, node, value, dot, mark):
        if value is MISSING or gofmt.is_nil(value):
            pairs = []
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value, key=str)]
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        else:
            self.fail(node.pipe, f"range can't iterate over {gofmt.format_value(value)}")
        if not pairs:
            self.scoped(node.else_body, dot)
            return
        decl = node.pipe.decl
        for key, elem in pairs:
            if len(decl) == 1:
                self.set_var(decl[0], elem)
            elif len(decl) == 2:
                self.set_var(decl[0], key)
                self.set_var(decl[1], elem)
            try:
                self.scoped(node.body, elem)
            except _Break:
                break
            except _Continue:
                continue

    def pipe(self, pipe, dot):
        value = MISSING
        final = False
        for cmd in pipe.commands:
            value = self.command(cmd, dot, value if final else _NO_FINAL)
            final = True
        if pipe.decl:
            if pipe.assign:
                for name in pipe.decl:
                    self.set_var(name, value)
            else:
                for name in pipe.decl:
                    self.vars.append((name, value))
        return value

    def command(self, cmd, dot, final):
        first = cmd.args[0]
        if isinstance(first, Func):
            args = [self.arg(a, dot) for a in cmd.args[1:]]
            if final is not _NO_FINAL:
                args.append(final)
            return self.call(first.name, cmd, args, cmd.args[1:], dot)
        if len(cmd.args) > 1 or final is not _NO_FINAL:
            if isinstance(first, Field):
                method = self.field(first, dot)
                name = first.names[-1] if first.names else first.root
                if callable(method):  # a row's method, as `{{.Label "com.x"}}` in ps/volume ls
                    args = [self.arg(a, dot) for a in cmd.args[1:]]
                    if final is not _NO_FINAL:
                        args.append(final)
                    return self.invoke(name, first, method, args)
                self.fail(first, f"{name} is not a method but has arguments")
            self.fail(first, f"can't give argument to non-function {first}")
        return self.arg(first, dot)

    def arg(self, node, dot):
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Field):
            value = self.field(node, dot)
            if callable(value):
                return self.invoke(node.names[-1] if node.names else node.root, node, value, [])
            return value
        if isinstance(node, Paren):
            return self.pipe(node.pipe, dot)
        if isinstance(node, Func):
            # a function named as an argument is called with no arguments, as Go does
            return self.call(node.name, node, [], [], dot)
        self.fail(node, "unexpected operand")

    def field(self, node, dot):
        if node.root is None:
            receiver = dot
        elif isinstance(node.root, str):
            receiver = self.lookup(node.root)
        else:
            receiver = self.pipe(node.root.pipe, dot)
        # Docker runs inspect templates on its typed structs, then on the JSON as a map with
        # missingkey=error: a missing map key prints <no value>, a missing struct field fails
        for name in node.names:
            if receiver is MISSING or receiver is gofmt.NIL_MAP:
                return MISSING
            if gofmt.is_nil(receiver):
                self.fail(node, f"nil pointer evaluating interface {{}}.{name}")
            if not isinstance(receiver, dict):
                self.fail(node, f"can't evaluate field {name} in type interface {{}}")
            if name in receiver:
                receiver = receiver[name]
            elif gofmt.is_map(receiver):
                return MISSING
            else:
                go_type = getattr(receiver, "go_type", None)
                self.fail(node, f"can't evaluate field {name} in type {go_type}" if go_type else
                          f'map has no entry for key "{name}"')
        return receiver

    def call(self, name, node, args, arg_nodes, dot):
        if name in ("and", "or"):
            return self.and_or(name, node, args)
        return self.invoke(name, node, self.funcs[name], args)

    def invoke(self, name, node, func, args):
        try:
            return func(*args)
        except FuncError as e:
            self.fail(node, f"error calling {name}: {e}")
        except TypeError:
            self.fail(node, f"wrong number of args for {name}: want {_arity(func)} got {len(args)}")

    def and_or(self, name, node, args):
        if not args:
            self.fail(node, f"wrong number of args for {name}: want at least 1 got 0")
        for value in args[:-1]:
            if truth(value) == (name == "or"):
                return value
        return args[-1]

    def error(self, exc):
        node = exc.node
        return TemplateError(f'template: :{self.src.where(node.pos)}: executing "" at <{node}>: {exc.why}')


_NO_FINAL = object()


def _arity(func):
    import inspect
    params = inspect.signature(func).parameters.values()
    fixed = sum(1 for p in params if p.kind == p.POSITIONAL_OR_KEYWORD)
    return f"at least {fixed}" if any(p.kind == p.VAR_POSITIONAL for p in params) else str(fixed)


class Template:
    """A parsed template; execute() it once per object (rows of `ps`, each `inspect` target)."""

    def __init__(self, text, funcs=None):
        self.text = text
        self.funcs = FUNCS if funcs is None else funcs
        self.src = Source(text)
        self.tree = Parser(self.src, self.funcs).parse()

    def execute(self, obj):
        ex = _Exec(self.src, self.funcs, obj)
        try:
            ex.walk(self.tree, obj)
        except _ExecError as e:
            raise ex.error(e) from None
        return "".join(ex.out)


@functools.lru_cache(maxsize=32)
def compile(text, header=False):  # noqa: A001 - the module's verb, as re.compile
    """A parsed Template for text (cached: `ps` formats every row with one)."""
    return Template(text, HEADER_FUNCS if header else None)


def render(text, obj):
    """Execute the Go template text on obj; raises TemplateError with Go's message."""
    return compile(text).execute(obj)


def is_table(fmt):
    """Docker's `table` prefix: `table {{.ID}}\\t{{.Names}}` prints a header row and aligns columns."""
    from pyctr.container.formatter import TABLE_KEY
    return fmt.startswith(TABLE_KEY)
