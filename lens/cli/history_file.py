"""The purchase-history file most commands read: its ``--data``/``--skip-bad`` options, and
loading it so that every command reports the rows ``--skip-bad`` left out the same way."""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loaders import numpy and pandas: keep them out of `lens --help`
    from lens.data.line_items import LoadResult

__all__ = ["DATA_HELP", "add_history_arguments", "add_skip_bad_argument", "load_history"]

DATA_HELP = "purchase history (.csv or .zip, minimal schema or Ta-Feng)"


def add_history_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    data_help: str = DATA_HELP,
    required: bool = True,
) -> None:
    """--data PATH and --skip-bad; ``data_help`` for a command that needs more of the file."""
    parser.add_argument("--data", type=Path, required=required, metavar="PATH", help=data_help)
    add_skip_bad_argument(parser)


def add_skip_bad_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--skip-bad alone, for a command whose history file is not always --data."""
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="leave out bad rows instead of stopping at the first (the count is printed)",
    )


def load_history(path: str | Path, skip_bad: bool) -> "LoadResult":
    """The funnels of a history file; prints how many rows ``skip_bad`` left out, and why."""
    from lens.data.loaders import load_funnels

    loaded = load_funnels(path, skip_bad=skip_bad)
    if loaded.rows_skipped:
        print(f"left out {loaded.rows_skipped} bad rows: {dict(loaded.skipped)}")
    return loaded
