"""Tables written beside a report or by ``lens segments``: one CSV per table."""

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lens.errors import ConfigError

__all__ = ["write_tables"]


def write_tables(out: str | Path, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """``name -> table`` as ``out/<name>.csv`` (created if needed); the paths written."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the output directory {out}: {exc}. Pick another --out."
        ) from exc
    paths = []
    for name, table in tables.items():
        path = out / f"{name}.csv"
        table.to_csv(path, index=False, float_format="%.6g")
        paths.append(path)
    return paths
