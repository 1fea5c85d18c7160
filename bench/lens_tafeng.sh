#!/usr/bin/env bash
# LENS on Ta-Feng, the variants of issue 4: Table 1 sizes (lens1000, lens2000), cold vs warm item
# embeddings (`lens embed` skip-gram vectors), joint vs twin time head, and the NSD repeat path.
# Each variant trains for $EPOCHS epochs on its protocol's train funnels (seed 0) and is scored on
# the test split as `lens eval` scores the baselines; the result lands in
# bench/results/ta_feng-<protocol>-<variant>-e<epochs>.json with the variant and its epochs as its
# model name, so that
#   .venv/bin/python bench/results_table.py bench/results/ta_feng-*.json
# prints LENS beside the baselines. Rerunning a variant resumes its run directory.
#
#   bench/lens_tafeng.sh paper-lens1000 paper-lens1000-twin      # some variants
#   bench/lens_tafeng.sh                                          # all of them (hours on 2 cores)
#   EPOCHS=7 RUNS=.run/tafeng7 bench/lens_tafeng.sh paper-lens1000  # longer training
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/ta_feng.csv.zip}
EPOCHS=${EPOCHS:-2}
RUNS=${RUNS:-.run/tafeng}
LENS=.venv/bin/lens

declare -A FLAGS=(
  [lens1000]="--config lens1000"
  [lens1000-twin]="--config lens1000 --time-mode twin"
  [lens1000-warm]="--config lens1000 --item-embeddings EMB64"
  [lens1000r]="--config lens1000r"
  [lens2000]="--config lens2000"
)
ALL="paper-lens1000 paper-lens1000-warm paper-lens1000-twin nbr-lens1000 nbr-lens1000r paper-lens2000 paper-lens1000r nbr-lens1000-warm nbr-lens1000-twin nbr-lens2000"

embeddings() {  # protocol dim -> path of the skip-gram vectors numbered as that split's vocabulary
  local path="$RUNS/items$2-$1.npy"
  [[ -f $path ]] || $LENS embed --data "$DATA" --protocol "$1" --dim "$2" --epochs 3 --out "$path" >&2
  echo "$path"
}

run_variant() {
  local protocol=${1%%-*} variant=${1#*-}
  local flags=${FLAGS[$variant]:?unknown variant $variant (known: ${!FLAGS[*]})}
  [[ $flags == *EMB64* ]] && flags=${flags/EMB64/$(embeddings "$protocol" 64)}
  local out="$RUNS/$1"
  echo "== $1: lens train $flags --protocol $protocol --epochs $EPOCHS ($(date -u +%H:%M))"
  # shellcheck disable=SC2086
  $LENS train --data "$DATA" --protocol "$protocol" $flags --epochs "$EPOCHS" --split test --out "$out"
  .venv/bin/python - "$out" "$protocol" "$variant" "bench/results/ta_feng-$1-e$EPOCHS.json" <<'EOF'
import json, sys
from pathlib import Path
out, protocol, variant, target = sys.argv[1:]
result = json.loads(Path(out, f"eval_{protocol}_test.json").read_text())
report = json.loads(Path(out, "history.json").read_text())
history = report["history"]
config = json.loads(Path(out, "lens.json").read_text())["config"]
result["model"] = f"{variant} ({len(history)} epochs)"
result["fit_seconds"] = sum(epoch["train_seconds"] for epoch in history)
best = history[report["best_epoch"]]  # the weights lens train keeps and scores
result["training"] = {
    "epochs": len(history),
    "seconds_per_epoch": result["fit_seconds"] / len(history),
    "targets_per_second": sum(e["train_targets"] for e in history) / result["fit_seconds"],
    "peak_rss_mib": max(e.get("train_peak_rss_mib", 0.0) for e in history),
    "best_epoch": report["best_epoch"] + 1,
    "valid_basket": best["valid_basket"],
    # The time head's loss is the MAE (or MSE) of days / time_scale_days.
    "valid_time_mae_days": best["valid_time"] * config["time_scale_days"]
    if config["time_loss"] == "mae" else float("nan"),
}
Path(target).write_text(json.dumps(result, indent=1))
EOF
}

mkdir -p "$RUNS" bench/results
for name in ${@:-$ALL}; do run_variant "$name"; done
