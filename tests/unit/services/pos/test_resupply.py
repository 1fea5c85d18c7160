import pytest

from lens.errors import DataError
from services.pos import publish_resupplies, read_resupplies


def write(tmp_path, text):
    path = tmp_path / "resupplies.csv"
    path.write_text(text)
    return path


def test_reads_the_plan_lens_data_synth_writes(tmp_path):
    path = write(tmp_path, "STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P0042,2026-02-20,12\nS2,007,2026-02-21,0\n")
    rows = list(read_resupplies(path))
    assert [(r.store_id, r.product_id, r.day, r.quantity) for r in rows] == [
        ("S1", "P0042", "2026-02-20", 12.0), ("S2", "007", "2026-02-21", 0.0)]


@pytest.mark.parametrize("text,message", [
    ("STORE,PROD_ID,DAY,QUANTITY\n", "line 1 \\(header\\): missing column\\(s\\) \\['STORE_ID'\\]"),
    ("STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P1,20-02-2026,3\n", "line 2, DAY"),
    ("STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P1,2026-02-20,-3\n", "line 2, QUANTITY: -3 must be"),
    ("STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P1,2026-02-20,3\nS1,,2026-02-20,3\n", "line 3, PROD_ID: empty"),
    ("STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P1,2026-02-20\n", "line 2: expected 4 fields"),
])
def test_bad_files_say_where_and_what(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        list(read_resupplies(write(tmp_path, text)))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        list(read_resupplies(tmp_path / "nope.csv"))


def test_a_bad_row_anywhere_sends_nothing(tmp_path):
    class Publisher:
        sent = []

        def send_raw(self, key, value):
            self.sent.append(key)

    path = write(tmp_path, "STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P1,2026-02-20,3\nS1,P1,2026-02-20,x\n")
    with pytest.raises(DataError):
        publish_resupplies(path, Publisher())
    assert Publisher.sent == []
    path = write(tmp_path, "STORE_ID,PROD_ID,DAY,QUANTITY\nS1,P1,2026-02-20,3\nS2,P1,2026-02-20,4\n")
    assert publish_resupplies(path, Publisher()) == 2
    assert Publisher.sent == [b"S1", b"S2"]
