from pyrunc.cli import require_id

USAGE = "<container-id>"
FLAGS = []


def view(store, container_id, state, status):
    """The state as runc prints it (state and list): pid 0 once stopped."""
    import os
    view = {
        "ociVersion": state.get("ociVersion", ""),
        "id": container_id,
        "pid": state["pid"] if status != "stopped" else 0,
        "status": status,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
    }
    if state.get("annotations"):
        view["annotations"] = state["annotations"]
    try:
        uid = os.stat(store.path(container_id)).st_uid
        import pwd
        view["owner"] = pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        view["owner"] = ""
    return view


def run(ctx, opts, args):
    from pyrunc import fastjson as json
    import sys
    from pyrunc.lifecycle.container import load
    container_id = require_id(args, "state")
    store = ctx.store()
    state, status = load(store, container_id)
    sys.stdout.write(json.dumps(view(store, container_id, state, status), indent=2) + "\n")
    return 0
