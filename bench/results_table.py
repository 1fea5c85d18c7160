"""Render `lens eval --out` JSON results as the Markdown tables of BENCHMARKS.md.

    .venv/bin/python bench/results_table.py bench/results/ta_feng-*.json

Results that carry a ``training`` summary (bench/lens_tafeng.sh adds one per LENS run) also get a
training table: seconds per epoch, targets/s, peak memory and the validation losses of the best
epoch (the weights that were scored).
"""

import argparse
import json
from pathlib import Path

RANKING = ("recall@10", "ndcg@10", "phr@10", "recall@20", "ndcg@20",
           "recall@10:repeat", "recall@10:explore")
BASKET = ("paper:recall", "paper:precision", "paper:f1", "basket:f1")


def table(results: list[dict], protocol: str) -> str:
    rows = [r for r in results if r["protocol"] == protocol]
    columns = RANKING + BASKET
    lines = [
        f"| model | {' | '.join(columns)} | fit s | predict s |",
        f"|---|{'---|' * (len(columns) + 2)}",
    ]
    for r in sorted(rows, key=lambda r: r["metrics"]["recall@10"]):
        cells = [f"{r['metrics'][c]:.4f}" for c in columns]
        lines.append(
            f"| {r['model']} | {' | '.join(cells)} | {r['fit_seconds']:.0f} | {r['predict_seconds']:.0f} |"
        )
    first = rows[0]
    header = (
        f"**{protocol}** protocol, {first['split']} split, seed {first['seed']}, "
        f"{first['counts']['customers']:,} customers"
    )
    return header + "\n\n" + "\n".join(lines)


def training_table(results: list[dict]) -> str:
    rows = [r for r in results if "training" in r]
    lines = [
        "| protocol | model | best epoch | s per epoch | targets/s | peak memory GiB | "
        "valid basket loss | valid days-to-next MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["protocol"], r["model"])):
        t = r["training"]
        peak = f"{t['peak_rss_mib'] / 1024:.1f}" if t.get("peak_rss_mib") else "not recorded"
        lines.append(
            f"| {r['protocol']} | {r['model']} | {t['best_epoch']} | {t['seconds_per_epoch']:.0f} | "
            f"{t['targets_per_second']:.0f} | {peak} | {t['valid_basket']:.4f} | "
            f"{t['valid_time_mae_days']:.2f} |"
        )
    return "\n".join(lines) if rows else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files from `lens eval --out`")
    args = parser.parse_args()
    results = [json.loads(path.read_text()) for path in args.results]
    for protocol in sorted({r["protocol"] for r in results}):
        print(table(results, protocol) + "\n")
    print(training_table(results))


if __name__ == "__main__":
    main()
