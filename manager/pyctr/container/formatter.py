"""Docker's `--format` for list commands (`ps`, `images`, `volume ls`, `stats`): `table` prefix,
`json`, `\t`/`\n` escapes, a header row rendered from the same template (`cli/command/formatter/
formatter.go`), one output line per row."""
from pyctr.container import template
from pyctr.container.tabwriter import tabwrite

TABLE_KEY = "table"
JSON_KEY = "json"


def prepare(fmt, default_table=None):
    """(template text, is table) as Docker's preFormat: `table` alone is the command's default
    table; `json` is `{{json .}}` (Docker 23+ spelling); `\\t` and `\\n` typed on the command line
    become a tab and a newline; surrounding spaces go."""
    table = fmt.startswith(TABLE_KEY)
    if table:
        body = fmt[len(TABLE_KEY):]
        if not body.strip() and default_table is not None:
            body = default_table[len(TABLE_KEY):] if default_table.startswith(TABLE_KEY) else default_table
    elif fmt == JSON_KEY:
        body = "{{json .}}"
    else:
        body = fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return body, table


def format_rows(fmt, rows, headers=None, default_table=None, go_type=None):
    """The text Docker prints for rows (dicts) under --format fmt; headers maps each field name to
    its column title (`{"ID": "CONTAINER ID", ...}`) for the table's first line. A row is a Go
    struct in Docker (its formatter context, go_type): an unknown field is an error, not
    `<no value>`. Raises template.TemplateError for a bad template, before printing anything."""
    from pyctr.container.gofmt import GoMap, GoStruct
    body, table = prepare(fmt, default_table)
    compiled = template.compile(body)
    lines = [compiled.execute(row if isinstance(row, (GoMap, GoStruct)) else GoStruct.of(row, go_type)) + "\n"
             for row in rows]
    if not table:
        return "".join(lines)
    header = template.compile(body, header=True).execute(headers or {})
    return tabwrite(header + "\n" + "".join(lines))
