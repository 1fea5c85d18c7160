"""Result rows of the batch commands (``lens anomalies``, ``lens stockouts``): a table on the
terminal, or every row to a file whose suffix picks the format (.csv, .jsonl)."""

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lens.errors import ConfigError, DataError

__all__ = [
    "FORMATS", "add_out_argument", "check_out_path", "format_table", "show_or_write", "write_rows"
]

FORMATS = (".csv", ".jsonl")


def add_out_argument(parser: argparse.ArgumentParser, shown: int) -> None:
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE",
        help=f"write every row to FILE ({' or '.join(FORMATS)}); default: print the first {shown}",
    )


def check_out_path(path: Path | None) -> None:
    """Fail before any work when ``--out`` names a format we cannot write."""
    if path is not None and path.suffix.lower() not in FORMATS:
        raise ConfigError(f"--out {path}: use a file ending in {' or '.join(FORMATS)}")


def _cell(value: Any) -> Any:
    """CSV cells: lists as space-separated ids, None as empty."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "" if value is None else value


def write_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("w", newline="") as out:
            if path.suffix.lower() == ".csv":
                writer = csv.writer(out)
                writer.writerow(columns)
                writer.writerows([_cell(row[c]) for c in columns] for row in rows)
            else:
                out.writelines(json.dumps({c: row[c] for c in columns}) + "\n" for row in rows)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc}") from exc


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table; floats with 3 decimals, lists truncated to 5 ids."""

    def text(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        if isinstance(value, (list, tuple)):
            shown = " ".join(str(v) for v in value[:5])
            return shown + (" ..." if len(value) > 5 else "")
        return "-" if value is None else str(value)

    cells = [[text(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def show_or_write(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], out: Path | None, shown: int
) -> None:
    """Every row to ``out`` (the --out of add_out_argument), or the first ``shown`` as a table."""
    if out is not None:
        write_rows(rows, columns, out)
        print(f"wrote {len(rows):,} rows to {out}")
    elif rows:
        print(format_table(rows[:shown], columns))
