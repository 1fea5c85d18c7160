"""A resupply plan CSV (``STORE_ID,PROD_ID,DAY,QUANTITY``, as ``lens data synth`` writes it) ->
v1.Resupply records on inventory.resupplies, keyed by store."""

import csv
import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

from lens import v1
from lens.codec import encode
from lens.errors import DataError

__all__ = ["RESUPPLY_HEADER", "publish_resupplies", "read_resupplies"]

RESUPPLY_HEADER = ("STORE_ID", "PROD_ID", "DAY", "QUANTITY")


def read_resupplies(path: str | Path) -> Iterator[v1.Resupply]:
    """Yield one Resupply per data row; DataError names file, line and field of a bad row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Pass the resupplies.csv that `lens data synth` wrote.")
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in RESUPPLY_HEADER if name not in header]
        if missing:
            raise DataError(
                f"{path}, line 1 (header): missing column(s) {missing}; a resupply plan has the "
                f"header {','.join(RESUPPLY_HEADER)} (got {','.join(header) or 'an empty file'})"
            )
        index = {name: header.index(name) for name in RESUPPLY_HEADER}
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            yield _resupply(row, index, f"{path}, line {line_no}")


def _resupply(row: list[str], index: dict[str, int], where: str) -> v1.Resupply:
    if len(row) < len(index) or len(row) <= max(index.values()):
        raise DataError(f"{where}: expected {len(index)} fields, got {len(row)}")
    cell = {name: row[i].strip() for name, i in index.items()}
    for name in ("STORE_ID", "PROD_ID", "DAY", "QUANTITY"):
        if not cell[name]:
            raise DataError(f"{where}, {name}: empty")
    day_text = cell["DAY"][:10]
    try:
        day = dt.date.fromisoformat(day_text)
    except ValueError as exc:
        raise DataError(f"{where}, DAY: {cell['DAY']!r} is not a date YYYY-MM-DD") from exc
    try:
        quantity = float(cell["QUANTITY"])
    except ValueError as exc:
        raise DataError(f"{where}, QUANTITY: {cell['QUANTITY']!r} is not a number") from exc
    if not math.isfinite(quantity) or quantity < 0:
        raise DataError(f"{where}, QUANTITY: {cell['QUANTITY']} must be a finite number >= 0")
    return v1.Resupply(
        store_id=cell["STORE_ID"], product_id=cell["PROD_ID"], day=day.isoformat(), quantity=quantity
    )


def publish_resupplies(path: str | Path, publisher) -> int:
    """Validate the whole file first (nothing is sent from a bad file), then send every row
    through ``publisher`` (a PosPublisher on inventory.resupplies); return the count."""
    records = list(read_resupplies(path))
    for record in records:
        publisher.send_raw(record.store_id.encode("utf-8"), encode(record))
    return len(records)

