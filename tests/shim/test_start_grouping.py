"""containerd_main.grouping: the key `start` finds a container's shim by, as containerd's runc shim
(io.containerd.runc.v2.group first, then io.kubernetes.cri.sandbox-id, else the container's id),
read without a JSON parse when the spec is written as containerd writes it, and the same answer
as a full parse for every other spelling."""
import json
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "shim"))

from hypothesis import given, strategies as st  # noqa: E402

from pyrunc_shim.containerd_main import GROUP_ANNOTATIONS, grouping  # noqa: E402

SANDBOX, GROUP = "io.kubernetes.cri.sandbox-id", "io.containerd.runc.v2.group"


def _bundle(tmp_path, spec, **dump):
    (tmp_path / "config.json").write_text(spec if isinstance(spec, str) else json.dumps(spec, **dump))
    return str(tmp_path)


def test_as_containerd_writes_it(tmp_path):
    spec = {"ociVersion": "1.0.2", "annotations": {SANDBOX: "abc123", "x": "y"}}
    assert grouping(_bundle(tmp_path, spec, separators=(",", ":")), "cid") == "abc123"


def test_the_runc_group_comes_first_and_no_annotation_means_the_id(tmp_path):
    assert grouping(_bundle(tmp_path, {"annotations": {SANDBOX: "pod", GROUP: "g"}}), "cid") == "g"
    assert grouping(_bundle(tmp_path, {"annotations": {"other": "x"}}), "cid") == "cid"
    assert grouping(_bundle(tmp_path, {"annotations": {SANDBOX: ""}}), "cid") == "cid"
    assert grouping(str(tmp_path / "missing"), "cid") == "cid"
    assert grouping(_bundle(tmp_path, '{"annotations": {"' + SANDBOX + '": "p"'), "cid") == "cid"  # broken


def test_a_second_occurrence_elsewhere_is_not_taken_for_the_annotation(tmp_path):
    spec = {"linux": {"sysctl": {SANDBOX: "decoy"}}, "annotations": {SANDBOX: "real"}}
    assert grouping(_bundle(tmp_path, spec, separators=(",", ":")), "cid") == "real"


@given(value=st.text(min_size=1, max_size=20), indent=st.sampled_from([None, 2]),
       key=st.sampled_from(GROUP_ANNOTATIONS), decoy=st.booleans())
def test_same_answer_as_a_full_parse(tmp_path_factory, value, indent, key, decoy):
    spec = {"process": {"args": ["sh", "-c", f'echo "{key}":"{value}"']}, "annotations": {key: value}}
    if decoy:
        spec["linux"] = {"sysctl": {key: value + "x"}}
    d = tmp_path_factory.mktemp("b")
    assert grouping(_bundle(d, spec, indent=indent, separators=None if indent else (",", ":")), "cid") == value
