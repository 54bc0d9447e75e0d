"""`pyctr build` on its own: the cache (hits, a changed file invalidating from its COPY on, build
args at first use, --no-cache), faults (a failing RUN, paths outside the context, syntax errors,
refused features) leaving nothing behind, a SIGKILLed build cleaned up by the next command, two
builds at once sharing the cache, stdin Dockerfiles, -q, --label, and the built image run by pyrunc."""
import json
import os
import signal
import subprocess
import time

import pytest

from integration.helpers import mountinfo
from integration.helpers.runtime import DEFAULT_RUNTIME, describe, execute

BASE = "localhost/build/busybox:latest"


@pytest.fixture
def based(pyctr, rootfs_tar):
    pyctr.run("import", "-c", 'CMD ["sh"]', rootfs_tar, BASE)
    yield pyctr
    leftovers = [m.mount_point for m in mountinfo.read() if m.mount_point.startswith(pyctr.root)]
    assert leftovers == []
    build_dir = os.path.join(pyctr.root, "build")
    assert not os.path.isdir(build_dir) or os.listdir(build_dir) == []


def _ctx(tmp_path, dockerfile, files=None, name="ctx"):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "Dockerfile").write_text(dockerfile)
    for rel, data in (files or {}).items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(data)
    return str(d)


def _image_id(cp):
    return cp.stdout.strip().splitlines()[-1]


def _config(pyctr, ref):
    return json.loads(pyctr.run("inspect", ref).stdout)[0]


CACHED = f"""\
FROM {BASE}
ARG A=1
RUN echo step1 > /one
COPY app.txt /app.txt
RUN echo "$A" > /a && cat /app.txt > /copied
COPY other.txt /other.txt
CMD ["cat", "/copied"]
"""


def test_rebuild_is_all_cache_and_fast(based, tmp_path):
    ctx = _ctx(tmp_path, CACHED, {"app.txt": "v1\n", "other.txt": "o\n"})
    first = based.run("build", "-t", "c:1", ctx)
    assert "Using cache" not in first.stdout
    layers = based.layers()
    start = time.monotonic()
    again = based.run("build", "-t", "c:1", ctx)
    elapsed = time.monotonic() - start
    assert again.stdout.count(" ---> Using cache") == 6, again.stdout
    assert "Running in" not in again.stdout
    assert based.layers() == layers  # no new layer
    assert _image_id(again) == _image_id(first)
    assert elapsed < 1.0, f"cached rebuild took {elapsed:.2f}s"


def test_changed_file_invalidates_from_its_copy(based, tmp_path):
    ctx = _ctx(tmp_path, CACHED, {"app.txt": "v1\n", "other.txt": "o\n"})
    based.run("build", "-t", "c:1", ctx)
    os.utime(os.path.join(ctx, "other.txt"), (1, 1))  # mtime alone: still a hit
    assert based.run("build", "-t", "c:1", ctx).stdout.count("Using cache") == 6
    with open(os.path.join(ctx, "app.txt"), "w") as f:
        f.write("v2\n")
    cp = based.run("build", "-t", "c:2", ctx)
    steps = cp.stdout.split("Step ")[1:]
    hits = ["Using cache" in s for s in steps]
    assert hits == [False, True, True, False, False, False, False], cp.stdout  # FROM, ARG, RUN hit


def test_build_arg_misses_at_first_use(based, tmp_path):
    ctx = _ctx(tmp_path, CACHED, {"app.txt": "v1\n", "other.txt": "o\n"})
    based.run("build", ctx)
    cp = based.run("build", "--build-arg", "A=2", ctx)
    hits = ["Using cache" in s for s in cp.stdout.split("Step ")[1:]]
    # ARG's own step records its default only; every RUN after it sees A (`|1 A=2 ...`, as Docker's):
    # the first RUN and all that follows miss
    assert hits == [False, True, False, False, False, False, False], cp.stdout
    cp = based.run("build", "--no-cache", "-q", "--build-arg", "A=2", ctx)
    assert cp.stdout.strip().startswith("sha256:") and len(cp.stdout.split()) == 1
    hist = json.loads(based.run("inspect", cp.stdout.strip()).stdout)[0]
    assert hist["Config"]["Cmd"] == ["cat", "/copied"]


def test_failing_run_stops_and_leaves_nothing(based, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN echo before > /x\nRUN echo out; exit 3\nRUN echo never\n")
    layers, dirs = based.layers(), based.overlay_dirs()
    cp = based.fail("build", "-t", "bad", ctx)
    assert cp.returncode == 1
    assert "Error: The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3" in cp.stderr
    assert "out\n" in cp.stdout and "never" not in cp.stdout
    # the first RUN's layer is kept (as Docker keeps it, for the cache); nothing of the failed one
    assert len(based.layers()) == len(layers) + 1
    assert len(based.overlay_dirs()) == len(dirs) + 1
    tagged = [i["Repository"] for i in json.loads(based.run("images", "--format", "json").stdout)]
    assert sorted(tagged) == ["<none>", BASE.rsplit(":", 1)[0]]  # the last good step dangles, as Docker's
    assert not os.listdir(os.path.join(based.root, "build"))


@pytest.mark.parametrize("dockerfile, files, message", [
    (f"FROM {BASE}\nCOPY ../x /x\n", {}, "forbidden path outside the build context: ../x"),
    (f"FROM {BASE}\nCOPY link /x\n", {}, "forbidden path outside the build context: link"),
    (f"FROM {BASE}\nCOPY sub/up /x\n", {"sub/f": "f"}, "forbidden path outside the build context: sub/up"),
    (f"FROM {BASE}\nCOPY missing /x\n", {}, "file not found in build context or excluded by .dockerignore"),
    (f"FROM {BASE}\nCOPY ignored /x\n", {"ignored": "i", ".dockerignore": "ignored\n"},
     "file not found in build context or excluded by .dockerignore"),
    (f"FROM {BASE}\nADD http://example.com/f /f\n", {}, "remote sources are not supported"),
    (f"FROM --platform=linux/arm64 {BASE}\n", {}, "FROM --platform is not supported"),
    (f"FROM {BASE}\nRUN --mount=type=cache,target=/c true\n", {}, "BuildKit feature"),
    (f"FROM {BASE}\nRUN true\nBOGUS x\n", {}, "Dockerfile parse error line 3: unknown instruction: BOGUS"),
    (f"FROM {BASE}\nENV A=\"unterminated\n", {}, "line 2"),
    (f"RUN true\nFROM {BASE}\n", {}, "line 1: the first instruction must be FROM"),
    (f"FROM {BASE}\nCOPY a b c\n", {"a": "1", "b": "2"}, "the destination must be a directory and end with a /"),
    (f"FROM {BASE}\nUSER nobody\nCOPY --chown=nosuch f /f\n", {"f": "1"}, "no such user"),
    (f"FROM no/such/image:here\n", {}, ""),
])
def test_bad_input_is_a_clear_error(based, tmp_path, dockerfile, files, message):
    outside = tmp_path / "x"
    outside.write_text("secret")
    ctx = _ctx(tmp_path, dockerfile, files)
    os.symlink(str(outside), os.path.join(ctx, "link"))
    if os.path.isdir(os.path.join(ctx, "sub")):
        os.symlink("../../x", os.path.join(ctx, "sub", "up"))
    layers = based.layers()
    cp = based.fail("build", ctx)
    assert message in cp.stderr, describe(cp)
    assert based.layers() == layers


def _start_long_run(based, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN touch /started; sleep 60\n")
    proc = based.popen("build", ctx)
    build_dir = os.path.join(based.root, "build")
    deadline = time.monotonic() + 30
    pid = None
    while time.monotonic() < deadline and not pid:
        runs = os.listdir(build_dir) if os.path.isdir(build_dir) else []
        state = os.path.join(build_dir, *(runs[:1] or ["-"]), "runtime")
        for cid in os.listdir(state) if os.path.isdir(state) else []:
            cp = execute([DEFAULT_RUNTIME, "--root", state, "state", cid])
            if cp.returncode == 0 and json.loads(cp.stdout).get("status") == "running":
                pid = json.loads(cp.stdout)["pid"]
        time.sleep(0.05)
    if not pid:
        proc.kill()
        pytest.fail("the RUN container never started")
    return proc, build_dir, pid


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] == "Z"


def test_ctrl_c_mid_run_leaves_nothing(based, tmp_path):
    layers = based.layers()
    proc, build_dir, pid = _start_long_run(based, tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Error: interrupted" in err and b"Traceback" not in err
    assert not [m for m in mountinfo.read() if m.mount_point.startswith(based.root)]
    assert os.listdir(build_dir) == []
    assert based.layers() == layers
    assert _gone(pid)


@pytest.mark.parametrize("next_command", ["build", "image prune"])
def test_sigkill_mid_run_is_cleaned_by_the_next_command(based, tmp_path, next_command):
    proc, build_dir, pid = _start_long_run(based, tmp_path)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(m.mount_point.startswith(based.root) for m in mountinfo.read())
    if next_command == "build":
        based.run("build", _ctx(tmp_path, f"FROM {BASE}\nRUN echo fine\n", name="ok"))
    else:
        based.run(*next_command.split())
    assert _gone(pid)
    assert not [m for m in mountinfo.read() if m.mount_point.startswith(based.root)]
    assert os.listdir(build_dir) == []


def test_two_builds_at_once_share_the_cache(based, tmp_path):
    df = f"FROM {BASE}\nRUN sleep 0.3; echo shared > /s\nCOPY f /f\nRUN cat /f /s > /both\n"
    ctx = _ctx(tmp_path, df, {"f": "content\n"})
    procs = [based.popen("build", "-q", "-t", f"par:{i}", ctx) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode()
    ids = [o.decode().strip() for o, _ in outs]
    cp = based.run("build", ctx)
    assert cp.stdout.count("Using cache") == 3
    assert _image_id(cp).split()[-1] in (ids[0][7:19], ids[1][7:19])


def test_dockerfile_on_stdin_and_labels(based, tmp_path):
    cp = based.run("build", "-t", "stdin:1", "--label", "org.x=1", "--label", "b=two words", "-",
                   input=f"FROM {BASE}\nRUN echo hi > /hi\n")
    cfg = _config(based, "stdin:1")
    assert cfg["Config"]["Labels"] == {"b": "two words", "org.x": "1"}
    assert "Successfully tagged stdin:1" in cp.stdout
    cp = based.fail("build", "-", input=f"FROM {BASE}\nCOPY x /x\n")
    assert "needs a build context" in cp.stderr


def test_built_image_runs_with_pyrunc(based, tmp_path):
    ctx = _ctx(tmp_path, f"""\
FROM {BASE} AS builder
WORKDIR /src
COPY <<EOF /src/greeting
hello from a heredoc
EOF
RUN <<EOF
set -e
tr a-z A-Z < greeting > loud
EOF
FROM {BASE}
COPY --from=builder /src/loud /loud
ENV WHO=world
WORKDIR /w
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /loud; echo $WHO; pwd"]
""")
    based.run("build", "-t", "runs:1", ctx)
    bundle = tmp_path / "bundle"
    based.run("bundle", "runs:1", str(bundle))
    try:
        cp = execute([DEFAULT_RUNTIME, "--root", str(tmp_path / "state"), "run", "--bundle", str(bundle),
                      "built-" + str(os.getpid())], timeout=60)
    finally:
        based.run("umount", str(bundle))
    assert cp.stdout == "HELLO FROM A HEREDOC\nworld\n/w\n", describe(cp)


def test_target_and_unused_build_arg_warning(based, tmp_path):
    ctx = _ctx(tmp_path, f"FROM {BASE} AS a\nRUN echo a > /a\nFROM a AS b\nRUN echo b > /b\nFROM {BASE}\nRUN false\n")
    cp = based.run("build", "--target", "b", "--build-arg", "NOPE=1", "-t", "tb", ctx)
    assert "[Warning] One or more build-args [NOPE] were not consumed" in cp.stdout
    assert "RUN false" not in cp.stdout
    cp = based.fail("build", "--target", "zzz", ctx)
    assert "failed to reach build target zzz" in cp.stderr


def test_dockerfile_flag_and_runtime_flag(based, tmp_path):
    ctx = _ctx(tmp_path, "")
    with open(os.path.join(ctx, "Other.dockerfile"), "w") as f:
        f.write(f"FROM {BASE}\nRUN cat /proc/self/status | grep -q NoNewPrivs\n")
    based.run("build", "-f", os.path.join(ctx, "Other.dockerfile"), "--runtime", "/usr/sbin/runc", ctx)
    cp = based.fail("build", "--runtime", "/no/such/runtime", ctx)
    assert "no such executable" in cp.stderr


def test_built_image_loads_in_podman_and_pushes(based, registry, tmp_path):
    """A built image (layers committed from upper dirs, with a whiteout and an opaque dir) is a
    valid image for podman's `load` and for a registry: pushed, pulled into a fresh store, run."""
    import shutil

    from integration.manager.test_pyctr_podman import _RUNROOTS, podman
    from integration.manager.test_pyctr_registry import run_bundle
    ctx = _ctx(tmp_path, f"""\
FROM {BASE}
RUN mkdir -p /d/sub && echo old > /d/sub/f && echo x > /gone
RUN rm /gone && rm -rf /d && mkdir /d && echo new > /d/only
CMD ["sh", "-c", "ls /d; test ! -e /gone && echo gone"]
""")
    tag = f"{registry.host}/built/img:1"
    based.run("build", "-t", tag, ctx)
    image_id = _config(based, tag)["Id"]
    archive = str(tmp_path / "built.tar")
    based.run("save", "-o", archive, tag)
    try:
        podman(tmp_path, "load", "-i", archive)
        listed = podman(tmp_path, "images", "--format", "json").stdout
        assert image_id[7:] in listed
        podman(tmp_path, "rmi", "-a", "-f")
    finally:
        shutil.rmtree(_RUNROOTS.pop(str(tmp_path), "/nonexistent"), ignore_errors=True)
    based.run("push", "--insecure", tag)
    other = type(based)(str(tmp_path / "root2"), based.authfile)
    other.run("pull", "--insecure", tag)
    assert _config(other, tag)["Id"] == image_id
    bundle = str(tmp_path / "bundle")
    other.run("bundle", tag, bundle)
    try:
        cp = run_bundle(DEFAULT_RUNTIME, bundle, tmp_path, "built-pushed")
    finally:
        other.run("umount", bundle)
    assert cp.stdout == "only\ngone\n", describe(cp)


def test_copy_follows_destination_symlinks_inside_the_image(based, tmp_path):
    """`/bin -> usr/bin`-style links in the image are followed inside the rootfs, never to the
    host's path of the same name, and never replaced by the copy."""
    ctx = _ctx(tmp_path, f"""\
FROM {BASE}
RUN mkdir -p /usr/lib/real && ln -s /usr/lib/real /linked && ln -s ../../../../.. /usr/lib/up
COPY d/ /linked/
COPY f /linked
COPY f /usr/lib/up/etc/escaped
RUN test -L /linked && test -f /usr/lib/real/inner && test -f /usr/lib/real/f && test -f /etc/escaped
""", {"d/inner": "i\n", "f": "f\n"})
    based.run("build", ctx)
    assert not os.path.exists("/etc/escaped")


def test_deep_trees_in_a_layer_and_in_the_context(based, tmp_path):
    """A RUN that makes a tree 1100 directories deep commits (the layer tar is written without
    recursion), and a glob walks a context holding such a tree."""
    ctx = _ctx(tmp_path, f"""\
FROM {BASE}
RUN d=/deep; for i in $(seq 1100); do d=$d/d; done; mkdir -p $d && echo bottom > $d/f
COPY *.txt /txt/
RUN find /deep -name f | wc -l > /count && test "$(cat /count)" = 1 && test -f /txt/top.txt
""", {"top.txt": "t\n"})
    try:
        subprocess.run(["mkdir", "-p", os.path.join(ctx, "tree", *(["d"] * 1100))], check=True)
        based.run("build", ctx)
    finally:
        # pytest removes tmp_path by recursion: trees this deep go first, iteratively
        subprocess.run(["rm", "-rf", os.path.join(ctx, "tree"), based.root], check=True)


def test_hostile_passwd_fifo_does_not_hang(based, tmp_path):
    """A base whose /etc/passwd and /etc/group are FIFOs: USER and --chown by name are clear
    errors at once (the lookup opens without blocking and reads regular files only)."""
    ctx = _ctx(tmp_path, f"FROM {BASE}\nRUN rm /etc/passwd /etc/group && mkfifo /etc/passwd /etc/group\n",
               {"f": "f\n"})
    based.run("build", "-t", "fifo:1", ctx)
    for body, message in (("USER nobody\nRUN true\n", "unable to find user nobody"),
                          ("COPY --chown=nobody f /f\n", "no such user")):
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM fifo:1\n" + body)
        cp = based.fail("build", ctx, timeout=30)
        assert message in cp.stderr


def test_missing_base_is_pulled_and_pull_flag_pulls_again(based, registry, tmp_path):
    remote = f"{registry.host}/bases/bb:1"
    based.run("tag", BASE, remote)
    based.run("push", "--insecure", remote)
    other = type(based)(str(tmp_path / "fresh"), based.authfile)
    other.extra_env = {"PYCTR_INSECURE_REGISTRIES": registry.host}
    ctx = _ctx(tmp_path, f"FROM {remote}\nRUN echo pulled > /p\n")
    other.run("build", "--insecure", "-t", "p:1", ctx)
    assert f"{registry.host}/bases/bb " in other.run("images").stdout
    cp = other.run("build", "--insecure", "--pull", "-t", "p:1", ctx)
    assert cp.stdout.count("Using cache") == 1  # same base pulled again: the RUN is still a hit
