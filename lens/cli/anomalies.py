"""``lens anomalies``: Algorithm 1 in batch over a history file (``lens.anomaly.batch``)."""

import argparse
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lens.cli.history_file import add_history_arguments, load_history
from lens.cli.models import add_model_argument
from lens.cli.rows import add_out_argument
from lens.errors import ConfigError
from lens.settings import LensSettings

if TYPE_CHECKING:
    import numpy as np

    from lens.anomaly import BatchAnomalies, Embedder, FunnelObservation

__all__ = ["funnel_embedder", "register", "rows_of", "run"]

COLUMNS = (
    "customer_id", "distance", "level", "cluster", "score", "alert", "predicted", "observed"
)
SHOWN = 20  # rows printed when there is no --out
_DEFAULT_MIN_SESSIONS = 4  # AnomalyConfig().min_sessions, spelled out so --help imports no numpy

DESCRIPTION = """\
Scores every customer's last session against the basket the model predicted from the
sessions before it (the paper's Algorithm 1, the same dA and dB the funnel worker uses):

  dA    = 1/2 (1 - F1(predicted basket, observed basket))
          + 1/2 (share of the observed products outside the model's ranking), in [0, 1]
  level = 0.15 x mean dA of the customer's last 3 scored sessions (each predicted from the
          sessions before it) + 0.85 x novelty: the share of the products of their last 4
          sessions they never bought before them (env LENS_ANOMALY_NOVELTY_WINDOW). A
          behaviour change lasts, one odd basket does not; customers with fewer than 3
          sessions before those (env LENS_ANOMALY_ESTABLISHED) get no level;
          with --catalog (each product's category), + 0.3 x the overdue needs: for
          each category bought in 2+ sessions, how many of the customer's own spreads
          of log intervals the days since its last purchase lie beyond its interval
          (their mean interval shrunk towards the category's typical one in the
          population, --need-intervals, at their own pace; a category without one:
          from 3 sessions, its own mean interval), less 1.5, summed (needs that
          stopped) + 0.5 x the first purchases
          above 2: categories first bought in the last 21 days by a customer seen 21
          days before them, each the days gone without it over their usual interval
          (at most 2; fully when bought again, not when a one-off) (needs that
          started) + 0.3 x the burst of first purchases in the last 2 sessions above
          1.5 beyond their own pace; with a DEPARTMENT column in the catalog, + 0.1 x
          the purchases (a category in a session) of the departments started in the
          last 4 sessions (2+ of their categories, none before, a customer seen 21
          days); env LENS_ANOMALY_DROP_WEIGHT,
          LENS_ANOMALY_NEW_WEIGHT, LENS_ANOMALY_DISCOVERY_WEIGHT,
          LENS_ANOMALY_DEPARTMENT_WEIGHT
  fk    = the customer's behaviour cluster: nearest centroid of its funnel embedding fE
          (--clusters FILE, or k-means fitted here on everyone's fE, K by silhouette)
  dB    = robust z-score of the level against the levels of the other customers of the
          cluster (median and 1.4826 x MAD); alert = dB > --threshold

A session is scored only when its prediction saw at least --min-sessions sessions; customers
with fewer are left out. Models without a funnel
embedding (the baselines) put everyone in one cluster. Models: a `lens train --out` run
directory, a LENS architecture trained here on the sessions before each last one, or a
baseline (see `lens eval --help`).
"""

EPILOG = """\
output columns: customer_id, distance (dA of the last session), level (empty for a short
history), cluster, score (dB; empty without a level or while the cluster has fewer than
--min-history other customers with one), alert, predicted,
observed (product ids); rows come highest dB first

examples:
  lens anomalies --data data/synth/transactions.csv --model runs/lens
  lens anomalies --data tafeng.zip --model personal-top --threshold 3 --out anomalies.csv
  lens anomalies --data tx.csv --model runs/lens --save-clusters serving/clusters.json
  lens anomalies --data data/synth/transactions.csv --model runs/lens \
      --catalog data/synth/products.csv
  lens anomalies --data this-week.csv --model runs/lens --catalog products.csv \
      --need-intervals need_intervals.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "anomalies",
        help="behaviour anomalies in batch (Algorithm 1): who just stopped behaving as predicted",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_history_arguments(parser)
    add_model_argument(parser)
    parser.add_argument("--clusters", dest="cluster_model", type=Path, default=None,
                        metavar="FILE",
                        help="behaviour clusters (lens.anomaly.ClusterModel file, env "
                        "LENS_CLUSTER_MODEL); default: fit k-means on the funnel embeddings")
    parser.add_argument("--catalog", dest="anomaly_catalog", type=Path, default=None,
                        metavar="FILE",
                        help="product catalog, a CSV with PROD_ID (or PRODUCT_ID) and "
                        "PRODUCT_SUBCLASS (`lens data synth` writes products.csv; env "
                        "LENS_ANOMALY_CATALOG): adds the need-level signals to the level")
    parser.add_argument("--need-intervals", dest="anomaly_need_intervals", type=Path,
                        default=None, metavar="FILE",
                        help="with --catalog: each category's typical interval between "
                        "purchases (`lens data need-intervals`; env "
                        "LENS_ANOMALY_NEED_INTERVALS); default: fitted on --data")
    parser.add_argument("--k", type=int, default=None,
                        help="clusters to fit when there is no --clusters (default: best "
                        "silhouette for K in 2..8)")
    parser.add_argument("--save-clusters", type=Path, default=None, metavar="FILE",
                        help="write the clusters used, for the worker's --clusters")
    parser.add_argument("--threshold", dest="anomaly_threshold", type=float, default=None,
                        help="dB above which a customer alerts (env LENS_ANOMALY_THRESHOLD, "
                        "default 3.5)")
    parser.add_argument("--min-history", dest="anomaly_min_history", type=int, default=None,
                        help="other customers a cluster needs before its members get a dB "
                        "(env LENS_ANOMALY_MIN_HISTORY, default 30)")
    parser.add_argument("--min-sessions", dest="anomaly_min_sessions", type=int, default=None,
                        metavar="N",
                        help="sessions a prediction must have seen for the next session to be "
                        f"scored (env LENS_ANOMALY_MIN_SESSIONS, default "
                        f"{_DEFAULT_MIN_SESSIONS}, as the worker)")
    add_out_argument(parser, SHOWN)
    parser.set_defaults(handler=run)


def funnel_embedder(recommender: Any) -> "Embedder | None":
    """fE of a LENS model (the ``funnel_embedding`` its export serves), read after ``fit``;
    None for models without one."""
    if not hasattr(recommender, "trained"):
        return None

    def embed(histories) -> "np.ndarray":
        import numpy as np

        from lens.model import pad_histories

        trained = recommender.trained
        customers = list(histories)
        parts = []
        for start in range(0, len(customers), 256):
            chunk = {c: histories[c] for c in customers[start : start + 256]}
            x = pad_histories(chunk, trained.vocabulary, trained.users, trained.config)
            encoded = trained.model.funnel_embedding(
                x["items"], x["features"], x["user"], x["lengths"]
            )
            parts.append(np.asarray(encoded, dtype=np.float64))  # [B, H]
        return np.concatenate(parts) if parts else np.zeros((0, 1))

    return embed


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.anomaly import (
        FIT_MIN_COUNT,
        FIT_MIN_CUSTOMERS,
        AnomalyConfig,
        ClusterModel,
        detect_anomalies,
        fit_need_intervals,
        funnel_observations,
        split_last_sessions,
    )
    from lens.cli.models import resolve_model
    from lens.cli.rows import check_out_path, show_or_write

    check_out_path(args.out)
    if args.k is not None and args.k < 1:
        raise ConfigError(f"--k must be >= 1 (got {args.k})")
    model = resolve_model(args.model)  # before loading: a typo should not cost a data load
    embed = funnel_embedder(model)
    clusters = None
    if settings.cluster_model is not None:
        if embed is None:
            raise ConfigError(
                f"--clusters needs a model with funnel embeddings (LENS); {args.model} has none. "
                "Leave --clusters out: everyone is then in one cluster."
            )
        clusters = ClusterModel.load(settings.cluster_model)
    config = AnomalyConfig.from_settings(settings)
    loaded = load_history(args.data, args.skip_bad)
    if config.categories is not None and config.need_intervals is None:
        # population-level rhythms; the sessions scored are each customer's last of many
        fitted = fit_need_intervals(loaded.funnels.values(), config.categories)
        if fitted:
            config = dataclasses.replace(config, need_intervals=fitted)
            print(f"need intervals: {len(fitted):,} categories' typical intervals fitted on "
                  f"{len(loaded.funnels):,} customers")
        else:
            print(f"need intervals: no category bought in {FIT_MIN_COUNT}+ sessions by "
                  f"{FIT_MIN_CUSTOMERS} customers of {args.data}; each customer's own intervals "
                  "only")
    split = split_last_sessions(loaded.funnels, min_sessions=config.min_sessions)
    observations = funnel_observations(split, model, embed=embed, config=config)
    result = detect_anomalies(observations, clusters=clusters, k=args.k, config=config)
    rows = rows_of(result, observations)
    flagged = sum(row["alert"] for row in rows)
    short = sum(row["level"] is None for row in rows)
    print(
        f"{len(rows):,} customers scored ({split.too_short:,} with {config.min_sessions} "
        f"sessions or fewer left out, {short:,} with too few sessions for a level), "
        f"{result.model.k} cluster(s), {flagged:,} above dB {config.threshold:g}"
    )
    if args.save_clusters is not None:
        print(f"wrote clusters to {result.model.save(args.save_clusters)}")
    show_or_write(rows, COLUMNS, args.out, SHOWN)
    return 0


def rows_of(
    result: "BatchAnomalies", observations: "list[FunnelObservation]"
) -> list[dict[str, Any]]:
    """One row per customer, highest dB first (customers without a dB last, by id)."""
    rows = []
    for i, obs in enumerate(observations):
        score, level = float(result.scores[i]), float(result.levels[i])
        scored = not math.isnan(score)
        rows.append({
            "customer_id": obs.customer_id,
            "distance": float(result.distances[i]),
            "level": None if math.isnan(level) else level,
            "cluster": int(result.clusters[i]),
            "score": score if scored else None,
            "alert": scored and score > result.threshold,
            "predicted": list(obs.predicted),
            "observed": list(obs.observed),
        })
    return sorted(rows, key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["customer_id"]))
