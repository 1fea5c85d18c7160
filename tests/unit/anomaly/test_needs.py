"""Need-level signals of Algorithm 1 over a product catalog (``lens.anomaly.needs``)."""

import datetime as dt
import math

import pytest

from lens.anomaly import AnomalyConfig, sustained_level
from lens.anomaly.needs import (
    INTERVAL_PRIOR_WEIGHT,
    PACE_PRIOR_WEIGHT,
    PRIOR_SPREAD,
    PRIOR_WEIGHT,
    discovery_excess,
    first_purchases,
    fit_need_intervals,
    need_sessions,
    new_department_purchases,
    overdue_needs,
    purchase_days,
    read_catalog,
    read_departments,
    read_need_intervals,
    write_need_intervals,
)
from lens.data.basket import Basket
from lens.errors import ConfigError

CATALOG = {
    "milk_a": "milk", "milk_b": "milk",
    "bread_a": "bread", "bread_b": "bread",
    "diaper_a": "diapers", "diaper_b": "diapers",
    "food_a": "baby_food",
    "cat_a": "pet_food", "litter_a": "cat_litter",
    "beer_a": "beer",
}
DEPARTMENTS = {
    "milk": "dairy", "bread": "bakery", "diapers": "baby", "baby_food": "baby",
    "pet_food": "pets", "cat_litter": "pets", "beer": "alcohol",
}
# Six sessions of a young family: milk, bread, diapers and baby food every time.
ROUTINE = [("milk_a", "bread_a", "diaper_a", "food_a")] * 6
SPLIT = {"window": 4, "established": 3}
DAY = 86_400_000_000  # microseconds


def needs(sessions):
    return need_sessions(sessions, CATALOG)


def history(sessions, days):
    return purchase_days(needs(sessions), days)


def every(days, count, start=0.0):
    """Session times ``days`` apart, in days."""
    return [start + days * i for i in range(count)]


def test_need_sessions_map_products_to_categories_and_leave_unlisted_ones_out():
    assert needs([("milk_a", "milk_b", "unknown"), ()]) == [frozenset({"milk"}), frozenset()]


def clockwork_spread(intervals: int) -> float:
    """The spread of a customer whose ``intervals`` intervals all equal their category's mean:
    the prior alone, diluted by them."""
    return math.sqrt(PRIOR_WEIGHT * PRIOR_SPREAD**2 / (PRIOR_WEIGHT + intervals))


def test_dropped_categories_are_overdue_in_units_of_the_customers_own_regularity():
    stopped = ROUTINE + [("milk_a", "bread_a")] * 4  # no more baby products
    # every 2 days: baby categories last on day 10 (5 intervals each), milk and bread on day 18
    # (9 each); on day 18 each baby category is 8 days late on a 2-day interval
    spread = clockwork_spread(5 + 5 + 9 + 9)
    late = math.log(8 / 2) / spread - 2.0
    assert overdue_needs(history(stopped, every(2, 10))) == pytest.approx(2 * late)
    # summed, not averaged: a whole department that stops weighs more than one category
    one_dropped = ROUTINE + [("milk_a", "bread_a", "diaper_a")] * 4
    assert 0 < overdue_needs(history(one_dropped, every(2, 10))) < overdue_needs(
        history(stopped, every(2, 10)))
    # the same sessions 4 days apart: intervals and lateness double, the same overdue
    assert overdue_needs(history(stopped, every(4, 10))) == pytest.approx(2 * late)
    assert overdue_needs(history(ROUTINE + ROUTINE[:4], every(2, 10))) == 0.0
    # days, not trips: two more trips on the last day, without those categories, change nothing
    assert overdue_needs(history(stopped + [("beer_a",)] * 2, every(2, 10) + [18, 18])) == (
        pytest.approx(2 * late))
    with pytest.raises(ValueError, match="times"):
        overdue_needs(history(stopped, every(2, 9)))


def test_the_same_gap_is_less_overdue_for_a_customer_who_buys_on_and_off():
    # milk (and the unlisted rest) on alternating 1- and 3-day gaps, mean 2, then 8 days of none
    sessions = [("milk_a",)] * 9 + [("unlisted",)]
    steady = [2.0 * i for i in range(9)] + [24.0]
    jittery = [0, 1, 4, 5, 8, 9, 12, 13, 16, 24.0]
    steady_late = overdue_needs(history(sessions, steady))
    assert steady_late > overdue_needs(history(sessions, jittery)) > 0
    # the jittery spread: four gaps of half and four of 1.5 times the mean, with the prior
    spread = math.sqrt((PRIOR_WEIGHT * PRIOR_SPREAD**2
                        + 4 * math.log(0.5) ** 2 + 4 * math.log(1.5) ** 2) / (PRIOR_WEIGHT + 8))
    assert overdue_needs(history(sessions, jittery)) == pytest.approx(
        math.log(8 / 2) / spread - 2.0)
    # a gap within the tolerance: 3 days since on a 2-day interval, ln 1.5 / spread = 1.87 < 2
    assert math.log(1.5) / clockwork_spread(8) < 2
    assert overdue_needs(history(sessions, [*steady[:-1], 19.0])) == 0.0
    # bought in fewer than min_count sessions: no regular need to be late
    assert overdue_needs(history(sessions, steady), min_count=10) == 0.0


def test_with_typical_intervals_a_need_bought_only_twice_can_be_overdue():
    # milk every 2 days over 10 sessions; diapers in the first two only (days 0 and 2)
    sessions = [("milk_a", "diaper_a")] * 2 + [("milk_a",)] * 8
    bought_twice = history(sessions, every(2, 10))
    assert overdue_needs(bought_twice, tolerance=1.5) == 0.0  # too few purchases of their own
    # the population buys diapers every 2 days too: 16 days since, on a 2-day interval; milk,
    # which the table does not list, is measured on the customer's own purchases as before
    late = math.log(16 / 2) / clockwork_spread(9 + 1) - 1.5
    assert overdue_needs(bought_twice, tolerance=1.5, need_intervals={"diapers": 2.0}) == (
        pytest.approx(late))
    # the same customer after their second diaper purchase: nothing late yet
    assert overdue_needs(history(sessions[:2], every(2, 2)), tolerance=1.5,
                         need_intervals={"diapers": 2.0}) == 0.0


def test_two_sessions_hours_apart_do_not_hide_a_dropped_need():
    # milk weekly to day 56, diapers weekly until day 21; once, bread in two sessions 2 h apart
    weekly = [("milk_a", "diaper_a")] * 4 + [("milk_a",)] * 5
    days = every(7, 9, start=0.0)
    typical = {"milk": 7.0, "diapers": 7.0, "bread": 4.0}
    alone = overdue_needs(history(weekly, days), tolerance=1.5, need_intervals=typical)
    bread = [*weekly[:5], ("bread_a",), ("bread_a",), *weekly[5:]]
    with_bread = overdue_needs(history(bread, [*days[:5], 30.0, 30.0 + 2 / 24, *days[5:]]),
                               tolerance=1.5, need_intervals=typical)
    assert alone > 3
    assert with_bread > 0.8 * alone  # bread late too; the diapers still count


def test_the_typical_interval_is_taken_at_the_customers_pace_and_shrunk_with_their_own():
    # milk every 4 days where the population buys it every 2: a customer at half the pace;
    # diapers twice, 4 days apart, then 24 days without them at day 28
    sessions = [("milk_a", "diaper_a")] * 2 + [("milk_a",)] * 6
    purchases = history(sessions, every(4, 8))
    typical = {"milk": 2.0, "diapers": 2.0}
    pace = math.log(4 / 2) / (1 + PACE_PRIOR_WEIGHT)
    milk = (7 * math.log(4) + INTERVAL_PRIOR_WEIGHT * (math.log(2) + pace)) / (
        7 + INTERVAL_PRIOR_WEIGHT)
    diapers = (1 * math.log(4) + INTERVAL_PRIOR_WEIGHT * (math.log(2) + pace)) / (
        1 + INTERVAL_PRIOR_WEIGHT)
    spread = math.sqrt((PRIOR_WEIGHT * PRIOR_SPREAD**2 + 7 * (math.log(4) - milk) ** 2
                        + (math.log(4) - diapers) ** 2) / (PRIOR_WEIGHT + 8))
    expected = max(0.0, (math.log(24) - diapers) / spread - 1.5)  # milk was bought today
    assert expected > 0
    assert overdue_needs(purchases, tolerance=1.5, need_intervals=typical) == (
        pytest.approx(expected))
    # two purchases within a day say nothing of a rhythm: a listed category's gap counts as a
    # day, in its interval and in the spread alike; milk, not listed, keeps its own gaps
    sessions = [("milk_a", "diaper_a")] * 2 + [("milk_a",)] * 8
    days = [0.0, 0.5, *every(2, 8, start=2.0)]
    one_day = math.log(1.0)  # not ln 0.5
    diapers_interval = (one_day + INTERVAL_PRIOR_WEIGHT * math.log(2)) / (
        1 + INTERVAL_PRIOR_WEIGHT)
    milk_interval = math.log(16 / 9)
    deviations = ([one_day - diapers_interval, math.log(0.5) - milk_interval,
                   math.log(1.5) - milk_interval] + [math.log(2) - milk_interval] * 7)
    spread = math.sqrt((PRIOR_WEIGHT * PRIOR_SPREAD**2 + sum(d * d for d in deviations))
                       / (PRIOR_WEIGHT + len(deviations)))
    late = overdue_needs(history(sessions, days), tolerance=1.5, need_intervals={"diapers": 2.0})
    assert late == pytest.approx((math.log(15.5) - diapers_interval) / spread - 1.5)
    # a population that buys both every 4 days, as this customer does: less late
    assert overdue_needs(purchases, tolerance=1.5, need_intervals={"milk": 4.0, "diapers": 4.0}) < (
        overdue_needs(purchases, tolerance=1.5, need_intervals=typical))


def basket(customer, day, *products):
    return Basket(customer_id=customer, basket_id=f"{customer}-{day}", store_id="S1",
                  timestamp=dt.datetime(2026, 3, 1, 10) + dt.timedelta(days=day),
                  items=products, quantities=(1.0,) * len(products),
                  amounts=(1.0,) * len(products))


def test_need_intervals_are_the_median_of_the_customers_mean_intervals():
    # customer ck buys milk every k days (k = 1..5, 4 sessions each), and beer with it if k < 5
    funnels = {
        f"c{k}": [basket(f"c{k}", k * i, "milk_a", *(["beer_a"] if k < 5 else []))
                  for i in range(4)]
        for k in range(1, 6)
    }
    # two sessions give an interval, but too few to measure the customer's own
    funnels["c6"] = [basket("c6", 0, "milk_a"), basket("c6", 30, "milk_a")]
    funnels["c7"] = []
    intervals = fit_need_intervals(funnels.values(), CATALOG)
    assert intervals == {"milk": pytest.approx(3.0)}  # beer: 4 customers, fewer than 5
    assert fit_need_intervals(funnels.values(), CATALOG, min_customers=4) == {
        "beer": pytest.approx(2.5), "milk": pytest.approx(3.0)}


def test_need_intervals_files_round_trip_and_bad_ones_are_refused(tmp_path):
    path = write_need_intervals({"milk": 3.25, "diapers": 12.0}, tmp_path / "n" / "i.json",
                                customers=40)
    assert read_need_intervals(path) == {"milk": 3.25, "diapers": 12.0}
    with pytest.raises(ConfigError, match="cannot read"):
        read_need_intervals(tmp_path / "missing.json")
    for text, message in (("[1, 2]", "not a need-intervals file"),
                          ('{"format": "lens.anomaly.need_intervals", "days": {}}', "one at least"),
                          ('{"format": "lens.anomaly.clusters"}', "not a need-intervals file"),
                          ('{"format": "lens.anomaly.need_intervals", "days": {"milk": 0}}',
                           "positive"),
                          ('{"format": "lens.anomaly.need_intervals", "days": {"milk": "3"}}',
                           "positive"),
                          ('{"format": "lens.anomaly.need_intervals", "days": {"milk": true}}',
                           "positive")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            read_need_intervals(path)


def test_need_intervals_need_the_catalog_and_set_their_own_tolerance():
    with pytest.raises(ConfigError, match="set the catalog too"):
        AnomalyConfig(need_intervals={"milk": 2.0})
    for bad in ({"milk": 0.0}, {"milk": -3.0}, {"milk": float("nan")}, {"milk": float("inf")}):
        with pytest.raises(ConfigError, match="positive days"):
            AnomalyConfig(categories=CATALOG, need_intervals=bad)
    for foreign in ({}, {"detergent": 26.0}):  # fitted with another catalog
        with pytest.raises(ConfigError, match="none of the catalog's categories"):
            AnomalyConfig(categories=CATALOG, need_intervals=foreign)
    assert AnomalyConfig(categories=CATALOG).overdue_tolerance_used == 2.0
    with_intervals = AnomalyConfig(categories=CATALOG, need_intervals={"milk": 2.0})
    assert with_intervals.overdue_tolerance_used == 1.5
    assert AnomalyConfig(categories=CATALOG, need_intervals={"milk": 2.0},
                         overdue_tolerance=3.0).overdue_tolerance_used == 3.0
    # the level passes the table on: a need bought twice counts only with it
    sessions = [("milk_a", "bread_a", "diaper_a")] * 2 + [("milk_a", "bread_a")] * 8
    times = [DAY * d for d in every(2, 10)]
    without = sustained_level([0.0], sessions, AnomalyConfig(categories=CATALOG), times)
    intervals = AnomalyConfig(categories=CATALOG, need_intervals={"diapers": 2.0})
    assert sustained_level([0.0], sessions, intervals, times) == pytest.approx(
        without + 0.3 * overdue_needs(history(sessions, every(2, 10)), tolerance=1.5,
                                      need_intervals={"diapers": 2.0}))


def test_a_brand_switch_within_a_category_is_no_dropped_need_nor_a_new_one():
    switched = ROUTINE + [("milk_b", "bread_b", "diaper_b", "food_a")] * 4
    assert overdue_needs(history(switched, every(2, 10))) == 0.0
    assert first_purchases(history(switched, every(4, 10))) == 0.0
    assert discovery_excess(needs(switched)) == 0.0
    config = AnomalyConfig(categories=CATALOG)
    # the product-level novelty sees 3 of 4 products new; the need level adds nothing to it
    without = sustained_level([0.0], switched, AnomalyConfig())
    times = [DAY * d for d in every(2, 10)]
    assert sustained_level([0.0], switched, config, times) == pytest.approx(without)


def test_categories_long_gone_without_and_first_bought_lately_are_first_purchases():
    # milk and bread every 3 days from day 0 to 30 (usual interval 3), then a pet arrives
    routine = [("milk_a", "bread_a")] * 11
    days = every(3, 11)
    pet = routine + [("milk_a", "cat_a"), ("milk_a", "litter_a"), ("milk_a", "cat_a")]
    pet_days = days + [33, 36, 39]
    # pet food: 33 days without it, 11 usual intervals, capped at 2, bought twice: 2; cat litter
    # bought once, 3 days ago, not yet due again: a quarter of its 2 (too early to tell)
    assert first_purchases(history(pet, pet_days)) == pytest.approx(2 + 0.25 * 2)
    # exploration: beer once on day 33, not again within the usual 3 days: nothing
    explored = routine + [("milk_a", "beer_a"), ("milk_a",), ("milk_a",)]
    assert first_purchases(history(explored, pet_days)) == 0.0
    # a young history (seen from day 20 only) discovers needs it always had: nothing
    young = [d + 20 for d in every(1.3, 11)]
    assert first_purchases(history(pet, young + [34.0, 35.0, 36.0])) == 0.0
    # first bought longer than the window ago: no longer counted
    assert first_purchases(history(pet, pet_days), window_days=2) == 0.0
    # no category measured: the usual interval is the default 14 days
    sparse = [("beer_a",)] + [("unlisted",)] * 7 + [("cat_a",)] * 2
    assert first_purchases(history(sparse, every(3, 10))) == pytest.approx(24 / 14)


def test_a_burst_of_first_purchases_beyond_the_customers_pace_is_a_discovery():
    pets = ROUTINE + [("milk_a", "cat_a", "litter_a")]
    # 2 categories first bought in the last 2 sessions, none in the 3 before them
    assert discovery_excess(needs(pets)) == 2.0
    # a young history discovering one category a session: the burst is its usual pace
    young = [("milk_a",), ("bread_a",), ("diaper_a",), ("food_a",), ("cat_a",), ("beer_a",)]
    assert discovery_excess(needs(young)) == pytest.approx(2 - 2 * 3 / 3)
    assert discovery_excess(needs(young[:5])) is None  # too few sessions


def test_the_purchases_of_a_department_started_with_several_of_its_categories_count():
    # milk and bread every 3 days from day 0 to 30, then a pet: food and litter
    routine = [("milk_a", "bread_a")] * 11
    days = every(3, 14)
    pet = routine + [("milk_a", "cat_a"), ("bread_a",), ("milk_a", "litter_a")]
    assert new_department_purchases(needs(pet), DEPARTMENTS, history(pet, days)) == 2
    assert new_department_purchases(needs(pet), DEPARTMENTS, history(pet, days),
                                     min_categories=3) == 0
    # a need that goes on counts each of its purchases: food in 3 trips, litter in 2
    kept = routine + [("milk_a", "cat_a"), ("cat_a", "litter_a"), ("cat_a", "litter_a", "milk_a")]
    assert new_department_purchases(needs(kept), DEPARTMENTS, history(kept, days)) == 5
    # the window holds the last 4 sessions: a pet started 5 sessions ago is no longer new
    later = pet + [("milk_a",)] * 2
    assert new_department_purchases(needs(later), DEPARTMENTS, history(later, every(3, 16))) == 0
    # exploration: one odd category of a department, or a category of a department they buy
    beer = routine + [("milk_a", "beer_a"), ("bread_a", "beer_a"), ("milk_a",)]
    assert new_department_purchases(needs(beer), DEPARTMENTS, history(beer, days)) == 0
    baby = [("milk_a", "diaper_a")] * 11 + [("food_a", "milk_a")] * 3
    assert new_department_purchases(needs(baby), DEPARTMENTS, history(baby, days)) == 0
    # a young history (seen for 12 days) still discovers what it always bought
    young = [d / 3 for d in days]
    assert new_department_purchases(needs(pet), DEPARTMENTS, history(pet, young)) == 0
    # categories the departments do not list count for none
    assert new_department_purchases(needs(pet), {"milk": "dairy"}, history(pet, days)) == 0


def test_the_level_adds_the_weighted_new_department_purchases_only_with_the_departments():
    pet = [("milk_a", "bread_a")] * 11 + [("milk_a", "cat_a"), ("bread_a",), ("milk_a", "litter_a")]
    times = [DAY * d for d in every(3, 14)]
    catalog = AnomalyConfig(categories=CATALOG)
    departments = AnomalyConfig(categories=CATALOG, departments=DEPARTMENTS, department_weight=0.7)
    without = sustained_level([0.2], pet, catalog, times)
    assert sustained_level([0.2], pet, departments, times) == pytest.approx(without + 0.7 * 2)
    with pytest.raises(ConfigError, match="categories"):
        AnomalyConfig(departments=DEPARTMENTS)
    for bad in ({"department_weight": -0.1}, {"department_min_categories": 0}):
        with pytest.raises(ConfigError):
            AnomalyConfig(categories=CATALOG, departments=DEPARTMENTS, **bad)


def test_read_departments_reads_a_synth_catalogs_department_column(tmp_path):
    products = tmp_path / "products.csv"
    products.write_text("PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT\nP0000,milk,dairy\n"
                        "P0001,milk,dairy\nP0002,pet_food,pets\n")
    assert read_departments(products) == {"milk": "dairy", "pet_food": "pets"}
    products.write_text("PROD_ID,PRODUCT_SUBCLASS\nP0000,milk\n")  # Ta-Feng has no departments
    assert read_departments(products) is None


def test_the_settings_catalog_gives_the_departments_when_it_has_them(tmp_path):
    from lens.settings import LensSettings

    products = tmp_path / "products.csv"
    products.write_text("PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT\nP0000,milk,dairy\n")
    settings = LensSettings(anomaly_catalog=products, anomaly_department_weight=0.4)
    config = AnomalyConfig.from_settings(settings)
    assert config.departments == {"milk": "dairy"} and config.department_weight == 0.4
    products.write_text("PROD_ID,PRODUCT_SUBCLASS\nP0000,milk\n")
    assert AnomalyConfig.from_settings(settings).departments is None


def test_short_histories_have_no_need_signals():
    assert sustained_level([0.2], ROUTINE, AnomalyConfig(categories=CATALOG)) is None


def test_the_level_adds_the_weighted_need_signals_only_with_a_catalog():
    stopped = ROUTINE + [("milk_a", "bread_a")] * 4
    times = [DAY * d for d in every(2, 10)]
    plain = sustained_level([0.2], stopped, AnomalyConfig())
    assert plain == pytest.approx(0.15 * 0.2)  # nothing new at product level
    with_catalog = AnomalyConfig(categories=CATALOG, drop_weight=2.0, overdue_tolerance=1.0)
    overdue = overdue_needs(history(stopped, every(2, 10)), tolerance=1.0)
    assert overdue > 0
    assert sustained_level([0.2], stopped, with_catalog, times) == pytest.approx(
        plain + 2.0 * overdue)
    weightless = AnomalyConfig(categories=CATALOG, drop_weight=0.0, new_weight=0.0,
                               discovery_weight=0.0)
    assert sustained_level([0.2], stopped, weightless, times) == pytest.approx(plain)
    with pytest.raises(ValueError, match="times"):
        sustained_level([0.2], stopped, with_catalog)


def test_need_settings_are_checked():
    for bad in ({"drop_weight": -1.0}, {"new_weight": float("nan")},
                {"overdue_tolerance": -0.1}, {"new_tolerance": float("inf")},
                {"discovery_weight": float("inf")}, {"new_window_days": -1.0},
                {"need_min_count": 1}, {"discovery_reference": 0}):
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
