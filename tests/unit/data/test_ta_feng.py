"""The Ta-Feng export: (customer, date) baskets, its columns' meaning, bad rows, the real file."""

import io
import zipfile
from pathlib import Path

import pytest

from lens.data.loaders import load_funnels
from lens.data.ta_feng import TA_FENG_MEMBER, read_ta_feng
from lens.errors import DataError
from tests.conftest import TA_FENG_ZIP

HEADER = (
    "TRANSACTION_DT,CUSTOMER_ID,AGE_GROUP,PIN_CODE,PRODUCT_SUBCLASS,PRODUCT_ID,AMOUNT,ASSET,"
    "SALES_PRICE"
)
REAL_ZIP = TA_FENG_ZIP


def ta_feng_bytes(*rows: str) -> bytes:
    """The file as shipped: UTF-8 with a BOM, CRLF line ends, every field quoted."""
    quoted = [",".join(f'"{field}"' for field in row.split(",")) for row in rows]
    return ("\r\n".join([HEADER, *quoted]) + "\r\n").encode("utf-8-sig")


def write_zip(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "ta_feng.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(TA_FENG_MEMBER, data)
    return path


def test_a_basket_is_one_customer_on_one_date(tmp_path):
    path = write_zip(
        tmp_path,
        ta_feng_bytes(
            "11/1/2000,01104905,45-49,115,110411,4710199010372,2,24,30",
            "11/1/2000,01104905,45-49,115,110411,0000000000001,1,5,6",
            "11/1/2000,01104905,45-49,115,110411,4710199010372,1,12,15",
            "11/3/2000,01104905,,Unknown,110411,0000000000001,1,5,6",
            "11/2/2000,00000001,30-34,221,110411,0000000000001,3,15,18",
        ),
    )
    result = load_funnels(path)
    assert list(result.funnels) == ["00000001", "01104905"]
    first, second = result.funnels["01104905"]
    assert first.basket_id == "01104905-20001101" and second.basket_id == "01104905-20001103"
    assert first.items == ("4710199010372", "0000000000001")
    # AMOUNT is the quantity, SALES_PRICE the money; the two lines of one product are summed.
    assert first.quantities == (3.0, 1.0) and first.amounts == (45.0, 6.0)
    assert {b.store_id for f in result.funnels.values() for b in f} == {"1"}  # PIN_CODE is no store
    assert result.source == f"{path}:{TA_FENG_MEMBER}"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("11/1/2000,01104905,45-49,115,110411,4710199010372,0,24,30", "AMOUNT"),
        ("2000-11-01,01104905,45-49,115,110411,4710199010372,1,24,30", "TRANSACTION_DT"),
        ("11/1/2000,,45-49,115,110411,4710199010372,1,24,30", "CUSTOMER_ID"),
        ("11/1/2000,01104905,45-49,115,110411,,1,24,30", "PRODUCT_ID"),
        ("11/1/2000,01104905,45-49,115,110411,4710199010372,1,24,", "SALES_PRICE"),
    ],
)
def test_a_bad_row_names_member_line_and_field(tmp_path, row, field):
    good = "11/1/2000,01104905,45-49,115,110411,4710199010372,1,24,30"
    path = write_zip(tmp_path, ta_feng_bytes(good, row))
    with pytest.raises(DataError, match=rf"{TA_FENG_MEMBER}, line 3, field {field}:"):
        load_funnels(path)
    skipped = load_funnels(path, skip_bad=True)
    assert skipped.rows_skipped == 1 and len(skipped.funnels["01104905"]) == 1


def test_a_missing_column_is_named():
    data = b'"TRANSACTION_DT","CUSTOMER_ID","PRODUCT_ID","AMOUNT"\r\n"11/1/2000","1","p","1"\r\n'
    with pytest.raises(DataError, match=r"line 1 \(header\): missing column\(s\) SALES_PRICE"):
        read_ta_feng(io.BytesIO(data), source="t.csv")


@pytest.mark.skipif(not REAL_ZIP.is_file(), reason="the Ta-Feng zip is not on this machine")
def test_the_real_file_matches_its_published_counts():
    # Counts from ../shared/data/README.md; loads in well under 20 s on 2 cores.
    result = load_funnels(REAL_ZIP)
    funnels = result.funnels
    assert result.rows == 817_741 and result.skipped == {}
    assert len(funnels) == 32_266
    assert sum(len(f) for f in funnels.values()) == 119_578
    assert len({item for f in funnels.values() for b in f for item in b.items}) == 23_812
    assert "4710199010372" in funnels["01104905"][0].items
