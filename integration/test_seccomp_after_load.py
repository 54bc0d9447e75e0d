"""After the seccomp filter is loaded, the runtime's own last steps may make only the calls runc
makes there: a profile that allows exactly those (and what the container's program needs) must run
under pyrunc as under runc. Without noNewPrivileges the filter goes in early (before the user
switch, while CAP_SYS_ADMIN is held), so that is the path under test.

RUNC_AFTER_LOAD is what `strace -f` shows runc 1.1.5's init thread calling between its
prctl(PR_SET_SECCOMP) and execve (finalizeNamespace: utils.CloseExecFrom over /proc/self/fd with
fcntl, the capability and user switch, the exec.fifo handshake, exec.LookPath and eaccess).
GO_RUNTIME: what Go's runtime may run on that thread meanwhile (signals, memory, scheduling).
BUSYBOX: what the container's static busybox sh, sleep and echo call. Everything else is EPERM,
as in Docker's profile: close_range, ioctl, access, setresuid, umask, mremap are all denied.
"""
import pytest

RUNC_AFTER_LOAD = """capget capset chdir close epoll_ctl execve faccessat2 fcntl fstat fstatfs futex getcwd
getdents64 getpid getppid newfstatat openat prctl read setgid setgroups setuid write""".split()
GO_RUNTIME = """brk madvise mmap mprotect munmap nanosleep rt_sigprocmask rt_sigreturn sched_yield sigaltstack
gettid tgkill""".split()
BUSYBOX = """arch_prctl brk clock_nanosleep execve exit_group getcwd getpid getppid getrandom getuid mprotect prctl
prlimit64 readlink rseq rt_sigaction set_robust_list set_tid_address uname write""".split()


def _profile():
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "syscalls": [{"names": sorted(set(RUNC_AFTER_LOAD + GO_RUNTIME + BUSYBOX)),
                          "action": "SCMP_ACT_ALLOW"}]}


@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000, "additionalGids": [1001]}],
                         ids=["root", "user"])
def test_only_runcs_calls_after_the_filter(runtime, user):
    config = runtime.config(["sh", "-c", "echo in-container; exit 3"])
    config["process"]["noNewPrivileges"] = False
    config["process"]["user"] = user
    config["linux"]["seccomp"] = _profile()
    c = runtime.bundle(config)
    cp = c.run(check=False)
    assert (cp.returncode, cp.stdout) == (3, "in-container\n"), cp.stderr


def test_exec_only_runcs_calls_after_the_filter(runtime):
    config = runtime.config(["sleep", "1000"])
    config["process"]["noNewPrivileges"] = False
    config["linux"]["seccomp"] = _profile()
    c = runtime.container(config)
    c.start()
    cp = runtime.run("exec", c.id, "sh", "-c", "echo in-exec; exit 4", check=False)
    assert (cp.returncode, cp.stdout) == (4, "in-exec\n"), cp.stderr
    c.kill("KILL")
    c.wait_status("stopped")
    c.delete()
