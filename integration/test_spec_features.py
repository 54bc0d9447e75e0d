"""spec: writes runc's template; features: the runtime-spec features document."""
import json
import os
import subprocess

import pytest


def _load(path):
    with open(path) as f:
        return json.load(f)


def test_spec_in_cwd(runtime, tmp_path):
    runtime.run("spec", cwd=str(tmp_path))
    config = _load(tmp_path / "config.json")
    assert isinstance(config["ociVersion"], str)
    assert config["process"]["terminal"] is True
    assert config["process"]["args"] == ["sh"]
    assert config["root"] == {"path": "rootfs", "readonly": True}
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= types
    assert "user" not in types
    assert {m["destination"] for m in config["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"}


def test_spec_refuses_to_overwrite(runtime, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    cp = runtime.fail("spec", cwd=str(tmp_path))
    assert "config.json" in cp.stderr
    assert (tmp_path / "config.json").read_text() == "{}"


def test_spec_bundle(runtime, tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    runtime.run("spec", "--bundle", str(bundle))
    assert _load(bundle / "config.json")["process"]["args"] == ["sh"]
    runtime.fail("spec", "--bundle", str(bundle))
    other = tmp_path / "c"
    other.mkdir()
    runtime.run("spec", "-b", str(other))
    assert (other / "config.json").exists()


def test_spec_bundle_missing_dir_fails(runtime, tmp_path):
    runtime.fail("spec", "--bundle", str(tmp_path / "missing"))


def test_spec_rootless(runtime, tmp_path):
    runtime.run("spec", "--rootless", cwd=str(tmp_path))
    config = _load(tmp_path / "config.json")
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert "user" in types
    assert "network" not in types
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert config["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]


def test_spec_output_runs(runtime):
    """The written template is usable as is (with terminal off and a real command)."""
    c = runtime.bundle(["true"])
    os.unlink(os.path.join(c.bundle, "config.json"))
    runtime.run("spec", "--bundle", c.bundle)
    config = _load(os.path.join(c.bundle, "config.json"))
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "echo from-spec"]
    config["linux"]["cgroupsPath"] = c.cgroups_path
    with open(os.path.join(c.bundle, "config.json"), "w") as f:
        json.dump(config, f)
    assert c.run().stdout == "from-spec\n"


RUNC = "/usr/sbin/runc"


@pytest.mark.parametrize("flags", [(), ("--rootless",)], ids=["default", "rootless"])
def test_spec_writes_runc_1_1_template_exactly(runtime, tmp_path, flags):
    """Byte for byte what runc 1.1.5 writes: no cgroup namespace, its ociVersion and hostname."""
    ours, theirs = tmp_path / "ours", tmp_path / "runc"
    ours.mkdir()
    theirs.mkdir()
    runtime.run("spec", *flags, cwd=str(ours))
    subprocess.run([RUNC, "spec", *flags], cwd=str(theirs), check=True)
    assert (ours / "config.json").read_bytes() == (theirs / "config.json").read_bytes()
    namespaces = [ns["type"] for ns in _load(ours / "config.json")["linux"]["namespaces"]]
    assert "cgroup" not in namespaces


@pytest.mark.pyrunc_only
def test_spec_is_the_template(runtime, tmp_path):
    from pyrunc.spec.template import default_config, rootless
    runtime.run("spec", cwd=str(tmp_path))
    assert _load(tmp_path / "config.json") == default_config()
    rl = tmp_path / "rl"
    rl.mkdir()
    runtime.run("spec", "--rootless", "--bundle", str(rl))
    assert _load(rl / "config.json") == rootless(default_config())


def test_features(runtime):
    cp = runtime.run("features")
    f = json.loads(cp.stdout)
    assert isinstance(f["ociVersionMin"], str) and isinstance(f["ociVersionMax"], str)
    # only the hooks the runtime really runs (issue 2 has none yet; runc 1.1.5 lists all six)
    assert isinstance(f["hooks"], list)
    assert set(f["hooks"]) <= {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                               "poststop"}
    assert {"bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "rslave", "shared"} \
        <= set(f["mountOptions"])
    linux = f["linux"]
    assert {"pid", "network", "ipc", "uts", "mount", "cgroup"} <= set(linux["namespaces"])
    assert isinstance(linux.get("cgroup"), dict)
    assert linux["cgroup"]["v1"] is True and linux["cgroup"]["v2"] is True
    if "annotations" in f:
        assert all(isinstance(v, str) for v in f["annotations"].values())


@pytest.mark.pyrunc_only
def test_features_pyrunc(runtime):
    import pyrunc
    f = json.loads(runtime.run("features").stdout)
    assert f["ociVersionMax"] == pyrunc.OCI_VERSION
    assert f["ociVersionMin"] == "1.0.0"
    _validate_against_schema(f)


def _validate_against_schema(document, schema_name="features-schema.json"):
    """Validate against a runtime-spec schema from specs/runtime-spec (draft-04, cross-file $refs)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
    base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs", "runtime-spec")
    resources = []
    for name in os.listdir(base):
        if name.endswith(".json"):
            resources.append((f"file://{base}/{name}", Resource.from_contents(_load(os.path.join(base, name)),
                                                           default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = dict(_load(os.path.join(base, schema_name)), id=f"file://{base}/{schema_name}")
    jsonschema.Draft4Validator(schema, registry=registry).validate(document)


def test_features_schema_validator_works_on_runc_output():
    """Sanity check of _validate_against_schema with a known-good document."""
    good = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.0.2-dev", "hooks": ["prestart"],
            "mountOptions": ["ro"], "linux": {"namespaces": ["pid"], "cgroup": {"v1": True, "v2": True}}}
    _validate_against_schema(good)
    with pytest.raises(Exception):
        _validate_against_schema({"ociVersionMin": 1})
