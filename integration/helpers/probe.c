/* A static test helper run inside containers: tries system calls and reports errno, prints ids.
 * Built at test time by integration/helpers/probe.py (gcc -static); busybox cannot make these calls.
 *   probe ids                      -> "<ruid> <euid> <rgid> <egid>"
 *   probe sys NAME...              -> "NAME=ok" or "NAME=<errno>" per call (see table below)
 *   probe personality              -> current persona in hex
 *   probe caps                     -> "CapEff=<hex> CapBnd=<hex>" of this process
 *   probe dropcaps CMD...          -> keep only runc's default caps (AUDIT_WRITE, KILL,
 *                                     NET_BIND_SERVICE) in every set, then exec CMD: a container
 *                                     process as the default config makes one
 *   probe fds                      -> "pid=<pid> LISTEN_FDS=<v> LISTEN_PID=<v>", then one line
 *                                     "<fd> <dev>:<ino> <link>" per open fd (its own dir fd excluded)
 *   probe sdnotify [TEXT]          -> send TEXT (default READY=1) to $NOTIFY_SOCKET (sd_notify)
 *   probe peek PID                 -> what this process may see of PID: "exe=", "exe-link=",
 *                                     "environ=", "fd-list=", "fd0-link=", "fd0-open=", each "ok"
 *                                     or the errno
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
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stddef.h>

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

static int fds(void) {
    const char *n = getenv("LISTEN_FDS"), *p = getenv("LISTEN_PID");
    printf("pid=%d LISTEN_FDS=%s LISTEN_PID=%s\n", getpid(), n ? n : "-", p ? p : "-");
    DIR *d = opendir("/proc/self/fd");
    if (!d) { perror("opendir /proc/self/fd"); return 1; }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == dirfd(d)) continue;
        char path[64], link[PATH_MAX] = "";
        struct stat st;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len >= 0) link[len] = 0;
        if (fstat(fd, &st) < 0) { perror("fstat"); return 1; }
        printf("%d %lu:%lu %s\n", fd, (unsigned long)st.st_dev, (unsigned long)st.st_ino, link);
    }
    closedir(d);
    return 0;
}

static int sdnotify(const char *text) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) { fprintf(stderr, "probe: NOTIFY_SOCKET not set\n"); return 1; }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) { fprintf(stderr, "probe: NOTIFY_SOCKET too long\n"); return 1; }
    strcpy(addr.sun_path, path);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = 0;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("socket"); return 1; }
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + (path[0] == '@' ? 0 : 1);
    if (sendto(s, text, strlen(text), 0, (struct sockaddr *)&addr, len) < 0) { perror("sendto"); return 1; }
    close(s);
    return 0;
}

static const char *result(int ok) {
    static char buf[16];
    if (ok) return "ok";
    snprintf(buf, sizeof buf, "%d", errno);
    return buf;
}

static int peek(const char *pid) {
    char path[64], link[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%s/exe", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    printf("exe=%s\n", result(fd >= 0));
    if (fd >= 0) close(fd);
    printf("exe-link=%s\n", result(readlink(path, link, sizeof link) >= 0));
    snprintf(path, sizeof path, "/proc/%s/environ", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[256];
    int ok = fd >= 0 && read(fd, buf, sizeof buf) >= 0;
    printf("environ=%s\n", result(ok));
    if (fd >= 0) close(fd);
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    DIR *d = opendir(path);
    int entries = 0;
    if (d) {
        errno = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') entries++;
        ok = errno == 0 && entries > 0;
        if (ok == 0 && errno == 0) errno = ENOENT;  /* listed nothing: as good as denied */
        closedir(d);
    } else
        ok = 0;
    printf("fd-list=%s\n", result(ok));
    snprintf(path, sizeof path, "/proc/%s/fd/0", pid);
    printf("fd0-link=%s\n", result(readlink(path, link, sizeof link) >= 0));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    printf("fd0-open=%s\n", result(fd >= 0));
    if (fd >= 0) close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fds")) return fds();
    if (argc >= 2 && !strcmp(argv[1], "sdnotify")) return sdnotify(argc >= 3 ? argv[2] : "READY=1");
    if (argc >= 3 && !strcmp(argv[1], "peek")) return peek(argv[2]);
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
    fprintf(stderr, "usage: probe ids | personality | caps | dropcaps CMD... | sys NAME... | fds | sdnotify [TEXT] | peek PID\n");
    return 2;
}
