"""What LENS knows about products besides their embeddings: how often they sell and the
retailer's own classification (PRODUCT_SUBCLASS), the yardstick of segment purity and the needs
of Algorithm 1's need-level signals (``lens.anomaly.needs``).

    product_frequencies(funnels)     product -> number of baskets holding it
    read_product_subclasses(path)    product -> its PRODUCT_SUBCLASS, None for files without one
    read_category_departments(path)  PRODUCT_SUBCLASS -> its DEPARTMENT, None without that column

A catalog is any CSV (plain or zipped) with a product column, ``PRODUCT_ID`` (Ta-Feng's export,
one row per line item) or ``PROD_ID`` (the minimal schema's name; ``lens data synth`` writes
``products.csv`` as ``PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT``, one row per product), and
``PRODUCT_SUBCLASS``; optionally ``DEPARTMENT``, the level above the subclass (Ta-Feng has none).
"""

from collections import Counter
from pathlib import Path
from typing import Any

from lens.data.basket import Funnels
from lens.data.line_items import read_csv_columns

# The loaders' file opener (plain CSV or the CSV inside a zip, with their error messages): the
# subclass column is one more read of the same file, not a second way to open it.
from lens.data.loaders import open_table

__all__ = [
    "DEPARTMENT_COLUMN",
    "SUBCLASS_COLUMN",
    "product_frequencies",
    "read_category_departments",
    "read_product_subclasses",
]

SUBCLASS_COLUMN = "PRODUCT_SUBCLASS"
DEPARTMENT_COLUMN = "DEPARTMENT"
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
    frame = _catalog_columns(path, (SUBCLASS_COLUMN,), also=_PRODUCT_COLUMNS)
    product = None if frame is None else next(
        (c for c in _PRODUCT_COLUMNS if c in frame.columns), None)
    if product is None:
        return None
    return _most_listed(frame, product, SUBCLASS_COLUMN)


def read_category_departments(path: str | Path) -> dict[str, str] | None:
    """PRODUCT_SUBCLASS -> DEPARTMENT of a catalog (plain CSV or zip); None when the file lacks
    either column. A subclass listed under several departments gets the one most of its rows
    name (ties -> the smaller department code)."""
    frame = _catalog_columns(path, (SUBCLASS_COLUMN, DEPARTMENT_COLUMN))
    if frame is None:
        return None
    return _most_listed(frame, SUBCLASS_COLUMN, DEPARTMENT_COLUMN) or None


def _catalog_columns(path: str | Path, needed: tuple[str, ...], also: tuple[str, ...] = ()) -> Any:
    """The ``needed`` columns of a catalog file, with those of ``also`` it has; None when it
    lacks one of ``needed`` (the header is looked at first: a file without them is not read)."""
    with open_table(Path(path)) as (stream, source):
        header = stream.readline().decode("utf-8-sig", errors="replace")
    if any(column not in header for column in needed):
        return None
    with open_table(Path(path)) as (stream, source):
        frame, _ = read_csv_columns(stream, source=source, required=(), optional=(*also, *needed))
    if any(column not in frame.columns for column in needed):
        return None
    return frame


def _most_listed(frame: Any, key: str, value: str) -> dict[str, str]:
    """key -> the value most rows of ``frame`` give it (ties -> the smaller value); rows with an
    empty key or value left out."""
    frame = frame[(frame[key] != "") & (frame[value] != "")]
    counts = frame.groupby([key, value]).size().reset_index(name="n")
    counts = counts.sort_values([key, "n", value], ascending=[True, False, True])
    counts = counts.drop_duplicates(key)
    return dict(zip(counts[key], counts[value], strict=True))
