"""Training: compiled train/eval steps over tf.data batches, per-epoch validation, early stopping,
checkpoints with resume, training curves.

    trained, report = train_lens(train_funnels, CONFIGS["lens1000"], TrainingConfig(), out_dir)

Run directory (``out_dir``): ``lens.json`` + ``weights/`` (best epoch, see TrainedLens),
``checkpoints/`` (latest epoch, model + optimizer, for resume), ``history.json``, ``curves.png``.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lens.data.basket import Funnels
from lens.data.vocabulary import Vocabulary
from lens.errors import DataError, TrainingDiverged
from lens.model.config import LensConfig, TrainingConfig
from lens.model.dataset import SessionTable, UserIndex, build_session_table, make_dataset
from lens.model.trained_lens import TrainedLens

__all__ = ["TrainingReport", "Trainer", "train_lens"]

log = logging.getLogger(__name__)

# check_numerics' message tag: tells a diverged step apart from other graph errors
DIVERGED = "lens: training diverged"


@dataclass
class TrainingReport:
    """Per-epoch history and throughput of one ``train_lens`` run."""

    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = -1
    best_valid_loss: float = float("inf")
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _batch_spec():
    import tensorflow as tf

    i, f = tf.int32, tf.float32
    return {
        "items": tf.TensorSpec([None, None, None], i),
        "features": tf.TensorSpec([None, None, None], f),
        "user": tf.TensorSpec([None], i),
        "lengths": tf.TensorSpec([None], i),
        "target_items": tf.TensorSpec([None, None, None], i),
        "target_token_weight": tf.TensorSpec([None, None, None], f),
        "target_quantities": tf.TensorSpec([None, None, None], f),
        "target_days": tf.TensorSpec([None, None], f),
        "target_weight": tf.TensorSpec([None, None], f),
    }


class Trainer:
    """Owns the optimizer and the compiled steps for one LensModel."""

    def __init__(self, model, config: LensConfig, training: TrainingConfig) -> None:
        import keras
        import tensorflow as tf

        from lens.model.task import LensTask

        self.model, self.config, self.training = model, config, training
        self.task = LensTask(config)
        self.optimizer = keras.optimizers.RMSprop(
            learning_rate=training.learning_rate, clipnorm=training.clipnorm
        )
        self.optimizer.build(model.trainable_variables)
        if training.compiled:
            spec = [_batch_spec()]
            self.train_step = tf.function(self._train_step, input_signature=spec)
            self.eval_step = tf.function(self._eval_step, input_signature=spec)
        else:  # eager: no tracing cost (tests, debugging)
            self.train_step, self.eval_step = self._train_step, self._eval_step

    def _train_step(self, batch):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            outputs = self.model(batch, training=True)
            losses = self.task(outputs)
        variables = self.model.trainable_variables
        gradients = tape.gradient(losses["loss"], variables)
        # A diverging run must stop before a non-finite step reaches the weights (the optimizer's
        # sparse updates then fail deep inside Keras, or the model silently turns into NaNs).
        tf.debugging.check_numerics(losses["loss"], DIVERGED)
        tf.debugging.check_numerics(tf.linalg.global_norm(gradients), DIVERGED)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return losses | {"targets": tf.shape(outputs["classes"])[0]}

    def _eval_step(self, batch):
        import tensorflow as tf

        outputs = self.model(batch, training=False)
        return self.task(outputs) | {"targets": tf.shape(outputs["classes"])[0]}

    def evaluate(self, dataset) -> dict:
        """Target-weighted mean of each loss over ``dataset``."""
        sums: dict[str, float] = {}
        total = 0
        for batch in dataset:
            losses = self.eval_step(batch)
            n = int(losses.pop("targets"))
            total += n
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
        return {key: value / max(total, 1) for key, value in sums.items()}

    def run_epoch(self, dataset, *, steps: int | None = None, description: str = "train") -> dict:
        """One pass (or ``steps`` batches) over ``dataset``; returns mean losses, targets,
        seconds, targets_per_second and the process's peak memory so far."""
        import tensorflow as tf
        from tqdm import tqdm

        started = time.perf_counter()
        sums: dict[str, float] = {}
        targets = 0
        if steps:
            dataset = dataset.take(steps)
        total = int(dataset.cardinality())
        bar = tqdm(dataset, desc=description, unit="batch", total=total if total > 0 else None,
                   mininterval=2.0, leave=False)
        for step, batch in enumerate(bar):
            try:
                losses = self.train_step(batch)
            except tf.errors.InvalidArgumentError as exc:
                if DIVERGED not in str(exc):
                    raise
                raise TrainingDiverged(
                    f"training diverged in {description}, batch {step + 1} (loss or gradient is "
                    f"not a finite number; mean loss so far {sums.get('loss', 0.0) / max(targets, 1):.4g}): "
                    f"lower --learning-rate (now {self.training.learning_rate:g})"
                ) from None
            n = int(losses.pop("targets"))
            targets += n
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
            if step % 20 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / max(targets, 1):.4f}")
        bar.close()
        seconds = time.perf_counter() - started
        out = {key: value / max(targets, 1) for key, value in sums.items()}
        return out | {
            "targets": targets,
            "seconds": seconds,
            "targets_per_second": targets / max(seconds, 1e-9),
            "peak_rss_mib": _peak_rss_mib(),
        }


def _peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _split_examples(table: SessionTable, fraction: float, seed: int):
    """(train example ids, validation example ids), split by customer."""
    customers = np.unique(table.example_customer)
    rng = np.random.default_rng(seed)
    n_valid = int(round(fraction * len(customers)))
    valid_customers = rng.permutation(customers)[:n_valid]
    is_valid = np.isin(table.example_customer, valid_customers)
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)


def train_lens(
    train: Funnels,
    config: LensConfig,
    training: TrainingConfig,
    out_dir: str | Path | None = None,
    *,
    item_embeddings: np.ndarray | None = None,
    vocabulary: Vocabulary | None = None,
) -> tuple[TrainedLens, TrainingReport]:
    """Fit a LENS model on ``train`` funnels. With ``out_dir``: checkpoints every epoch, resumes
    from the latest checkpoint there, keeps the best (validation loss) weights, writes history and
    curves. Returns the model with the best weights loaded."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(training.seed)
    vocabulary = vocabulary or Vocabulary.build(train)
    users = UserIndex(sorted(train))
    trained = TrainedLens.create(config, vocabulary, users, item_embeddings=item_embeddings)
    model = trained.model
    started = time.perf_counter()
    table = build_session_table(train, vocabulary, users, config)
    if table.num_examples == 0:
        raise DataError(
            "no training example: every funnel is shorter than min_history_sessions + 1 baskets. "
            "Use more data or lower min_history_sessions."
        )
    model.scaler.adapt(table.features[:-1])
    train_ids, valid_ids = _split_examples(table, training.validation_fraction, training.seed)
    log.info(
        "%s: %d examples (%d train, %d valid), %d targets, built in %.1f s",
        config.name, table.num_examples, len(train_ids), len(valid_ids), table.num_targets,
        time.perf_counter() - started,
    )
    train_ds = make_dataset(
        table, examples=train_ids, batch_size=training.batch_size,
        boundaries=training.bucket_boundaries, shuffle_seed=training.seed,
    )
    valid_ds = make_dataset(
        table, examples=valid_ids, batch_size=training.batch_size,
        boundaries=training.bucket_boundaries,
    ) if len(valid_ids) else None
    trainer = Trainer(model, config, training)
    report = TrainingReport()
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    manager = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=trainer.optimizer, epoch=epoch_var)
        manager = tf.train.CheckpointManager(
            checkpoint, str(out_dir / "checkpoints"), max_to_keep=2
        )
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint)
            history_path = out_dir / "history.json"
            if history_path.is_file():
                report = TrainingReport(**json.loads(history_path.read_text()))
            log.info("resumed from %s (epoch %d)", manager.latest_checkpoint, int(epoch_var))
        # Metadata now, and the weights only where the run directory has none yet (written again
        # whenever validation improves): on a resume they are the run's best so far, which the
        # model as of its latest checkpoint need not be.
        trained.save(out_dir, weights=not (out_dir / "weights").is_dir())
    best_weights = None
    waited = 0 if report.best_epoch < 0 else int(epoch_var) - 1 - report.best_epoch
    while int(epoch_var) < training.epochs and not report.stopped_early:
        epoch = int(epoch_var)
        stats = trainer.run_epoch(
            train_ds, steps=training.max_steps_per_epoch, description=f"epoch {epoch + 1}"
        )
        if valid_ds is not None:
            valid = trainer.evaluate(valid_ds)
        else:  # no validation customers: fall back to the training losses
            valid = {k: stats[k] for k in ("loss", "basket", "quantity", "time")}
        row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in stats.items()},
               **{f"valid_{k}": v for k, v in valid.items()}}
        report.history.append(row)
        log.info(
            "epoch %d: train loss %.4f, valid loss %.4f (basket %.4f), %d targets in %.1f s "
            "(%.0f targets/s)", epoch + 1, stats["loss"], valid["loss"], valid.get("basket", 0.0),
            stats["targets"], stats["seconds"], stats["targets_per_second"],
        )
        epoch_var.assign_add(1)
        if valid["loss"] < report.best_valid_loss:
            report.best_valid_loss, report.best_epoch, waited = valid["loss"], epoch, 0
            if out_dir is not None:
                trained.save_weights_only(out_dir)
            else:
                best_weights = model.get_weights()
        else:
            waited += 1
            if waited >= training.patience:
                report.stopped_early = True
                log.info("early stop: no better validation loss for %d epochs", waited)
        if manager is not None:
            manager.save()
            (out_dir / "history.json").write_text(json.dumps(report.to_dict(), indent=1))
            plot_curves(report, out_dir / "curves.png")
    if out_dir is not None and report.best_epoch >= 0:
        tf.train.Checkpoint(model=model).read(str(out_dir / "weights" / "best")).expect_partial()
    elif best_weights is not None:
        model.set_weights(best_weights)
    return trained, report


def plot_curves(report: TrainingReport, path: Path) -> None:
    """Train and validation loss per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in report.history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", axes[0]), ("basket", axes[1])):
        ax.plot(epochs, [row[f"train_{key}"] for row in report.history], "o-", label="train")
        ax.plot(epochs, [row[f"valid_{key}"] for row in report.history], "o-", label="valid")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
