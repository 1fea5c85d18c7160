import dataclasses

import numpy as np
import pytest

from lens.model.dataset import build_session_table, pad_histories
from tests.unit.model.conftest import first_batch


def test_forward_pass_shapes(model, funnels, vocabulary, users, config):
    batch = first_batch(build_session_table(funnels, vocabulary, users, config))
    out = model(batch)
    n, d, c = 6, config.decode_steps, model.num_classes  # 6 targets, D = 5 + 1
    assert out["logits"].shape == (n, d, c)
    assert out["quantities"].shape == (n, d)
    assert out["time"].shape == (n,)
    assert c == len(vocabulary)  # output vocabulary capped by the item vocabulary


def test_encoder_shapes_and_padding_independence(model, funnels, vocabulary, users, config):
    x = pad_histories(funnels, vocabulary, users, config)
    encodings = model.encode(**x)
    assert encodings.shape == (4, config.max_sessions, config.fbe_output_dim)
    embedding = model.funnel_embedding(**x).numpy()
    assert embedding.shape == (4, config.fbe_output_dim)
    # Padding sessions do not change the encoding: pass only the first lengths.max() sessions.
    width = int(x["lengths"].max())
    short = {k: (v[:, :width] if v.ndim == 3 else v) for k, v in x.items()}
    np.testing.assert_allclose(model.funnel_embedding(**short).numpy(), embedding, atol=1e-5)


def test_unidirectional_fbe_encodes_every_prefix_causally(funnels, vocabulary, users, config):
    from lens.model.lens_model import LensModel

    config = dataclasses.replace(config, fbe_bidirectional=False)
    model = LensModel(config, len(vocabulary), len(users))
    x = pad_histories(funnels, vocabulary, users, config)
    full = model.encode(**x).numpy()  # [B, S, H]
    c = list(funnels).index("c")
    prefix = model.encode(**{k: v[c : c + 1] for k, v in x.items()} | {"lengths": np.array([2], np.int32)})
    np.testing.assert_allclose(prefix.numpy()[0, 1], full[c, 1], atol=1e-5)


def test_warm_start_embeddings_can_be_frozen(vocabulary, users, config):
    from lens.model.lens_model import LensModel

    matrix = np.random.default_rng(0).normal(size=(len(vocabulary), config.item_embedding_dim))
    frozen = LensModel(
        dataclasses.replace(config, freeze_item_embeddings=True), len(vocabulary), len(users),
        item_embeddings=matrix,
    )
    frozen.build_for()
    np.testing.assert_allclose(frozen.item_embedding.embeddings.numpy(), matrix, atol=1e-6)
    assert all(v.path != frozen.item_embedding.embeddings.path for v in frozen.trainable_variables)
    with pytest.raises(ValueError, match="item_embeddings must be"):
        LensModel(config, len(vocabulary), len(users), item_embeddings=matrix[:, :2])
