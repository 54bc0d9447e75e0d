"""Docker's --format templates (Go text/template + Docker's functions) on inspect-style dicts.

Expected strings are what `docker inspect -f` / `docker volume ls --format` print (docker 28 client,
Go's text/template), checked against a private dockerd when this was written (see the report of
h15-extras); Go's rules they rest on are quoted next to the cases."""
import json
import random

import pytest

from pyctr.container import gofmt, template
from pyctr.container.formatter import format_rows, prepare
from pyctr.container.tabwriter import tabwrite
from pyctr.container.template import TemplateError, is_table, render
from pyctr.errors import PyctrError

OBJ = {
    "Id": "4f3c" + "0" * 60,
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 4242, "ExitCode": 0},
    "Config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh", "-c", "x"], "Labels": {"z": "last", "a": "first"},
               "Entrypoint": None, "Volumes": None, "Hostname": ""},
    "Mounts": [{"Type": "volume", "Name": "data", "Source": "/var/lib/x", "Destination": "/data", "RW": True}],
    "HostConfig": {"Memory": 0, "NanoCpus": 1500000000},
    "Size": 1000000.0,
}


@pytest.mark.parametrize("tmpl,out", [
    ("{{.Name}}", "/web"),
    ("{{.State.Status}} {{.State.Pid}}", "running 4242"),
    ("{{.State.Running}}/{{.State.Paused}}", "true/false"),
    # json: encoding/json, struct/insertion order, no HTML escaping, no trailing newline
    ("{{json .Config.Cmd}}", '["sh","-c","x"]'),
    ("{{json .Config.Entrypoint}}", "null"),
    ("{{json .Mounts}}", '[{"Type":"volume","Name":"data","Source":"/var/lib/x","Destination":"/data","RW":true}]'),
    ('{{json "a<b>&c"}}', '"a<b>&c"'),
    ("{{json .Size}}", "1000000"),
    # %v printing: maps sorted by key, lists space-separated, floats as %g
    ("{{.Config.Labels}}", "map[a:first z:last]"),
    ("{{.Config.Env}}", "[PATH=/bin A=1]"),
    ("{{.Size}}", "1e+06"),
    ("{{.HostConfig.NanoCpus}}", "1500000000"),
    # a missing key of a map (a dict of strings) prints <no value>, index gives the zero value "";
    # JSON null prints <no value> (Docker's typed nils: see test_typed_nils)
    ("{{.Config.Labels.nope}}", "<no value>"),
    ("{{index .Config.Labels \"nope\"}}|", "|"),
    ("{{.Config.Entrypoint}}", "<no value>"),
    # %v of a struct (a dict with non-string values) is Go's {v1 v2 ...} in field order
    ("{{.State}}", "{running true false 4242 0}"),
    ("{{.Mounts}}", "[{volume data /var/lib/x /data true}]"),
    # range over lists, maps (key order), with $i/$k variables, else branch, ints
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[PATH=/bin][A=1]"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "a=first z=last "),
    ("{{range $i, $m := .Mounts}}{{$i}}:{{$m.Name}}->{{.Destination}}{{end}}", "0:data->/data"),
    ("{{range .Config.Volumes}}x{{else}}none{{end}}", "none"),
    ("{{range $e := .Config.Cmd}}{{if eq $e \"-c\"}}{{break}}{{end}}{{$e}}{{end}}", "sh"),
    ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}", "shx"),
    ("{{range $.Config.Cmd}}{{$.Name}}{{end}}", "/web/web/web"),
    # index into maps and lists, nested
    ('{{index .Config.Labels "a"}}', "first"),
    ("{{index .Config.Cmd 2}}", "x"),
    ("{{(index .Mounts 0).Source}}", "/var/lib/x"),
    ('{{index .Mounts 0 "Name"}}', "data"),
    # if / else if / else; with; truth of empty values
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ('{{if eq .State.Status "exited"}}E{{else if eq .State.Status "running"}}R{{else}}?{{end}}', "R"),
    ("{{if .Config.Hostname}}h{{else}}no-h{{end}}", "no-h"),
    ("{{if .HostConfig.Memory}}m{{else}}unlimited{{end}}", "unlimited"),
    ("{{with .State}}{{.Pid}}{{end}}", "4242"),
    ("{{with .Config.Hostname}}x{{else}}empty{{end}}", "empty"),
    ("{{if and .State.Running (not .State.Paused)}}ok{{end}}", "ok"),
    ('{{or .Config.Hostname "dflt"}}', "dflt"),
    ("{{if ne .State.ExitCode 0}}bad{{else}}good{{end}}", "good"),
    ("{{if gt .State.Pid 100}}big{{end}}", "big"),
    # variables, pipelines, parentheses
    ("{{$n := .Name}}{{$n}}{{$n = \"x\"}}{{$n}}", "/webx"),
    ("{{.Name | upper}}", "/WEB"),
    ('{{.Name | printf "%q"}}', '"/web"'),
    ("{{len .Config.Env}} {{len .Name}} {{len .Config.Labels}}", "2 4 2"),
    # Docker's functions
    ("{{upper .State.Status}} {{lower \"ABC\"}} {{title \"hello big-world\"}}", "RUNNING abc Hello Big-World"),
    ('{{join .Config.Cmd " "}}', "sh -c x"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{index (split "a:b:c" ":") 1}}', "b"),
    ('{{pad .Name 2 1}}|', "  /web |"),
    ("{{truncate .Id 12}}", "4f3c00000000"),
    # fmt
    ('{{printf "%s has pid %d" .Name .State.Pid}}', "/web has pid 4242"),
    ('{{printf "%-6s|%5d|%05d|%x|%v|%t" "ab" 7 42 255 .Config.Cmd true}}', "ab    |    7|00042|ff|[sh -c x]|true"),
    ('{{printf "%d" "str"}}', "%!d(string=str)"),
    ('{{printf "%s %s" "one"}}', "one %!s(MISSING)"),
    ("{{println .Name}}", "/web\n"),
    ('{{println "a" 1 "b"}}', "a 1 b\n"),
    ('{{print "a" 1 2 "b"}}', "a1 2b"),
    # trim markers, comments, literals
    ("a  {{- .Name -}}  \n b", "a/webb"),
    ("{{/* a comment */}}x{{- /* another */ -}} y", "xy"),
    ("{{`raw\\n`}}|{{\"esc\\t\"}}|{{0x10}}|{{-3}}|{{'a'}}|{{1.5}}|{{true}}", "raw\\n|esc\t|16|-3|97|1.5|true"),
    ("{{\"\\u00e9\"}}", "\u00e9"),
    ("\n{{.Name}}\n", "\n/web\n"),
    ("{{html \"<a&'\\\">\"}}", "&lt;a&amp;&#39;&#34;&gt;"),
    ("{{js \"a'b<c>\"}}", "a\\'b\\u003Cc\\u003E"),
    ('{{urlquery "a b&c"}}', "a+b%26c"),
    ('{{printf "%5.2f|%X|%o|%b|%c|%e|%g|%T" 3.14159 "hi" 8 5 65 1234.5 0.00001 .Name}}',
     " 3.14|6869|10|101|A|1.234500e+03|1e-05|string"),
    ('{{printf "%-8s|%8s|%08.3f|%+d|% d|%#x|%#v" "l" "r" 3.14159 5 5 255 .Name}}', 'l       |       r|0003.142|+5| 5|0xff|"/web"'),
    ("{{1e3}} {{0x1F}} {{1_000}} {{0o17}} {{017}}", "1000 31 1000 15 15"),
    ('{{printf "%v %v %v %v" 1.0 1e21 1e-5 123456789.0}}', "1 1e+21 1e-05 1.23456789e+08"),
    ('{{len "\u00e9"}} {{index .Name 1}} {{slice .Name 1 3}}', "2 119 we"),
    ('{{eq .Name "x" "/web"}} {{lt 1 2}} {{lt "b" "a"}} {{and 1 0 2}} {{or 0 "" "x"}}', "true true false 0 x"),
])
def test_render(tmpl, out):
    assert render(tmpl, OBJ) == out


@pytest.mark.parametrize("tmpl,message", [
    # execution errors: Go's `template: :LINE:COL: executing "" at <NODE>: WHY`, as `docker inspect
    # -f` prints them for a container (its fallback run on the JSON with missingkey=error)
    ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("{{.Nope.X}}", 'template: :1:7: executing "" at <.Nope.X>: map has no entry for key "Nope"'),
    ("{{with .Nope}}x{{end}}", 'template: :1:7: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("{{.Name.Foo}}", 'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type interface {}'),
    ("{{.Config.Env.X}}", 'template: :1:9: executing "" at <.Config.Env.X>: can\'t evaluate field X in type interface {}'),
    ("{{.State.Pid.X}}", 'template: :1:8: executing "" at <.State.Pid.X>: can\'t evaluate field X in type interface {}'),
    ("{{.Config.Entrypoint.X}}", 'template: :1:9: executing "" at <.Config.Entrypoint.X>: nil pointer evaluating interface {}.X'),
    ("{{index .Config.Cmd 5}}", 'template: :1:2: executing "" at <index .Config.Cmd 5>: error calling index: index out of range: 5'),
    ("x\n{{range .Name}}{{end}}", 'template: :2:8: executing "" at <.Name>: range can\'t iterate over /web'),
    ('{{"a" "b"}}', 'template: :1:2: executing "" at <"a">: can\'t give argument to non-function "a"'),
    ("{{json}}", 'template: :1:2: executing "" at <json>: wrong number of args for json: want 1 got 0'),
    ('{{join .Mounts ","}}', 'template: :1:2: executing "" at <join .Mounts ",">: error calling join: '
                            'wrong type for value; expected []string; got []interface {}'),
    ('{{eq .State.Pid "x"}}', 'template: :1:2: executing "" at <eq .State.Pid "x">: error calling eq: '
                              'incompatible types for comparison'),
    # parse errors: `template: :LINE: WHY`
    ("{{.Name", "template: :1: unclosed action"),
    ("{{nosuch .Name}}", 'template: :1: function "nosuch" not defined'),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .Name}}", "template: :1: unexpected EOF"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{range .X}}{{end}}{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{/* open", "template: :1: unclosed comment"),
    ("{{define \"x\"}}{{end}}", "template: :1: {{define}} is not supported in --format templates"),
    ("{{.Name!}}", "template: :1: bad character U+0021 '!'"),
    ("{{(.Name}}", "template: :1: unclosed left paren"),
    ("{{}}", "template: :1: missing value for command"),
])
def test_errors(tmpl, message):
    with pytest.raises(TemplateError) as e:
        render(tmpl, OBJ)
    assert e.value.go_message == message
    # Docker's wording, and a PyctrError so the CLI prints it without a traceback
    assert str(e.value) == "template parsing error: " + message
    assert isinstance(e.value, PyctrError)


def test_typed_nils():
    """Docker prints its typed nils: a nil slice `[]`, a nil map `map[]`, a nil pointer `<nil>`
    (checked with `docker inspect -f` on a created container: .Config.Env, .Config.Volumes,
    .HostConfig.PidsLimit); JSON output and the json function print null."""
    obj = {"Config": {"Env": gofmt.NIL_SLICE, "Volumes": gofmt.NIL_MAP, "Labels": gofmt.NIL_MAP},
           "HostConfig": {"PidsLimit": gofmt.NIL_POINTER}}
    assert render("{{.Config.Env}} {{.Config.Volumes}} {{.HostConfig.PidsLimit}}", obj) == "[] map[] <nil>"
    assert render("{{json .Config.Env}} {{len .Config.Env}} {{range .Config.Env}}x{{else}}none{{end}}", obj) == \
        "null 0 none"
    assert render('{{.Config.Labels.x}} {{index .Config.Labels "x"}}|{{if .Config.Env}}y{{else}}n{{end}}', obj) == \
        "<no value> |n"
    assert json.dumps(obj, default=gofmt.json_default) == \
        '{"Config": {"Env": null, "Volumes": null, "Labels": null}, "HostConfig": {"PidsLimit": null}}'
    with pytest.raises(TemplateError, match="nil pointer evaluating interface {}.X"):
        render("{{.Config.Env.X}}", obj)
    # markers for dicts the heuristic (all-string values = map) would get wrong
    binding = gofmt.GoStruct(HostIp="", HostPort="8080")
    assert render("{{.}}", binding) == "{ 8080}"
    nets = gofmt.GoMap(bridge=gofmt.GoStruct(IPAddress="10.0.0.2"))
    assert render("{{.}} {{.other}}", nets) == "map[bridge:{10.0.0.2}] <no value>"


def test_compiled_once_for_many_rows():
    compiled = template.compile("{{.N}}")
    assert [compiled.execute({"N": i}) for i in range(3)] == ["0", "1", "2"]
    assert template.compile("{{.N}}") is compiled


def test_table_format_and_header():
    rows = [{"ID": "0123456789ab", "Names": "web", "Status": "Up 2 seconds"},
            {"ID": "ba9876543210", "Names": "a-much-longer-name", "Status": "Exited (0) 1 second ago"}]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS"}
    assert is_table("table {{.ID}}") and not is_table("{{.ID}}")
    # `\t` typed on a command line is a tab; Go's tabwriter(minwidth 10, padding 3) aligns columns
    assert format_rows(r"table {{.ID}}\t{{.Names}}\t{{.Status}}", rows, headers) == (
        "CONTAINER ID   NAMES                STATUS\n"
        "0123456789ab   web                  Up 2 seconds\n"
        "ba9876543210   a-much-longer-name   Exited (0) 1 second ago\n")
    # header functions leave the titles as they are (Docker's HeaderFunctions)
    assert format_rows(r"table {{lower .Names}}", rows[:1], headers) == "NAMES\nweb\n"
    # no rows: the header alone
    assert format_rows(r"table {{.ID}}\t{{.Names}}", [], headers) == "CONTAINER ID   NAMES\n"
    # not a table: one line per row, no header
    assert format_rows(r"{{.ID}}:{{.Names}}", rows, headers) == "0123456789ab:web\nba9876543210:a-much-longer-name\n"
    assert format_rows("json", rows[:1], headers) == '{"ID":"0123456789ab","Names":"web","Status":"Up 2 seconds"}\n'
    assert prepare("table", default_table=r"table {{.ID}}\t{{.Names}}") == ("{{.ID}}\t{{.Names}}", True)
    with pytest.raises(TemplateError):
        format_rows("{{.ID", rows, headers)
    # a row is Docker's formatter context, a struct: an unknown field is an error, as `docker ps`'s
    with pytest.raises(TemplateError, match=r"can't evaluate field Nope in type \*formatter.ContainerContext"):
        format_rows("{{.Nope}}", rows, headers, go_type="*formatter.ContainerContext")


def test_tabwriter_blocks():
    # a line with fewer cells ends a column block: later lines are sized on their own
    assert tabwrite("a\tbb\tc\nlonger-cell\tx\ty\nsolo\nq\tr\n") == (
        "a             bb        c\n"
        "longer-cell   x         y\n"
        "solo\n"
        "q         r\n")


_PIECES = ["{{", "}}", "{{-", "-}}", ".", ".Name", ".State.Pid", "$", "$x", ":=", "=", "|", "(", ")", "\"",
           "`", "'", "if", "else", "end", "range", "with", "break", "index", "json", "len", "printf", "%d",
           "0", "-1", "99999999999999999999", "1e400", "\\", "\n", " ", "/*", "*/", ",", "nil", "true",
           "\u00e9", "\x00", "{{{", "}}}", "not", "and", "slice", "eq"]


def test_hostile_templates_only_raise_template_errors():
    """Random templates by class (fragments of actions, literals, keywords, junk): every one
    either renders or raises TemplateError; no Python exception escapes."""
    rng = random.Random(1515)
    for _ in range(3000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        try:
            result = render(text, OBJ)
        except TemplateError:
            continue
        assert isinstance(result, str)


def test_deep_nesting_is_a_template_error():
    deep = "{{if .Name}}" * 3000 + "x" + "{{end}}" * 3000
    with pytest.raises(TemplateError):
        render(deep, OBJ)
