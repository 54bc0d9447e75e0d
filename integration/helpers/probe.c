/* A static test helper run inside containers: tries system calls and reports errno, prints ids.
 * Built at test time by integration/helpers/probe.py (gcc -static); busybox cannot make these calls.
 *   probe ids                      -> "<ruid> <euid> <rgid> <egid>"
 *   probe sys NAME...              -> "NAME=ok" or "NAME=<errno>" per call (see table below)
 *   probe personality              -> current persona in hex
 *   probe caps                     -> "CapEff=<hex> CapBnd=<hex>" of this process
 *   probe dropcaps CMD...          -> keep only runc's default caps (AUDIT_WRITE, KILL,
 *                                     NET_BIND_SERVICE) in every set, then exec CMD: a container
 *                                     process as the default config makes one
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <stdlib.h>

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

static int caps(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    if (!f) { perror("status"); return 1; }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapBnd:", 7)) {
            line[6] = '=';
            char *tab = strchr(line, '\t');
            if (tab) memmove(tab, tab + 1, strlen(tab));
            fputs(line, stdout);
        }
    fclose(f);
    return 0;
}

static int dropcaps(char **argv) {
    unsigned long keep = (1UL << 29) | (1UL << 5) | (1UL << 10);
    for (int cap = 0; cap < 64; cap++)
        if (!(keep & (1UL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
            perror("PR_CAPBSET_DROP");
            return 1;
        }
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{keep, keep, 0}, {0, 0, 0}};
    if (syscall(SYS_capset, &h, d) < 0) { perror("capset"); return 1; }
    execv(argv[0], argv);
    perror("execv");
    return 127;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "caps")) return caps();
    if (argc >= 3 && !strcmp(argv[1], "dropcaps")) return dropcaps(argv + 2);
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
