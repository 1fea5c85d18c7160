"""Model and training settings: one frozen dataclass each, named presets for Table 1 of the paper.

``CONFIGS`` holds the presets: ``lens1000`` and ``lens2000`` (paper Table 1), ``lens1000u`` (LENS1000
with a unidirectional FBE, which trains on every prefix of a funnel in one pass), ``lens1000r`` and
``lens2000r`` (Table 1 plus the repeat path), ``small`` (the demo: a catalog of a few hundred
products, repeat path on, trains in minutes on a CPU) and ``tiny`` (tests; repeat path on).

The repeat path (``repeat_path``, lens.model.repeat_path) is not in the paper: the NSD mixes its
generator softmax with a copy distribution over the customer's own earlier items, through a learned
gate. The paper's NSD predicts repeat items badly (Ta-Feng recall of repeated target items 0.14 vs
TIFU-KNN's 0.61). The field defaults to False so that the paper presets and run directories saved
before it existed load unchanged.

Override any field with ``dataclasses.replace(CONFIGS["lens1000"], epochs=...)``.
"""

import dataclasses
from dataclasses import dataclass
from typing import Literal

from lens.errors import ConfigError

__all__ = ["CONFIGS", "LensConfig", "TrainingConfig", "get_config"]


@dataclass(frozen=True)
class LensConfig:
    """Architecture of one LENS model (SCE -> FBE -> NSD + heads).

    Sizes: ``*_units`` hold one entry per stacked recurrent layer. A bidirectional layer of ``u``
    units outputs ``2 u`` (forward and backward states concatenated).
    """

    name: str = "lens1000"
    item_embedding_dim: int = 64
    user_embedding_dim: int = 16
    sce_units: tuple[int, ...] = (64,)  # Session Content Encoder: bidirectional LSTM layers
    fbe_units: tuple[int, ...] = (256,)  # Funnel Behavior Encoder layers
    fbe_bidirectional: bool = True  # False: causal FBE, every prefix of a funnel in one pass
    nsd_units: tuple[int, ...] = (512,)  # Next Session Decoder: stacked LSTM layers
    # Speed (2-core CPU): the decoder sees the funnel encoding through its initial states and a
    # per-step context projected once to nsd_context_dim; logits go through an
    # nsd_projection_dim bottleneck (low-rank softmax). 0 = no projection.
    nsd_context_dim: int = 64
    nsd_projection_dim: int = 128
    # Repeat (copy) path in the NSD: p = g p_gen + (1 - g) p_repeat over the customer's history.
    repeat_path: bool = False
    # Restricted output vocabulary: decoder classes are vocabulary ids < output_vocab_size (the most
    # frequent items, since ids follow descending count); class 0 is end-of-basket, class 1 (OOV) is
    # never emitted. Target items outside it are left out of the target basket.
    output_vocab_size: int = 4000
    max_sessions: int = 16  # S: sessions of history the FBE sees (the latest ones)
    max_basket_items: int = 32  # L: items per input session (first-scanned ones kept)
    max_target_items: int = 10  # D - 1: decoded basket size cap; targets cut to it
    min_history_sessions: int = 1  # a target needs at least this many sessions before it
    time_head_units: int = 64
    time_loss: Literal["mae", "mse"] = "mae"
    time_mode: Literal["joint", "twin"] = "joint"  # twin: time head does not train the encoders
    time_loss_weight: float = 1.0  # on days / time_scale_days
    quantity_loss_weight: float = 0.1  # on log1p(quantity)
    time_scale_days: float = 30.0
    freeze_item_embeddings: bool = False  # warm start: keep the pre-trained matrix fixed
    beam_width: int = 1  # 1 = greedy decoding
    # Decoding: end-of-basket is chosen only at a step where its probability reaches this
    # (0: whenever it is the most likely class; see lens.model.decoding). The repeat-path presets
    # use END_THRESHOLD; 0 stays the field default so that runs saved before it decode as they did.
    end_threshold: float = 0.0
    ranking_size: int = 20

    def __post_init__(self) -> None:
        problems = []
        if not (self.sce_units and self.fbe_units and self.nsd_units):
            problems.append("sce_units, fbe_units and nsd_units need at least one layer each")
        if self.output_vocab_size < 3:
            problems.append("output_vocab_size must be >= 3 (end-of-basket, OOV, one item)")
        if self.time_loss not in ("mae", "mse"):
            problems.append(f"time_loss must be mae or mse, got {self.time_loss!r}")
        if self.time_mode not in ("joint", "twin"):
            problems.append(f"time_mode must be joint or twin, got {self.time_mode!r}")
        if self.min_history_sessions < 1 or self.max_sessions < self.min_history_sessions:
            problems.append("need 1 <= min_history_sessions <= max_sessions")
        if self.beam_width < 1 or self.max_target_items < 1 or self.ranking_size < 1:
            problems.append("beam_width, max_target_items and ranking_size must be >= 1")
        if not 0.0 <= self.end_threshold <= 1.0:
            problems.append(f"end_threshold must be in [0, 1], got {self.end_threshold}")
        if problems:
            raise ConfigError("invalid LENS model config: " + "; ".join(problems) + ".")

    @property
    def fbe_output_dim(self) -> int:
        """H: size of a funnel encoding."""
        return self.fbe_units[-1] * (2 if self.fbe_bidirectional else 1)

    @property
    def decode_steps(self) -> int:
        """D: decoder steps per target (items + the end-of-basket token)."""
        return self.max_target_items + 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LensConfig":
        data = dict(data)
        for key in ("sce_units", "fbe_units", "nsd_units"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class TrainingConfig:
    """How to fit: paper IV.A uses RMSprop with learning rate 0.001 and batches of 128."""

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    clipnorm: float | None = 5.0
    patience: int = 2  # early stopping: epochs without a better validation loss
    seed: int = 0
    validation_fraction: float = 0.05  # of training customers, held out for the per-epoch loss
    max_steps_per_epoch: int | None = None  # for benchmarks and smoke runs
    bucket_boundaries: tuple[int, ...] = (2, 3, 4, 6, 8, 12)  # on number of sessions
    compiled: bool = True  # tf.function train/eval steps; False runs eagerly (tests, debugging)


# For the presets with the repeat path (lens1000r, lens2000r). Chosen on the paper protocol's
# validation split of Ta-Feng (bench/lens_end_threshold.py on the 2-epoch lens1000r run): the best
# mean per-customer basket F1 (0.070 vs 0.056 at 0), baskets of 4.0 items instead of 1.4. The
# presets without it keep 0: LENS1000's end-of-basket is less likely, so 0.3 made its baskets 8.0
# items long and its basket F1 fell (0.050 -> 0.040, same split). `small` and `tiny` keep 0 too:
# the demo world's Algorithm 2 demand and anomaly thresholds were tuned with it.
END_THRESHOLD = 0.3

CONFIGS: dict[str, LensConfig] = {
    "lens1000": LensConfig(),
    "lens1000u": LensConfig(name="lens1000u", fbe_bidirectional=False),
    "lens2000": LensConfig(
        name="lens2000",
        item_embedding_dim=128,
        sce_units=(256,),
        fbe_units=(256, 256),
        nsd_units=(512, 128),
    ),
    "tiny": LensConfig(
        name="tiny",
        item_embedding_dim=8,
        user_embedding_dim=4,
        sce_units=(8,),
        fbe_units=(8,),
        nsd_units=(16,),
        nsd_context_dim=4,
        nsd_projection_dim=8,
        output_vocab_size=64,
        max_sessions=6,
        max_basket_items=8,
        max_target_items=5,
        time_head_units=8,
        ranking_size=5,
        repeat_path=True,
    ),
}
CONFIGS["small"] = dataclasses.replace(
    CONFIGS["tiny"],
    name="small",
    item_embedding_dim=32,
    user_embedding_dim=8,
    sce_units=(32,),
    fbe_units=(64,),
    nsd_units=(64,),
    nsd_context_dim=16,
    nsd_projection_dim=32,
    output_vocab_size=512,
    max_sessions=16,
    max_basket_items=16,
    max_target_items=10,
    time_head_units=16,
    ranking_size=20,
)
CONFIGS["lens1000r"] = dataclasses.replace(
    CONFIGS["lens1000"], name="lens1000r", repeat_path=True, end_threshold=END_THRESHOLD
)
CONFIGS["lens2000r"] = dataclasses.replace(
    CONFIGS["lens2000"], name="lens2000r", repeat_path=True, end_threshold=END_THRESHOLD
)


def get_config(name: str) -> LensConfig:
    """The preset called ``name``; ConfigError naming the choices otherwise."""
    try:
        return CONFIGS[name]
    except KeyError:
        choices = ", ".join(CONFIGS)
        raise ConfigError(f"unknown model config {name!r}; use one of {choices}.") from None
