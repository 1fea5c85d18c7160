import numpy as np
import pytest

from lens.errors import ConfigError, DataError
from lens.segments.embeddings import item_embeddings
from lens.segments.product_segments import decoder_products, segment_products


@pytest.fixture(scope="module")
def planted(funnels):
    """An untrained tiny LENS whose item embeddings are three tight blobs: products of group g
    (their vocabulary id mod 3) sit around 5 * g on every axis."""
    from lens.data.vocabulary import Vocabulary
    from lens.model import CONFIGS, TrainedLens, UserIndex

    vocabulary = Vocabulary.build(funnels)
    config = CONFIGS["tiny"]
    rng = np.random.default_rng(0)
    groups = np.arange(len(vocabulary)) % 3  # [V]
    matrix = 5.0 * groups[:, None] + rng.normal(
        0, 0.1, (len(vocabulary), config.item_embedding_dim)
    )
    trained = TrainedLens.create(
        config, vocabulary, UserIndex(sorted(funnels)), item_embeddings=matrix
    )
    return trained, groups


def test_item_embeddings_are_the_models_rows(planted):
    trained, _ = planted
    products = trained.vocabulary.items[:4]
    rows = trained.model.item_embedding.embeddings.numpy()[trained.vocabulary.encode(products)]
    np.testing.assert_allclose(item_embeddings(trained, products), rows)
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        item_embeddings(trained, ["no-such-product"])


def test_silhouette_finds_the_planted_groups_and_they_beat_the_random_control(planted):
    trained, groups = planted
    segments = segment_products(trained, k_range=range(2, 7))
    products = decoder_products(trained)
    assert segments.products == products
    assert len(products) == trained.config.output_vocab_size - 2  # the decoder's classes
    assert segments.k == 3 and segments.model.silhouette > 0.9
    # Each planted group is one segment.
    truth = groups[trained.vocabulary.encode(products)]
    assert len({(t, s) for t, s in zip(truth, segments.labels, strict=True)}) == 3
    subclasses = {p: f"group{g}" for p, g in zip(products, truth, strict=True)}
    report = segments.purity(subclasses, controls=2)
    assert report.purity == 1.0 and report.control_purity < 0.6 and report.shuffled_purity < 0.6
    assert segments.purity({"unknown": "x"}) is None  # no segmented product has a subclass


def test_segment_tables(planted, funnels):
    from lens.segments.catalog import product_frequencies

    trained, _ = planted
    segments = segment_products(trained, k=3)
    frequencies = product_frequencies(funnels)
    members = segments.members(frequencies)
    assert len(members) == len(segments.products)
    first = members.iloc[0]
    assert segments.segment_of(first["product_id"]) == first["segment"]
    assert first["baskets"] == frequencies[first["product_id"]]
    summary = segments.summary(frequencies, top=2)
    assert list(summary["segment"]) == [0, 1, 2]
    assert summary["products"].sum() == len(segments.products) and summary[
        "share"
    ].sum() == pytest.approx(1)
    # Representatives: the two members closest to their centroid, with basket counts.
    closest = members[members["segment"] == 0].head(2)
    expected = "; ".join(
        f"{p} ({n})" for p, n in zip(closest["product_id"], closest["baskets"], strict=True)
    )
    assert summary.loc[0, "representatives"] == expected
    assert "top_subclasses" not in summary.columns
    with_subclasses = segments.summary(frequencies, {p: "same" for p in segments.products})
    assert set(with_subclasses["majority_subclass_share"]) == {1.0}
    assert set(with_subclasses["top_subclasses"]) == {"same (100%)"}
    assert segments.segment_of("no-such-product") is None


def test_too_few_products_is_a_clear_error(planted):
    trained, _ = planted
    with pytest.raises(ConfigError, match="at least 2 products"):
        segment_products(trained, trained.vocabulary.items[:1])
