from pyrunc.cli.flags import Flag
from pyrunc.errors import PyruncError, UsageError

USAGE = "[command options] <container-id> <command> [command options]  || -p process.json <container-id>"
STOP_AT_POSITIONAL = True  # what follows the id is the command and its own flags
FLAGS = [
    Flag("console-socket", "str", "", "path to an AF_UNIX socket which will receive a file descriptor "
                                      "referencing the master end of the console's pseudoterminal"),
    Flag("pidfd-socket", "str", "", "path to an AF_UNIX socket which will receive a file descriptor "
                                    "referencing the exec process"),
    Flag("cwd", "str", "", "current working directory in the container"),
    Flag("env|e", "list", help="set environment variables"),
    Flag("tty|t", "bool", help="allocate a pseudo-TTY"),
    Flag("user|u", "str", "", "UID (format: <uid>[:<gid>])"),
    Flag("additional-gids|g", "list", help="additional gids"),
    Flag("process|p", "str", "", "path to the process.json"),
    Flag("detach|d", "bool", help="detach from the container's process"),
    Flag("pid-file", "str", "", "specify the file to write the process id to"),
    Flag("process-label", "str", "", "set the asm process label for the process commonly used with selinux"),
    Flag("apparmor", "str", "", "set the apparmor profile for the process"),
    Flag("no-new-privs", "bool", help="set the no new privileges value for the process"),
    Flag("cap|c", "list", help="add a capability to the bounding set for the process"),
    Flag("preserve-fds", "int", 0, "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    Flag("cgroup", "list", help="run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
    Flag("ignore-paused", "bool", help="allow exec in a paused container"),
    Flag("trace", "str", "", "write the process's syscalls to FILE as JSON lines, from its execve on"),
]


def run(ctx, opts, args):
    from pyrunc.lifecycle.exec import ExecOptions, exec_process
    try:
        if not args:
            raise UsageError('"pyrunc exec" requires a minimum of 1 argument(s)')
        if opts["preserve_fds"] < 0:
            raise UsageError("--preserve-fds must not be negative")
        exec_opts = ExecOptions(
            process=opts["process"] or None, args=args[1:], tty=opts["tty"],
            console_socket=opts["console_socket"] or None, cwd=opts["cwd"] or None, env=opts["env"],
            user=opts["user"] or None, additional_gids=[g for v in opts["additional_gids"] for g in v.split(",")],
            caps=opts["cap"], no_new_privs=opts["no_new_privs"], apparmor=opts["apparmor"] or None,
            process_label=opts["process_label"] or None, detach=opts["detach"],
            pid_file=opts["pid_file"] or None, preserve_fds=opts["preserve_fds"], cgroup=opts["cgroup"],
            ignore_paused=opts["ignore_paused"], pidfd_socket=opts["pidfd_socket"] or None,
            trace=opts["trace"] or None)
        return exec_process(ctx, args[0], exec_opts)
    except PyruncError as e:
        e.exit_code = 255  # runc: any failure of exec itself is 255, distinct from the process's codes
        raise
