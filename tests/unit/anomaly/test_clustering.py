import numpy as np
import pytest

from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.errors import DataError


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    return np.concatenate([c + 0.3 * rng.standard_normal((20, 2)) for c in centers])  # [60, 2]


def test_silhouette_picks_the_three_blobs_and_is_deterministic():
    x = blobs()
    model = fit_clusters(x, k_range=range(2, 6))
    assert model.k == 3 and model.silhouette > 0.8
    labels = model.assign(x)
    assert [len(set(labels[i * 20 : (i + 1) * 20])) for i in range(3)] == [1, 1, 1]
    again = fit_clusters(x, k_range=range(2, 6))
    np.testing.assert_array_equal(model.centroids, again.centroids)


def test_given_k_and_tiny_inputs():
    assert fit_clusters(blobs(), k=2).k == 2
    assert fit_clusters(np.array([[1.0, 2.0]])).k == 1  # one point: one cluster at it
    with pytest.raises(DataError):
        fit_clusters(np.array([[np.nan, 1.0]]))


def test_assign_nearest_centroid_ties_to_lowest_index():
    model = ClusterModel(np.array([[0.0, 0.0], [2.0, 0.0]]))
    assert model.assign(np.array([[0.4, 0.0], [1.9, 5.0], [1.0, 0.0]])).tolist() == [0, 1, 0]
    assert model.assign_one([3.0, 0.0]) == 1
    with pytest.raises(DataError):
        model.assign(np.zeros((1, 3)))


@pytest.mark.parametrize("name", ["clusters.json", "clusters.npy"])
def test_save_and_load(tmp_path, name):
    model = fit_clusters(blobs(), k=3)
    loaded = ClusterModel.load(model.save(tmp_path / name))
    np.testing.assert_array_equal(loaded.centroids, model.centroids)
    assert loaded.assign(blobs(1)).tolist() == model.assign(blobs(1)).tolist()


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(DataError):
        ClusterModel.load(path)
