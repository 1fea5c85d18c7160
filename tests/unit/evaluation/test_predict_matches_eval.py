"""``lens predict`` and ``lens eval`` agree: predictions written for a protocol's cases, scored by
an independent scorer, give the numbers ``lens eval`` reports for the same split."""

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lens.baselines import BASELINES
from lens.cli import evaluate, predict
from lens.data.loaders import load_funnels
from lens.errors import ConfigError
from lens.evaluation.protocols import make_split
from lens.settings import load_settings
from tests.unit.evaluation.helpers import TinyTop, reference_scores


def run_lens(*argv: str) -> int:
    """Run ``lens eval``/``lens predict`` in-process, through their own argument parsers."""
    parser = argparse.ArgumentParser(prog="lens")
    subparsers = parser.add_subparsers(required=True)
    evaluate.register(subparsers)
    predict.register(subparsers)
    args = parser.parse_args(argv)
    return args.handler(args, load_settings())


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setitem(BASELINES, "tiny-top", TinyTop)


@pytest.fixture
def data(tmp_path):
    """A minimal-schema CSV: 60 customers, 2..6 baskets each, drawn from 25 products."""
    rng = random.Random(5)
    lines = ["TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY"]
    for c in range(60):
        for b in range(rng.randint(2, 6)):
            for item in rng.sample(range(25), rng.randint(1, 8)):
                lines.append(f"t{c}-{b},{c:05d},p{item:02d},2024-02-{b + 1:02d},1.5,1")
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("protocol", "split", "model"),
    [
        ("paper", "test", "tiny-top"),
        ("paper", "valid", "tiny-top"),
        ("nbr", "test", "tiny-top"),
        ("paper", "test", "personal-then-global"),
        ("nbr", "test", "tifu-knn"),
    ],
)
def test_predict_output_scores_to_the_eval_numbers(tmp_path, data, protocol, split, model):
    flags = ["--data", str(data), "--protocol", protocol, "--seed", "3", "--split", split]
    flags += ["--model", model]
    assert run_lens("eval", *flags, "--out", str(tmp_path / "r.json")) == 0
    assert run_lens("predict", *flags, "--out", str(tmp_path / "p.jsonl")) == 0
    reported = json.loads((tmp_path / "r.json").read_text())
    written = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]

    cases = make_split(load_funnels(data).funnels, protocol, seed=3).cases(split)
    assert [p["customer_id"] for p in written] == list(cases)
    rows = [
        (
            set(cases[p["customer_id"]].target.items),
            p["items"],
            p["basket"],
            {item for b in cases[p["customer_id"]].history for item in b.items},
        )
        for p in written
    ]
    expected = reference_scores(rows)
    assert reported["metrics"].keys() == expected.keys()
    for name, value in expected.items():
        assert reported["metrics"][name] == pytest.approx(value), name
    assert reported["counts"]["customers"] == len(cases)


def test_predict_for_a_customer_list(tmp_path, data, caplog):
    customers = tmp_path / "customers.txt"
    customers.write_text("00007\n\n00003\n99999\n")  # 99999 has no baskets: cold start
    out = tmp_path / "p.jsonl"
    flags = ["--history", str(data), "--customers", str(customers), "--out", str(out)]
    assert run_lens("predict", "--model", "tiny-top", *flags) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["customer_id"] for p in written] == ["00007", "00003", "99999"]
    for p in written:
        assert len(p["items"]) == len(p["scores"]) == 20 and len(p["basket"]) <= 10
        assert p["quantities"] == [1.0] * len(p["basket"]) and p["days_to_next"] == 7.0
    assert "have no baskets" in caplog.text


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--history", "h.csv"],
        ["--history", "h.csv", "--customers", "c.txt", "--protocol", "paper"],
        ["--data", "d.csv"],
    ],
)
def test_predict_needs_exactly_one_source_of_customers(tmp_path, flags):
    with pytest.raises(ConfigError, match="give either --history"):
        run_lens("predict", "--model", "tiny-top", "--out", str(tmp_path / "p.jsonl"), *flags)


def test_an_unknown_model_is_a_config_error_naming_the_known_ones(data):
    with pytest.raises(ConfigError, match="tiny-top"):
        run_lens("eval", "--data", str(data), "--protocol", "paper", "--model", "nope")


def test_the_commands_import_no_model_code_until_they_run():
    # `lens --help` imports every command module; the models (xgboost, scipy) load in handlers.
    code = "import sys, lens.cli.evaluate, lens.cli.predict; print('xgboost' in sys.modules)"
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
