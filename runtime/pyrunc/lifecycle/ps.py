"""ps: the container's processes, as host pids, from its cgroup; the table form filters ps(1)."""
from pyrunc.errors import InvalidState, PyruncError
from pyrunc.lifecycle.container import cgroup_of, load


def container_pids(store, container_id):
    state, status = load(store, container_id)
    cgroup = cgroup_of(state)
    if cgroup is None:
        raise InvalidState("container has no cgroup", status)
    return cgroup.pids()


def ps_table(pids, ps_args):
    """runc's table: ps(1)'s header, then the lines whose PID column is one of the container's."""
    import subprocess
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise PyruncError("ps: command not found on the host") from None
    except subprocess.CalledProcessError as e:
        raise PyruncError(f"ps {' '.join(ps_args)}: {e.stderr.strip() or 'failed'}") from None
    lines = out.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise PyruncError(f"ps {' '.join(ps_args)}: no PID column in its output")
    column = header.index("PID")
    wanted = set(pids)
    rows = [lines[0]] + [line for line in lines[1:] if _pid_at(line, column) in wanted]
    return "\n".join(rows) + "\n"


def _pid_at(line, column):
    fields = line.split(None, column + 1)
    try:
        return int(fields[column])
    except (IndexError, ValueError):
        return None
