"""Continuous training: ``lens retrain`` warm-starts a challenger from the serving champion on
recent data (the vocabulary grows with new products), scores both on the most recent baskets as
``lens eval`` does, and publishes the challenger as the next model version only if it is not
worse by a margin, with a model card recording the decision.

    outcome = retrain(funnels, find_champion(base), base, out_dir, RetrainConfig())
"""

from lens.retrain.champion import Champion, find_champion
from lens.retrain.data_window import recent_holdout, recent_window
from lens.retrain.decision import Decision, decide
from lens.retrain.model_card import CARD_FILE, ModelCard
from lens.retrain.retraining import METRICS, RetrainConfig, RetrainOutcome, retrain
from lens.retrain.vocabulary_growth import carry_rows, grown_vocabulary
from lens.retrain.warm_start import seed_run_directory, warm_start

__all__ = [
    "CARD_FILE",
    "METRICS",
    "Champion",
    "Decision",
    "ModelCard",
    "RetrainConfig",
    "RetrainOutcome",
    "carry_rows",
    "decide",
    "find_champion",
    "grown_vocabulary",
    "recent_holdout",
    "recent_window",
    "retrain",
    "seed_run_directory",
    "warm_start",
]
