"""/proc/self/mountinfo and /proc/self/cgroup texts of the three kinds of host, as found in the wild."""

# CentOS 7 / Ubuntu 16.04: v1 only, co-mounted controllers, systemd's named hierarchy. The last
# line is a container's bind mount that shows up in the host's mount table and must be ignored.
V1_MOUNTINFO = """\
18 62 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
24 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
25 24 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
29 24 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,net_cls,net_prio
30 24 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
31 24 0:28 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,devices
32 24 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,freezer
33 24 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset,clone_children
34 24 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
35 24 0:32 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,blkio
36 62 0:33 / /run/user/1000 rw,nosuid,nodev,relatime shared:200 - tmpfs tmpfs rw,size=400000k,mode=700
500 480 0:31 /docker/abc /var/lib/docker/overlay2/x/merged/sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,pids
"""
V1_SELF_CGROUP = """\
11:blkio:/user.slice
10:pids:/user.slice/user-1000.slice/session-3.scope
9:cpuset:/
8:freezer:/
7:devices:/user.slice
6:memory:/user.slice
5:net_cls,net_prio:/
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-3.scope
"""

# Ubuntu 20.04 / Debian 10: systemd's hybrid layout, cgroup2 at /sys/fs/cgroup/unified.
HYBRID_MOUNTINFO = """\
24 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
25 24 0:22 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
26 24 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
29 24 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
30 24 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
31 24 0:28 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
32 24 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
33 24 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
34 24 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,cpuset
"""
HYBRID_SELF_CGROUP = """\
8:cpuset:/
7:pids:/user.slice/user-1000.slice/session-3.scope
6:freezer:/
5:devices:/user.slice
4:cpu,cpuacct:/user.slice
3:memory:/user.slice/user-1000.slice/session-3.scope
1:name=systemd:/user.slice/user-1000.slice/session-3.scope
0::/user.slice/user-1000.slice/session-3.scope
"""

# Fedora 31+, Ubuntu 21.10+, Debian 11+: cgroup2 only.
V2_MOUNTINFO = """\
24 18 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
V2_SELF_CGROUP = """\
0::/user.slice/user-1000.slice/session-3.scope
"""

# Inside a docker container without a cgroup namespace (v1): the mounts show the container's
# sub-tree, /proc/self/cgroup the full host path.
DIND_V1_MOUNTINFO = """\
700 690 0:50 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
701 700 0:27 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup rw,memory
702 700 0:28 /docker/abc /sys/fs/cgroup/devices ro,nosuid,nodev,noexec,relatime master:12 - cgroup cgroup rw,devices
"""
DIND_V1_SELF_CGROUP = """\
7:devices:/docker/abc
6:memory:/docker/abc/sub
"""
