"""Seccomp profiles for tests, shaped like Docker's default (moby profiles/seccomp/default.json):
default ERRNO(EPERM), an allowlist of ordinary calls, argument conditions on personality, and an
explicit ENOSYS rule. unshare, mount, keyctl, ptrace and friends are not in the allowlist."""
import copy

ALLOWED = """
accept accept4 access adjtimex alarm arch_prctl bind brk capget capset chdir chmod chown clock_adjtime
clock_getres clock_gettime clock_nanosleep clone close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_wait eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fallocate fchdir fchmod fchmodat fchown fchownat fcntl fdatasync
fgetxattr flistxattr flock fork fstat fstatfs fsync ftruncate futex getcwd getdents getdents64 getegid
geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
getresgid getresuid getrlimit get_robust_list getrusage getsid getsockname getsockopt gettid gettimeofday
getuid getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch ioctl kill lchown lgetxattr
link linkat listen listxattr llistxattr lseek lstat madvise membarrier memfd_create mincore mkdir mkdirat
mknod mknodat mlock mmap mprotect mremap msync munlock munmap nanosleep newfstatat open openat openat2
pause pipe pipe2 poll ppoll prctl pread64 preadv prlimit64 pselect6 pwrite64 pwritev read readahead
readlink readlinkat readv recvfrom recvmmsg recvmsg rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
sched_getaffinity sched_yield select sendfile sendmmsg sendmsg sendto setgid setgroups setitimer setpgid
setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list setsid setsockopt
set_tid_address setuid shutdown sigaltstack socket socketpair stat statfs statx symlink symlinkat sync
sysinfo tgkill time timer_create timer_delete timerfd_create timerfd_gettime timerfd_settime times tkill
truncate umask uname unlink unlinkat utime utimensat utimes vfork wait4 waitid write writev
""".split()

DOCKER_SHAPED = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ALLOWED, "action": "SCMP_ACT_ALLOW"},
        # Docker allows only these personas (the others weaken ASLR and friends).
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        # As Docker does for clone3: a distinct errno, so we also see errnoRet honoured.
        {"names": ["clone3", "keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        # A name no kernel has: skipped, not an error (profiles outlive kernels and vice versa).
        {"names": ["pyrunc_no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
    ],
}


def docker_shaped():
    return copy.deepcopy(DOCKER_SHAPED)
