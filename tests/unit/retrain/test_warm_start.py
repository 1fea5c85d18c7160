import numpy as np

from lens.data.vocabulary import Vocabulary
from lens.model.config import CONFIGS, TrainingConfig
from lens.model.dataset import UserIndex
from lens.model.trained_lens import TrainedLens
from lens.model.training import train_lens
from lens.retrain import grown_vocabulary, seed_run_directory, warm_start
from tests.unit.model.conftest import basket, make_funnels


def champion() -> TrainedLens:
    import keras

    keras.utils.set_random_seed(7)
    funnels = make_funnels()
    return TrainedLens.create(CONFIGS["tiny"], Vocabulary.build(funnels), UserIndex(sorted(funnels)))


def rows(variable, index):
    return variable.numpy()[index]


def new_window():
    """The champion's funnels plus a new customer who buys a new product (kefir)."""
    window = dict(make_funnels())
    window["e"] = (basket("e", 20, "kefir milk"), basket("e", 27, "kefir"))
    return window


def grown_for_new_data(old: TrainedLens):
    window = new_window()
    return grown_vocabulary(old.vocabulary, window), UserIndex(sorted(window))


def test_known_items_and_customers_keep_their_weights_new_ones_are_initialised():
    old = champion()
    vocabulary, users = grown_for_new_data(old)
    new = warm_start(old, vocabulary, users)
    o, n = old.model, new.model
    for item in old.vocabulary.items:
        np.testing.assert_array_equal(
            rows(n.item_embedding.embeddings, vocabulary.id_of(item)),
            rows(o.item_embedding.embeddings, old.vocabulary.id_of(item)),
        )
        # Decoder output column of the item's class (class id == vocabulary id).
        np.testing.assert_array_equal(
            n.nsd.output_layer.kernel.numpy()[:, vocabulary.id_of(item)],
            o.nsd.output_layer.kernel.numpy()[:, old.vocabulary.id_of(item)],
        )
    kefir = rows(n.item_embedding.embeddings, vocabulary.id_of("kefir"))
    assert not any(np.allclose(kefir, row) for row in o.item_embedding.embeddings.numpy())
    assert np.abs(kefir).max() > 0  # initialised, not zeros
    np.testing.assert_array_equal(
        rows(n.user_embedding.embeddings, users.row_of("c")),
        rows(o.user_embedding.embeddings, old.users.row_of("c")),
    )
    # Everything not indexed by item or customer is copied as it is.
    for mine, theirs in zip(n.sce.variables, o.sce.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_train_lens_resumes_from_the_seeded_run_directory(tmp_path):
    old = champion()
    vocabulary, users = grown_for_new_data(old)
    window = new_window()
    seeded = warm_start(old, vocabulary, users)
    assert seed_run_directory(seeded, tmp_path)
    assert not seed_run_directory(seeded, tmp_path)  # a run with a checkpoint resumes as it is
    # No epoch to run: the model train_lens returns is exactly the seeded one.
    trained, _ = train_lens(
        window, old.config, TrainingConfig(epochs=0, compiled=False), tmp_path, vocabulary=vocabulary
    )
    for mine, theirs in zip(trained.model.weights, seeded.model.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
