"""One entry point for purchase files: ``load_funnels(path)`` picks the reader from the file.

A ``.zip`` is opened in place: its only CSV member, or the Ta-Feng member when there are several.
The format is told by the CSV header: TRAN_ID/CLIENT_ID -> the paper's minimal schema
(``lens.data.minimal_csv``); TRANSACTION_DT/CUSTOMER_ID -> Ta-Feng (``lens.data.ta_feng``).
"""

import contextlib
import csv
import logging
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from lens.data.line_items import LoadResult
from lens.data.minimal_csv import read_minimal_csv
from lens.data.ta_feng import TA_FENG_MEMBER, read_ta_feng
from lens.errors import DataError

__all__ = ["load_funnels", "open_table", "sniff_reader"]

log = logging.getLogger(__name__)

Reader = Callable[..., LoadResult]


def load_funnels(path: str | Path, *, skip_bad: bool = False) -> LoadResult:
    """Read a minimal-schema CSV or a Ta-Feng export, plain or zipped, into Funnels.

    Raises DataError (naming file, line and field) on the first bad row unless ``skip_bad``, which
    leaves bad rows out and counts them by reason in the result.
    """
    path = Path(path)
    started = time.perf_counter()
    with open_table(path) as (stream, source):
        header = stream.readline().decode("utf-8-sig", errors="replace")
    reader = sniff_reader(header, source=source)
    with open_table(path) as (stream, source):
        result = reader(stream, source=source, skip_bad=skip_bad)
    log.info("%s (%.1f s)", result.summary(), time.perf_counter() - started)
    return result


def sniff_reader(header: str, *, source: str) -> Reader:
    """The reader for a CSV whose first line is ``header``; DataError when neither fits."""
    columns = {name.strip() for name in next(csv.reader([header]), [])}
    if columns & {"TRAN_ID", "CLIENT_ID"}:
        return read_minimal_csv
    if columns & {"TRANSACTION_DT", "CUSTOMER_ID"}:
        return read_ta_feng
    raise DataError(
        f"{source}, line 1 (header): cannot tell the format from columns {sorted(columns)}. "
        "Expected the minimal schema (TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY) "
        "or a Ta-Feng export (TRANSACTION_DT,CUSTOMER_ID,...,PRODUCT_ID,AMOUNT,...,SALES_PRICE)."
    )


@contextlib.contextmanager
def open_table(path: Path) -> Iterator[tuple[IO[bytes], str]]:
    """Yield ``(binary stream, source name for messages)`` for a CSV file or a CSV in a zip."""
    if not path.is_file():
        raise DataError(f"{path}: no such file. Check the --data/--history path.")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as stream:
            yield stream, str(path)
        return
    with zipfile.ZipFile(path) as archive:
        member = _csv_member(archive, path)
        with archive.open(member) as stream:
            yield stream, f"{path}:{member}"


def _csv_member(archive: zipfile.ZipFile, path: Path) -> str:
    names = [
        name
        for name in archive.namelist()
        if name.lower().endswith(".csv") and not name.startswith("__MACOSX/")
    ]
    if len(names) == 1:
        return names[0]
    known = [name for name in names if name.rsplit("/", 1)[-1] == TA_FENG_MEMBER]
    if len(known) == 1:
        return known[0]
    raise DataError(
        f"{path}: expected one CSV member in the zip, found {names or 'none'}. "
        "Unzip it and pass the CSV file itself."
    )
