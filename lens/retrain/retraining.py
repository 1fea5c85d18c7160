"""One retrain: champion -> warm-started challenger on recent data -> compare -> maybe publish.

    outcome = retrain(funnels, find_champion(base), base, out_dir, RetrainConfig(since_days=90))

1. window: the last ``since_days`` days of ``funnels`` (lens.retrain.data_window);
2. holdout: the last basket of each customer active in the final ``eval_days`` days is held out;
3. challenger: the champion's architecture on the grown vocabulary (known items and customers
   keep their rows, new ones are initialised), fine-tuned by ``train_lens`` on the rest of the
   window in ``out_dir`` (a ``lens train --out`` run directory, so a rerun resumes);
4. both models predict the held-out baskets and are scored as ``lens eval`` scores;
5. the challenger is exported as the next version under ``base`` only if it is not worse than the
   champion by more than ``margin`` on ``metric`` (one whose training diverged is rejected); the model card goes into ``out_dir`` and,
   when published, beside the version.

The published model is the one that was measured (trained without the held-out baskets): what
the card reports is what serves.
"""

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lens.data.basket import Funnels
from lens.errors import ConfigError, TrainingDiverged
from lens.evaluation.evaluator import EvaluationResult, evaluate
from lens.evaluation.metrics import KS
from lens.model.config import TrainingConfig
from lens.model.dataset import UserIndex
from lens.model.trained_lens import TrainedLens
from lens.retrain.champion import Champion
from lens.retrain.data_window import recent_holdout, recent_window
from lens.retrain.decision import Decision, decide
from lens.retrain.model_card import ModelCard
from lens.retrain.vocabulary_growth import grown_vocabulary
from lens.retrain.warm_start import seed_run_directory, warm_start

__all__ = ["METRICS", "RetrainConfig", "RetrainOutcome", "retrain"]

log = logging.getLogger(__name__)

# The metrics a decision can rest on (higher is better for all of them).
METRICS = (
    *(f"{name}@{k}" for k in KS for name in ("recall", "ndcg", "phr")),
    "basket:recall", "basket:precision", "basket:f1", "paper:f1",
)


@dataclass(frozen=True)
class RetrainConfig:
    """What one retrain does; built at the entry point from flags."""

    model_name: str = "lens"
    since_days: float | None = 90.0  # None = every basket
    eval_days: float = 7.0
    metric: str = "recall@10"
    margin: float = 0.0
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(epochs=3))

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"--metric {self.metric}: use one of {', '.join(METRICS)}")
        if self.margin < 0:
            raise ConfigError(f"--margin must be >= 0 (got {self.margin})")
        if self.eval_days <= 0 or (self.since_days is not None and self.since_days <= 0):
            raise ConfigError("--since and --eval-days must be > 0 days")


@dataclass(frozen=True)
class RetrainOutcome:
    card: ModelCard
    challenger: EvaluationResult | None  # None when its training diverged
    champion: EvaluationResult


def retrain(
    funnels: Funnels,
    champion: Champion,
    base: Path,
    out_dir: Path,
    config: RetrainConfig,
    *,
    source: str,
    say: Callable[[str], None] = log.info,
) -> RetrainOutcome:
    """Run the steps of the module docstring; ``source`` names the data in the card, ``say``
    receives one line per step."""
    from lens.model.export import export_saved_model
    from lens.model.recommender import LensRecommender
    from lens.model.training import train_lens

    window = recent_window(funnels, config.since_days)
    split = recent_holdout(window, config.eval_days)
    stamps = [b.timestamp for f in window.values() for b in f]
    data = {
        "source": source,
        "since_days": config.since_days,
        "first_basket": min(stamps).isoformat(),
        "newest_basket": max(stamps).isoformat(),
        "customers": len(window),
        "baskets": len(stamps),
        "eval_days": config.eval_days,
        "holdout_customers": len(split.test),
    }
    say(f"data: {data['baskets']:,} baskets of {data['customers']:,} customers from "
        f"{data['first_basket']} to {data['newest_basket']}; holding out the last basket of "
        f"{data['holdout_customers']:,} customers active in the final {config.eval_days:g} days")

    previous = TrainedLens.load(champion.run_dir)
    vocabulary = grown_vocabulary(previous.vocabulary, split.train)
    known = set(previous.vocabulary.items)
    growth = {
        "items": len(vocabulary.items),
        "new_items": sum(item not in known for item in vocabulary.items),
        "carried_items": sum(item in known for item in vocabulary.items),
    }
    seeded = seed_run_directory(
        warm_start(previous, vocabulary, UserIndex(sorted(split.train))), out_dir
    )
    say(f"challenger: {previous.config.name} warm-started from {champion.run_dir} "
        f"(version {champion.version or '-'}); vocabulary {growth['items']:,} items, "
        f"{growth['new_items']:,} new" if seeded else f"challenger: resuming the run in {out_dir}")
    try:
        trained, report = train_lens(
            split.train, previous.config, config.training, out_dir, vocabulary=vocabulary
        )
        say(f"trained {len(report.history)} epoch(s), best validation loss "
            f"{report.best_valid_loss:.4f} (epoch {report.best_epoch + 1})")
    except TrainingDiverged as exc:
        # a scheduled job must leave a card saying why nothing was published, not a traceback
        say(str(exc))
        trained, report, diverged = None, None, f"challenger {exc}"

    models = {"champion": previous} | ({} if trained is None else {"challenger": trained})
    scored = {name: evaluate(LensRecommender(trained=model), split) for name, model in models.items()}
    decision = Decision("rejected", diverged) if trained is None else decide(
        config.metric,
        scored["challenger"].metrics[config.metric],
        scored["champion"].metrics[config.metric],
        config.margin,
    )
    version_dir = None
    if decision.publish:
        version_dir = export_saved_model(trained, base, model_name=config.model_name)
    card = ModelCard(
        model_name=config.model_name,
        outcome=decision.outcome,
        reason=decision.reason,
        metric=config.metric,
        margin=config.margin,
        version=int(version_dir.name) if version_dir else None,
        parent_version=champion.version,
        run_dir=str(Path(out_dir).resolve()),
        champion_run_dir=str(Path(champion.run_dir).resolve()),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        challenger=_plain(scored["challenger"].metrics) if trained is not None else {},
        champion=_plain(scored["champion"].metrics),
        data=data,
        vocabulary=growth,
        training={
            **{k: v for k, v in dataclasses.asdict(config.training).items() if k != "bucket_boundaries"},
            **({"diverged": True} if report is None else {
                "epochs_run": len(report.history),
                "best_epoch": report.best_epoch + 1,
                "best_valid_loss": report.best_valid_loss,
            }),
            "warm_started": seeded,
        },
    )
    card.write(out_dir)
    if version_dir:
        card.write(version_dir)
    return RetrainOutcome(card, scored.get("challenger"), scored["champion"])


def _plain(metrics) -> dict[str, float | None]:
    return {k: None if math.isnan(v) else float(v) for k, v in metrics.items()}
