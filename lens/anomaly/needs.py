"""Need-level signals of Algorithm 1's level, over the retailer's product catalog (optional).

A customer's needs are the catalog categories of what they buy (``categories``: product ->
category, e.g. Ta-Feng's PRODUCT_SUBCLASS or the ``products.csv`` of ``lens data synth``, read by
``lens.segments.read_product_subclasses``). Products the catalog does not list are left out.
Over the customer's sessions (categories per session, oldest first, the newest last; times in
days, now = the newest session's):

    overdue   = sum_c max(0, ln((now - last_c) / g_c) / spread - tolerance) over the categories
                c bought in at least ``min_count`` sessions: g_c = their mean interval, last_c
                their last purchase, spread = the customer's standard deviation of
                ln(interval / g_c) (their own regularity): how many of their own spreads each
                regular need is late, beyond the tolerance. With the population's typical
                interval per category (``fit_need_intervals``), every category the table
                knows counts from 2 sessions, and g_c is its mean interval shrunk towards
                the typical one scaled by the customer's pace
    first     = sum_c weight_c * min(cap, (first_c - start) / g) over the categories c first
                bought in the last ``window_days`` (first_c) by a customer seen since ``start``
                at least ``window_days`` before them: g = the customer's usual interval (median
                g_c), weight 1 when c came again, 0 when it did not within g (exploration)
    discovery = categories first bought in the last ``recent`` sessions minus ``recent`` x the
                mean number first bought per session over the ``reference`` sessions before
    departments = with the catalog's departments (``departments``: category -> department):
                the purchases (a category in a session) in the customer's last ``window``
                sessions of the departments none of whose categories they bought before and of
                which those sessions hold ``min_categories`` or more categories, for a customer
                seen ``seen_days`` or more

Why categories, not products: a need buys its favourite product only some of the time (brand
loyalty), so a product-level repertoire sees a brand switch where a need goes on; the category
stays. A need that stops (``drop_need``: no more baby products) leaves no new product for the
novelty to see, only regular categories that no longer come. Why days rather than sessions for
it: a need's rhythm is its own (milk every 5 days, detergent every 26), so the time since its
last purchase says how overdue it is whatever the number of trips in between, and keeps growing
after the drop, where a window of sessions first has to slide past the change (changes late in
a customer's history were missed that way; BENCHMARKS.md). Why in units of the customer's own
spread: a need bought like clockwork is overdue sooner than one bought on and off, and summing
the categories (rather than averaging) lets a whole department that stops add up. A need that
starts (a new pet, a household of one's own) brings categories the customer went without for a
long time, first bought within a few weeks of each other, some bought only every month or two,
so they cannot be asked to repeat (``first``); where exploration adds one odd category now and
then that does not come back, and a young history discovers needs it always had (hence the
customer seen ``window_days`` before). ``discovery`` adds the burst of a department bought in
one or two trips. ``departments`` sees the same start where the catalog says which categories go
together (a new pet: food, litter, treats): a customer who explores buys one odd category of a
department now and then, one who starts a need buys several of it within a few trips, and goes
on buying them (hence the purchases counted, not the departments: a need started in the first
of the window's trips and bought in each since weighs more than two categories tried once).

Why a population's typical intervals: the needs a customer drops are often bought only once or
twice before (a department bought every few weeks), too few for their own interval to say when
one is late; how often everyone else buys the category does (milk every week, detergent every
month), scaled by how fast this customer buys what they buy regularly. On the synthetic worlds
that is most of what separates the level from a detector told each customer's true needs
(BENCHMARKS.md).
"""

import itertools
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lens.errors import ConfigError
from lens.stream.event_time import MICROS_PER_DAY, as_utc, from_datetime

if TYPE_CHECKING:
    from lens.data.basket import Basket

__all__ = [
    "FIT_MIN_COUNT",
    "FIT_MIN_CUSTOMERS",
    "PurchaseDays",
    "discovery_excess",
    "first_purchases",
    "fit_need_intervals",
    "need_sessions",
    "overdue_needs",
    "new_department_purchases",
    "purchase_days",
    "read_catalog",
    "read_departments",
    "read_need_intervals",
    "write_need_intervals",
]

# several sessions on one day: a category bought in each has no interval to speak of
MIN_INTERVAL_DAYS = 1e-3
# a customer's spread of log intervals starts from this, worth PRIOR_WEIGHT intervals: a young
# history's few intervals cannot make every gap look extraordinary
PRIOR_SPREAD, PRIOR_WEIGHT = 0.35, 5
# the usual interval of a customer none of whose categories has come often enough to measure it
DEFAULT_INTERVAL = 14.0
# what the catalog's ``get`` gives the products it does not list, taken out of a session's needs
_UNLISTED = frozenset({None})
# with typical intervals, a category's own mean interval counts as this many intervals against
# the typical one (scaled by the customer's pace), and the pace measured on the customer's
# regular categories against this many at the population's own: chosen on the synthetic
# benchmark's seeds 7-31 (BENCHMARKS.md)
INTERVAL_PRIOR_WEIGHT, PACE_PRIOR_WEIGHT = 2.0, 3.0
# with typical intervals a category counts from its second purchase, so a gap of hours (two
# sessions of one shopping day) would stand for its rhythm: gaps count as a day at least
MIN_SHRUNK_INTERVAL_DAYS = 1.0
# how many spreads late a need may be before it counts: without typical intervals, and with them
# (their shrunk intervals are steadier); chosen with the rest of the level (BENCHMARKS.md)
OVERDUE_TOLERANCE, TYPICAL_OVERDUE_TOLERANCE = 2.0, 1.5
# a category's typical interval: over the customers who bought it in this many sessions, and
# only when there are this many of them
FIT_MIN_COUNT, FIT_MIN_CUSTOMERS = 3, 5
# ``version`` and ``customers`` in the file are provenance: read_need_intervals needs only days
_INTERVALS_FORMAT = "lens.anomaly.need_intervals"


def read_catalog(path: str | Path) -> dict[str, str]:
    """product -> category of a catalog file (``lens.segments.read_product_subclasses``: a CSV,
    plain or zipped, with PROD_ID or PRODUCT_ID and PRODUCT_SUBCLASS); ConfigError when the file
    is missing or lists no product with a category."""
    from lens.segments.catalog import read_product_subclasses  # pandas: only when configured

    if not Path(path).is_file():
        raise ConfigError(f"product catalog {path} does not exist")
    categories = read_product_subclasses(path)
    if not categories:
        raise ConfigError(
            f"anomaly catalog {path} lists no product with a category: it needs a PROD_ID (or "
            "PRODUCT_ID) and a PRODUCT_SUBCLASS column, e.g. the products.csv of lens data synth"
        )
    return categories


def read_departments(path: str | Path) -> dict[str, str] | None:
    """category -> department of a catalog file with a DEPARTMENT column beside its
    PRODUCT_SUBCLASS (``lens.segments.read_category_departments``); None when it has none (e.g.
    Ta-Feng)."""
    from lens.segments.catalog import read_category_departments  # pandas: only when configured

    return read_category_departments(path)


def need_sessions(
    sessions: Sequence[Sequence[str]], categories: Mapping[str, str]
) -> list[frozenset[str]]:
    """The categories of each session's products (oldest first); unlisted products left out."""
    category_of = categories.get
    needs = []
    for products in sessions:
        found = frozenset(map(category_of, products))
        needs.append(found - _UNLISTED if None in found else found)
    return needs


@dataclass(frozen=True)
class PurchaseDays:
    """When a customer bought each category: ``by_category`` maps a category to the days of the
    sessions that bought it (oldest first); ``start`` and ``now`` are the first and the last
    session's days. Built once per scored session (``purchase_days``), read by the signals."""

    by_category: dict[str, list[float]]
    start: float
    now: float


def purchase_days(needs: Sequence[Collection[str]], days: Sequence[float]) -> PurchaseDays:
    """``PurchaseDays`` of ``needs`` (categories per session, oldest first) and ``days`` (the
    sessions' times in days, same order, at least one)."""
    if len(needs) != len(days) or not days:
        raise ValueError(f"{len(needs)} sessions but {len(days)} times")
    by_category: dict[str, list[float]] = defaultdict(list)
    for categories, day in zip(needs, days, strict=True):
        for category in categories:
            by_category[category].append(day)
    return PurchaseDays(dict(by_category), days[0], days[-1])


def _mean_interval(times: Sequence[float]) -> float:
    return max((times[-1] - times[0]) / (len(times) - 1), MIN_INTERVAL_DAYS)


def overdue_needs(
    purchases: PurchaseDays,
    *,
    min_count: int = 3,
    tolerance: float = OVERDUE_TOLERANCE,
    need_intervals: Mapping[str, float] | None = None,
) -> float:
    """How far the customer's regular categories are overdue at the last session, in units of
    the customer's own regularity: the sum of max(0, z - ``tolerance``) with z = ln(days since
    the last purchase / interval) / spread, over the categories bought in at least
    ``min_count`` sessions, their interval being their mean interval. The spread is the
    standard deviation of ln(interval / its category's interval) over those categories, shrunk
    towards PRIOR_SPREAD. 0.0 without such a category.

    With ``need_intervals`` (category -> the population's typical interval in days,
    ``fit_need_intervals``), the categories it lists count from 2 sessions, their gaps at least
    MIN_SHRUNK_INTERVAL_DAYS each, and their interval is their mean gap shrunk towards the
    typical one times the customer's pace (how much slower they buy their regular categories
    than the population, shrunk towards 1), in logs, the typical one weighing
    INTERVAL_PRIOR_WEIGHT gaps. The categories it does not list count as without it."""
    typical = need_intervals or {}
    # plain floats: a customer has a few dozen intervals, too few for numpy's per-call cost
    log = math.log
    regular = []  # (purchase days, their gaps, ln of the category's interval)
    listed = []  # (purchase days, their gaps, mean gap, typical interval) of those listed
    for category, times in purchases.by_category.items():
        if category in typical and len(times) >= 2:
            gaps = [max(later - earlier, MIN_SHRUNK_INTERVAL_DAYS)
                    for earlier, later in itertools.pairwise(times)]
            listed.append((times, gaps, sum(gaps) / len(gaps), typical[category]))
        elif len(times) >= min_count:
            gaps = [max(later - earlier, MIN_INTERVAL_DAYS)
                    for earlier, later in itertools.pairwise(times)]
            regular.append((times, gaps, log(_mean_interval(times))))
    if listed:
        ratios = [log(mean_gap / days) for times, _, mean_gap, days in listed
                  if len(times) >= min_count]
        pace = sum(ratios) / (len(ratios) + PACE_PRIOR_WEIGHT)
        for times, gaps, mean_gap, days in listed:
            own = log(mean_gap)
            prior = log(days) + pace
            regular.append((times, gaps, (len(gaps) * own + INTERVAL_PRIOR_WEIGHT * prior)
                            / (len(gaps) + INTERVAL_PRIOR_WEIGHT)))
    if not regular:
        return 0.0
    squares = 0.0
    intervals = 0
    for _, gaps, log_interval in regular:
        for gap in gaps:
            deviation = log(gap) - log_interval
            squares += deviation * deviation
        intervals += len(gaps)
    spread = math.sqrt((PRIOR_WEIGHT * PRIOR_SPREAD**2 + squares) / (PRIOR_WEIGHT + intervals))
    now = purchases.now
    total = 0.0
    for times, _, log_interval in regular:
        since = now - times[-1]
        if since > 0:
            total += max((log(since) - log_interval) / spread - tolerance, 0.0)
    return total


def fit_need_intervals(
    funnels: Iterable[Sequence["Basket"]],
    categories: Mapping[str, str],
    *,
    min_count: int = FIT_MIN_COUNT,
    min_customers: int = FIT_MIN_CUSTOMERS,
) -> dict[str, float]:
    """Each category's typical interval between purchases, in days (``overdue_needs``'
    ``need_intervals``), over customers' funnels (their baskets, oldest first) and the catalog: the
    median, over the customers who bought the category in ``min_count`` or more sessions, of
    their mean interval. Categories so bought by fewer than ``min_customers`` customers are
    left out (too few to say)."""
    by_category: dict[str, list[float]] = defaultdict(list)
    for funnel in funnels:
        if not funnel:
            continue
        purchases = purchase_days(
            need_sessions([basket.items for basket in funnel], categories),
            [from_datetime(as_utc(basket.timestamp)) / MICROS_PER_DAY for basket in funnel],
        )
        for category, times in purchases.by_category.items():
            if len(times) >= min_count:
                by_category[category].append(_mean_interval(times))
    return {category: statistics.median(means) for category, means in sorted(by_category.items())
            if len(means) >= min_customers}


def write_need_intervals(intervals: Mapping[str, float], path: str | Path, *,
                         customers: int) -> Path:
    """Save ``fit_need_intervals``' table (and how many customers it was fitted on) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": _INTERVALS_FORMAT, "version": 1,
                                "customers": customers, "days": dict(intervals)}, indent=1))
    return path


def read_need_intervals(path: str | Path) -> dict[str, float]:
    """category -> typical interval in days, from a ``write_need_intervals`` file; ConfigError
    when it is missing, not such a file, or holds an interval that is not a positive number."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read need intervals {path} (LENS_ANOMALY_NEED_INTERVALS): "
                          f"{exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != _INTERVALS_FORMAT:
        raise ConfigError(f"{path} is not a need-intervals file (format {_INTERVALS_FORMAT!r}); "
                          "write one with lens data need-intervals")
    days = payload.get("days")
    if not isinstance(days, dict) or not days or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf
        for v in days.values()
    ):
        raise ConfigError(f"{path}: 'days' must map categories (one at least) to a positive "
                          "number of days each")
    return {str(category): float(v) for category, v in days.items()}


def first_purchases(
    purchases: PurchaseDays,
    *,
    window_days: float = 21.0,
    min_count: int = 3,
    one_off_weight: float = 0.25,
    cap: float = 2.0,
) -> float:
    """Categories first bought in the last ``window_days`` by a customer seen for at least
    ``window_days`` before them, each weighted by how long the customer went without it: the
    sum of weight x min(``cap``, days seen before its first purchase / g), g = the median mean
    interval of the customer's categories bought in ``min_count``+ sessions (DEFAULT_INTERVAL
    days without one). Weight 1 when bought in two or more sessions since, 0 when bought once
    and not again within g (a one-off: exploration), ``one_off_weight`` while it is too early to
    tell."""
    start, now = purchases.start, purchases.now
    recent = [t for t in purchases.by_category.values()
              if now - t[0] <= window_days and t[0] - start >= window_days]
    if not recent:
        return 0.0
    intervals = [_mean_interval(t) for t in purchases.by_category.values() if len(t) >= min_count]
    usual = statistics.median(intervals) if intervals else DEFAULT_INTERVAL
    total = 0.0
    for times in recent:
        first = times[0]
        if len(times) >= 2:
            weight = 1.0
        else:
            weight = 0.0 if now - first > usual else one_off_weight
        total += weight * min(cap, (first - start) / usual)
    return total


def discovery_excess(
    needs: Sequence[Collection[str]], *, recent: int = 2, reference: int = 3
) -> float | None:
    """Categories first bought in the last ``recent`` sessions of ``needs`` (categories per
    session, oldest first), beyond the customer's own pace of discovery: minus ``recent`` times
    the mean number first bought per session over the ``reference`` sessions before them; None
    with fewer than ``recent + reference + 1`` sessions."""
    if len(needs) < recent + reference + 1:
        return None
    first: dict[str, int] = {}
    for index, categories in enumerate(needs):
        for category in categories:
            first.setdefault(category, index)
    last = len(needs) - 1
    now = sum(1 for i in first.values() if i > last - recent)
    before = sum(1 for i in first.values() if last - recent - reference < i <= last - recent)
    return now - recent * before / reference


def new_department_purchases(
    needs: Sequence[Collection[str]],
    departments: Mapping[str, str],
    purchases: PurchaseDays,
    *,
    window: int = 4,
    min_categories: int = 2,
    seen_days: float = 21.0,
) -> int:
    """How much the customer bought of the departments they started in their last ``window``
    sessions of ``needs`` (categories per session, oldest first): the purchases (a category in a
    session) of each department none of whose categories (``departments``: category ->
    department) they bought in the sessions before and ``min_categories`` or more of whose
    categories they bought in those ``window``. 0 for a customer seen less than ``seen_days``
    (``purchases``: the same sessions' days), whose whole history is still discovering."""
    if purchases.now - purchases.start < seen_days:
        return 0
    split = max(0, len(needs) - window)
    department_of = departments.get
    before = {department_of(c) for categories in needs[:split] for c in categories}
    started: dict[str, list[str]] = defaultdict(list)
    for categories in needs[split:]:
        for category in categories:
            department = department_of(category)
            if department is not None and department not in before:
                started[department].append(category)
    return sum(len(bought) for bought in started.values() if len(set(bought)) >= min_categories)
