import numpy as np
import pytest

from lens.anomaly import ClusterModel
from lens.errors import DataError
from lens.segments.customer_segments import segment_customers
from lens.segments.segment_map import SegmentMap


def test_the_readout_is_the_models_funnel_embedding_and_time_head(reader, funnels):
    from lens.model import pad_histories

    some = {c: funnels[c] for c in list(funnels)[:5]}
    seen = []
    readout = reader.read(some, progress=lambda done, total: seen.append((done, total)))
    trained = reader.trained
    x = pad_histories(some, trained.vocabulary, trained.users, trained.config)
    encoding = trained.model.funnel_embedding(x["items"], x["features"], x["user"], x["lengths"])
    np.testing.assert_allclose(readout.embeddings, np.asarray(encoding), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        readout.days_to_next, np.asarray(trained.model.days_to_next(encoding)), rtol=1e-5, atol=1e-5
    )
    assert readout.customers == tuple(some) and seen == [(5, 5)]
    assert all(set(b) <= set(trained.vocabulary.items) for b in readout.baskets)
    assert [len(q) for q in readout.quantities] == [len(b) for b in readout.baskets]


def test_customer_segments_are_the_anomaly_clusters(reader, funnels, tmp_path):
    segments = segment_customers(reader, funnels, seed=0)
    assert len(segments.readout.customers) == len(funnels)
    assert 1 <= segments.k <= 8
    # The segment of each customer is what the live worker computes: assign_one(fE).
    saved = SegmentMap(clusters=segments.model).save(tmp_path)
    live = SegmentMap.load(saved)
    for i, customer in enumerate(segments.readout.customers[:10]):
        assert segments.segment_of(customer) == live.customer_segment(
            segments.readout.embeddings[i]
        )
    members = segments.members()
    assert list(members["segment"]) == list(segments.labels)
    assert (members["days_to_next"] >= 0).all()


def test_given_clusters_are_used_as_they_are(reader, funnels):
    dim = reader.trained.config.fbe_output_dim
    clusters = ClusterModel(np.stack([np.zeros(dim), np.full(dim, 100.0)]))
    segments = segment_customers(reader, funnels, clusters=clusters)
    assert segments.model is clusters and set(segments.labels) == {0}  # all near the origin
    assert segments.segment_of("nobody") is None


def test_empty_histories_are_rejected(reader):
    with pytest.raises(DataError, match="history is empty"):
        reader.read({})
    with pytest.raises(DataError, match="no basket"):
        reader.read({"a": ()})
