/* A static test helper run inside containers: tries system calls and reports errno, prints ids.
 * Built at test time by integration/helpers/probe.py (gcc -static); busybox cannot make these calls.
 *   probe ids                      -> "<ruid> <euid> <rgid> <egid>"
 *   probe sys NAME...              -> "NAME=ok" or "NAME=<errno>" per call (see table below)
 *   probe personality              -> current persona in hex
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long call(const char *name) {
    if (!strcmp(name, "getpid")) return syscall(SYS_getpid);
    if (!strcmp(name, "unshare")) return syscall(SYS_unshare, CLONE_NEWUTS);
    if (!strcmp(name, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0L, 0L);
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0L /* GET_KEYRING_ID */, -3L /* session */, 0L);
    if (!strcmp(name, "ptrace")) return syscall(SYS_ptrace, 0L /* TRACEME */, 0L, 0L, 0L);
    if (!strcmp(name, "personality-query")) return syscall(SYS_personality, 0xffffffffL);
    if (!strcmp(name, "personality-bad")) return syscall(SYS_personality, 0x0020000L);  /* ADDR_LIMIT_32BIT */
    if (!strcmp(name, "acct")) return syscall(SYS_acct, 0L);
    if (!strcmp(name, "swapoff")) return syscall(SYS_swapoff, "/nonexistent");
    if (!strcmp(name, "sethostname")) return syscall(SYS_sethostname, "probe", 5L);
    errno = EINVAL;
    return -2;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "ids")) {
        printf("%d %d %d %d\n", getuid(), geteuid(), getgid(), getegid());
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "personality")) {
        printf("%lx\n", syscall(SYS_personality, 0xffffffffL));
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "sys")) {
        for (int i = 2; i < argc; i++) {
            errno = 0;
            long r = call(argv[i]);
            if (r == -2) { fprintf(stderr, "probe: unknown call %s\n", argv[i]); return 2; }
            if (r < 0) printf("%s=%d\n", argv[i], errno); else printf("%s=ok\n", argv[i]);
            fflush(stdout);
        }
        return 0;
    }
    fprintf(stderr, "usage: probe ids | personality | sys NAME...\n");
    return 2;
}
