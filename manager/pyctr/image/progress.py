"""Per-layer progress of a pull: one line per layer, redrawn in place on a terminal, milestones only
otherwise (logs and pipes get one line per status change, not a redraw per chunk)."""
import threading


class Progress:
    def __init__(self, out, quiet=False):
        self.out, self.quiet = out, quiet
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.lock = threading.Lock()
        self.lines = []
        self.state = {}

    def add(self, key, total):
        with self.lock:
            self.lines.append(key)
            self.state[key] = (0, total, "Waiting")
            if self.tty and not self.quiet:
                self.out.write(self._fmt(key) + "\n")
                self.out.flush()

    def _fmt(self, key):
        done, total, status = self.state[key]
        short = key[7:19]
        if status == "Downloading" and total:
            width = 30
            filled = int(width * done / total)
            bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
            return f"{short}: Downloading [{bar}] {done / 1e6:.1f}MB/{total / 1e6:.1f}MB"
        return f"{short}: {status}"

    def update(self, key, done=None, status=None):
        if self.quiet or key not in self.state:
            return
        with self.lock:
            d, total, s = self.state[key]
            if status is None and not self.tty:
                self.state[key] = (d if done is None else done, total, s)
                return
            self.state[key] = (d if done is None else done, total, status or s)
            if self.tty:
                up = len(self.lines) - self.lines.index(key)
                self.out.write(f"\x1b[{up}A\r\x1b[2K{self._fmt(key)}\x1b[{up}B\r")
                self.out.flush()
            elif status != s:
                self.out.write(self._fmt(key) + "\n")
                self.out.flush()

    def message(self, text):
        if not self.quiet:
            with self.lock:
                self.out.write(text + "\n")
                self.out.flush()
