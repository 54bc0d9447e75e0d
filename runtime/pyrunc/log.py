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


def _quote_text(value):
    # logrus' TextFormatter quotes a value unless it is made only of these characters.
    if value and all(c.isalnum() or c in "-._/@^+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


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
        # Opened O_APPEND|O_SYNC as runc does: concurrent runtimes interleave whole lines.
        os.write(self._fd, line.encode())

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
        logger._fd = os.open(logger.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_SYNC | os.O_CLOEXEC, 0o644)
    return logger
