"""The ttrpc server's unix socket, without the server: `start` binds it (and finds a live shim
behind it) before any protobuf is imported. Imports os, errno and _socket alone (socket.py pulls in
enum, selectors and more: milliseconds on start's path); socket.socket(fileno=s.detach()) makes a
full socket of what it returns."""
import errno
import os

import _socket as socket


def _bind(path):
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        s.bind(path)
    except BaseException:
        s.close()
        raise
    finally:
        os.umask(old)
    s.listen(64)
    return s


def _strip(path):
    return path[len("unix://"):] if path.startswith("unix://") else path


def listen_unix(path):
    """Bind a listening socket at path (an existing stale socket file is replaced), mode 0600.
    -> a socket.socket"""
    import socket as full
    path = _strip(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return full.socket(fileno=_bind(path).detach())


def can_connect(path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        probe.connect(_strip(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def claim(path):
    """containerd's runc shim's way to a shim's socket: bind it; when the name is taken and a shim
    answers there, that shim serves this container too (-> None); when nobody answers, the name is
    stale: replace it. -> the listening _socket.socket, or None."""
    path = _strip(path)
    for _ in range(2):
        try:
            return _bind(path)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
        if can_connect(path):
            return None
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return _bind(path)
