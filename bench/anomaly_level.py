"""What Algorithm 1's level costs per scored session, with and without the product catalog.

    .venv/bin/python bench/anomaly_level.py [--sessions 50] [--repeats 3]

The worker computes ``lens.anomaly.sustained_level`` once per closed session over the
customer's kept sessions (at most 50). A customer here has ``--sessions`` sessions of 8 products
each, drawn from 400 products in 40 categories, a session every ~3 days; the level is timed
without the catalog (product novelty and dA) and with it (plus the need-level signals of
``lens.anomaly.needs``), side by side, best of ``--repeats`` runs.
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lens.anomaly import AnomalyConfig, sustained_level  # noqa: E402

DAY = 86_400_000_000  # microseconds


def per_level(config: AnomalyConfig, sessions, times, calls: int) -> float:
    """Microseconds per ``sustained_level`` call."""
    started = time.perf_counter()
    for _ in range(calls):
        sustained_level([0.3, 0.4, 0.5], sessions, config, times)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50, help="kept sessions of the customer")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the best one counts")
    parser.add_argument("--calls", type=int, default=2000, help="levels per run")
    args = parser.parse_args()
    rng = random.Random(1)
    catalog = {f"p{i}": f"c{i % 40}" for i in range(400)}
    sessions = [[f"p{rng.randrange(400)}" for _ in range(8)] for _ in range(args.sessions)]
    times = [int((3.1 * i + rng.random()) * DAY) for i in range(args.sessions)]
    configs = {"without the catalog": AnomalyConfig(),
               "with the catalog": AnomalyConfig(categories=catalog)}
    best = {name: min(per_level(config, sessions, times, args.calls)
                      for _ in range(args.repeats)) for name, config in configs.items()}
    for name, micros in best.items():
        print(f"{name}: {micros:.0f} us per level ({args.sessions} sessions)")
    print(f"ratio with / without: {best['with the catalog'] / best['without the catalog']:.1f}")


if __name__ == "__main__":
    main()
