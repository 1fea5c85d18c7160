"""The paper's minimal-schema CSV: grouping into baskets, and bad rows named by file/line/field."""

import datetime as dt
import io

import pytest

from lens.data.minimal_csv import read_minimal_csv
from lens.errors import DataError

HEADER = "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY\n"


def read(text: str, **kwargs):
    return read_minimal_csv(io.BytesIO(text.encode()), source="tiny.csv", **kwargs)


def test_rows_group_into_chronological_baskets_with_summed_lines():
    result = read(
        HEADER
        + "t2,007,p1,2024-01-02,5.0,1\n"
        + "t1,007,p2,2024-01-01T10:00:00,3,2\n"
        + "t1,007,p1,2024-01-01T10:00:00,4,1\n"
        + "t1,007,p2,2024-01-01T10:00:00,3,1\n"  # p2 again in t1: summed into its first line
        + "t3,008,p9,2024-01-01,1,1\n"
        + "t0,007,p3,2024-01-02,1,1\n"  # same time as t2: the basket id breaks the tie
    )
    assert list(result.funnels) == ["007", "008"]  # ids stay text, leading zeros kept
    first, second, third = result.funnels["007"]
    assert [first.basket_id, second.basket_id, third.basket_id] == ["t1", "t0", "t2"]
    assert first.items == ("p2", "p1")  # first-scanned order
    assert first.quantities == (3.0, 1.0) and first.amounts == (6.0, 4.0)
    assert first.timestamp == dt.datetime(2024, 1, 1, 10) and first.store_id == "1"
    assert result.rows == 6 and result.skipped == {}


def test_store_column_is_read_when_present_and_offsets_become_utc():
    result = read(
        "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID\n"
        "t1,c,p,2024-01-01T10:00:00+02:00,1,1,s7\n"
    )
    (basket,) = result.funnels["c"]
    assert basket.store_id == "s7" and basket.timestamp == dt.datetime(2024, 1, 1, 8)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("t1,c,p,2024-01-01,1,0", "PRODT_QTY"),
        ("t1,c,p,2024-01-01,1,-2", "PRODT_QTY"),
        ("t1,c,p,2024-01-01,1,two", "PRODT_QTY"),
        ("t1,c,p,2024-13-01,1,1", "TIMESTAMP"),
        ("t1,c,p,yesterday,1,1", "TIMESTAMP"),
        ("t1,,p,2024-01-01,1,1", "CLIENT_ID"),
        ("t1,c,,2024-01-01,1,1", "PROD_ID"),
        (",c,p,2024-01-01,1,1", "TRAN_ID"),
        ("t1,c,p,2024-01-01,much,1", "PROD_AMOUNT"),
    ],
)
def test_a_bad_row_names_file_line_and_field(row, field):
    with pytest.raises(DataError) as error:
        read(HEADER + "t0,c,p,2024-01-01,1,1\n" + row + "\n")
    message = str(error.value)
    assert "tiny.csv, line 3, field " + field in message
    assert "skip_bad" in message  # says what to do next


def test_the_first_bad_row_in_file_order_is_reported_and_blank_lines_keep_numbering():
    text = HEADER + "\nt1,c,p,2024-01-01,1,x\nt2,,p,2024-01-01,1,1\n"
    with pytest.raises(DataError, match=r"line 3, field PRODT_QTY"):
        read(text)


def test_a_missing_column_is_named_with_the_header_line():
    expected = r"tiny.csv, line 1 \(header\): missing column\(s\) PRODT_QTY"
    with pytest.raises(DataError, match=expected):
        read("TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT\nt1,c,p,2024-01-01,1\n")


def test_a_tran_id_shared_by_two_customers_is_bad():
    text = HEADER + "t1,a,p,2024-01-01,1,1\nt1,b,q,2024-01-01,1,1\n"
    with pytest.raises(DataError, match=r"line 3, field CLIENT_ID: differs from the first row"):
        read(text)
    assert read(text, skip_bad=True).skipped == {
        "CLIENT_ID: differs from the first row of the same TRAN_ID": 1
    }


def test_skip_bad_counts_every_left_out_row_by_reason():
    result = read(
        HEADER
        + "t1,c,p,2024-01-01,1,1\n"
        + "t1,c,q,2024-01-01,1,0\n"
        + "t2,c,q,never,1,-1\n"  # fails TIMESTAMP first (check order): counted once
        + "t3,,q,2024-01-02,1,1\n"
        + "t4,c,r,2024-01-03,2,3\n",
        skip_bad=True,
    )
    assert result.skipped == {
        "PRODT_QTY: must be a number > 0": 1,
        "TIMESTAMP: is not an ISO-8601 date or datetime": 1,
        "CLIENT_ID: is empty": 1,
    }
    assert result.rows == 5 and result.rows_skipped == 3
    assert [b.basket_id for b in result.funnels["c"]] == ["t1", "t4"]
    assert "skipped 3 bad rows" in result.summary()


def test_an_empty_file_is_a_data_error():
    with pytest.raises(DataError, match="empty"):
        read("")
