"""load_config: reading and parsing config.json, locating the schemas, and the JSON path format."""
import json
import os

import pytest

import pyrunc
from pyrunc.errors import InvalidSpec, PyruncError
from pyrunc.spec import load
from pyrunc.spec.template import default_config
from pyrunc.spec.validate import json_path


def _bundle(tmp_path, text):
    (tmp_path / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(tmp_path)


def test_load_config_returns_the_dict(tmp_path):
    config = default_config()
    assert load.load_config(_bundle(tmp_path, json.dumps(config))) == config


def test_missing_config_names_the_path(tmp_path):
    with pytest.raises(InvalidSpec) as info:
        load.load_config(str(tmp_path))
    assert str(info.value) == f"{tmp_path}/config.json: JSON specification file not found"


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(InvalidSpec) as info:
        load.load_config(str(tmp_path))
    assert str(info.value) == f"{tmp_path}/config.json: cannot read: a directory, not a regular file"


def test_malformed_json_names_line_and_column(tmp_path):
    bundle = _bundle(tmp_path, '{\n    "ociVersion": "1.0.0",\n    "root" {}\n}\n')
    with pytest.raises(InvalidSpec) as info:
        load.load_config(bundle)
    assert str(info.value) == ("config.json: malformed JSON: Expecting ':' delimiter: "
                               "line 3 column 12 (char 40)")


def test_empty_file(tmp_path):
    with pytest.raises(InvalidSpec) as info:
        load.load_config(_bundle(tmp_path, ""))
    assert str(info.value) == "config.json: malformed JSON: Expecting value: line 1 column 1 (char 0)"


def test_trailing_garbage(tmp_path):
    with pytest.raises(InvalidSpec) as info:
        load.load_config(_bundle(tmp_path, '{"ociVersion": "1.0.0"} x'))
    assert str(info.value) == "config.json: malformed JSON: Extra data: line 1 column 25 (char 24)"


def test_nan_never_fills_a_typed_field(tmp_path):
    # fastjson parses NaN (Go's decoder would not); the schema still refuses it in every typed field.
    config = default_config()
    text = json.dumps(config).replace('"noNewPrivileges": true', '"oomScoreAdj": NaN')
    with pytest.raises(InvalidSpec) as info:
        load.load_config(_bundle(tmp_path, text))
    assert str(info.value) == "config.json: process.oomScoreAdj: nan is not of type 'integer'"


def test_invalid_utf8(tmp_path):
    with pytest.raises(InvalidSpec) as info:
        load.load_config(_bundle(tmp_path, b'{"ociVersion": "\xff"}'))
    assert str(info.value) == "config.json: malformed JSON: not valid UTF-8 at byte 16"


def test_deeply_nested_json(tmp_path):
    with pytest.raises(InvalidSpec) as info:
        load.load_config(_bundle(tmp_path, "[" * 200000 + "]" * 200000))
    assert str(info.value) == "config.json: malformed JSON: nested too deeply"


def test_schema_error_from_load_config(tmp_path):
    config = default_config()
    config["process"]["args"] = []
    with pytest.raises(InvalidSpec) as info:
        load.load_config(_bundle(tmp_path, json.dumps(config)))
    assert (info.value.where, info.value.rule) == ("process.args", "[] should be non-empty")
    assert str(info.value) == "config.json: process.args: [] should be non-empty"


@pytest.mark.parametrize("parts,text", [
    ([], ""),
    (["process", "args"], "process.args"),
    (["mounts", 2, "destination"], "mounts[2].destination"),
    (["linux", "sysctl", "net.ipv4.ip_forward"], 'linux.sysctl["net.ipv4.ip_forward"]'),
    (["annotations", "io.k8s/x"], 'annotations["io.k8s/x"]'),
    (["linux", "netDevices", "eth-0"], "linux.netDevices.eth-0"),
    ([0, "a"], "[0].a"),
])
def test_json_path(parts, text):
    assert json_path(parts) == text


def test_schema_dir_in_source_tree():
    directory = load.schema_dir()
    assert directory == os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(pyrunc.__file__))),
                                     "specs", "runtime-spec")
    for name in load.SCHEMA_FILES:
        assert os.path.isfile(os.path.join(directory, name))


def test_schema_dir_installed_layout(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    (site / "pyrunc").mkdir(parents=True)
    (site / "pyrunc" / "__init__.py").write_text("")
    (site / "pyrunc_specs" / "runtime-spec").mkdir(parents=True)
    (site / "pyrunc_specs" / "runtime-spec" / "config-schema.json").write_text("{}")
    monkeypatch.setattr(pyrunc, "__file__", str(site / "pyrunc" / "__init__.py"))
    assert load.schema_dir() == str(site / "pyrunc_specs" / "runtime-spec")


def test_schema_dir_missing(tmp_path, monkeypatch):
    (tmp_path / "a" / "pyrunc").mkdir(parents=True)
    monkeypatch.setattr(pyrunc, "__file__", str(tmp_path / "a" / "pyrunc" / "__init__.py"))
    with pytest.raises(PyruncError, match="runtime-spec schemas not found"):
        load.schema_dir()


def test_schemas_are_draft4_and_only_reference_local_files():
    from jsonschema import Draft4Validator
    directory = load.schema_dir()
    names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    assert names == sorted(load.SCHEMA_FILES)
    for name in names:
        with open(os.path.join(directory, name)) as f:
            document = json.load(f)
        Draft4Validator.check_schema(document)
        for ref in _refs(document):
            target = ref.split("#", 1)[0]
            assert target == "" or target in load.SCHEMA_FILES, (name, ref)


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)
