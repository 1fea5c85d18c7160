"""`lens anomalies` and `lens stockouts` end to end on a tiny history file, with a fake model
(and once with a tiny untrained LENS model for the funnel embeddings)."""

import csv
import json
import math

import numpy as np
import pytest

from lens.anomaly.needs import (
    PRIOR_SPREAD,
    PRIOR_WEIGHT,
    read_need_intervals,
    write_need_intervals,
)
from lens.baselines.recommender import NextBasket
from lens.cli.main import main

HEADER = "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID\n"


def write_history(path, customers=40):
    """Regulars buy milk on days 1 and 8; customer c0 switches to caviar on day 8; c1 has one
    basket only."""
    rows = []
    for i in range(customers):
        rows.append(f"t{i}a,c{i},milk,2026-03-01T10:00:00,2,1,S1")
        if i != 1:
            product = "caviar" if i == 0 else "milk"
            rows.append(f"t{i}b,c{i},{product},2026-03-08T10:00:00,2,1,S1")
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def write_routines(path, customers=40):
    """Every customer buys milk on days 1 to 7, except c0, who buys caviar from day 4 on (4
    sessions of products new to them after 3 established ones), and c1, who came once."""
    rows = []
    for i in range(customers):
        for day in range(1, 2 if i == 1 else 8):
            product = "caviar" if i == 0 and day >= 4 else "milk"
            rows.append(f"t{i}d{day},c{i},{product},2026-03-0{day}T10:00:00,2,1,S1")
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


class MilkAgain:
    """A fake model: milk again (3 units) in 1 day, for everyone."""

    name = "milk-again"

    def fit(self, train):
        return self

    def predict(self, histories, k):
        return {c: NextBasket(items=("milk",), scores=(0.9,), basket=("milk",),
                              quantities=(3.0,), days_to_next=1.0) for c in histories}


@pytest.fixture
def fake_model(monkeypatch):
    import lens.cli.models

    monkeypatch.setattr(lens.cli.models, "resolve_model", lambda name: MilkAgain())


def test_anomalies_flags_the_customer_who_changed(tmp_path, fake_model, clean_lens_env, capsys):
    data = write_routines(tmp_path / "tx.csv")
    out = tmp_path / "anomalies.csv"
    code = main(["anomalies", "--data", str(data), "--model", "fake", "--min-sessions", "1",
                 "--min-history", "5", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert ("39 customers scored (1 with 1 sessions or fewer left out, 0 with too few sessions "
            "for a level), 1 cluster(s), 1 above dB 3.5") in printed
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 39 and rows[0]["customer_id"] == "c0"  # highest dB first
    assert rows[0]["alert"] == "True" and float(rows[0]["distance"]) == 1.0
    assert (rows[0]["predicted"], rows[0]["observed"]) == ("milk", "caviar")
    assert float(rows[0]["level"]) == 1.0  # dA 1 and novelty 1 for the last 3 and 4 sessions
    # the 38 others all repeat the prediction and their routine: level 0 -> dB 0
    assert {(r["alert"], r["score"]) for r in rows[1:]} == {("False", "0.0")}


def test_anomalies_novelty_settings_score_short_histories(tmp_path, fake_model, clean_lens_env,
                                                           monkeypatch, capsys):
    data = write_history(tmp_path / "tx.csv")  # 2 sessions a customer: no level by default
    args = ["anomalies", "--data", str(data), "--model", "fake", "--min-sessions", "1",
            "--min-history", "5"]
    assert main(args) == 0
    assert "39 with too few sessions for a level), 1 cluster(s), 0 above" in capsys.readouterr().out
    monkeypatch.setenv("LENS_ANOMALY_NOVELTY_WINDOW", "1")
    monkeypatch.setenv("LENS_ANOMALY_ESTABLISHED", "1")
    assert main(args) == 0
    assert "0 with too few sessions for a level), 1 cluster(s), 1 above" in capsys.readouterr().out


def test_anomalies_catalog_flags_a_customer_who_dropped_a_need(tmp_path, fake_model,
                                                               clean_lens_env, monkeypatch, capsys):
    """Everyone buys milk and bread on days 1 to 8, except c0, who buys no bread from day 5 on:
    nothing new to see at product level, a dropped category with the catalog."""
    rows = []
    for i in range(40):
        for day in range(1, 9):
            products = ("milk",) if i == 0 and day >= 5 else ("milk", "bread")
            rows += [f"t{i}d{day},c{i},{p},2026-03-0{day}T10:00:00,2,1,S1" for p in products]
    data = tmp_path / "tx.csv"
    data.write_text(HEADER + "\n".join(rows) + "\n")
    catalog = tmp_path / "products.csv"
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nmilk,dairy\nbread,bakery\n")
    scored = ["anomalies", "--data", str(data), "--model", "fake", "--min-sessions", "1",
              "--min-history", "5"]
    assert main(scored) == 0
    assert "1 cluster(s), 0 above dB 3.5" in capsys.readouterr().out
    out = tmp_path / "a.csv"
    assert main([*scored, "--catalog", str(catalog), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 cluster(s), 1 above dB 3.5" in printed
    # the categories' typical intervals, fitted on the history: both daily
    assert "need intervals: 2 categories' typical intervals fitted on 40 customers" in printed
    first = next(csv.DictReader(out.open()))
    # dA 0 (milk predicted, milk bought); bread, daily on days 1-4, is 4 days since on day 8:
    # ln 4 over the customer's spread (10 intervals of exactly their mean: the prior's, diluted),
    # beyond 1.5 spreads (the tolerance with need intervals), x 0.3
    spread = math.sqrt(PRIOR_WEIGHT * PRIOR_SPREAD**2 / (PRIOR_WEIGHT + 3 + 7))
    assert first["customer_id"] == "c0"
    fitted = float(first["level"])
    assert fitted == pytest.approx(0.3 * (math.log(4) / spread - 1.5), rel=1e-5)
    # a table given is read, not fitted: bread every other day in it makes c0's gap less late
    intervals = write_need_intervals({"bakery": 2.0, "dairy": 1.0}, tmp_path / "n.json",
                                     customers=1000)
    assert main([*scored, "--catalog", str(catalog), "--need-intervals", str(intervals),
                 "--out", str(out)]) == 0
    assert "need intervals:" not in capsys.readouterr().out
    first = next(csv.DictReader(out.open()))
    assert first["customer_id"] == "c0" and 0 < float(first["level"]) < fitted
    assert main([*scored, "--need-intervals", str(intervals)]) == 2  # without the catalog
    assert "set the catalog too" in capsys.readouterr().err
    monkeypatch.setenv("LENS_ANOMALY_CATALOG", str(catalog))  # the same from the environment
    monkeypatch.setenv("LENS_ANOMALY_DROP_WEIGHT", "0")
    assert main(scored) == 0
    assert "1 cluster(s), 0 above dB 3.5" in capsys.readouterr().out
    monkeypatch.setenv("LENS_ANOMALY_CATALOG", str(tmp_path / "missing.csv"))
    assert main(scored) == 2
    assert "does not exist" in capsys.readouterr().err


def test_anomalies_without_enough_customers_for_need_intervals_says_so(
        tmp_path, fake_model, clean_lens_env, capsys):
    rows = [f"t{i}d{day},c{i},milk,2026-03-0{day}T10:00:00,2,1,S1"
            for i in range(4) for day in range(1, 9)]
    data = tmp_path / "tx.csv"
    data.write_text(HEADER + "\n".join(rows) + "\n")
    catalog = tmp_path / "products.csv"
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nmilk,dairy\n")
    assert main(["anomalies", "--data", str(data), "--model", "fake", "--min-sessions", "1",
                 "--min-history", "2", "--catalog", str(catalog)]) == 0
    assert "no category bought in 3+ sessions by 5 customers" in capsys.readouterr().out


def test_need_intervals_are_fitted_on_a_history_and_written_for_the_worker(
        tmp_path, clean_lens_env, capsys):
    """Customer ck buys milk every k days (k = 1..6) and bread every 2k days, over 24 days."""
    rows = [f"t{k}d{day},c{k},{p},2026-03-{day + 1:02d}T10:00:00,2,1,S1"
            for k in range(1, 7) for day in range(0, 25, k)
            for p in (("milk", "bread") if day % (2 * k) == 0 else ("milk",))]
    data = tmp_path / "tx.csv"
    data.write_text(HEADER + "\n".join(rows) + "\n")
    catalog = tmp_path / "products.csv"
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nmilk,dairy\nbread,bakery\nsoap,household\n")
    out = tmp_path / "need_intervals.json"
    command = ["data", "need-intervals", "--data", str(data), "--catalog", str(catalog),
               "--out", str(out)]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "typical intervals of 2 categories (of 3 in the catalog), fitted on 6 customers" in (
        printed)
    # the median of each customer's mean interval: milk of 1..6 days, bread of 2, 4, .., 12
    assert read_need_intervals(out) == {"dairy": pytest.approx(3.5), "bakery": pytest.approx(7.0)}
    assert main([*command, "--min-customers", "7"]) == 2  # every category bought by fewer
    assert "no category of" in capsys.readouterr().err
    assert main([*command, "--min-customers", "0"]) == 2
    assert "--min-customers must be >= 1" in capsys.readouterr().err


def test_anomalies_prints_a_table_and_writes_jsonl(tmp_path, fake_model, clean_lens_env, capsys):
    data = write_routines(tmp_path / "tx.csv")
    scored = ["anomalies", "--data", str(data), "--model", "fake", "--min-sessions", "1"]
    assert main([*scored, "--min-history", "50"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["customer_id", "distance", "level", "cluster", "score", "alert",
                                "predicted", "observed"]
    assert table[2].split()[:6] == ["c0", "1.000", "1.000", "0", "-", "False"]  # no dB: too few others
    out = tmp_path / "a.jsonl"
    assert main([*scored, "--min-history", "50", "--out", str(out)]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["score"] is None and first["predicted"] == ["milk"]


def test_the_help_default_of_min_sessions_is_the_workers():
    from lens.anomaly import AnomalyConfig
    from lens.cli.anomalies import _DEFAULT_MIN_SESSIONS

    assert _DEFAULT_MIN_SESSIONS == AnomalyConfig().min_sessions


def test_the_help_default_of_min_customers_is_the_fits():
    from lens.anomaly import FIT_MIN_CUSTOMERS
    from lens.cli.data import _DEFAULT_MIN_CUSTOMERS

    assert _DEFAULT_MIN_CUSTOMERS == FIT_MIN_CUSTOMERS


def test_anomalies_errors_are_clear(tmp_path, fake_model, clean_lens_env, capsys):
    data = write_history(tmp_path / "tx.csv")
    assert main(["anomalies", "--data", str(data), "--model", "fake", "--out", "x.parquet"]) == 2
    assert "use a file ending in .csv or .jsonl" in capsys.readouterr().err
    assert main(["anomalies", "--data", str(data), "--model", "fake", "--clusters", "c.json"]) == 2
    assert "--clusters needs a model with funnel embeddings" in capsys.readouterr().err


def test_stockouts_reports_demand_beyond_the_plan(tmp_path, fake_model, clean_lens_env, capsys):
    data = write_history(tmp_path / "tx.csv", customers=4)
    plan = tmp_path / "plan.csv"
    # everyone's last visit: c1 on 03-01 (expired), the others on 03-08 -> back 03-09, 3 milk each
    # at score 0.9: 2.7 expected units each
    plan.write_text("STORE_ID,PROD_ID,DAY,QUANTITY\nS1,milk,2026-03-09,4\nS1,milk,2026-03-02,0\n")
    out = tmp_path / "short.jsonl"
    code = main(["stockouts", "--data", str(data), "--model", "fake", "--resupply", str(plan),
                 "--out", str(out)])
    assert code == 0
    assert "4 customer funnels predicted, 1 short cells from 2026-03-07 in 1 stores" in capsys.readouterr().out
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row == {"store_id": "S1", "product_id": "milk", "day": "2026-03-09",
                   "predicted_demand": 8.1, "resupply_quantity": 4.0, "shortfall": 4.1}
    assert main(["stockouts", "--data", str(data), "--model", "fake", "--resupply", str(plan),
                 "--days", "1"]) == 0  # days_to_next 1 is not < 1: no demand at all
    assert "0 short cells" in capsys.readouterr().out
    # as of 03-08 only the 03-01 baskets count: all 4 customers back on 03-02, 2.7 milk each
    assert main(["stockouts", "--data", str(data), "--model", "fake", "--resupply", str(plan),
                 "--as-of", "2026-03-08", "--out", str(out)]) == 0
    assert "1 short cells from 2026-02-28" in capsys.readouterr().out
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert (row["day"], row["predicted_demand"], row["shortfall"]) == ("2026-03-02", 10.8, 10.8)
    with pytest.raises(SystemExit):
        main(["stockouts", "--data", str(data), "--model", "fake", "--resupply", str(plan),
              "--as-of", "March"])
    assert "'March' is not a date YYYY-MM-DD" in capsys.readouterr().err


def test_stockouts_store_variant_and_bad_plans(tmp_path, fake_model, clean_lens_env, capsys):
    data = write_history(tmp_path / "tx.csv", customers=4)
    plan = tmp_path / "plan.csv"
    plan.write_text("STORE_ID,PROD_ID,DAY,QUANTITY\nS1,milk,2026-03-09,1\n")
    assert main(["stockouts", "--data", str(data), "--model", "fake", "--resupply", str(plan),
                 "--source", "store"]) == 0
    printed = capsys.readouterr().out
    assert "1 store funnels predicted, 1 short cells" in printed  # one funnel: S1's days
    assert printed.splitlines()[2].split() == ["S1", "milk", "2026-03-09", "2.700", "1.000", "1.700"]
    plan.write_text("STORE_ID,PROD_ID,DAY\nS1,milk,2026-03-09\n")
    assert main(["stockouts", "--data", str(data), "--model", "fake", "--resupply", str(plan)]) == 2
    assert "missing column(s) ['QUANTITY']" in capsys.readouterr().err


def test_lens_funnel_embeddings_feed_the_clusters(tmp_path, clean_lens_env):
    """A tiny untrained LENS model: fE has the model's width, one row per customer."""
    from lens.anomaly import AnomalyConfig, funnel_observations, split_last_sessions
    from lens.cli.anomalies import funnel_embedder
    from lens.data.loaders import load_funnels
    from lens.data.vocabulary import Vocabulary
    from lens.model import CONFIGS, LensRecommender, TrainedLens, UserIndex

    funnels = load_funnels(write_history(tmp_path / "tx.csv", customers=6)).funnels
    trained = TrainedLens.create(CONFIGS["tiny"], Vocabulary.build(funnels), UserIndex(sorted(funnels)))
    model = LensRecommender(trained=trained)
    embed = funnel_embedder(model)
    config = AnomalyConfig(min_sessions=1)
    observations = funnel_observations(split_last_sessions(funnels), model, embed=embed, config=config)
    assert len(observations) == 5
    widths = {len(o.embedding) for o in observations}
    assert len(widths) == 1 and widths.pop() > 1
    assert all(np.isfinite(o.embedding).all() for o in observations)
    assert funnel_embedder(MilkAgain()) is None
