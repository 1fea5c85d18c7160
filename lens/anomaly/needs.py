"""Need-level signals of Algorithm 1's level, over the retailer's product catalog (optional).

A customer's needs are the catalog categories of what they buy (``categories``: product ->
category, e.g. Ta-Feng's PRODUCT_SUBCLASS or the ``products.csv`` of ``lens data synth``, read by
``lens.segments.read_product_subclasses``). Products the catalog does not list are left out.
Over the customer's sessions (categories per session, oldest first, the newest last):

    lapsed    = sum_c w_c * max(0, (now - last_c) / g_c - 1) / max(sum_c w_c, floor * min_c w_c)
                over the categories c bought in at least ``min_count`` sessions: g_c = their
                mean interval in days, w_c = 1 / g_c (their rate), last_c = their last
                purchase, now = the newest session's time: the purchases each regular need
                has missed beyond one usual interval, averaged by rate
    new       = share of the categories of the last ``window`` sessions (``repertoire.
                split_window``) that no earlier session holds and that at least ``repeat`` of
                the window's sessions hold
    discovery = categories first bought in the last ``recent`` sessions minus ``recent`` x the
                mean number first bought per session over the ``reference`` sessions before

Why categories, not products: a need buys its favourite product only some of the time (brand
loyalty), so a product-level repertoire sees a brand switch where a need goes on; the category
stays. A need that stops (``drop_need``: no more baby products) leaves no new product for the
novelty to see, only regular categories that no longer come. Why days rather than sessions for
it: a need's rhythm is its own (milk every 5 days, detergent every 26), so the time since its
last purchase says how overdue it is whatever the number of trips in between, and keeps growing
after the drop, where a window of sessions first has to slide past the change (changes late in
a customer's history were missed that way; BENCHMARKS.md). A need that starts (a new pet) brings
categories the customer never bought, bought again soon (``new``) and, since a whole department
starts at once, several first purchases within a trip or two (``discovery``), where exploration
adds one odd category now and then and a young history discovers at its own, measured pace.
"""

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from lens.anomaly.repertoire import split_window
from lens.errors import ConfigError

__all__ = [
    "discovery_excess",
    "lapsed_needs",
    "need_sessions",
    "new_needs",
    "read_catalog",
]

# several sessions on one day: a category bought in each has no interval to speak of
MIN_INTERVAL_DAYS = 1e-3


def read_catalog(path: str | Path) -> dict[str, str]:
    """product -> category of a catalog file (``lens.segments.read_product_subclasses``: a CSV,
    plain or zipped, with PROD_ID or PRODUCT_ID and PRODUCT_SUBCLASS); ConfigError when the file
    is missing or lists no product with a category."""
    from lens.segments.catalog import read_product_subclasses  # pandas: only when configured

    if not Path(path).is_file():
        raise ConfigError(f"anomaly catalog {path} does not exist (LENS_ANOMALY_CATALOG)")
    categories = read_product_subclasses(path)
    if not categories:
        raise ConfigError(
            f"anomaly catalog {path} lists no product with a category: it needs a PROD_ID (or "
            "PRODUCT_ID) and a PRODUCT_SUBCLASS column, e.g. the products.csv of lens data synth"
        )
    return categories


def need_sessions(
    sessions: Sequence[Sequence[str]], categories: Mapping[str, str]
) -> list[frozenset[str]]:
    """The categories of each session's products (oldest first); unlisted products left out."""
    return [frozenset(categories[p] for p in products if p in categories) for products in sessions]


def lapsed_needs(
    needs: Sequence[Collection[str]],
    days: Sequence[float],
    *,
    min_count: int = 4,
    floor: float = 2.0,
) -> float:
    """How far the customer's regular categories are overdue at the last session: the mean, over
    the categories of ``needs`` (categories per session, oldest first) bought in at least
    ``min_count`` sessions, of the purchases missed beyond one usual interval, weighted by each
    category's rate; ``days`` are the sessions' times in days (same order). 0.0 without such a
    category. The denominator is at least ``floor`` times the slowest such category's rate."""
    if len(needs) != len(days):
        raise ValueError(f"{len(needs)} sessions but {len(days)} times")
    purchases: dict[str, list[float]] = {}
    for categories, day in zip(needs, days, strict=True):
        for category in categories:
            purchases.setdefault(category, []).append(day)
    now = days[-1] if days else 0.0
    missed, rates = 0.0, []
    for times in purchases.values():
        if len(times) < min_count:
            continue
        interval = max((times[-1] - times[0]) / (len(times) - 1), MIN_INTERVAL_DAYS)
        rates.append(1.0 / interval)
        missed += max(0.0, (now - times[-1]) / interval - 1.0) / interval
    if not rates:
        return 0.0
    return missed / max(sum(rates), floor * min(rates))


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


def new_needs(
    needs: Sequence[Collection[str]], *, window: int, established: int, repeat: int = 2
) -> float | None:
    """Share of the distinct categories of the last ``window`` sessions of ``needs`` that no
    earlier session holds and at least ``repeat`` sessions of the window hold; None when fewer
    than ``established`` sessions come before the window, 0.0 when the window holds none."""
    parts = split_window(needs, window, established)
    if parts is None:
        return None
    before, recent = parts
    known = {c for session in before for c in session}
    seen = Counter(c for session in recent for c in set(session))
    if not seen:
        return 0.0
    return sum(1 for c, k in seen.items() if c not in known and k >= repeat) / len(seen)
