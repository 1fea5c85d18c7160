"""The Ta-Feng grocery export (``ta_feng_all_months_merged.csv``, usually inside a zip).

TRANSACTION_DT,CUSTOMER_ID,AGE_GROUP,PIN_CODE,PRODUCT_SUBCLASS,PRODUCT_ID,AMOUNT,ASSET,SALES_PRICE
"11/1/2000","01104905","45-49","115","110411","4710199010372","2","24","30"

There is no transaction id: a basket is one customer's purchases on one date, with basket id
"<CUSTOMER_ID>-<YYYYMMDD>". AMOUNT is the quantity, SALES_PRICE the line's sales value.
PIN_CODE is an area code, not a store: every basket gets store "1". Ids stay text (leading zeros).
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

__all__ = ["TA_FENG_COLUMNS", "TA_FENG_MEMBER", "TA_FENG_STORE_ID", "read_ta_feng"]

# The columns LENS uses; the file's other columns (AGE_GROUP, PIN_CODE, ...) are not read.
TA_FENG_COLUMNS = ("TRANSACTION_DT", "CUSTOMER_ID", "PRODUCT_ID", "AMOUNT", "SALES_PRICE")
TA_FENG_MEMBER = "ta_feng_all_months_merged.csv"
TA_FENG_STORE_ID = "1"


def read_ta_feng(stream: IO[bytes], *, source: str, skip_bad: bool = False) -> LoadResult:
    """Read the Ta-Feng CSV from ``stream`` (bytes); ``source`` names it in messages.

    Raises DataError on the first bad row (file, line, field), unless ``skip_bad``: then bad rows
    are left out and counted by reason in the result.
    """
    raw, lines = read_csv_columns(stream, source=source, required=TA_FENG_COLUMNS)
    dates = pd.to_datetime(raw["TRANSACTION_DT"], format="%m/%d/%Y", errors="coerce")
    quantities = parse_numbers(raw["AMOUNT"])
    amounts = parse_numbers(raw["SALES_PRICE"])
    checks = [
        RowCheck("CUSTOMER_ID", "is empty", (raw["CUSTOMER_ID"] == "").to_numpy()),
        RowCheck("PRODUCT_ID", "is empty", (raw["PRODUCT_ID"] == "").to_numpy()),
        RowCheck("TRANSACTION_DT", "is not a M/D/YYYY date", dates.isna().to_numpy()),
        RowCheck("AMOUNT", "must be a number > 0", ~(np.isfinite(quantities) & (quantities > 0))),
        RowCheck("SALES_PRICE", "must be a number", ~np.isfinite(amounts)),
    ]
    skipped: Counter[str] = Counter()
    keep = drop_bad_rows(raw, lines, checks, source=source, skip_bad=skip_bad, skipped=skipped)
    raw, dates = raw.loc[keep], dates.loc[keep]
    items = pd.DataFrame(
        {
            "customer_id": raw["CUSTOMER_ID"],
            "basket_id": raw["CUSTOMER_ID"] + "-" + _yyyymmdd(dates),
            "store_id": TA_FENG_STORE_ID,
            "timestamp": dates,
            "item": raw["PRODUCT_ID"],
            "quantity": quantities[keep],
            "amount": amounts[keep],
            "line": lines[keep],
        }
    )
    return LoadResult(
        funnels=funnels_from_line_items(items),
        source=source,
        rows=len(keep),
        skipped=dict(skipped),
    )


def _yyyymmdd(dates: pd.Series) -> pd.Series:
    """Dates as "YYYYMMDD" text, formatting each distinct date once (a few hundred, not 800k)."""
    codes, uniques = pd.factorize(dates)
    return pd.Series(pd.DatetimeIndex(uniques).strftime("%Y%m%d").take(codes), index=dates.index)
