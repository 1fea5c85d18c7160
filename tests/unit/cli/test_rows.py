"""lens.cli.rows.show_or_write: every row to --out, or the first rows on the terminal."""

import csv
import json

from lens.cli.rows import show_or_write

COLUMNS = ("customer_id", "score", "items")
ROWS = [{"customer_id": f"c{i}", "score": i / 2, "items": ["milk", "tea"]} for i in range(5)]


def test_without_out_the_first_rows_go_to_the_terminal(capsys):
    show_or_write(ROWS, COLUMNS, None, 2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert [line.split()[:2] for line in lines[1:]] == [["c0", "0.000"], ["c1", "0.500"]]


def test_no_rows_print_nothing(capsys):
    show_or_write([], COLUMNS, None, 2)
    assert capsys.readouterr().out == ""


def test_with_out_every_row_goes_to_the_file(tmp_path, capsys):
    out = tmp_path / "sub" / "rows.csv"
    show_or_write(ROWS, COLUMNS, out, 2)
    assert capsys.readouterr().out == f"wrote 5 rows to {out}\n"
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and rows[4] == {"customer_id": "c4", "score": "2.0", "items": "milk tea"}
    jsonl = tmp_path / "rows.jsonl"
    show_or_write(ROWS, COLUMNS, jsonl, 2)
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == ROWS
