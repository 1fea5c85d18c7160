"""Need-level signals of Algorithm 1 over a product catalog (``lens.anomaly.needs``)."""

import pytest

from lens.anomaly import AnomalyConfig, sustained_level
from lens.anomaly.needs import (
    discovery_excess,
    lapsed_needs,
    need_sessions,
    new_needs,
    read_catalog,
)
from lens.errors import ConfigError

CATALOG = {
    "milk_a": "milk", "milk_b": "milk",
    "bread_a": "bread", "bread_b": "bread",
    "diaper_a": "diapers", "diaper_b": "diapers",
    "food_a": "baby_food",
    "cat_a": "pet_food", "litter_a": "cat_litter",
    "beer_a": "beer",
}
# Six sessions of a young family: milk, bread, diapers and baby food every time.
ROUTINE = [("milk_a", "bread_a", "diaper_a", "food_a")] * 6
SPLIT = {"window": 4, "established": 3}
DAY = 86_400_000_000  # microseconds


def needs(sessions):
    return need_sessions(sessions, CATALOG)


def every(days, count, start=0.0):
    """Session times ``days`` apart, in days."""
    return [start + days * i for i in range(count)]


def test_need_sessions_map_products_to_categories_and_leave_unlisted_ones_out():
    assert needs([("milk_a", "milk_b", "unknown"), ()]) == [frozenset({"milk"}), frozenset()]


def test_dropped_categories_lapse_with_the_days_since_their_last_purchase():
    stopped = ROUTINE + [("milk_a", "bread_a")] * 4  # no more baby products
    # every 2 days: the last session is day 18, the baby categories' last day 10 -> each is 8
    # days late on a 2-day interval, 3 purchases missed beyond one interval; 2 of 4 equal rates
    assert lapsed_needs(needs(stopped), every(2, 10)) == pytest.approx(2 * 3 / 4)
    # the same sessions 4 days apart: the interval doubles, so do the days; the same lapse
    assert lapsed_needs(needs(stopped), every(4, 10)) == pytest.approx(1.5)
    assert lapsed_needs(needs(ROUTINE + ROUTINE[:4]), every(2, 10)) == 0.0
    # days, not trips: two more trips on the last day, without those categories, change nothing
    assert lapsed_needs(needs(stopped + [("beer_a",)] * 2), every(2, 10) + [18, 18]) == (
        pytest.approx(1.5))


def test_a_brand_switch_within_a_category_is_no_dropped_need_nor_a_new_one():
    switched = ROUTINE + [("milk_b", "bread_b", "diaper_b", "food_a")] * 4
    assert lapsed_needs(needs(switched), every(2, 10)) == 0.0
    assert new_needs(needs(switched), **SPLIT) == 0.0
    assert discovery_excess(needs(switched)) == 0.0
    config = AnomalyConfig(categories=CATALOG)
    # the product-level novelty sees 3 of 4 products new; the need level adds nothing to it
    without = sustained_level([0.0], switched, AnomalyConfig())
    times = [DAY * d for d in every(2, 10)]
    assert sustained_level([0.0], switched, config, times) == pytest.approx(without)


def test_a_new_category_bought_repeatedly_raises_the_new_share():
    pet = ROUTINE + [("milk_a", "bread_a", "cat_a")] * 2 + [("milk_a", "litter_a", "cat_a")] * 2
    # window categories {milk, bread, pet_food, cat_litter}: pet_food new and in 4 sessions,
    # cat_litter new and in 2 -> 2 / 4
    assert new_needs(needs(pet), **SPLIT) == pytest.approx(0.5)
    # a new category bought once (exploration) does not count
    once = ROUTINE + [("milk_a", "beer_a")] + [("milk_a",)] * 3
    assert new_needs(needs(once), **SPLIT) == 0.0
    assert new_needs(needs(once), **SPLIT, repeat=1) == pytest.approx(0.5)


def test_a_single_regular_category_skipped_stays_below_a_dropped_department():
    # milk on days 0, 4 and 8 (interval 4), then trips without a listed product until day 24:
    # 16 days late, 3 purchases missed; alone it weighs max(its rate, floor 2 x its rate) -> 3/2
    sparse = [("milk_a",), ("unlisted",), ("milk_a",), ("unlisted",), ("milk_a",)]
    sparse += [("unlisted",)] * 4
    days = [0, 2, 4, 6, 8, 12, 16, 20, 24]
    assert lapsed_needs(needs(sparse), days, min_count=3) == pytest.approx(1.5)
    assert lapsed_needs(needs(sparse), days, min_count=3, floor=0.5) == pytest.approx(3.0)
    # bought in fewer than min_count sessions: no regular need to lapse
    assert lapsed_needs(needs(sparse), days, min_count=4) == 0.0
    with pytest.raises(ValueError, match="times"):
        lapsed_needs(needs(sparse), days[:-1])


def test_a_burst_of_first_purchases_beyond_the_customers_pace_is_a_discovery():
    pets = ROUTINE + [("milk_a", "cat_a", "litter_a")]
    # 2 categories first bought in the last 2 sessions, none in the 3 before them
    assert discovery_excess(needs(pets)) == 2.0
    # a young history discovering one category a session: the burst is its usual pace
    young = [("milk_a",), ("bread_a",), ("diaper_a",), ("food_a",), ("cat_a",), ("beer_a",)]
    assert discovery_excess(needs(young)) == pytest.approx(2 - 2 * 3 / 3)
    assert discovery_excess(needs(young[:5])) is None  # too few sessions


def test_short_histories_have_no_need_signals():
    assert new_needs(needs(ROUTINE), window=4, established=3) is None
    assert new_needs(needs(ROUTINE[:3] + [()] * 4), **SPLIT) == 0.0  # empty window
    assert sustained_level([0.2], ROUTINE, AnomalyConfig(categories=CATALOG)) is None


def test_the_level_adds_the_weighted_need_signals_only_with_a_catalog():
    stopped = ROUTINE + [("milk_a", "bread_a")] * 4
    times = [DAY * d for d in every(2, 10)]
    plain = sustained_level([0.2], stopped, AnomalyConfig())
    assert plain == pytest.approx(0.15 * 0.2)  # nothing new at product level
    with_catalog = AnomalyConfig(categories=CATALOG, drop_weight=2.0, lapse_tolerance=0.5)
    # lapsed 1.5 (above), 1.0 beyond the tolerance
    assert sustained_level([0.2], stopped, with_catalog, times) == pytest.approx(plain + 2.0)
    weightless = AnomalyConfig(categories=CATALOG, drop_weight=0.0, new_weight=0.0,
                               discovery_weight=0.0)
    assert sustained_level([0.2], stopped, weightless, times) == pytest.approx(plain)
    with pytest.raises(ValueError, match="times"):
        sustained_level([0.2], stopped, with_catalog)


def test_need_settings_are_checked():
    for bad in ({"drop_weight": -1.0}, {"new_weight": float("nan")}, {"lapse_tolerance": -0.1},
                {"discovery_weight": float("inf")}, {"need_min_count": 0},
                {"new_need_repeat": 0}, {"need_floor": 0.0}, {"discovery_reference": 0}):
        with pytest.raises(ConfigError):
            AnomalyConfig(**bad)


def test_read_catalog_reads_a_synth_products_file_and_rejects_others(tmp_path):
    products = tmp_path / "products.csv"
    products.write_text("PROD_ID,PRODUCT_SUBCLASS\nP0000,milk\nP0001,milk\nP0002,bread\n")
    assert read_catalog(products) == {"P0000": "milk", "P0001": "milk", "P0002": "bread"}
    with pytest.raises(ConfigError, match="does not exist"):
        read_catalog(tmp_path / "missing.csv")
    minimal = tmp_path / "tx.csv"
    minimal.write_text("TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY\n")
    with pytest.raises(ConfigError, match="PRODUCT_SUBCLASS"):
        read_catalog(minimal)


def test_the_detector_alerts_a_dropped_need_only_with_the_catalog():
    from lens.anomaly import AnomalyDetector

    stopped = ROUTINE + [("milk_a", "bread_a")] * 4
    routine = ROUTINE + ROUTINE[:4]

    def alerts(config):
        detector = AnomalyDetector(config)
        flagged = []
        for i in range(31):  # 30 routine customers, then the one who stopped
            customer, sessions = (f"c{i}", routine) if i < 30 else ("changed", stopped)
            result = detector.observe(
                customer_id=customer, cluster=0, predicted=sessions[-1], ranking=(),
                observed=sessions[-1], recent=(), sessions=sessions, event_time=0,
                session_index=len(sessions), times=[DAY * d for d in every(2, 10)],
            )
            flagged += [result.alert.customer_id] if result.alert else []
        return flagged

    assert alerts(AnomalyConfig(min_history=30)) == []
    assert alerts(AnomalyConfig(min_history=30, categories=CATALOG)) == ["changed"]
