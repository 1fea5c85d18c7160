"""Canary rollback: per-label hit rates from checked predictions, and the rollback rule."""

from prometheus_client import CollectorRegistry

from lens import v1
from services.funnel import FunnelMetrics
from services.funnel.canary import CanaryGuard
from services.funnel.config import Canary
from services.funnel.processor import FunnelProcessor
from tests.unit.services.funnel.conftest import NOW_US, closed, line


def test_the_canary_is_rolled_back_once_both_labels_have_enough_checks_and_it_does_worse():
    metrics = FunnelMetrics(CollectorRegistry())
    guard = CanaryGuard(Canary("canary", 0.5, margin=0.1, min_checks=10), "stable", metrics)
    customer = next(f"c{i}" for i in range(100) if Canary("canary", 0.5).in_canary(f"c{i}"))
    assert guard.label_for(customer) == "canary"
    for i in range(10):
        guard.observe("canary", 2, hit=i < 3)  # 0.3
    assert not guard.rolled_back  # the stable label has no checks yet
    for i in range(9):
        guard.observe("stable", 1, hit=i < 6)
    assert not guard.rolled_back  # 9 < min_checks
    guard.observe("stable", 1, hit=False)  # stable 0.6 over 10: 0.3 < 0.6 - 0.1
    assert guard.rolled_back and guard.label_for(customer) == "stable"
    assert (guard.hit_rate("canary"), guard.hit_rate("stable")) == (0.3, 0.6)
    assert metrics.canary_rolled_back._value.get() == 1


def test_a_label_moved_to_another_version_is_judged_on_that_version_alone():
    guard = CanaryGuard(Canary("canary", 0.5, margin=0.1, min_checks=10), "stable")
    for i in range(10):
        guard.observe("canary", 1, hit=True)  # the canary label first answered with version 1
        guard.observe("stable", 1, hit=True)
    for i in range(9):
        guard.observe("canary", 3, hit=False)  # then moved to version 3: 9 checks so far
    assert not guard.rolled_back and guard.hit_rate("canary") == 0.0
    guard.observe("canary", 3, hit=False)
    assert guard.rolled_back


def test_a_canary_within_the_margin_keeps_its_customers():
    guard = CanaryGuard(Canary("canary", 0.5, margin=0.1, min_checks=10), "stable")
    for i in range(10):
        guard.observe("canary", 2, hit=i < 5)
        guard.observe("stable", 1, hit=i < 6)
    assert not guard.rolled_back  # 0.5 >= 0.6 - 0.1


def test_the_processor_checks_each_prediction_against_the_next_session(make_config, tables):
    metrics = FunnelMetrics(CollectorRegistry())
    guard = CanaryGuard(Canary("canary", 0.5, min_checks=1000), "stable")
    processor = FunnelProcessor(make_config(), metrics, canary_guard=guard)
    for n, (product, label) in enumerate([("milk", "canary"), ("milk", "canary"), ("tea", "stable")]):
        for offset, value in enumerate([line(f"T{n}", 1, "c1", product, 100 * n),
                                        closed(f"T{n}", "c1", 100 * n + 1)]):
            processor.on_pos(tables, partition=0, offset=offset, key=b"c1", value=value,
                             now_us=NOW_US)
        prediction = v1.Prediction(  # after session n + 1: basket [milk], made by the label
            prediction_id=f"c1:{n + 1}", customer_id="c1", store_id="S1",
            as_of=v1.Prediction().as_of, session_index=n + 1, days_to_next=1.0,
            basket=[v1.PredictedItem(product_id="milk", quantity=1)],
            model=v1.ModelRef(name="lens", version=1, label=label),
        )
        prediction.as_of.FromMicroseconds(NOW_US - 10**9)
        processor.on_prediction(tables, partition=0, offset=n, key=b"c1",
                                value=prediction.SerializeToString(), now_us=NOW_US)
    # session 2 (milk) checked the canary's [milk]: hit; session 3 (tea) the canary's: miss
    assert guard.checks == {("canary", 1): [2, 1]}
    # the live hit rate per label and version, with or without a canary share
    checks = metrics.prediction_checks
    assert [checks.labels("canary", "1", outcome)._value.get() for outcome in ("hit", "miss")] == [1, 1]


def test_predictions_are_checked_without_a_canary_share(make_config, tables):
    metrics = FunnelMetrics(CollectorRegistry())
    processor = FunnelProcessor(make_config(), metrics)
    for n in range(2):
        for offset, value in enumerate([line(f"T{n}", 1, "c1", "milk", 100 * n),
                                        closed(f"T{n}", "c1", 100 * n + 1)]):
            processor.on_pos(tables, partition=0, offset=2 * n + offset, key=b"c1", value=value,
                             now_us=NOW_US)
        if n == 0:
            prediction = v1.Prediction(
                prediction_id="c1:1", customer_id="c1", store_id="S1", session_index=1,
                days_to_next=1.0, basket=[v1.PredictedItem(product_id="milk", quantity=1)],
                model=v1.ModelRef(name="lens", version=7),
            )
            prediction.as_of.FromMicroseconds(NOW_US - 10**9)
            processor.on_prediction(tables, partition=0, offset=0, key=b"c1",
                                    value=prediction.SerializeToString(), now_us=NOW_US)
    assert metrics.prediction_checks.labels("", "7", "hit")._value.get() == 1
