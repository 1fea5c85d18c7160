"""``load_funnels`` picks the reader from the file: plain or zipped, minimal schema or Ta-Feng."""

import zipfile

import pytest

from lens.data.loaders import load_funnels
from lens.errors import DataError

MINIMAL = "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY\nt1,c,p,2024-01-01,1,1\n"
TA_FENG = (
    "TRANSACTION_DT,CUSTOMER_ID,AGE_GROUP,PIN_CODE,PRODUCT_SUBCLASS,PRODUCT_ID,AMOUNT,ASSET,"
    "SALES_PRICE\n11/1/2000,007,,,,p,1,1,1\n"
)


@pytest.mark.parametrize(
    ("text", "basket_id"), [(MINIMAL, "t1"), (TA_FENG, "007-20001101")], ids=["minimal", "ta-feng"]
)
def test_plain_and_zipped_files_of_both_formats(tmp_path, text, basket_id):
    plain = tmp_path / "data.csv"
    plain.write_text(text)
    zipped = tmp_path / "data.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("folder/data.csv", text)
    for path in (plain, zipped):
        ((_, baskets),) = load_funnels(path).funnels.items()
        assert baskets[0].basket_id == basket_id


def test_an_unknown_header_says_which_formats_exist(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"line 1 \(header\): cannot tell the format.*TRAN_ID"):
        load_funnels(path)


def test_a_zip_with_several_csv_members_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", MINIMAL)
        archive.writestr("b.csv", MINIMAL)
    with pytest.raises(DataError, match="expected one CSV member"):
        load_funnels(path)


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_funnels(tmp_path / "nope.csv")
