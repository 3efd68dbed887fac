"""What the benchmark scripts share: aligned tables, and the verdict table they end with."""

from __future__ import annotations


def print_table(header, rows):
    """Print rows of strings under ``header`` as an aligned table."""
    table = [tuple(header)] + [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def print_verdicts(rows, reference="reference"):
    """Print ``(measure, ours, reference, target, ok)`` rows as an aligned table with verdicts."""
    print()
    print_table(
        ("measure", "skneuro", reference, "target", "verdict"),
        [(w, o, r, tg, "ok" if ok else "MISSED") for w, o, r, tg, ok in rows],
    )
