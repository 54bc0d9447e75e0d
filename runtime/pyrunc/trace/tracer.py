"""The tracer's loop: follow a process tree through fork, clone, exec and threads with PTRACE_SEIZE,
write one JSON line per syscall.

Records start at a process's execve: what pyrunc runs before (init's last steps, an exec's
intermediate) is its own, not the container's. Until then a tracee runs with PTRACE_CONT (no
syscall stops at all); after it, PTRACE_SYSCALL. Children inherit their parent's mode, except
those a not-yet-exec'd init forks (startContainer hooks), which are detached at once.

What the traced program sees is what it would see untraced:
- a signal-delivery-stop is resumed with the signal (it is delivered as it would be);
- a group-stop (SIGSTOP/TSTP/TTIN/TTOU) is a PTRACE_EVENT_STOP under PTRACE_SEIZE, answered with
  PTRACE_LISTEN: the tracee stays stopped until SIGCONT, as untraced (resuming it would undo the
  stop);
- no PTRACE_O_EXITKILL: if the tracer dies, the kernel detaches every tracee and they run on;
- exit statuses reach the real parent once the tracer has seen them (ptrace(2)).

Record lines (JSON): {"time", "pid", "arch", "nr", "syscall", "args", "ret"} plus "errno" for a
failed call; {"time", "pid", "signal"} for a delivered signal; {"time", "pid", "exit"} or
{"time", "pid", "killed"} when a process ends.
"""
import os
import time

from pyrunc.sys import ptrace as pt
from pyrunc.trace.decode import Memory, SyscallTable, decode_args

OPTIONS = (pt.PTRACE_O_TRACESYSGOOD | pt.PTRACE_O_TRACEFORK | pt.PTRACE_O_TRACEVFORK | pt.PTRACE_O_TRACECLONE
           | pt.PTRACE_O_TRACEEXEC)
_SYSCALL_STOP = 5 | 0x80  # SIGTRAP | 0x80 (TRACESYSGOOD)
_GROUP_STOPS = {19, 20, 21, 22}  # SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU
_WALL = 0x40000000


def _signal_name(number):
    import _signal
    for name in ("SIGHUP SIGINT SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGKILL SIGUSR1 SIGSEGV SIGUSR2 "
                 "SIGPIPE SIGALRM SIGTERM SIGSTKFLT SIGCHLD SIGCONT SIGSTOP SIGTSTP SIGTTIN SIGTTOU SIGURG SIGXCPU "
                 "SIGXFSZ SIGVTALRM SIGPROF SIGWINCH SIGIO SIGPWR SIGSYS").split():
        if getattr(_signal, name, None) == number:
            return name
    return f"SIG{number}"


class Tracer:
    def __init__(self, root, sender, follow_root_children):
        """root: the seized pid; sender: a records.Sender; follow_root_children: the root is pyrunc's
        exec intermediate, whose child is the process to trace."""
        self.sender = sender
        self.root = root
        self.follow_root_children = follow_root_children
        self.recording = {root: False}  # pid -> records syscalls (it or an ancestor has exec'd)
        self.born_early = {}  # pid -> recording mode, for a child whose fork event came first
        self.unclaimed = set()  # children that stopped before their parent's fork event
        self.entries = {}  # pid -> (time, table entry, args text) of the syscall it is in
        self.memory = {}
        self.tables = {}

    def write(self, line):
        self.sender.add(line, time.time())

    def _resume(self, pid, signal=0):
        pt.resume(pt.PTRACE_SYSCALL if self.recording.get(pid) else pt.PTRACE_CONT, pid, signal)

    def _table(self, arch):
        table = self.tables.get(arch)
        if table is None:
            table = self.tables[arch] = SyscallTable(arch)
        return table

    def _memory(self, pid):
        memory = self.memory.get(pid)
        if memory is None:
            memory = self.memory[pid] = Memory(pid)
        return memory

    def _forget(self, pid):
        self.recording.pop(pid, None)
        self.entries.pop(pid, None)
        memory = self.memory.pop(pid, None)
        if memory is not None:
            memory.close()

    def _adopt(self, child, mode):
        """A new tracee, in its parent's mode (None: pyrunc's own helper, let go at its first stop)."""
        if child in self.unclaimed:
            self.unclaimed.discard(child)
            self._start(child, mode)
        else:
            self.born_early[child] = mode

    def _start(self, pid, mode, sig=0):
        if mode is None:
            pt.resume(pt.PTRACE_DETACH, pid)
            return
        self.recording[pid] = mode
        if sig in _GROUP_STOPS:
            pt.resume(pt.PTRACE_LISTEN, pid)  # born into a group-stop: stay stopped
        else:
            self._resume(pid)

    def _child_mode(self, parent):
        mode = self.recording.get(parent, False)
        if mode:
            return True
        if parent == self.root and not self.follow_root_children:
            return None  # a child of init before its execve: a hook, pyrunc's business
        return False

    def run(self):
        # The syscall stops are handled inline: they are nearly all of the stops, two per traced
        # call, and a method call or a tuple more per stop is a visible share of the tracer's time.
        waitpid, now = os.waitpid, time.time
        recording, entries, memory, tables, add = self.recording, self.entries, self.memory, self.tables, self.sender.add
        ptrace, info, info_op, info_address = pt.raw_ptrace, pt.INFO, pt.INFO_OP, pt.INFO_ADDRESS
        unpack_entry, unpack_exit = pt.ENTRY.unpack_from, pt.EXIT.unpack_from
        get_info, syscall, size, null = pt.PTRACE_GET_SYSCALL_INFO, pt.PTRACE_SYSCALL, pt.INFO_SIZE, pt.NULL
        import gc
        gc.disable()  # no cycles are made here; gen-0 collections every 700 records are pure cost
        while True:
            try:
                pid, status = waitpid(-1, _WALL)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if status & 0xFF == 0x7F:  # stopped
                sig = (status >> 8) & 0xFF
                if sig == _SYSCALL_STOP:
                    # The tracee is resumed as early as possible, and the record is formatted while
                    # it runs: only string arguments must be read before (its memory may change).
                    if ptrace(get_info, pid, size, info_address) == -1:
                        ptrace(syscall, pid, null, 0)  # ESRCH (killed meanwhile) needs nothing
                        continue
                    op = info_op[0]
                    if op == pt.OP_ENTRY:
                        arch, nr, *args = unpack_entry(info)
                        table = tables.get(arch) or self._table(arch)
                        name, kinds, reads_memory = table.entries.get(nr) or table.lookup(nr)
                        if reads_memory:
                            args = decode_args(kinds, args, memory.get(pid) or self._memory(pid))
                        elif kinds is not None:
                            del args[len(kinds):]
                        ptrace(syscall, pid, null, 0)
                        entries[pid] = (now(), table.arch, nr, name, args)
                    elif op == pt.OP_EXIT:
                        rval, is_error = unpack_exit(info)
                        ptrace(syscall, pid, null, 0)
                        started = entries.pop(pid, None)
                        if started is not None:
                            add((pid, rval, is_error) + started, started[0])
                    else:
                        ptrace(syscall, pid, null, 0)
                    continue
                event = status >> 16
                if event == 0:
                    if pid in recording:
                        if recording[pid]:
                            self.write(f'{{"time":{now():.6f},"pid":{pid},"signal":"{_signal_name(sig)}"}}\n')
                        self._resume(pid, sig)
                    else:
                        self.unclaimed.add(pid)
                elif event == pt.PTRACE_EVENT_STOP:
                    if sig in _GROUP_STOPS and pid in recording:
                        pt.resume(pt.PTRACE_LISTEN, pid)
                    elif pid in recording:
                        self._resume(pid)
                    elif pid in self.born_early:
                        self._start(pid, self.born_early.pop(pid), sig)
                    else:
                        self.unclaimed.add(pid)  # its parent's fork event is still to come
                elif event in (pt.PTRACE_EVENT_FORK, pt.PTRACE_EVENT_VFORK, pt.PTRACE_EVENT_CLONE):
                    child = pt.event_message(pid)
                    if child is not None:
                        self._adopt(child, self._child_mode(pid))
                    self._resume(pid)
                elif event == pt.PTRACE_EVENT_EXEC:
                    self._exec(pid, now())
                else:
                    self._resume(pid)
            else:
                self._ended(pid, status, now())
        self.sender.flush()

    def _exec(self, pid, now):
        former = pt.event_message(pid)
        if former is not None and former != pid:  # a thread exec'd: it took the leader's pid
            self.recording[pid] = self.recording.pop(former, False)
            self._forget(former)
        memory = self.memory.pop(pid, None)
        if memory is not None:
            memory.close()  # the old address space
        if not self.recording.get(pid):
            # The container process's own execve (pyrunc's last step): its entry was not seen.
            self.recording[pid] = True
            self.entries.pop(pid, None)
            argv = self._cmdline(pid)
            self.write(f'{{"time":{now:.6f},"pid":{pid},"arch":"{self._native_arch()}","nr":null,'
                       f'"syscall":"execve","args":[null,{argv},null],"ret":0}}\n')
        self._resume(pid)

    def _native_arch(self):
        from pyrunc.trace.decode import ARCH_NAMES
        import platform
        machine = platform.machine()
        return {"x86_64": ARCH_NAMES[pt.AUDIT_ARCH_X86_64], "aarch64": "aarch64"}.get(machine, machine)

    @staticmethod
    def _cmdline(pid):
        import json
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read(65536)
        except OSError:
            return "null"
        return json.dumps([part.decode(errors="backslashreplace") for part in raw.split(b"\0")[:-1]])

    def _ended(self, pid, status, now):
        was_recording = self.recording.get(pid)
        started = self.entries.get(pid)
        if was_recording and started is not None and started[3] in ("exit", "exit_group"):
            self.sender.add((pid, None, False) + started, now)  # no return: the process is gone
        if was_recording:
            if status & 0x7F == 0:
                self.write(f'{{"time":{now:.6f},"pid":{pid},"exit":{(status >> 8) & 0xFF}}}\n')
            else:
                self.write(f'{{"time":{now:.6f},"pid":{pid},"killed":"{_signal_name(status & 0x7F)}"}}\n')
        self._forget(pid)
        self.born_early.pop(pid, None)
        self.unclaimed.discard(pid)
