"""The line-item table every loader produces, its row checks, and its grouping into Funnels.

A loader reads a file into text columns, checks each row (``RowCheck``), maps its columns onto the
canonical line-item table below and hands that to ``funnels_from_line_items``:

    customer_id  str             who bought
    basket_id    str             which basket (unique per customer)
    store_id     str             where
    timestamp    datetime64      when (naive; one value per basket)
    item         str             product id
    quantity     float64         units, > 0
    amount       float64         sales value
    line         int64           1-based line in the source file (header = line 1)

Bad rows either stop the load with a ``DataError`` naming file, line and field, or, with
``skip_bad``, are left out and counted by reason in the ``LoadResult``: never dropped silently.
"""

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pandas as pd

from lens.data.basket import Basket, Funnels
from lens.errors import DataError

__all__ = [
    "LINE_ITEM_COLUMNS",
    "LoadResult",
    "RowCheck",
    "drop_bad_rows",
    "funnels_from_line_items",
    "parse_numbers",
    "read_csv_columns",
]

log = logging.getLogger(__name__)

LINE_ITEM_COLUMNS = (
    "customer_id",
    "basket_id",
    "store_id",
    "timestamp",
    "item",
    "quantity",
    "amount",
    "line",
)


@dataclass(frozen=True)
class LoadResult:
    """Funnels read from one file, and how many rows were left out and why.

    ``funnels``: customer id -> that customer's baskets, chronological (ties broken by basket id);
    customers in id order. ``rows``: data rows in the file (blank lines are not rows).
    ``skipped``: "FIELD: problem" -> rows left out for it (only ever non-empty with skip_bad).
    """

    funnels: Funnels
    source: str
    rows: int
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line for logs: what was read and what was left out."""
        baskets = sum(len(funnel) for funnel in self.funnels.values())
        items = len({item for f in self.funnels.values() for b in f for item in b.items})
        text = (
            f"{self.source}: {self.rows:,} rows -> {baskets:,} baskets of "
            f"{len(self.funnels):,} customers, {items:,} distinct items"
        )
        if self.skipped:
            reasons = "; ".join(f"{reason}: {n:,}" for reason, n in sorted(self.skipped.items()))
            text += f"; skipped {self.rows_skipped:,} bad rows ({reasons})"
        return text


@dataclass(frozen=True, slots=True)
class RowCheck:
    """One rule every row must pass.

    ``field``: the column as the file names it (used in messages and skip reasons).
    ``problem``: what is wrong with a failing value, e.g. "must be a number > 0".
    ``bad``: bool [num_rows], True where the row breaks the rule.
    """

    field: str
    problem: str
    bad: np.ndarray

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.problem}"


def read_csv_columns(
    stream: IO[bytes],
    *,
    source: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read the named columns of a CSV (UTF-8, optional BOM, any line ends) as stripped text.

    Returns ``(frame, lines)``: ``frame`` has one str column per present column; ``lines`` is
    int64 [num_rows], the 1-based file line of each row. Line numbers assume one record per line
    (a quoted field spanning lines shifts the numbers after it). Blank lines are dropped, not rows.
    Raises DataError naming the file when a required column is missing or the CSV is malformed.
    """
    wanted = set(required) | set(optional)
    started = time.perf_counter()
    try:
        frame = pd.read_csv(
            stream,
            dtype=str,
            keep_default_na=False,  # an empty field stays "" so the row checks can name it
            skip_blank_lines=False,  # keeps index i at file line i + 2
            encoding="utf-8-sig",
            usecols=lambda name: name.strip() in wanted,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: not a readable UTF-8 CSV file ({exc}). Fix the file.") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{source}: the file is empty; expected a header line.") from exc
    frame.columns = [name.strip() for name in frame.columns]
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise DataError(
            f"{source}, line 1 (header): missing column(s) {', '.join(missing)}; "
            f"the file needs {', '.join(required)}."
        )
    frame = frame.apply(_strip)
    elapsed = time.perf_counter() - started
    log.info("read %s rows from %s in %.1f s", f"{len(frame):,}", source, elapsed)
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    blank = (frame == "").all(axis=1).to_numpy()
    if blank.any():
        frame, lines = frame.loc[~blank].reset_index(drop=True), lines[~blank]
    return frame, lines


def parse_numbers(column: pd.Series) -> np.ndarray:
    """float64 [num_rows]: ``column`` (text) as numbers, NaN where a value is not one."""
    # Parse each distinct value once: 800k rows hold a few thousand distinct values, and the
    # per-row parse of a text column is slow.
    codes, uniques = pd.factorize(column)
    values = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
    return values.to_numpy(dtype=np.float64)[codes]


def _strip(column: pd.Series) -> pd.Series:
    """``column`` without surrounding whitespace, stripping each distinct value once."""
    codes, uniques = pd.factorize(column)
    stripped = pd.Index(uniques).str.strip()
    if stripped.equals(pd.Index(uniques)):
        return column
    return pd.Series(stripped.take(codes), index=column.index, dtype=column.dtype)


def drop_bad_rows(
    frame: pd.DataFrame,
    lines: np.ndarray,
    checks: Sequence[RowCheck],
    *,
    source: str,
    skip_bad: bool,
    skipped: Counter[str],
) -> np.ndarray:
    """Apply ``checks`` to the rows of ``frame`` (lines: int64 [num_rows]).

    Without ``skip_bad`` the first bad row in file order raises a DataError that names the file,
    its line, the first field it fails and the value. With ``skip_bad`` each bad row is counted
    once in ``skipped`` (under the first check it fails, in ``checks`` order).
    Returns bool [num_rows]: the rows that pass every check.
    """
    keep = np.ones(len(frame), dtype=bool)
    for check in checks:
        newly_bad = keep & check.bad
        if newly_bad.any():
            skipped[check.reason] += int(newly_bad.sum())
            keep &= ~newly_bad
    if skip_bad or keep.all():
        return keep
    first = int(np.argmin(np.where(keep, np.iinfo(np.int64).max, lines)))
    check = next(c for c in checks if c.bad[first])
    value = frame[check.field].iloc[first] if check.field in frame.columns else None
    raise DataError(
        f"{source}, line {lines[first]}, field {check.field}: {check.problem} (got {value!r}). "
        "Fix the row, or skip bad rows with skip_bad=True (--skip-bad on the command line)."
    )


def funnels_from_line_items(items: pd.DataFrame) -> dict[str, tuple[Basket, ...]]:
    """Group a checked line-item table (columns: LINE_ITEM_COLUMNS) into Funnels.

    Lines of the same product in one basket are summed (quantity and amount) and keep the place of
    their first line. A basket takes customer, store and timestamp from its first line. Customers
    come out in id order, baskets by (timestamp, basket_id), items in first-scanned order.
    """
    missing = set(LINE_ITEM_COLUMNS) - set(items.columns)
    if missing:
        raise ValueError(f"line-item table lacks columns {sorted(missing)}")
    started = time.perf_counter()
    merged = (
        items.groupby(["basket_id", "item"], sort=False)
        .agg(
            customer_id=("customer_id", "first"),
            store_id=("store_id", "first"),
            timestamp=("timestamp", "first"),
            quantity=("quantity", "sum"),
            amount=("amount", "sum"),
            line=("line", "min"),
        )
        .reset_index()
        .sort_values(["customer_id", "timestamp", "basket_id", "line"], kind="stable")
    )
    basket_ids = merged["basket_id"].to_numpy()
    customers = merged["customer_id"].to_numpy()
    # Rows of one basket are contiguous after the sort: a basket id has one customer and time.
    starts = np.flatnonzero(np.r_[True, basket_ids[1:] != basket_ids[:-1]])
    ends = np.r_[starts[1:], len(merged)]
    products = merged["item"].tolist()
    quantities = merged["quantity"].tolist()
    amounts = merged["amount"].tolist()
    stores = merged["store_id"].to_numpy()[starts].tolist()
    stamps = merged["timestamp"].iloc[starts].dt.to_pydatetime().tolist()
    funnels: dict[str, list[Basket]] = {}
    for n, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        customer = customers[start]
        funnels.setdefault(customer, []).append(
            Basket(
                customer_id=customer,
                basket_id=basket_ids[start],
                store_id=stores[n],
                timestamp=stamps[n],
                items=tuple(products[start:end]),
                quantities=tuple(quantities[start:end]),
                amounts=tuple(amounts[start:end]),
            )
        )
    log.info(
        "grouped %s line items into %s baskets of %s customers in %.1f s",
        f"{len(items):,}",
        f"{len(starts):,}",
        f"{len(funnels):,}",
        time.perf_counter() - started,
    )
    return {customer: tuple(baskets) for customer, baskets in funnels.items()}
