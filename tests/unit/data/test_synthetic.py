"""The synthetic generator: deterministic, in the documented schema, and its plants are real."""

import argparse
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lens.cli import data as data_cli
from lens.data.synthetic import (
    RESUPPLY_COLUMNS,
    TRANSACTION_COLUMNS,
    SynthConfig,
    generate,
    write,
)
from lens.errors import ConfigError

SMALL = SynthConfig(customers=120, days=42, seed=3, stores=2)
# Enough changed customers and history on both sides of the change for distribution tests.
CHANGES = SynthConfig(customers=300, days=90, seed=11, stores=2, change_fraction=0.2)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write(generate(SMALL), out)
    return out


@pytest.fixture(scope="module")
def changes_dataset():
    return generate(CHANGES)


def read_transactions(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "transactions.csv", dtype=str, keep_default_na=False)


def with_days(tx: pd.DataFrame, start: dt.date) -> pd.DataFrame:
    ts = pd.to_datetime(tx["TIMESTAMP"])
    return tx.assign(ts=ts, day=(ts - pd.Timestamp(start)).dt.days)


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_the_same_files_byte_for_byte(tmp_path, small_dir):
    write(generate(SMALL), tmp_path)
    for name in ("transactions.csv", "resupplies.csv", "products.csv", "ground_truth.json"):
        assert (tmp_path / name).read_bytes() == (small_dir / name).read_bytes(), name


def test_another_seed_gives_other_transactions(tmp_path, small_dir):
    other = SynthConfig(customers=SMALL.customers, days=SMALL.days, seed=4, stores=SMALL.stores)
    write(generate(other), tmp_path)
    assert (tmp_path / "transactions.csv").read_bytes() != (
        small_dir / "transactions.csv"
    ).read_bytes()


# --- schema ------------------------------------------------------------------------------------


def test_transactions_follow_the_minimal_schema_plus_store(small_dir):
    header = (small_dir / "transactions.csv").read_text().splitlines()[0]
    assert header == "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID"
    assert tuple(header.split(",")) == TRANSACTION_COLUMNS
    tx = read_transactions(small_dir)
    assert len(tx) > 0
    assert tx["CLIENT_ID"].str.fullmatch(r"C\d{6}").all()
    assert tx["PROD_ID"].str.fullmatch(r"P\d{4}").all()
    assert tx["TRAN_ID"].str.fullmatch(r"T\d{7,}").all()
    assert set(tx["STORE_ID"]) <= {"S1", "S2"}
    assert tx["TIMESTAMP"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00").all()
    assert tx["PRODT_QTY"].str.fullmatch(r"[1-9]\d*").all()  # integer >= 1
    assert tx["PROD_AMOUNT"].str.fullmatch(r"\d+\.\d\d").all()
    ts = pd.to_datetime(tx["TIMESTAMP"])
    assert ts.is_monotonic_increasing
    assert ts.min() >= pd.Timestamp(SMALL.start) and ts.max() < pd.Timestamp(SMALL.end)
    assert ts.dt.hour.between(8, 21).all()  # store hours


def test_a_tran_id_is_one_basket(small_dir):
    tx = read_transactions(small_dir)
    per_basket = tx.groupby("TRAN_ID")[["CLIENT_ID", "TIMESTAMP", "STORE_ID"]].nunique()
    assert (per_basket == 1).all().all()
    assert not tx.duplicated(["TRAN_ID", "PROD_ID"]).any()
    # one basket per customer and day
    assert not tx.drop_duplicates("TRAN_ID").assign(d=tx["TIMESTAMP"].str[:10]).duplicated(
        ["CLIENT_ID", "d"]
    ).any()


def test_amount_is_unit_price_times_units(small_dir):
    tx = read_transactions(small_dir)
    truth = json.loads((small_dir / "ground_truth.json").read_text())
    price = {p["product_id"]: p["price"] for p in truth["products"]}
    expected = tx["PROD_ID"].map(price) * tx["PRODT_QTY"].astype(int)
    assert np.allclose(tx["PROD_AMOUNT"].astype(float), expected, atol=0.005)


def test_resupplies_cover_the_last_days_for_what_each_store_sells(small_dir):
    header = (small_dir / "resupplies.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == RESUPPLY_COLUMNS
    plan = pd.read_csv(small_dir / "resupplies.csv", dtype=str)
    assert plan["QUANTITY"].str.fullmatch(r"\d+").all()
    days = pd.to_datetime(plan["DAY"], format="%Y-%m-%d")
    window = pd.date_range(SMALL.resupply_start, SMALL.end - dt.timedelta(days=1))
    assert set(days) == set(window)
    truth = json.loads((small_dir / "ground_truth.json").read_text())
    sold_in = {
        (s, p["product_id"])
        for p in truth["products"]
        for s in ("S1", "S2")
        if p["store"] in (None, s)
    }
    assert set(zip(plan["STORE_ID"], plan["PROD_ID"])) == sold_in
    assert len(plan) == len(sold_in) * SMALL.resupply_days


def test_ground_truth_records_parameters_customers_and_plants(small_dir):
    truth = json.loads((small_dir / "ground_truth.json").read_text())
    assert truth["config"]["seed"] == 3 and truth["config"]["customers"] == 120
    assert truth["config"]["start"] == SMALL.start.isoformat()
    assert len(truth["customers"]) == 120
    customer = truth["customers"][0]
    assert {"customer_id", "segment", "store_id", "needs"} <= set(customer)
    need = customer["needs"][0]
    assert {"category", "product_id", "alternative_id", "period_days", "loyalty"} <= set(need)
    assert len(truth["behaviour_changes"]) == round(0.05 * 120)
    for change in truth["behaviour_changes"]:
        assert change["kind"] in ("switch_segment", "drop_need", "new_need")
        assert change["categories_dropped"] or change["categories_added"]
        dt.date.fromisoformat(change["date"])
    assert len(truth["demand_surges"]) == 3
    for surge in truth["demand_surges"]:
        assert surge["expected_demand"] > surge["planned_resupply"]
        assert dt.date.fromisoformat(surge["date"]) >= SMALL.resupply_start


def test_the_project_loader_reads_the_transactions(small_dir):
    from lens.data.loaders import load_funnels

    result = load_funnels(small_dir / "transactions.csv")
    assert result.skipped == {}
    tx = read_transactions(small_dir)
    assert len(result.funnels) == tx["CLIENT_ID"].nunique()
    assert sum(len(f) for f in result.funnels.values()) == tx["TRAN_ID"].nunique()


# --- the world behaves as described ------------------------------------------------------------


def stable_needs(ds) -> pd.DataFrame:
    """Needs that run the whole period, of customers with no planted change or promotion."""
    planted = {c.customer_id for c in ds.changes} | {c for s in ds.surges for c in s.customers}
    n = ds.needs
    return n[
        n["active_from"].isna()
        & n["active_to"].isna()
        & n["promotion"].isna()
        & ~n["customer_id"].isin(planted)
        & (n["category"] != "seasonal")
    ]


def lines_with_category(ds) -> pd.DataFrame:
    tx = ds.transactions
    category = ds.products.set_index("product_id")["category"]
    return pd.DataFrame(
        {
            "customer_id": tx["CLIENT_ID"].astype(str),
            "product_id": tx["PROD_ID"].astype(str),
            "category": tx["PROD_ID"].astype(str).map(category),
            "day": (tx["TIMESTAMP"] - pd.Timestamp(ds.config.start)).dt.days,
            "TRAN_ID": tx["TRAN_ID"].astype(str),
        }
    )


def test_recurring_needs_are_bought_at_their_period(changes_dataset):
    ds = changes_dataset
    lines = lines_with_category(ds)
    gaps = (
        lines.drop_duplicates(["customer_id", "category", "day"])
        .sort_values("day")
        .groupby(["customer_id", "category"])["day"]
        .agg(lambda d: np.median(np.diff(d.to_numpy())) if len(d) >= 5 else np.nan)
        .rename("median_gap")
        .reset_index()
    )
    both = stable_needs(ds).merge(gaps, on=["customer_id", "category"])
    both = both.dropna(subset=["median_gap"])
    assert len(both) > 200
    ratio = both["median_gap"] / both["period_days"]
    assert 0.9 < ratio.median() < 1.1
    assert (ratio.between(0.75, 1.25)).mean() > 0.7
    # a short-period need really is bought more often than a long-period one
    short = both[both["period_days"] < 6]["median_gap"].median()
    long = both[both["period_days"] > 12]["median_gap"].median()
    assert short * 2 < long


def test_customers_mostly_buy_their_favourite_brand(changes_dataset):
    ds = changes_dataset
    lines = lines_with_category(ds).merge(
        stable_needs(ds)[["customer_id", "category", "product_id"]].rename(
            columns={"product_id": "fav"}
        ),
        on=["customer_id", "category"],
    )
    share = (lines["product_id"] == lines["fav"]).mean()
    assert 0.7 < share < 0.97  # loyal, with some switching


def test_weekends_are_busier(small_dir):
    tx = read_transactions(small_dir).drop_duplicates("TRAN_ID")
    trips = pd.to_datetime(tx["TIMESTAMP"]).dt.day_of_week.value_counts()
    assert trips[5] > 1.15 * trips[[0, 1, 2, 3]].mean()  # Saturday vs Monday..Thursday


def test_store_exclusive_items_sell_only_in_their_store(changes_dataset):
    ds = changes_dataset
    owner = ds.products.set_index("product_id")["store"]
    tx = ds.transactions
    where = tx["PROD_ID"].astype(str).map(owner)
    exclusive = where.notna()
    assert exclusive.any()
    assert (tx.loc[exclusive, "STORE_ID"].astype(str) == where[exclusive]).all()


def test_seasonal_items_sell_around_their_peak(changes_dataset):
    ds = changes_dataset
    seasonal = ds.products[ds.products["category"] == "seasonal"].sort_values("season_peak")
    early, late = seasonal["product_id"].iloc[0], seasonal["product_id"].iloc[-1]
    lines = lines_with_category(ds)
    first = lines[lines["day"] < ds.config.days // 3]["product_id"].value_counts()
    last = lines[lines["day"] >= 2 * ds.config.days // 3]["product_id"].value_counts()
    assert first.get(early, 0) > 3 * max(last.get(early, 0), 1)
    assert last.get(late, 0) > 3 * max(first.get(late, 0), 1)


# --- planted behaviour changes -----------------------------------------------------------------


def category_shift(lines: pd.DataFrame, customer: str, day: int) -> float:
    """L1 distance between a customer's category shares before ``day`` and from it on."""
    mine = lines[lines["customer_id"] == customer]
    before = mine[mine["day"] < day]["category"].value_counts(normalize=True)
    after = mine[mine["day"] >= day]["category"].value_counts(normalize=True)
    return float(before.sub(after, fill_value=0).abs().sum())


def test_planted_changes_change_the_category_mix(changes_dataset):
    ds = changes_dataset
    lines = lines_with_category(ds)
    start = ds.config.start
    changed = {c.customer_id: (c.date - start).days for c in ds.changes}
    assert len(changed) == 60
    reference = int(np.median(list(changed.values())))
    promoted = {c for s in ds.surges for c in s.customers}
    others = [
        c for c in ds.customers["customer_id"] if c not in changed and c not in promoted
    ]
    shift_changed = np.mean([category_shift(lines, c, d) for c, d in changed.items()])
    shift_others = np.mean([category_shift(lines, c, reference) for c in others])
    assert shift_changed > 1.5 * shift_others


def test_dropped_needs_stop_and_added_needs_start(changes_dataset):
    ds = changes_dataset
    lines = lines_with_category(ds)
    before_dropped = after_dropped = before_added = after_added = 0
    for change in ds.changes:
        day = (change.date - ds.config.start).days
        mine = lines[lines["customer_id"] == change.customer_id]
        pre, post = mine[mine["day"] < day], mine[mine["day"] >= day]
        before_dropped += pre["category"].isin(change.categories_dropped).sum()
        after_dropped += post["category"].isin(change.categories_dropped).sum()
        before_added += pre["category"].isin(change.categories_added).sum()
        after_added += post["category"].isin(change.categories_added).sum()
    # what remains is exploration: one-off items from any category
    assert after_dropped < 0.05 * before_dropped
    assert before_added < 0.05 * after_added


# --- planted stock shortfalls ------------------------------------------------------------------


def test_planted_surges_exceed_the_resupply_plan_and_other_cells_mostly_do_not(small_dir):
    tx = with_days(read_transactions(small_dir), SMALL.start)
    tx["units"] = tx["PRODT_QTY"].astype(int)
    tx["date"] = tx["ts"].dt.strftime("%Y-%m-%d")
    demand = tx.groupby(["STORE_ID", "PROD_ID", "date"])["units"].sum()
    plan = pd.read_csv(small_dir / "resupplies.csv", dtype={"QUANTITY": int})
    plan = plan.set_index(["STORE_ID", "PROD_ID", "DAY"])["QUANTITY"]
    truth = json.loads((small_dir / "ground_truth.json").read_text())
    planted = set()
    for surge in truth["demand_surges"]:
        cell = (surge["store_id"], surge["product_id"], surge["date"])
        planted.add(cell)
        assert demand[cell] == surge["realized_demand"]
        assert plan[cell] == surge["planned_resupply"]
        assert demand[cell] > plan[cell]
        assert demand[cell] >= surge["promoted_units"] > 0
        assert len(surge["customers"]) >= 5
    sold = demand.reindex(plan.index, fill_value=0)
    short = set(plan.index[sold.to_numpy() > plan.to_numpy()])
    assert planted <= short
    assert len(short - planted) < 0.05 * len(plan)
    recorded = {(s["store_id"], s["product_id"], s["date"]): s for s in truth["stock_shortfalls"]}
    assert set(recorded) == short
    assert {cell for cell, s in recorded.items() if s["planted"]} == planted


def test_the_cohort_buys_the_promoted_product_on_the_day(small_dir):
    tx = read_transactions(small_dir)
    truth = json.loads((small_dir / "ground_truth.json").read_text())
    for surge in truth["demand_surges"]:
        that_day = tx[
            (tx["PROD_ID"] == surge["product_id"])
            & (tx["STORE_ID"] == surge["store_id"])
            & tx["TIMESTAMP"].str.startswith(surge["date"])
        ]
        assert set(surge["customers"]) <= set(that_day["CLIENT_ID"])
        # and most bought it before, from their own rhythm: their history predicts the day
        before = tx[(tx["PROD_ID"] == surge["product_id"]) & (tx["TIMESTAMP"] < surge["date"])]
        repeat = before[before["CLIENT_ID"].isin(surge["customers"])]["CLIENT_ID"].nunique()
        assert repeat >= 0.8 * len(surge["customers"])
        # exactly: the last purchase before it plus the usual gap is the day
        surge_day = dt.date.fromisoformat(surge["date"])
        for _, mine in before[before["CLIENT_ID"].isin(surge["customers"])].groupby("CLIENT_ID"):
            days = sorted({dt.date.fromisoformat(t[:10]) for t in mine["TIMESTAMP"]})
            gaps = [(b - a).days for a, b in zip(days, days[1:])]
            if gaps:
                assert days[-1] + dt.timedelta(days=int(np.median(gaps))) == surge_day


# --- configuration and CLI ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"customers": 5}, "--customers"),
        ({"customers": 25, "stores": 3}, "--customers"),
        ({"stores": 0}, "--stores"),
        ({"days": 20}, "--days"),
        ({"seed": -1}, "--seed"),
        ({"change_fraction": 0.9}, "--change-fraction"),
        ({"surges": -1}, "--surges"),
        ({"resupply_days": 0}, "--resupply-days"),
        ({"resupply_margin": -0.1}, "--resupply-margin"),
        ({"customers": 2.5}, "customers"),
        ({"start": dt.datetime(2026, 1, 5, 10)}, "start"),
    ],
)
def test_bad_configs_raise_config_error_naming_the_flag(changes, flag):
    with pytest.raises(ConfigError, match=re.escape(flag)):
        SynthConfig(**changes)


def own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lens")
    data_cli.register(parser.add_subparsers(required=True))
    return parser


def test_products_csv_is_the_catalog_each_product_with_its_category_and_department(small_dir):
    from lens.segments.catalog import read_category_departments, read_product_subclasses

    lines = (small_dir / "products.csv").read_text().splitlines()
    # nothing about customers, needs or plants
    assert lines[0] == "PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT"
    truth = json.loads((small_dir / "ground_truth.json").read_text())
    expected = {p["product_id"]: p["category"] for p in truth["products"]}
    assert len(lines) == len(expected) + 1
    assert read_product_subclasses(small_dir / "products.csv") == expected
    assert read_category_departments(small_dir / "products.csv") == {
        p["category"]: p["department"] for p in truth["products"]}
    # every product sold is in the catalog
    assert set(read_transactions(small_dir)["PROD_ID"]) <= set(expected)


def test_cli_synth_writes_the_four_files(tmp_path, capsys):
    out = tmp_path / "out"
    args = own_parser().parse_args(
        ["data", "synth", "--customers", "40", "--days", "30", "--seed", "5", "--stores", "2",
         "--start", "2026-03-02", "--out", str(out)]
    )
    assert args.handler(args, None) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "ground_truth.json", "products.csv", "resupplies.csv", "transactions.csv",
    ]
    truth = json.loads((out / "ground_truth.json").read_text())
    given = {"customers": 40, "days": 30, "seed": 5, "stores": 2}
    assert truth["config"] | given == truth["config"]
    assert truth["period"]["first_day"] == "2026-03-02"
    assert truth["period"]["last_day"] == "2026-03-31"
    assert "transaction lines" in capsys.readouterr().out


def test_cli_rejects_a_bad_start_date(tmp_path):
    args = own_parser().parse_args(
        ["data", "synth", "--start", "05/01/2026", "--out", str(tmp_path)]
    )
    with pytest.raises(ConfigError, match="--start"):
        args.handler(args, None)


def test_cli_help_names_every_flag_and_file(capsys):
    with pytest.raises(SystemExit) as exit_info:
        own_parser().parse_args(["data", "synth", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("--customers", "--days", "--seed", "--out", "--stores", "--start",
                 "transactions.csv", "resupplies.csv", "products.csv", "ground_truth.json"):
        assert word in text


def test_lens_main_runs_data_synth(tmp_path, clean_lens_env, monkeypatch):
    from lens.cli import main as lens_main

    if data_cli not in lens_main.COMMAND_GROUPS:  # until the lead registers the command group
        monkeypatch.setattr(lens_main, "COMMAND_GROUPS", (*lens_main.COMMAND_GROUPS, data_cli))
    code = lens_main.main(
        ["data", "synth", "--customers", "30", "--days", "28", "--out", str(tmp_path)]
    )
    assert code == 0 and (tmp_path / "transactions.csv").exists()
    assert lens_main.main(["data", "synth", "--customers", "3", "--out", str(tmp_path)]) == 2
