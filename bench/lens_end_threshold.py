"""When should the decoder end a basket? Sweep ``end_threshold`` on the VALIDATION split.

LENS decodes the next basket greedily; with ``end_threshold`` 0 the basket ends as soon as
end-of-basket is the single most likely class, which makes baskets far shorter than real ones
(lens.model.decoding). This scores one trained run on its protocol's validation customers for each
threshold (the ranking barely moves; the decoded basket does) and writes the table, a JSON file and
a plot of basket size and basket F1 against the threshold, so the default is chosen on validation,
never on test:

    .venv/bin/python bench/lens_end_threshold.py .run/tafeng/paper-lens1000r \
        --data ../shared/data/ta_feng.csv.zip --protocol paper \
        --out bench/results/end-threshold-paper-lens1000r.json
"""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from lens.cli.train import training_funnels
from lens.evaluation.evaluator import predict_all, score
from lens.model.recommender import LensRecommender
from lens.model.trained_lens import TrainedLens

COLUMNS = ("paper:recall", "paper:precision", "paper:f1", "basket:precision", "basket:recall",
           "basket:f1", "recall@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="run directory of `lens train --out`")
    parser.add_argument("--data", type=Path, required=True, help="the history file it trained on")
    parser.add_argument("--protocol", choices=("paper", "nbr"), required=True)
    parser.add_argument("--seed", type=int, default=0, help="split seed of the run")
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--out", type=Path, required=True, help="JSON result; the plot beside it")
    args = parser.parse_args()

    split, _ = training_funnels(args.data, args.protocol, args.seed, skip_bad=False)
    trained = TrainedLens.load(args.run)
    histories = {customer: case.history for customer, case in split.valid.items()}
    rows = []
    for threshold in args.thresholds:
        config = dataclasses.replace(trained.config, end_threshold=threshold)
        model = LensRecommender(trained=dataclasses.replace(trained, config=config))
        answers = predict_all(model, histories)
        metrics, _ = score(answers, split.valid)
        sizes = [len(a.basket) for a in answers.values()]
        rows.append({"end_threshold": threshold, "mean_basket_size": float(np.mean(sizes))}
                    | {c: metrics[c] for c in COLUMNS})
        print(_row(rows[-1]), flush=True)
    truth = float(np.mean([len(set(case.target.items)) for case in split.valid.values()]))
    report = {"run": str(args.run), "protocol": args.protocol, "split": "valid",
              "customers": len(split.valid), "mean_target_size": truth, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    _plot(report, args.out.with_suffix(".png"))
    print(f"mean target basket size {truth:.2f}; wrote {args.out} and its .png")


def _row(row: dict) -> str:
    cells = " | ".join(f"{row[c]:.4f}" for c in COLUMNS)
    return f"| {row['end_threshold']:.2f} | {row['mean_basket_size']:.2f} | {cells} |"


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["end_threshold"] for r in report["rows"]]
    fig, (size, f1) = plt.subplots(1, 2, figsize=(10, 4))
    size.plot(t, [r["mean_basket_size"] for r in report["rows"]], marker="o", label="decoded")
    size.axhline(report["mean_target_size"], color="grey", linestyle="--", label="target")
    size.set(xlabel="end_threshold", ylabel="items per basket", title="basket size")
    size.legend()
    for column in ("paper:f1", "basket:f1"):
        f1.plot(t, [r[column] for r in report["rows"]], marker="o", label=column)
    f1.set(xlabel="end_threshold", title=f"{report['protocol']} protocol, validation split")
    f1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
