"""Plain-text tables: the one renderer behind every printable report (tfprune and tflite_export).

    >>> print(table(["layer", "density"], [["dense", 0.1], ["out", 1.0]]))
    layer  density
    -----  -------
    dense  0.1
    out    1
"""

from __future__ import annotations


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e4 or abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    return str(value)


def table(headers, rows, align: str = "", footer=()) -> str:
    """A text table with a rule under the header (and above ``footer`` rows, e.g. totals).

    Cells go through :func:`fmt` (strings unchanged). ``align`` has one character per column,
    ``<`` (left, the default for missing ones) or ``>`` (right: numbers).
    """
    cells = [[fmt(c) for c in row] for row in rows]
    foot = [[fmt(c) for c in row] for row in footer]
    widths = [len(h) for h in headers]
    for row in cells + foot:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    align = align.ljust(len(widths), "<")

    def line(row):
        return "  ".join(c.rjust(w) if a == ">" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()

    rule = line(["-" * w for w in widths])
    out = [line(list(headers)), rule]
    out.extend(line(row) for row in cells)
    if foot:
        out.append(rule)
        out.extend(line(row) for row in foot)
    return "\n".join(out)


def human_bytes(n) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return str(n)
