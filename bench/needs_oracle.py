"""Algorithm 1 told each customer's true needs: how far could need-level signals go?

    .venv/bin/python bench/needs_oracle.py --seeds 32-79 [--work .run/anomwork] [--out R.json]

An oracle, not a detector LENS could run: for each synthetic world (``worldS`` in ``--work``,
made with ``lens data synth`` where missing, as ``bench/planted_worlds.py`` makes them; no
model is needed) it reads from ground_truth.json what no purchase history says, each customer's
needs before any change (their categories and true periods), and scores every customer's
sessions from the 7th on with

    drop  = the sum, over those needs bought in at least ``min_seen`` sessions so far, of
            max(0, (ln(days since its last purchase / period) - centre) / spread - 1)
            (centre, spread: of ln(interval / period) over the ordinary customers' needs of
            the first five worlds of ``--seeds``)
    new   = over the categories outside those needs (seasonal items aside) bought in the last
            30 days: the sessions beyond the first that bought each, plus 0.3 per category
    level = drop + new

A customer is found when a level above the threshold falls on or after their change day; the
thresholds are the levels' own quantiles over all worlds pooled, and the figure is the best
recall at precision >= 0.8. Variants: every need, the needs bought in 1+, 2+ and 3+ sessions
(3+ is what a customer's own intervals can measure, ``lens.anomaly.needs``' ``min_count``), and
3+ with each need's period replaced by the customer's own mean interval. The gap between the
last and the first says how much of Algorithm 1's shortfall is not knowing the needs
(BENCHMARKS.md).
"""

import argparse
import collections
import datetime as dt
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from planted_detection import planted_changes  # noqa: E402
from planted_worlds import seed_list, synth_world  # noqa: E402

from lens.anomaly import need_sessions, read_catalog  # noqa: E402
from lens.data.loaders import load_funnels  # noqa: E402
from lens.stream.event_time import MICROS_PER_DAY, as_utc, from_datetime  # noqa: E402

FIRST_SCORED = 6  # the 7th session, as Algorithm 1's level
NEW_WINDOW_DAYS = 30.0
TOLERANCE = 1.0
VARIANTS = {  # name -> (needs bought in at least this many sessions, own intervals)
    "every need": (0, False),
    "needs bought 1+ times": (1, False),
    "needs bought 2+ times": (2, False),
    "needs bought 3+ times": (3, False),
    "needs bought 3+ times, own mean interval": (3, True),
}


class World:
    """A world's customers: categories per session, session days and times, true needs."""

    def __init__(self, folder: Path) -> None:
        truth = json.loads((folder / "ground_truth.json").read_text())
        categories = read_catalog(folder / "products.csv")
        self.changes, _ = planted_changes(truth)
        # the needs a customer had from the start (a need added by a change has active_from)
        self.needs = {c["customer_id"]: {n["category"]: n["period_days"] for n in c["needs"]
                                         if "active_from" not in n}
                      for c in truth["customers"]}
        self.customers = {}
        for customer, baskets in load_funnels(folder / "transactions.csv").funnels.items():
            self.customers[customer] = (
                need_sessions([b.items for b in baskets], categories),
                [from_datetime(as_utc(b.timestamp)) / MICROS_PER_DAY for b in baskets],
                [b.timestamp.date() for b in baskets],
            )

    def log_gaps(self) -> list[float]:
        """ln(interval / period) of every need of the customers without a planted change."""
        gaps = []
        for customer, (sessions, days, _) in self.customers.items():
            if customer in self.changes:
                continue
            for category, period in self.needs[customer].items():
                bought = [d for s, d in zip(sessions, days, strict=True) if category in s]
                gaps += [math.log(max(b - a, 0.5) / period) for a, b in zip(bought, bought[1:])]
        return gaps

    def levels(self, centre: float, spread: float, min_seen: int,
               own: bool) -> list[tuple[str, dt.date, float]]:
        out = []
        for customer, (sessions, days, dates) in self.customers.items():
            needs = self.needs[customer]
            for n in range(FIRST_SCORED, len(sessions)):
                now = days[n]
                bought = collections.defaultdict(list)
                for s, d in zip(sessions[: n + 1], days[: n + 1], strict=True):
                    for category in s:
                        bought[category].append(d)
                drop = 0.0
                for category, period in needs.items():
                    times = bought.get(category, [])
                    if len(times) < min_seen:
                        continue
                    if own and len(times) >= 2:
                        period = (times[-1] - times[0]) / (len(times) - 1) or period
                    since = now - (times[-1] if times else days[0])
                    if since > 0:
                        z = (math.log(since / period) - centre) / spread
                        drop += max(0.0, z - TOLERANCE)
                recent = collections.Counter(
                    category for s, d in zip(sessions[: n + 1], days[: n + 1], strict=True)
                    if now - d <= NEW_WINDOW_DAYS for category in s
                    if category not in needs and category != "seasonal")
                new = sum(count - 1 for count in recent.values()) + 0.3 * len(recent)
                out.append((customer, dates[n], drop + new))
        return out


def best_recall(worlds: dict[int, World], scored: dict[int, list]) -> dict:
    changes = {(seed, c): day for seed, w in worlds.items() for c, day in w.changes.items()}
    values = np.array([level for rows in scored.values() for _, _, level in rows])
    best = {"recall": 0.0, "threshold": None, "precision": None, "found": 0, "alerted": 0}
    for threshold in np.unique(np.quantile(values, np.linspace(0.9, 0.9999, 400))):
        alerted = collections.defaultdict(list)
        for seed, rows in scored.items():
            for customer, day, level in rows:
                if level > threshold:
                    alerted[(seed, customer)].append(day)
        found = sum(1 for key, days in alerted.items()
                    if key in changes and max(days) >= changes[key])
        if alerted and found / len(alerted) >= 0.8 and found / len(changes) > best["recall"]:
            best = {"recall": round(found / len(changes), 3), "threshold": float(threshold),
                    "precision": round(found / len(alerted), 3), "found": found,
                    "alerted": len(alerted)}
    return {**best, "planted": len(changes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, required=True,
                        help="world seeds, e.g. 32-79 or 7-9,12")
    parser.add_argument("--work", type=Path, default=REPO / ".run/worlds",
                        help="where the worlds live (bench/planted_worlds.py's --work)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    worlds = {}
    for seed in args.seeds:
        worlds[seed] = World(synth_world(args.work, seed))
    gaps = [g for seed in args.seeds[:5] for g in worlds[seed].log_gaps()]
    centre, spread = float(np.median(gaps)), float(np.std(gaps))
    print(f"ln(interval / period) of ordinary customers' needs: centre {centre:.3f}, "
          f"spread {spread:.3f}")
    results = {}
    for name, (min_seen, own) in VARIANTS.items():
        scored = {seed: w.levels(centre, spread, min_seen, own) for seed, w in worlds.items()}
        results[name] = best_recall(worlds, scored)
        r = results[name]
        print(f"{name}: recall {r['recall']} at precision {r['precision']} ({r['found']} of "
              f"{r['planted']} found, {r['alerted']} alerted)", flush=True)
    if args.out:
        payload = {"seeds": args.seeds, "centre": centre, "spread": spread, "oracle": results}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
