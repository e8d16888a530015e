"""Plain-text and markdown tables for the reports and the command line."""

import math

import numpy as np

__all__ = ["format_table", "fmt", "jsonable"]


def jsonable(x):
    """x with NumPy scalars and arrays as plain Python values; inf and NaN as strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    return x


def fmt(x):
    """One table cell: yes/no for booleans, 4 significant digits for floats."""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x == 0 or (1e-3 <= abs(x) < 1e5):
            return f"{x:.4g}"
        return f"{x:.3e}"
    return str(x)


def format_table(rows, columns=None, markdown=False):
    """Rows of dicts as a plain-text (or markdown) table."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    if markdown:
        # a | inside a cell (|w|, |v - v*|) would end the cell: escape it
        esc = (lambda text: text.replace("|", "\\|"))
        out = ["| " + " | ".join(map(esc, columns)) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(map(esc, row)) + " |" for row in cells]
        return "\n".join(out)
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float, np.number)) and not isinstance(r.get(c), bool)
                   for r in rows) for c in columns]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(x.rjust(w) if num else x.ljust(w) for x, w, num in zip(row, widths, numeric))
            for row in cells]
    return "\n".join(out)
