"""A small parser with the semantics of runc's urfave/cli, at a fraction of argparse's import cost.

Accepted like runc: `--flag value`, `--flag=value`, `-flag` (Go style single dash for long names),
short aliases (`-b`), boolean flags with optional `=true|false`, repeated slice flags, `--` to end
flags. Verbs whose trailing arguments belong to the container (exec, ps, kill) stop parsing flags
at the first positional argument; the others accept flags after positional ones too.
"""
from pyrunc.errors import UsageError


class Flag:
    __slots__ = ("names", "kind", "default", "help", "dest", "hidden")

    def __init__(self, names, kind="bool", default=None, help="", hidden=False):
        self.names = tuple(names.split("|"))
        self.kind = kind  # bool | str | int | list
        self.default = [] if kind == "list" else (False if kind == "bool" and default is None else default)
        self.help, self.hidden = help, hidden
        self.dest = self.names[0].replace("-", "_")


_TRUE = {"1", "t", "true", "T", "TRUE", "True"}
_FALSE = {"0", "f", "false", "F", "FALSE", "False"}


def parse(flags, argv, stop_at_positional=False, command=""):
    """Return (options dict, positional list)."""
    table = {}
    for flag in flags:
        for name in flag.names:
            table[name] = flag
    opts = {flag.dest: (list(flag.default) if flag.kind == "list" else flag.default) for flag in flags}
    positional = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            positional.extend(argv[i:])
            break
        if len(token) < 2 or token[0] != "-" or (positional and stop_at_positional):
            positional.append(token)
            if stop_at_positional:
                positional.extend(argv[i:])
                break
            continue
        name, eq, value = token.lstrip("-").partition("=")
        flag = table.get(name)
        if flag is None:
            where = f" for {command}" if command else ""
            raise UsageError(f"flag provided but not defined{where}: {token.split('=')[0]}")
        if flag.kind == "bool":
            if not eq:
                opts[flag.dest] = True
            elif value in _TRUE:
                opts[flag.dest] = True
            elif value in _FALSE:
                opts[flag.dest] = False
            else:
                raise UsageError(f"invalid boolean value {value!r} for flag {token.split('=')[0]}")
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: {token}")
            value = argv[i]
            i += 1
        if flag.kind == "int":
            try:
                value = int(value, 0)
            except ValueError:
                raise UsageError(f"invalid value {value!r} for flag {token.split('=')[0]}: not an integer") from None
        if flag.kind == "list":
            opts[flag.dest].append(value)
        else:
            opts[flag.dest] = value
    return opts, positional


def usage_text(prog, command, flags, usage, summary):
    lines = [f"NAME:\n   {prog} {command} - {summary}\n", f"USAGE:\n   {prog} {command} {usage}\n"]
    visible = [f for f in flags if not f.hidden]
    if visible:
        lines.append("OPTIONS:")
        for flag in visible:
            names = ", ".join(("--" if len(n) > 1 else "-") + n for n in flag.names)
            arg = " value" if flag.kind != "bool" else ""
            default = f" (default: {flag.default})" if flag.kind in ("str", "int") and flag.default else ""
            lines.append(f"   {names + arg:<32} {flag.help}{default}")
    return "\n".join(lines) + "\n"
