"""`pyctr build` against `docker build` (Debian's docker.io 20.10, the classic builder:
DOCKER_BUILDKIT=0) on the same Dockerfiles, contexts and busybox base: the image config fields
docker sets, the history (`created_by`, `empty_layer`; COPY/ADD content hashes masked, each
builder has its own) and the files of the resulting root filesystems (paths, types, modes, owners,
contents, link targets) must be equal. Also: a pyctr-built image loads and runs in docker."""
import gzip
import io
import os
import tarfile

import pytest

from integration.helpers.runtime import describe, execute
from integration.manager.buildcompare import config_fields, flatten, history
from integration.peers.conftest import IMAGE, image_archive  # noqa: F401 (fixture)
from integration.peers.test_docker import dockerd  # noqa: F401 (fixture: a private dockerd, base loaded)


def _tgz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, (data, mode) in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, 7, 8, 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


CASES = {
    "every_instruction": ({
        "a.txt": "hello\n", "sub/s.txt": "s\n", "sub/deeper/d.sh": ("#!/bin/sh\necho d\n", 0o755),
    }, f"""\
FROM {IMAGE}
MAINTAINER someone <a@b.c>
ARG V=1
ENV A=b C="d e" \\
    PATH=/usr/local/bin:/usr/bin:/bin
RUN echo built $V $A > /built && rm -f /etc/motd && mkdir -p /gone/x && rm -rf /gone
# a comment
WORKDIR /app
WORKDIR rel
COPY a.txt sub ./
COPY --chown=1:2 a.txt /owned
COPY sub /subcopy/
LABEL x=y "with space"="v v" from.env=$A
EXPOSE 80 53/udp 8000-8002
VOLUME /data ["/other"]
VOLUME ["/json"]
USER nobody
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5m --timeout=3s --retries=4 CMD wget -q localhost || exit 1
ONBUILD RUN echo trig
SHELL ["/bin/sh", "-ec"]
RUN echo $0 > /tmp/shell-was
CMD echo hi
ENTRYPOINT ["/bin/sh", "-c"]
""", [], None),
    "multistage_target": ({"f": "x\n"}, f"""\
ARG BASE={IMAGE}
FROM $BASE AS build
ARG MSG=default
RUN mkdir /out && echo "$MSG" > /out/msg && chmod 600 /out/msg && chown 5:6 /out/msg && ln -s msg /out/link
FROM build AS second
RUN echo second > /second
COPY --from=build /out /copied
COPY --from=0 /out/msg /one-file
FROM {IMAGE}
RUN echo never
""", ["MSG=from-arg"], "second"),
    "dockerignore": ({
        ".dockerignore": "# comment\n*.log\n**/tmp\n!keep.log\nsecret/\nsub/*\n!sub/wanted\n",
        "a.log": "no\n", "keep.log": "yes\n", "x/y/tmp/t": "no\n", "x/y/ok": "yes\n", "secret/k": "no\n",
        "sub/unwanted": "no\n", "sub/wanted": "yes\n", "plain": "yes\n",
    }, f"""\
FROM {IMAGE}
COPY . /ctx/
COPY *.log /logs/
""", [], None),
    "add_archive": ({"plain.txt": "p\n"}, f"""\
FROM {IMAGE}
ADD app.tar.gz /opt/
ADD plain.txt /opt/plain
ADD app.tar.gz /nested/dir/
""", [], None),
    "onbuild_entrypoint": ({}, f"""\
FROM {IMAGE} AS parent
CMD ["from-parent"]
ONBUILD RUN echo triggered > /trig
ONBUILD ENV FROM_TRIGGER=1
FROM parent
ENTRYPOINT ["/bin/echo"]
USER 1000:1000
""", [], None),
}


@pytest.fixture
def based(pyctr, image_archive):  # noqa: F811
    pyctr.run("load", "-i", image_archive)
    return pyctr


def _context(tmp_path, name, files, dockerfile):
    ctx = tmp_path / name
    for rel, content in files.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)
        os.chmod(p, mode)
    ctx.mkdir(exist_ok=True)
    (ctx / "app.tar.gz").write_bytes(_tgz({"app/bin/run": (b"#!/bin/sh\n", 0o755), "app/data": (b"d", 0o640)}))
    (ctx / "Dockerfile").write_text(dockerfile)
    return str(ctx)


def _docker_build(dockerd, ctx, tag, build_args, target):
    argv = [dockerd.client, "-H", f"unix://{dockerd.sock}", "build", "--network", "none", "-t", tag]
    for a in build_args:
        argv += ["--build-arg", a]
    if target:
        argv += ["--target", target]
    cp = execute(argv + [ctx], timeout=300,
                 env=dict(os.environ, DOCKER_BUILDKIT="0", DOCKER_CONFIG=os.path.join(dockerd.base, "client")))
    assert cp.returncode == 0, describe(cp) + "\n" + dockerd.logs()
    return cp


def _docker_saved(dockerd, tag, tmp_path):
    out = str(tmp_path / "docker-saved.tar")
    dockerd("save", "-o", out, tag)
    with open(out, "rb") as f:
        return f.read()


def _pyctr_saved(pyctr, tag, tmp_path):
    out = str(tmp_path / "pyctr-saved.tar")
    pyctr.run("save", "-o", out, tag)
    with open(out, "rb") as f:
        return f.read()


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_image_as_docker_build(case, based, dockerd, tmp_path):
    files, dockerfile, build_args, target = CASES[case]
    ctx = _context(tmp_path, "ctx", files, dockerfile)
    tag = f"localhost/build-cmp/{case}:latest"
    argv = ["build", "-t", tag] + [x for a in build_args for x in ("--build-arg", a)]
    argv += ["--target", target] if target else []
    mine = based.run(*argv, ctx)
    theirs = _docker_build(dockerd, ctx, tag, build_args, target)
    pc, pfiles = flatten(_pyctr_saved(based, tag, tmp_path))
    dc, dfiles = flatten(_docker_saved(dockerd, tag, tmp_path))
    pf, df = config_fields(pc), config_fields(dc)
    assert {k: (pf[k], df[k]) for k in pf if pf[k] != df[k]} == {}, describe(mine) + describe(theirs)
    assert history(pc) == history(dc)
    assert pc.get("author", "") == dc.get("author", "")
    assert sorted(set(pfiles) ^ set(dfiles)) == []
    assert {p: (pfiles[p], dfiles[p]) for p in pfiles if pfiles[p] != dfiles[p]} == {}


def test_pyctr_built_image_runs_in_docker(based, dockerd, tmp_path):
    ctx = _context(tmp_path, "run", {"msg": "from the context\n"}, f"""\
FROM {IMAGE}
COPY msg /msg
RUN echo "built by RUN" >> /msg
CMD ["cat", "/msg"]
""")
    tag = "localhost/build-cmp/runs:latest"
    based.run("build", "-t", tag, ctx)
    archive = str(tmp_path / "built.tar")
    based.run("save", "-o", archive, tag)
    dockerd("load", "-i", archive)
    cp = dockerd("run", "--rm", "--network", "none", tag)
    assert cp.stdout == "from the context\nbuilt by RUN\n"
