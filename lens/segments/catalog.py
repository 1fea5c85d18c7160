"""What LENS knows about products besides their embeddings: how often they sell and, on Ta-Feng,
the retailer's own classification (PRODUCT_SUBCLASS), the yardstick of segment purity.

    product_frequencies(funnels)   product -> number of baskets holding it
    read_product_subclasses(path)  product -> its PRODUCT_SUBCLASS (Ta-Feng), None for other files
"""

from collections import Counter
from pathlib import Path

from lens.data.basket import Funnels
from lens.data.line_items import read_csv_columns

# The loaders' file opener (plain CSV or the CSV inside a zip, with their error messages): the
# subclass column is one more read of the same file, not a second way to open it.
from lens.data.loaders import open_table

__all__ = ["SUBCLASS_COLUMN", "product_frequencies", "read_product_subclasses"]

SUBCLASS_COLUMN = "PRODUCT_SUBCLASS"
_PRODUCT_COLUMN = "PRODUCT_ID"


def product_frequencies(funnels: Funnels) -> Counter[str]:
    """product -> number of baskets (of any customer) it appears in."""
    return Counter(
        item for funnel in funnels.values() for basket in funnel for item in basket.items
    )


def read_product_subclasses(path: str | Path) -> dict[str, str] | None:
    """product -> PRODUCT_SUBCLASS of a Ta-Feng export (plain CSV or zip); None when the file has
    no such column (the minimal schema). A product listed under several subclasses gets the one
    it sold under most often (ties -> the smaller subclass code)."""
    with open_table(Path(path)) as (stream, source):
        header = stream.readline().decode("utf-8-sig", errors="replace")
    if SUBCLASS_COLUMN not in header:
        return None
    with open_table(Path(path)) as (stream, source):
        frame, _ = read_csv_columns(
            stream, source=source, required=(), optional=(_PRODUCT_COLUMN, SUBCLASS_COLUMN)
        )
    if not {_PRODUCT_COLUMN, SUBCLASS_COLUMN} <= set(frame.columns):
        return None
    frame = frame[(frame[_PRODUCT_COLUMN] != "") & (frame[SUBCLASS_COLUMN] != "")]
    counts = frame.groupby([_PRODUCT_COLUMN, SUBCLASS_COLUMN]).size().reset_index(name="n")
    counts = counts.sort_values(
        [_PRODUCT_COLUMN, "n", SUBCLASS_COLUMN], ascending=[True, False, True]
    ).drop_duplicates(_PRODUCT_COLUMN)
    return dict(zip(counts[_PRODUCT_COLUMN], counts[SUBCLASS_COLUMN], strict=True))
