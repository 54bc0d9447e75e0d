"""Collecting exited children, for both shims (conmon's monitor.py, containerd's reaper.py): only os,
so the conmon-mode monitor pays no import for it."""
import os


def exit_code(status):
    """waitpid status -> the code callers see (conmon's exit file, containerd's exit_status): the
    shell convention, 128+signal when killed."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def reaped():
    """(pid, status) of every child that can be reaped now, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status
