"""runc-compatible logging: --log FILE, --log-format text|json, --debug.

containerd's shim decodes --log as logrus JSON lines and surfaces the last `level == "error"` msg,
so the keys and their order (level, msg, time) are part of the interface.
"""
import os
import sys
import time

LEVELS = ("debug", "info", "warning", "error", "fatal")


def _rfc3339():
    now = time.time()
    local = time.localtime(now)
    offset = local.tm_gmtoff
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        zone = "%s%02d:%02d" % (sign, abs(offset) // 3600, abs(offset) % 3600 // 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@^+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t", "\v": "\\v"}


def _quote_text(value):
    # logrus' TextFormatter.needsQuoting: bare only when made of ASCII letters, digits and -._/@^+
    # (an empty value too); otherwise Go's strconv.Quote.
    if all(c in _BARE for c in value):
        return value
    out = []
    for c in value:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append("\\x%02x" % ord(c))
        elif ord(c) < 0x10000:
            out.append("\\u%04x" % ord(c))
        else:
            out.append("\\U%08x" % ord(c))
    return '"' + "".join(out) + '"'


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path, self.fmt, self.debug_enabled = path, fmt, debug
        self._fd = None

    def _line(self, level, msg):
        if self.fmt == "json":
            from pyrunc import fastjson as json
            return json.dumps({"level": level, "msg": msg, "time": _rfc3339()}) + "\n"
        return f"time={_quote_text(_rfc3339())} level={level} msg={_quote_text(msg)}\n"

    def _write_log(self, line):
        if self._fd is None:
            self.open()
        os.write(self._fd, line.encode())

    def open(self):
        # O_APPEND|O_SYNC as runc: concurrent runtimes writing one log interleave whole lines.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_SYNC | os.O_CLOEXEC, 0o644)

    def log(self, level, msg):
        if level == "debug" and not self.debug_enabled:
            return
        line = self._line(level, msg)
        if self.path:
            try:
                self._write_log(line)
            except OSError as e:
                sys.stderr.write(f"pyrunc: cannot write log {self.path}: {e.strerror}\n")
        else:
            sys.stderr.write(line)

    def debug(self, msg):
        self.log("debug", msg)

    def warning(self, msg):
        self.log("warning", msg)

    def error(self, msg):
        """An error ends the command: logged, and also on stderr when the log is a file (as runc)."""
        self.log("error", msg)
        if self.path:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()


# The process-wide logger, configured by the CLI from the global flags.
logger = Logger()


def configure(path, fmt, debug):
    """Set up the process-wide logger; like runc, the log file is opened (created) right away."""
    logger.path = os.path.abspath(path) if path else None
    logger.fmt = fmt
    logger.debug_enabled = debug
    if logger.path:
        logger.open()
    return logger
