"""A fixed pool of worker threads with futures: the part of concurrent.futures that pull and unpack
use. concurrent.futures imports logging and traceback, ~4 ms on every pull, about a tenth of
fetching a small image from a local registry."""
import threading


class Future:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state = "pending"  # -> running -> finished, or -> cancelled
        self._result = self._error = None

    def cancel(self):
        """Keep it from starting; False if it already has."""
        with self._lock:
            if self._state == "pending":
                self._state = "cancelled"
                self._done.set()
            return self._state == "cancelled"

    def cancelled(self):
        return self._state == "cancelled"

    def _run(self):
        with self._lock:
            if self._state != "pending":
                return
            self._state = "running"
        try:
            self._result = self.fn(*self.args)
        except BaseException as e:
            self._error = e
        finally:
            self._state = "finished"
            self._done.set()

    def exception(self):
        self._done.wait()
        return self._error

    def result(self):
        self._done.wait()
        if self._state == "cancelled":
            raise RuntimeError("result() of a cancelled task")
        if self._error is not None:
            raise self._error
        return self._result


class Pool:
    def __init__(self, workers, name="worker"):
        self.workers, self.name = max(1, workers), name
        self._queue = []
        self._cond = threading.Condition()
        self._threads = []
        self._closed = False

    def submit(self, fn, *args):
        f = Future(fn, args)
        with self._cond:
            if self._closed:
                raise RuntimeError("submit() after shutdown()")
            self._queue.append(f)
            self._cond.notify()
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        return f

    def _work(self):
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                f = self._queue.pop(0)
            f._run()

    def shutdown(self, wait=True):
        """No more submissions; the queued tasks still run (cancel them first to drop them)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.shutdown(wait=True)
