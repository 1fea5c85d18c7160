"""Warm start: a challenger that begins where the champion left off, on a grown vocabulary.

``warm_start(champion, vocabulary, users)`` builds a model of the champion's architecture for the
new item vocabulary and user index and copies every weight over; the weights indexed by item
(item embedding rows, decoder output columns) or by customer (user embedding rows) are carried by
key (lens.retrain.vocabulary_growth.carry_rows): known items and customers keep what they learned,
new ones keep their fresh initialisation.

``seed_run_directory(trained, out_dir)`` writes that model as the latest checkpoint of a training
run directory: ``lens.model.train_lens`` resumes from the latest checkpoint of its ``out_dir``,
so it then fine-tunes the warm-started weights (with a fresh optimizer, from epoch 1) instead of
a random model. The feature scaler is part of the checkpoint: the challenger keeps the champion's
feature scaling, which its encoder weights were learned on.
"""

from pathlib import Path

from lens.data.vocabulary import Vocabulary
from lens.model.dataset import UserIndex
from lens.model.trained_lens import TrainedLens
from lens.retrain.vocabulary_growth import carry_rows

__all__ = ["seed_run_directory", "warm_start"]


def _item_keys(vocabulary: Vocabulary) -> list[str]:
    return ["<pad>", "<oov>", *vocabulary.items]  # key of vocabulary id i (and decoder class i)


def warm_start(champion: TrainedLens, vocabulary: Vocabulary, users: UserIndex) -> TrainedLens:
    """A new TrainedLens for ``vocabulary``/``users`` holding the champion's weights (see the
    module docstring)."""
    import keras

    keras.utils.set_random_seed(0)  # the fresh rows of new items and customers are reproducible
    grown = TrainedLens.create(champion.config, vocabulary, users)
    old, new = champion.model, grown.model
    old_items, new_items = _item_keys(champion.vocabulary), _item_keys(vocabulary)
    old_users, new_users = ["<unknown>", *champion.users.customers], ["<unknown>", *users.customers]
    old_classes, new_classes = old_items[: old.num_classes], new_items[: new.num_classes]
    # variable -> (keys of the champion's slices, keys of the challenger's slices, axis)
    keyed = {
        id(new.item_embedding.embeddings): (old_items, new_items, 0),  # [V, E]
        id(new.user_embedding.embeddings): (old_users, new_users, 0),  # [U, dim]
        id(new.nsd.output_layer.kernel): (old_classes, new_classes, 1),  # [P, C]
        id(new.nsd.output_layer.bias): (old_classes, new_classes, 0),  # [C]
    }
    # Same config, same construction: the variables come in the same order.
    for mine, theirs in zip(new.variables, old.variables, strict=True):
        learned = theirs.numpy()
        if id(mine) in keyed:
            learned_keys, keys, axis = keyed[id(mine)]
            learned = carry_rows(learned, learned_keys, mine.numpy(), keys, axis=axis)
        elif tuple(mine.shape) != learned.shape:
            raise ValueError(f"{mine.path}: shape {tuple(mine.shape)} vs champion {learned.shape}")
        mine.assign(learned)
    return grown


def seed_run_directory(trained: TrainedLens, out_dir: str | Path) -> bool:
    """Make ``trained`` the checkpoint ``train_lens(..., out_dir)`` resumes from. Returns False
    (and writes nothing) when the run directory already has a checkpoint: that run resumes."""
    import tensorflow as tf

    checkpoints = Path(out_dir) / "checkpoints"
    if tf.train.latest_checkpoint(str(checkpoints)):
        return False
    # The same names as train_lens's checkpoint (model, epoch); its optimizer starts fresh.
    checkpoint = tf.train.Checkpoint(model=trained.model, epoch=tf.Variable(0, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(checkpoints), max_to_keep=2).save()
    return True
