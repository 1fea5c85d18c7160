import io

import numpy as np
import pandas as pd
import pytest

from lens.report import plots
from lens.segments.purity import PurityReport


def image(png: bytes) -> np.ndarray:
    import matplotlib.image

    assert png.startswith(b"\x89PNG")
    return matplotlib.image.imread(io.BytesIO(png), format="png")  # [H, W, 4]


def coloured_pixels(png: bytes) -> int:
    """Pixels that are neither grey nor white: what the data marks (bars, points) draw."""
    rgb = image(png)[..., :3]
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 0.2).sum())


def test_embedding_map_draws_every_segment_and_caps_the_points(monkeypatch):
    rng = np.random.default_rng(0)
    embeddings = np.concatenate([rng.normal(0, 1, (50, 6)), rng.normal(8, 1, (50, 6))])
    labels = np.repeat([0, 1], 50)
    png = plots.embedding_map(embeddings, labels, "two blobs")
    assert coloured_pixels(png) > 200
    monkeypatch.setattr(plots, "MAX_POINTS", 10)  # a sample, drawn without error
    assert coloured_pixels(plots.embedding_map(embeddings, labels, "sample")) > 0


def test_one_dimensional_embeddings_still_project():
    assert (
        coloured_pixels(
            plots.embedding_map(np.arange(6.0)[:, None], np.array([0, 0, 0, 1, 1, 1]), "1-D")
        )
        > 0
    )


@pytest.mark.parametrize(
    "png",
    [
        lambda: plots.purity_chart(
            PurityReport(100, 10, 5, 0.4, 0.5, 3, 0.2, 0.01, 0.3, 0.02, 0.21, 0.01)
        ),
        lambda: plots.profile_chart(
            pd.DataFrame(
                {"segment": [0, 1], "customers": [3, 5], "visits": [2.0, 4.0], "spend": [10.0, 7.5]}
            )
        ),
        lambda: plots.anomaly_histogram(np.array([0.1, -0.5, np.nan, 4.0, 1.2]), 3.5),
        lambda: plots.demand_chart(
            pd.DataFrame(
                {
                    "product_id": ["tea", "milk"],
                    "predicted_demand": [9.0, 3.0],
                    "resupply_quantity": [4.0, 2.0],
                }
            )
        ),
    ],
    ids=["purity", "profile", "anomalies", "demand"],
)
def test_every_chart_renders_a_png_with_data_marks(png):
    assert coloured_pixels(png()) > 100
