"""Go's text/tabwriter as Docker's table output uses it (minwidth 10, tabwidth 1, padding 3, ' '):
tab-terminated cells, columns aligned per block of adjacent lines that have the column, the last
cell of a line never padded."""


def tabwrite(text, minwidth=10, padding=3):
    """Align the tab-separated cells of text as tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0)."""
    lines = [line.split("\t") for line in text.split("\n")]
    out = []
    _format(lines, 0, len(lines), [], out, minwidth, padding)
    return "\n".join(out)


def _format(lines, line0, line1, widths, out, minwidth, padding):
    """tabwriter's format(): for the column after `widths`, find each block of adjacent lines that
    have a cell in it, size the column to its widest cell, and recurse into the next column."""
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format(lines, line0, this, widths + [width], out, minwidth, padding)
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(lines, line0, line1, widths, out):
    for line in lines[line0:line1]:
        cells = []
        for j, cell in enumerate(line):
            cells.append(cell.ljust(widths[j]) if j < len(widths) else cell)
        out.append("".join(cells))
