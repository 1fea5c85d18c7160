"""Algorithms 1 and 2 over many synthetic worlds: the planted-case figures of BENCHMARKS.md.

    .venv/bin/python bench/planted_worlds.py --seeds 64-79 [--work .run/worlds] \
        [--out bench/results/planted-worlds-64-79.json]

For each seed, in ``--work``: the world (``lens data synth --customers 300 --days 60 --seed S
--stores 3 --surges 3 --change-fraction 0.05``, folder ``worldS``), a ``small`` LENS model
trained on it (``lens train --config small --split none --epochs 15``, folder ``trainS``) and
that model's prediction before every session (``worldS/answers.pkl``), each made only when
missing, so a second run scores at once (a new world takes about a minute and a half on 2
cores). Every world is then scored as ``bench/planted_detection.py`` scores one, with the
world's product catalog with its departments (``--no-departments``: without the department
term), its need intervals fitted on the world (``--no-need-intervals``: each customer's own
intervals only) and ``--min-history 20``:

- Algorithm 1 at each of ``--thresholds``: planted behaviour changes found (an alert on or
  after the change day) and customers alerted;
- Algorithm 2 at each of ``--min-shortfalls``: planted demand surges found (a stock-out alert
  within a day of the surge, and how many from a prediction made before the day) and alerted
  cells truly short.

Prints the totals (recall, precision) and writes every world's counts with ``--out``.
"""

import argparse
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from planted_detection import (  # noqa: E402
    anomalies,
    planted_changes,
    predict_every_session,
    stockouts,
)

from lens.anomaly import (  # noqa: E402
    AnomalyConfig,
    fit_need_intervals,
    read_catalog,
    read_departments,
)
from lens.data.loaders import load_funnels  # noqa: E402
from lens.stockout import StockoutConfig  # noqa: E402

SYNTH = ("--customers", "300", "--days", "60", "--stores", "3", "--surges", "3",
         "--change-fraction", "0.05")
TRAIN = ("--config", "small", "--split", "none", "--epochs", "15")


def seed_list(text: str) -> list[int]:
    """``7-9,12`` -> [7, 8, 9, 12]."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += range(int(first), int(last or first) + 1)
    return seeds


def lens(*args: str, log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "lens.cli.main", *args], stdout=out,
                              stderr=subprocess.STDOUT, cwd=REPO)
    if done.returncode:
        sys.exit(f"lens {args[0]} failed (exit {done.returncode}); see {log}")


def synth_world(work: Path, seed: int) -> Path:
    """The world folder of ``seed`` (``lens data synth`` with SYNTH), made where missing."""
    world = work / f"world{seed}"
    if not (world / "ground_truth.json").is_file():
        lens("data", "synth", *SYNTH, "--seed", str(seed), "--out", str(world),
             log=work / f"synth{seed}.log")
    return world


def prepare(work: Path, seed: int) -> Path:
    """The world folder of ``seed``, with its model's answers, made where missing."""
    world, train = synth_world(work, seed), work / f"train{seed}"
    if not (train / "DONE").is_file():
        lens("train", "--data", str(world / "transactions.csv"), *TRAIN, "--out", str(train),
             log=work / f"train{seed}.log")
        (train / "DONE").touch()
    answers = world / "answers.pkl"
    if not answers.is_file():
        from lens.cli.models import resolve_model

        funnels = load_funnels(world / "transactions.csv").funnels
        with answers.open("wb") as out:
            pickle.dump(predict_every_session(resolve_model(str(train)), funnels), out)
    return world


def score(world: Path, thresholds: list[float], shortfalls: list[float],
          no_need_intervals: bool, no_departments: bool) -> dict:
    funnels = load_funnels(world / "transactions.csv").funnels
    with (world / "answers.pkl").open("rb") as cached:
        answers = pickle.load(cached)
    truth = json.loads((world / "ground_truth.json").read_text())
    changes, kinds = planted_changes(truth)
    categories = read_catalog(world / "products.csv")
    config = AnomalyConfig(
        min_history=20, categories=categories,
        need_intervals=None if no_need_intervals else fit_need_intervals(funnels.values(),
                                                                         categories),
        departments=None if no_departments else read_departments(world / "products.csv"),
    )
    anomaly = anomalies(funnels, answers, changes, kinds, config, thresholds)
    result = {"planted_changes": anomaly["planted"], "planted_by_kind": anomaly["planted_by_kind"],
              "anomaly": {}, "stockout": {}}
    for threshold in thresholds:
        row = anomaly["by_threshold"][threshold]
        result["anomaly"][str(threshold)] = {
            "found": row["planted_found"], "alerted": row["alerted_customers"],
            "found_by_kind": row["found_by_kind"]}
    for shortfall in shortfalls:
        found = stockouts(funnels, answers, world, truth, StockoutConfig(min_shortfall=shortfall))
        found.pop("cells")
        result["stockout"][str(shortfall)] = found
    return result


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, required=True,
                        help="world seeds, e.g. 64-79 or 7-9,12")
    parser.add_argument("--work", type=Path, default=REPO / ".run/worlds",
                        help="where the worlds, models and cached predictions live")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[3.0, 3.5, 4.0, 4.5],
                        help="Algorithm 1 thresholds (dB)")
    parser.add_argument("--min-shortfalls", type=float, nargs="+",
                        default=[0.0, StockoutConfig().min_shortfall],
                        help="Algorithm 2 min_shortfall values (units)")
    parser.add_argument("--no-need-intervals", action="store_true",
                        help="each customer's own intervals only (by default the categories' "
                        "typical intervals are fitted on each world)")
    parser.add_argument("--no-departments", action="store_true",
                        help="without the department term (by default the catalog's DEPARTMENT "
                        "column groups its categories)")
    parser.add_argument("--out", type=Path, default=None, help="also write the counts as JSON")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    worlds = {}
    started = time.monotonic()
    for done, seed in enumerate(args.seeds, start=1):
        worlds[seed] = score(prepare(args.work, seed), args.thresholds, args.min_shortfalls,
                             args.no_need_intervals, args.no_departments)
        print(f"[{done}/{len(args.seeds)}] seed {seed} scored "
              f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    planted = sum(w["planted_changes"] for w in worlds.values())
    print(f"Algorithm 1 over {len(worlds)} worlds, {planted} planted behaviour changes:")
    for threshold in map(str, args.thresholds):
        found = sum(w["anomaly"][threshold]["found"] for w in worlds.values())
        alerted = sum(w["anomaly"][threshold]["alerted"] for w in worlds.values())
        print(f"  threshold {threshold}: {found} found, {alerted} customers alerted "
              f"(recall {ratio(found, planted)}, precision {ratio(found, alerted)})")
    surges = sum(w["stockout"][str(args.min_shortfalls[0])]["planted"] for w in worlds.values())
    print(f"Algorithm 2 over {len(worlds)} worlds, {surges} planted demand surges:")
    for shortfall in map(str, args.min_shortfalls):
        rows = [w["stockout"][shortfall] for w in worlds.values()]
        found, ahead = (sum(r[k] for r in rows) for k in ("planted_found", "planted_found_ahead"))
        cells, short = (sum(r[k] for r in rows)
                        for k in ("alerted_cells", "alerted_cells_truly_short"))
        print(f"  min_shortfall {shortfall}: {found} found ({ahead} ahead of the day), {short} of "
              f"{cells} alerted cells truly short (recall {ratio(found, surges)}, "
              f"precision {ratio(short, cells)})")
    if args.out:
        payload = {"seeds": args.seeds, "need_intervals": not args.no_need_intervals,
                   "departments": not args.no_departments, "worlds": worlds}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
