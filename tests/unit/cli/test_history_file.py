"""lens.cli.history_file: the --data/--skip-bad pair and the "left out" report of load_history."""

import argparse
from pathlib import Path

import pytest

from lens.cli.history_file import DATA_HELP, add_history_arguments, load_history
from lens.errors import DataError

HEADER = "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID\n"


def write_history(path: Path, *, bad_rows: int) -> Path:
    good = ["t1,ann,milk,2026-03-01T10:00:00,2,1,S1", "t2,bob,tea,2026-03-02T10:00:00,3,1,S1"]
    bad = [f"t{i}x,ann,milk,not-a-date,2,1,S1" for i in range(bad_rows)]
    path.write_text(HEADER + "\n".join(good + bad) + "\n")
    return path


def test_load_history_says_what_skip_bad_left_out(tmp_path, capsys):
    loaded = load_history(write_history(tmp_path / "tx.csv", bad_rows=2), skip_bad=True)
    assert sorted(loaded.funnels) == ["ann", "bob"]
    printed = capsys.readouterr().out
    assert printed.startswith("left out 2 bad rows: {") and "TIMESTAMP" in printed


def test_load_history_is_silent_on_a_clean_file(tmp_path, capsys):
    load_history(write_history(tmp_path / "tx.csv", bad_rows=0), skip_bad=True)
    assert capsys.readouterr().out == ""


def test_without_skip_bad_a_bad_row_stops_the_load(tmp_path):
    with pytest.raises(DataError):
        load_history(write_history(tmp_path / "tx.csv", bad_rows=1), skip_bad=False)


def test_history_arguments_parse_a_path_and_take_a_command_specific_help():
    parser = argparse.ArgumentParser()
    add_history_arguments(parser, data_help="history with STORE_ID")
    args = parser.parse_args(["--data", "tx.csv", "--skip-bad"])
    assert args.data == Path("tx.csv") and args.skip_bad is True
    assert "history with STORE_ID" in parser.format_help() and DATA_HELP not in parser.format_help()
    optional = argparse.ArgumentParser()
    add_history_arguments(optional, required=False)
    assert optional.parse_args([]).data is None
