"""The report's figures, each rendered to PNG bytes with matplotlib's Agg backend (no display).

embedding_map(embeddings [N, D], labels [N])   2-D PCA projection coloured by segment
purity_chart(report)                           learned segments vs the random control
profile_chart(profile)                         one small bar chart per profile figure
anomaly_histogram(scores [N], threshold)       distribution of dB
demand_chart(risk)                             predicted demand vs resupply per product
"""

import io

import numpy as np
import pandas as pd

from lens.segments.purity import PurityReport

__all__ = ["anomaly_histogram", "demand_chart", "embedding_map", "profile_chart", "purity_chart"]

# Points drawn per projection: beyond a few thousand a scatter only gets slower, not clearer.
MAX_POINTS = 5000
DPI = 100


def _figure(width: float, height: float, rows: int = 1, columns: int = 1):
    """(figure, [axes], row by row)."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: the report is written on machines without a display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, columns, figsize=(width, height), dpi=DPI, squeeze=False)
    return figure, list(axes.flat)


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def embedding_map(
    embeddings: np.ndarray, labels: np.ndarray, title: str, *, seed: int = 0
) -> bytes:
    """PCA of ``embeddings`` [N, D] onto its first two components, one colour per segment of
    ``labels`` [N]; at most MAX_POINTS points (a fixed random sample beyond that)."""
    from sklearn.decomposition import PCA

    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if len(x) > MAX_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), MAX_POINTS, replace=False))
        x, labels = x[keep], labels[keep]
    points = (
        PCA(n_components=2, random_state=seed).fit_transform(x)
        if min(x.shape) >= 2
        else (np.column_stack([x[:, 0], np.zeros(len(x))]))
    )  # [N, 2]
    figure, (axes,) = _figure(7, 5.5)
    segments = np.unique(labels)
    colours = _colours(len(segments))
    for colour, segment in zip(colours, segments, strict=True):
        mine = labels == segment
        axes.scatter(
            points[mine, 0], points[mine, 1], s=6, alpha=0.6, color=colour, label=str(segment)
        )
    axes.set(title=title, xlabel="principal component 1", ylabel="principal component 2")
    if len(segments) <= 20:
        axes.legend(title="segment", markerscale=2.5, fontsize=7, loc="best", ncol=2)
    return _png(figure)


def purity_chart(report: PurityReport) -> bytes:
    """Subclass purity of the learned segments next to both controls (± one std)."""
    figure, (axes,) = _figure(6, 3.2)
    axes.bar(
        ["LENS item embeddings", "random embeddings", "shuffled segments"],
        [report.purity, report.control_purity, report.shuffled_purity],
        yerr=[0, report.control_purity_std, report.shuffled_purity_std],
        color=["tab:blue", "tab:gray", "tab:olive"],
        capsize=6,
    )
    axes.set(title=f"PRODUCT_SUBCLASS purity, K = {report.k}", ylabel="purity")
    return _png(figure)


# Profile columns drawn, with their axis labels.
PROFILE_FIGURES = {
    "customers": "customers",
    "visits": "visits per customer",
    "days_between_visits": "days between visits (median)",
    "basket_size": "products per basket",
    "spend": "spend per basket",
    "repeat_share": "repeat share",
    "predicted_days_to_next": "predicted days to next visit",
}


PROFILE_COLUMNS = 4  # charts per row


def profile_chart(profile: pd.DataFrame) -> bytes:
    """A bar per segment for each PROFILE_FIGURES column of ``profile`` (one row per segment)."""
    columns = [c for c in PROFILE_FIGURES if c in profile.columns]
    rows = -(-len(columns) // PROFILE_COLUMNS)
    figure, grid = _figure(11, 2.8 * rows, rows=rows, columns=PROFILE_COLUMNS)
    for unused in grid[len(columns) :]:
        unused.set_visible(False)
    colours = _colours(len(profile))
    positions = np.arange(len(profile))
    for axes, column in zip(grid, columns, strict=False):
        axes.bar(positions, profile[column].to_numpy(dtype=np.float64), color=colours)
        axes.set_xticks(positions, [str(s) for s in profile["segment"]])
        axes.set_title(PROFILE_FIGURES[column], fontsize=9)
        axes.set_xlabel("segment", fontsize=8)
        axes.tick_params(labelsize=7)
    return _png(figure)


def anomaly_histogram(scores: np.ndarray, threshold: float) -> bytes:
    """Histogram of the finite dB ``scores`` [N] with the alert threshold marked."""
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    figure, (axes,) = _figure(7, 3.5)
    axes.hist(finite, bins=50, color="tab:purple")
    axes.axvline(threshold, color="tab:red", linestyle="--", label=f"alert threshold {threshold:g}")
    axes.set(
        title="Behaviour anomaly score dB (robust z within the customer's segment)",
        xlabel="dB",
        ylabel="customers",
    )
    axes.legend()
    return _png(figure)


def demand_chart(risk: pd.DataFrame) -> bytes:
    """Predicted demand vs resupply (units) for each product of ``risk`` (columns product_id,
    predicted_demand, resupply_quantity), one pair of horizontal bars per product."""
    figure, (axes,) = _figure(7, 0.45 * len(risk) + 1.5)
    rows = np.arange(len(risk))
    axes.barh(
        rows - 0.2,
        risk["predicted_demand"],
        height=0.4,
        color="tab:orange",
        label="predicted demand",
    )
    axes.barh(
        rows + 0.2, risk["resupply_quantity"], height=0.4, color="tab:green", label="resupply"
    )
    axes.set_yticks(rows, risk["product_id"], fontsize=8)
    axes.invert_yaxis()  # riskiest on top
    axes.set(title="Riskiest products: predicted demand vs resupply", xlabel="units")
    axes.legend()
    return _png(figure)


def _colours(n: int) -> list:
    import matplotlib

    palette = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return [palette(i % palette.N) for i in range(n)]
