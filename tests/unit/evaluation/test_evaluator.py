"""The evaluation runner: fit on train only, predict every case, report as a table and as JSON."""

import json

from lens.baselines.recommender import NextBasket
from lens.evaluation.evaluator import evaluate, score
from lens.evaluation.protocols import paper_split
from tests.unit.evaluation.helpers import TinyTop, make_funnels

FUNNELS = make_funnels(
    {f"c{n:02d}": [f"a b{n % 4}", f"a c{n % 3}", f"b{n % 4} d{n}"] for n in range(20)}
)


def test_fits_on_train_only_and_reports_every_metric():
    split = paper_split(FUNNELS, seed=0)
    model = TinyTop()
    result = evaluate(model, split, split_name="test")
    targets = {(c, case.target.basket_id) for c, case in split.test.items()}
    assert model.fitted_on and not model.fitted_on & targets
    assert result.counts["customers"] == len(split.test) == 6
    assert result.counts["missing_predictions"] == 0
    # Every target is "b<n%4> d<n>": b<n%4> was bought before (repeat), d<n> never (explore).
    assert result.counts["customers:repeat"] == result.counts["customers:explore"] == 6
    assert result.metrics["recall@10:explore"] == 0.0  # d<n> is in nobody's training data
    assert result.metrics["recall@10:repeat"] == 1.0
    table = result.table()
    for name in ("recall@10", "ndcg@20", "phr@20", "paper table", "per customer"):
        assert name in table
    data = json.loads(result.to_json())
    assert data["model"] == "tiny-top" and data["protocol"] == "paper" and data["split"] == "test"
    assert data["metrics"] == result.metrics


def test_a_customer_without_a_prediction_scores_zero_and_is_counted():
    split = paper_split(FUNNELS, seed=0)
    first, *_ = split.test
    predictions = {first: NextBasket(items=["a"], scores=[1.0], basket=["a"])}
    metrics, counts = score(predictions, split.test)
    assert counts["missing_predictions"] == len(split.test) - 1
    assert metrics["phr@10"] == 0.0  # "a" is in no target


def test_nan_becomes_null_in_json():
    split = paper_split(make_funnels({f"c{n}": ["a", "x"] for n in range(10)}), seed=0)
    result = evaluate(TinyTop(), split)
    assert json.loads(result.to_json())["metrics"]["recall@10:repeat"] is None
    assert "-" in result.table()
