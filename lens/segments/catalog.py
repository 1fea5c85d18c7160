"""What LENS knows about products besides their embeddings: how often they sell and the
retailer's own classification (PRODUCT_SUBCLASS), the yardstick of segment purity and the needs
of Algorithm 1's need-level signals (``lens.anomaly.needs``).

    product_frequencies(funnels)   product -> number of baskets holding it
    read_product_subclasses(path)  product -> its PRODUCT_SUBCLASS, None for files without one

A catalog is any CSV (plain or zipped) with a product column, ``PRODUCT_ID`` (Ta-Feng's export,
one row per line item) or ``PROD_ID`` (the minimal schema's name; ``lens data synth`` writes
``products.csv`` as ``PROD_ID,PRODUCT_SUBCLASS``, one row per product), and ``PRODUCT_SUBCLASS``.
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
_PRODUCT_COLUMNS = ("PRODUCT_ID", "PROD_ID")  # Ta-Feng's name first, then the minimal schema's


def product_frequencies(funnels: Funnels) -> Counter[str]:
    """product -> number of baskets (of any customer) it appears in."""
    return Counter(
        item for funnel in funnels.values() for basket in funnel for item in basket.items
    )


def read_product_subclasses(path: str | Path) -> dict[str, str] | None:
    """product -> PRODUCT_SUBCLASS of a catalog or a Ta-Feng export (plain CSV or zip); None when
    the file has no such column (the minimal schema). A product listed under several subclasses
    gets the one it sold under most often (ties -> the smaller subclass code)."""
    with open_table(Path(path)) as (stream, source):
        header = stream.readline().decode("utf-8-sig", errors="replace")
    if SUBCLASS_COLUMN not in header:
        return None
    with open_table(Path(path)) as (stream, source):
        frame, _ = read_csv_columns(
            stream, source=source, required=(), optional=(*_PRODUCT_COLUMNS, SUBCLASS_COLUMN)
        )
    product = next((c for c in _PRODUCT_COLUMNS if c in frame.columns), None)
    if product is None or SUBCLASS_COLUMN not in frame.columns:
        return None
    frame = frame[(frame[product] != "") & (frame[SUBCLASS_COLUMN] != "")]
    counts = frame.groupby([product, SUBCLASS_COLUMN]).size().reset_index(name="n")
    counts = counts.sort_values(
        [product, "n", SUBCLASS_COLUMN], ascending=[True, False, True]
    ).drop_duplicates(product)
    return dict(zip(counts[product], counts[SUBCLASS_COLUMN], strict=True))
