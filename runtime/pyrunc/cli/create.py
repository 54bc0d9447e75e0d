from pyrunc.cli import require_id
from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
FLAGS = [
    Flag("bundle|b", "str", ".", "path to the root of the bundle directory, defaults to the current directory"),
    Flag("console-socket", "str", "", "path to an AF_UNIX socket which will receive the pty master"),
    Flag("pidfd-socket", "str", "", "path to an AF_UNIX socket which will receive a file descriptor "
                                    "referencing the init process"),
    Flag("pid-file", "str", "", "specify the file to write the process id to"),
    Flag("no-pivot", "bool", help="do not use pivot root to jail process inside rootfs"),
    Flag("no-new-keyring", "bool", help="do not create a new session keyring for the container"),
    Flag("preserve-fds", "int", 0, "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    Flag("trace", "str", "", "write the container's syscalls to FILE as JSON lines, from its execve on"),
]


def options(opts, detach=True):
    from pyrunc.errors import UsageError
    from pyrunc.lifecycle.create import CreateOptions
    if opts["preserve_fds"] < 0:
        raise UsageError("--preserve-fds must not be negative")
    return CreateOptions(opts["bundle"], opts["pid_file"] or None, opts["console_socket"] or None,
                         opts["no_pivot"], opts["no_new_keyring"], opts["preserve_fds"], detach,
                         opts["pidfd_socket"] or None, opts["trace"] or None)


def run(ctx, opts, args):
    from pyrunc.lifecycle.create import create
    create(ctx, require_id(args, "create"), options(opts))
    return 0
