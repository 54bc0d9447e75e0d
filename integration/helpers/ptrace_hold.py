"""Hold a runtime's child at the door of the container's program: run a command under ptrace,
following every process it forks, and stop the first descendant the caller picks (e.g. the one in
the container's pid namespace) at the entry of its execve, while it still runs the runtime's code.
A test looks at it from inside the container there, then lets everything go on.

The hold is the test's, not the container's: nothing the image does (a FIFO, a slow file) is needed
to keep the runtime's child waiting, so the runtime can refuse every such trap.
"""
import os
import signal
import subprocess

from ptrace.binding import ptrace_setoptions, ptrace_syscall, ptrace_traceme
from ptrace.binding.func import (PTRACE_O_TRACECLONE, PTRACE_O_TRACEFORK, PTRACE_O_TRACESYSGOOD,
                                 PTRACE_O_TRACEVFORK)

_PTRACE_O_EXITKILL = 0x100000  # the tracees die with the tracer (a failing test leaves nothing)
_OPTIONS = (PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD
            | _PTRACE_O_EXITKILL)
_SYSCALL_STOP = signal.SIGTRAP | 0x80
_EXECVE, _EXECVEAT = 59, 322  # x86_64
_WALL = 0x40000000  # waitpid: traced children that are not ours too


def _syscall_number(pid):
    """At a syscall-entry stop, /proc/<pid>/syscall starts with the call's number."""
    with open(f"/proc/{pid}/syscall") as f:
        return int(f.read().split()[0])


def run_holding_execve(argv, on_hold, which=lambda pid: True, **popen):
    """Run argv; when a process it started (any depth) for which which(pid) holds enters execve,
    call on_hold(pid) with that process stopped there (once). Returns argv's exit status (as
    Popen.returncode). If anything fails, every traced process is killed before the error goes on."""
    proc = subprocess.Popen(argv, preexec_fn=ptrace_traceme, **popen)
    in_syscall = {proc.pid: False}   # every tracee seen -> inside a syscall (entry seen, no exit)
    held = False
    try:
        while in_syscall:
            pid, status = os.waitpid(-1, _WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                del in_syscall[pid]
                if pid == proc.pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                continue
            sig, event = os.WSTOPSIG(status), status >> 16
            deliver = 0
            if sig == _SYSCALL_STOP:
                entering = not in_syscall[pid]
                in_syscall[pid] = entering
                if entering and not held and pid != proc.pid and \
                        _syscall_number(pid) in (_EXECVE, _EXECVEAT) and which(pid):
                    held = True
                    on_hold(pid)
            elif event:
                pass  # fork/vfork/clone: the new child is traced already and reports its own stop
            elif sig == signal.SIGTRAP and pid == proc.pid and not held:
                ptrace_setoptions(pid, _OPTIONS)  # argv's own execve: follow it from here
            elif sig in (signal.SIGSTOP, signal.SIGTRAP):
                in_syscall.setdefault(pid, False)  # a new child's first stop; the trap after execve
            else:
                deliver = sig  # a real signal for the tracee: pass it on
            ptrace_syscall(pid, deliver)
    except BaseException:
        for pid in in_syscall:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while in_syscall:  # a killed tracee's exit is ours to collect first, then its parent's
            try:
                pid, status = os.waitpid(-1, _WALL)
            except ChildProcessError:
                break
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                in_syscall.pop(pid, None)
        raise
    if not held:
        raise AssertionError(f"no process started by {argv[0]} that was looked for entered execve")
    return proc.returncode
