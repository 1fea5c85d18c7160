"""LensRecommender: a LENS model behind the ``Recommender`` protocol of ``lens eval``/``lens predict``.

    basket       the decoded variable-size basket (<= max_target_items items, in decoding order)
    quantities   units per basket item (quantity head)
    items/scores the ranking of decoding.py: per item, the best probability on the decoded path
                 (of the repeat/generate mixture when the model has a repeat path)
    days_to_next the time head

Customers with an empty history get no prediction.
"""

import logging
from pathlib import Path

import numpy as np

from lens.baselines.recommender import NextBasket
from lens.data.basket import Funnels
from lens.model.config import CONFIGS, LensConfig, TrainingConfig
from lens.model.dataset import pad_histories
from lens.model.trained_lens import TrainedLens

__all__ = ["LensRecommender", "Predictor"]

log = logging.getLogger(__name__)

PREDICT_BATCH = 256


class Predictor:
    """Compiled batch inference of a TrainedLens: padded inputs -> decoded baskets + days."""

    def __init__(self, trained: TrainedLens) -> None:
        import tensorflow as tf

        from lens.model.decoding import decode_as_configured

        self.trained = trained
        model, config = trained.model, trained.config
        S, L = config.max_sessions, config.max_basket_items

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, S, L], tf.int32),
                tf.TensorSpec([None, S, None], tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def run(items, features, user, lengths):
            encoding = model.funnel_embedding(items, features, user, lengths)  # [B, H]
            out = decode_as_configured(
                model, config, encoding, history=model.repeat_history(items, lengths)
            )
            return out | {"days_to_next": model.days_to_next(encoding), "encoding": encoding}

        self.run = run

    def predict_arrays(self, histories: Funnels) -> dict[str, np.ndarray]:
        """customer order of ``histories`` -> numpy outputs of ``run`` concatenated."""
        t = self.trained
        customers = list(histories)
        parts: list[dict] = []
        for start in range(0, len(customers), PREDICT_BATCH):
            chunk = {c: histories[c] for c in customers[start : start + PREDICT_BATCH]}
            x = pad_histories(chunk, t.vocabulary, t.users, t.config)
            out = self.run(x["items"], x["features"], x["user"], x["lengths"])
            parts.append({k: v.numpy() for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


class LensRecommender:
    """``name`` "lens". Either wraps a trained model (``LensRecommender.load(run_dir)``; ``fit`` is
    then a no-op) or trains one in ``fit`` with ``config``/``training``."""

    name = "lens"

    def __init__(
        self,
        config: LensConfig | None = None,
        training: TrainingConfig | None = None,
        *,
        trained: TrainedLens | None = None,
        out_dir: str | Path | None = None,
    ) -> None:
        self.config = config or (trained.config if trained else CONFIGS["lens1000"])
        self.training = training or TrainingConfig()
        self.out_dir = out_dir
        self.trained = trained
        self._predictor = Predictor(trained) if trained else None

    @classmethod
    def load(cls, run_dir: str | Path) -> "LensRecommender":
        return cls(trained=TrainedLens.load(run_dir))

    def fit(self, train: Funnels) -> "LensRecommender":
        if self.trained is not None:
            log.info("lens: using the already trained model (fit skipped)")
            return self
        from lens.model.training import train_lens

        self.trained, _ = train_lens(train, self.config, self.training, self.out_dir)
        self._predictor = Predictor(self.trained)
        return self

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        if self._predictor is None:
            raise RuntimeError("LensRecommender.predict before fit: call fit(train) or load(dir)")
        histories = {c: h for c, h in histories.items() if len(h) > 0}
        if not histories:
            return {}
        out = self._predictor.predict_arrays(histories)
        decode_ids = self.trained.vocabulary.decode
        answers = {}
        for row, customer in enumerate(histories):
            size = int(out["sizes"][row])
            ranking = out["ranking"][row][:k]
            ranked_scores = out["ranking_scores"][row][:k]
            keep = ranking >= 2
            answers[customer] = NextBasket(
                items=tuple(decode_ids(ranking[keep])),
                scores=tuple(float(s) for s in ranked_scores[keep]),
                basket=tuple(decode_ids(out["items"][row][:size])),
                quantities=tuple(float(q) for q in out["quantities"][row][:size]),
                days_to_next=float(out["days_to_next"][row]),
            )
        return answers
