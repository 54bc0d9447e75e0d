"""pyctr's run/create flag translation (Docker's rules), names and ids, seccomp profiles: pure."""
import argparse
import json

import pytest

from pyctr.cli import build_parser
from pyctr.container import caps, names, options, seccomp
from pyctr.container.errors import ContainerError
from pyctr.container.listing import human_duration
from pyctr.container.monitor import exit_code_for


def _args(*argv):
    return build_parser("run").parse_args(["run", *argv])


def _build(*argv, image_config=None):
    a = _args(*argv)
    from pyctr.cli.images import command_of
    a.command = command_of(a.command)
    return options.build(a, a.image, "sha256:" + "0" * 64, image_config or {"Cmd": ["sh"]})


def test_ids_and_names():
    for _ in range(200):
        cid = names.new_id()
        assert names.HEX64.match(cid) and not cid[:12].isdigit()
        n = names.random_name()
        assert names.NAME_RE.match(n) and n != "boring_wozniak"
    assert not names.NAME_RE.match("a") and not names.NAME_RE.match("-x") and not names.NAME_RE.match("a/b")


def test_everything_after_the_image_is_the_command():
    cfg, _ = _build("-d", "--name", "x", "img", "sh", "-c", "echo", "-d", "--rm")
    assert cfg["Cmd"] == ["sh", "-c", "echo", "-d", "--rm"]


def test_docker_rules():
    cfg, host = _build("--pids-limit", "0", "--cpus", "1.5", "-m", "64m", "-e", "A=1", "--restart",
                       "on-failure:3", "img", image_config={"Cmd": ["sh"], "Env": ["A=0", "B=2"]})
    assert host["PidsLimit"] is None and host["NanoCpus"] == 1500000000 and host["Memory"] == 64 << 20
    assert cfg["Env"] == ["A=1", "B=2"]
    cfg, _ = _build("-e", "C=3", "-e", "A=1", "img", image_config={"Cmd": ["sh"], "Env": ["A=0", "B=2"]})
    assert cfg["Env"] == ["C=3", "A=1", "B=2"]  # dockerd's order: the user's, then the image's left
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    cfg, _ = _build("--entrypoint", "/bin/echo", "img", image_config={"Entrypoint": ["x"], "Cmd": ["y"]})
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/bin/echo"], None)  # a new entrypoint drops the image's Cmd


@pytest.mark.parametrize("argv", [
    ["--rm", "--restart", "always", "img"], ["-m", "1m", "img"], ["--cpus", "x", "img"],
    ["-v", "rel:/x:zz", "img"], ["-v", "/a:rel", "img"], ["-v", "/a:/b", "-v", "/c:/b", "img"],
    ["--restart", "sometimes", "img"], ["--restart", "always:3", "img"], ["--stop-signal", "SIGNOPE", "img"],
    ["--ulimit", "nofile=10:5", "img"], ["--device", "rel", "img"], ["--cap-add", "NOPE", "img"],
    ["--security-opt", "bogus", "img"], ["--network", "container:", "img"], ["-p", "80/xyz", "img"], ["--add-host", "nocolon", "img"], ["--dns", "not-an-ip", "img"], ["--log-opt", "x=1", "img"],
    ["-w", "rel", "img"], ["--mount", "type=bind,src=rel,dst=/x", "img"], ["--tmpfs", "rel", "img"],
])
def test_bad_flags_are_clear_125s(argv):
    with pytest.raises(ContainerError) as e:
        _build(*argv)
    assert e.value.exit_code == 125 and str(e.value)


def test_volume_forms():
    assert options.parse_volume("/data")["Type"] == "volume"
    b = options.parse_volume("/h:/c:ro")
    assert (b["Type"], b["Source"], b["Destination"], b["RW"]) == ("bind", "/h", "/c", False)
    v = options.parse_volume("named:/c")
    assert (v["Type"], v["Source"]) == ("volume", "named")


def test_caps():
    assert caps.effective(None, None, False) == caps.DEFAULT_CAPS
    assert "CAP_NET_RAW" not in caps.effective([], ["net_raw"], False)
    assert "CAP_SYS_ADMIN" in caps.effective(["SYS_ADMIN"], [], False)
    assert caps.effective([], ["ALL"], False) == []
    assert caps.effective(None, None, True) == caps.ALL_CAPS


def test_default_seccomp_refuses_what_docker_refuses(tmp_path):
    prof = seccomp.default_profile(caps.DEFAULT_CAPS)
    denied = prof["syscalls"][0]["names"]
    assert {"mount", "kexec_load", "init_module", "unshare", "bpf"} <= set(denied)
    assert "mount" not in seccomp.default_profile(caps.DEFAULT_CAPS + ["CAP_SYS_ADMIN"])["syscalls"][0]["names"]
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86"]}], "syscalls": [
                 {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                 {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}))
    out = seccomp.from_file(str(p), caps.DEFAULT_CAPS)
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [r["names"] for r in out["syscalls"]] == [["read"]]
    p.write_text("{nope")
    with pytest.raises(ContainerError):
        seccomp.from_file(str(p), [])


@pytest.mark.parametrize("text, code", [
    ('exec: "x": executable file not found in $PATH', 127), ("stat /x: no such file or directory", 127),
    ('exec: "/etc": permission denied', 126), ("mount: device busy", 125)])
def test_runtime_errors_map_as_dockerd(text, code):
    assert exit_code_for(text) == code


@pytest.mark.parametrize("secs, text", [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"),
                                        (90, "About a minute"), (600, "10 minutes"), (3600, "About an hour"),
                                        (7200, "2 hours"), (86400 * 3, "3 days")])
def test_human_duration(secs, text):
    assert human_duration(secs) == text


def test_container_verbs_parse_the_same_alone_and_whole():
    for argv in (["run", "-d", "--name", "x", "img", "ls", "-l"], ["ps", "-a", "--no-trunc"],
                 ["exec", "-it", "c", "sh", "-c", "x"], ["container", "ls", "-a"], ["logs", "-f", "-n", "3", "c"]):
        whole, alone = build_parser().parse_args(argv), build_parser(argv[0]).parse_args(argv)
        assert {k: v for k, v in vars(whole).items() if k != "fn"} == \
               {k: v for k, v in vars(alone).items() if k != "fn"}
    assert isinstance(build_parser(), argparse.ArgumentParser)
