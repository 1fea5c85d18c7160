"""What Algorithm 1's level costs per scored session, with and without the product catalog.

    .venv/bin/python bench/anomaly_level.py [--sessions 50] [--repeats 3]
    .venv/bin/python bench/anomaly_level.py --data ../shared/data/ta_feng.csv.zip \
        --catalog ../shared/data/ta_feng.csv.zip

The worker computes ``lens.anomaly.sustained_level`` once per closed session over the
customer's kept sessions (at most 50). Without ``--data``, a dense customer: ``--sessions``
sessions of 8 products each, drawn from 400 products in 40 categories (every category bought
in about a fifth of the sessions), a session every ~3 days. With ``--data`` (a transactions file
``lens`` reads) and ``--catalog`` (product -> category, ``lens.anomaly.read_catalog``), real
customers instead: the level of every session from a customer's 7th on, over at most the 50
sessions before it. The level is timed without the catalog (product novelty and dA) and with it
(plus the need-level signals of ``lens.anomaly.needs``), with the catalog's need intervals too
(fitted on ``--data``; for the dense customer, its categories' own rhythm) and, where the
catalog has departments (the dense customer's 40 categories in 8), with them as well, side by
side, best of ``--repeats``.
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lens.anomaly import (  # noqa: E402
    AnomalyConfig,
    fit_need_intervals,
    read_catalog,
    read_departments,
    sustained_level,
)
from lens.stream.event_time import as_utc, from_datetime  # noqa: E402
from lens.stream.sessionizer import SessionizerConfig  # noqa: E402

DAY = 86_400_000_000  # microseconds
KEPT = SessionizerConfig().max_sessions  # sessions the worker keeps per customer
# the first session with a level: the novelty window after the established sessions
FIRST_SCORED = AnomalyConfig().novelty_window + AnomalyConfig().established

Level = tuple[list[list[str]], list[int]]  # one customer's kept sessions' products and times


# levels, catalog, intervals, departments (None when the catalog has none)
Customers = tuple[list[Level], dict[str, str], dict[str, float], dict[str, str] | None]


def dense_customer(sessions: int, rng: random.Random) -> Customers:
    catalog = {f"p{i}": f"c{i % 40}" for i in range(400)}
    products = [[f"p{rng.randrange(400)}" for _ in range(8)] for _ in range(sessions)]
    times = [int((3.1 * i + rng.random()) * DAY) for i in range(sessions)]
    # every category in about a fifth of the sessions, ~3.1 days apart
    return ([(products, times)], catalog, {f"c{i}": 5 * 3.1 for i in range(40)},
            {f"c{i}": f"d{i % 8}" for i in range(40)})


def real_customers(data: Path, catalog: Path) -> Customers:
    from lens.data.loaders import load_funnels

    funnels = load_funnels(data).funnels
    categories = read_catalog(catalog)
    levels = []
    for baskets in funnels.values():
        for end in range(FIRST_SCORED, len(baskets) + 1):
            kept = baskets[max(0, end - KEPT):end]
            levels.append(([list(b.items) for b in kept],
                           [from_datetime(as_utc(b.timestamp)) for b in kept]))
    return (levels, categories, fit_need_intervals(funnels.values(), categories),
            read_departments(catalog))


def per_level(config: AnomalyConfig, levels: list[Level], calls: int) -> float:
    """Microseconds per ``sustained_level`` call, over ``calls`` levels at least."""
    rounds = max(1, calls // len(levels))
    started = time.perf_counter()
    for _ in range(rounds):
        for products, times in levels:
            sustained_level([0.3, 0.4, 0.5], products, config, times)
    return (time.perf_counter() - started) / (rounds * len(levels)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=KEPT,
                        help="kept sessions of the dense customer (without --data)")
    parser.add_argument("--data", type=Path, help="transactions of real customers")
    parser.add_argument("--catalog", type=Path, help="their catalog (with --data)")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the best one counts")
    parser.add_argument("--calls", type=int, default=2000, help="levels per run, at least")
    args = parser.parse_args()
    if (args.data is None) != (args.catalog is None):
        parser.error("--data and --catalog go together")
    if args.data is None:
        levels, catalog, intervals, departments = dense_customer(args.sessions, random.Random(1))
        what = f"a dense customer, {args.sessions} sessions"
    else:
        levels, catalog, intervals, departments = real_customers(args.data, args.catalog)
        what = f"{len(levels)} scored sessions of {args.data.name}"
    configs = {"without the catalog": AnomalyConfig(),
               "with the catalog": AnomalyConfig(categories=catalog),
               "with the catalog and its need intervals": AnomalyConfig(
                   categories=catalog, need_intervals=intervals)}
    if departments is not None:
        configs["with the catalog, its need intervals and departments"] = AnomalyConfig(
            categories=catalog, need_intervals=intervals, departments=departments)
    best = {name: min(per_level(config, levels, args.calls) for _ in range(args.repeats))
            for name, config in configs.items()}
    for name, micros in best.items():
        print(f"{name}: {micros:.0f} us per level ({what})")
    print(f"ratio with / without: {best['with the catalog'] / best['without the catalog']:.1f}")


if __name__ == "__main__":
    main()
