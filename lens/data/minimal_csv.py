"""The paper's minimal transaction schema (section IV.A) as a CSV file.

    TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY[,STORE_ID]

One row per line item. A basket is a TRAN_ID; its rows must agree on CLIENT_ID, TIMESTAMP and
STORE_ID. PROD_AMOUNT is money, PRODT_QTY units (> 0). TIMESTAMP is an ISO-8601 date or datetime;
one with a UTC offset is converted to UTC, one without is taken as it is. STORE_ID is optional
(default "1"). Ids are kept as text, leading zeros included.
"""

from collections import Counter
from typing import IO

import numpy as np
import pandas as pd

from lens.data.line_items import (
    LoadResult,
    RowCheck,
    drop_bad_rows,
    funnels_from_line_items,
    parse_numbers,
    read_csv_columns,
)

__all__ = ["DEFAULT_STORE_ID", "MINIMAL_COLUMNS", "STORE_COLUMN", "read_minimal_csv"]

MINIMAL_COLUMNS = ("TRAN_ID", "CLIENT_ID", "PROD_ID", "TIMESTAMP", "PROD_AMOUNT", "PRODT_QTY")
STORE_COLUMN = "STORE_ID"
DEFAULT_STORE_ID = "1"


def read_minimal_csv(stream: IO[bytes], *, source: str, skip_bad: bool = False) -> LoadResult:
    """Read a minimal-schema CSV from ``stream`` (bytes); ``source`` names it in messages.

    Raises DataError on the first bad row (file, line, field), unless ``skip_bad``: then bad rows
    are left out and counted by reason in the result.
    """
    raw, lines = read_csv_columns(
        stream, source=source, required=MINIMAL_COLUMNS, optional=(STORE_COLUMN,)
    )
    if STORE_COLUMN not in raw.columns:
        raw[STORE_COLUMN] = DEFAULT_STORE_ID
    timestamps = pd.to_datetime(raw["TIMESTAMP"], format="ISO8601", errors="coerce", utc=True)
    timestamps = timestamps.dt.tz_localize(None)
    quantities = parse_numbers(raw["PRODT_QTY"])
    amounts = parse_numbers(raw["PROD_AMOUNT"])
    positive = np.isfinite(quantities) & (quantities > 0)
    skipped: Counter[str] = Counter()
    checks = [
        RowCheck(name, "is empty", (raw[name] == "").to_numpy())
        for name in ("TRAN_ID", "CLIENT_ID", "PROD_ID", STORE_COLUMN)
    ]
    checks += [
        RowCheck(
            "TIMESTAMP", "is not an ISO-8601 date or datetime", timestamps.isna().to_numpy()
        ),
        RowCheck("PRODT_QTY", "must be a number > 0", ~positive),
        RowCheck("PROD_AMOUNT", "must be a number", ~np.isfinite(amounts)),
    ]
    keep = drop_bad_rows(raw, lines, checks, source=source, skip_bad=skip_bad, skipped=skipped)
    items = pd.DataFrame(
        {
            "customer_id": raw["CLIENT_ID"],
            "basket_id": raw["TRAN_ID"],
            "store_id": raw[STORE_COLUMN],
            "timestamp": timestamps,
            "item": raw["PROD_ID"],
            "quantity": quantities,
            "amount": amounts,
            "line": lines,
        }
    ).loc[keep]
    items = _drop_disagreeing_rows(items, source=source, skip_bad=skip_bad, skipped=skipped)
    return LoadResult(
        funnels=funnels_from_line_items(items),
        source=source,
        rows=len(raw),
        skipped=dict(skipped),
    )


def _drop_disagreeing_rows(
    items: pd.DataFrame, *, source: str, skip_bad: bool, skipped: Counter[str]
) -> pd.DataFrame:
    """A basket's rows must agree on customer, time and store; a row that differs from the first
    row of its TRAN_ID is bad (a TRAN_ID reused across customers would merge their baskets)."""
    first = items.groupby("basket_id", sort=False)[["customer_id", "timestamp", "store_id"]]
    first = first.transform("first")
    checks = [
        RowCheck(name, "differs from the first row of the same TRAN_ID", bad)
        for name, bad in (
            ("CLIENT_ID", (items["customer_id"] != first["customer_id"]).to_numpy()),
            ("TIMESTAMP", (items["timestamp"] != first["timestamp"]).to_numpy()),
            ("STORE_ID", (items["store_id"] != first["store_id"]).to_numpy()),
        )
    ]
    text = items.rename(
        columns={"customer_id": "CLIENT_ID", "timestamp": "TIMESTAMP", "store_id": "STORE_ID"}
    )
    keep = drop_bad_rows(
        text,
        items["line"].to_numpy(),
        checks,
        source=source,
        skip_bad=skip_bad,
        skipped=skipped,
    )
    return items.loc[keep]
