import csv
import json

import numpy as np
import pytest

import lens.cli.main as cli


@pytest.fixture
def lens_main():
    return cli.main


def write_history(path, customers=30, baskets=4):
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(["TRAN_ID", "CLIENT_ID", "PROD_ID", "TIMESTAMP", "PROD_AMOUNT", "PRODT_QTY"])
        for c in range(customers):
            for b in range(baskets):
                for item in sorted(set(rng.integers(0, 15, size=3).tolist())):
                    out.writerow([f"t{c}-{b}", f"c{c}", f"p{item}", f"2024-01-{1 + 7 * b:02d}", 2.5, 1])


def test_train_explains_itself(lens_main, capsys):
    with pytest.raises(SystemExit) as exit_info:
        lens_main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--config", "--protocol", "--epochs", "--out", "--export"):
        assert flag in out


def test_train_fits_and_scores_a_tiny_model(lens_main, tmp_path, capsys, clean_lens_env):
    history = tmp_path / "history.csv"
    write_history(history)
    out = tmp_path / "run"
    code = lens_main([
        "train", "--data", str(history), "--config", "tiny", "--epochs", "1", "--eager",
        "--out", str(out), "--split", "test",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained tiny" in printed and "recall@10" in printed
    assert (out / "lens.json").is_file() and (out / "eval_paper_test.json").is_file()

    # The trained run goes through the same lens predict / lens eval as the baselines.
    preds = tmp_path / "preds.jsonl"
    flags = ["--data", str(history), "--protocol", "paper", "--split", "test"]
    assert lens_main(["predict", "--model", str(out), *flags, "--out", str(preds)]) == 0
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert rows and all(1 <= len(r["basket"]) <= 10 for r in rows)
    assert all(len(r["quantities"]) == len(r["basket"]) and r["days_to_next"] >= 0 for r in rows)
    assert lens_main(["eval", "--model", str(out), *flags]) == 0
    assert "recall@10" in capsys.readouterr().out


def test_unknown_config_is_a_clean_error(lens_main, tmp_path, capsys, clean_lens_env):
    history = tmp_path / "history.csv"
    write_history(history)
    assert lens_main(["train", "--data", str(history), "--config", "huge", "--out", str(tmp_path)]) == 2
    assert "lens1000" in capsys.readouterr().err


def test_repeat_path_can_be_switched_off_for_a_preset(lens_main, tmp_path, clean_lens_env):
    history = tmp_path / "history.csv"
    write_history(history)
    out = tmp_path / "run"
    code = lens_main([
        "train", "--data", str(history), "--config", "tiny", "--no-repeat-path", "--epochs", "1",
        "--eager", "--out", str(out), "--split", "none",
    ])
    assert code == 0
    assert json.loads((out / "lens.json").read_text())["config"]["repeat_path"] is False
