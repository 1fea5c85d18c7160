"""Do segments mean something? Purity against a known classification, next to a random control.

    purity = (1 / N) * sum over segments s of max over classes c of |s ∩ c|

the share of items that sit in their segment's majority class (1 = every segment is one class).
Purity grows with the number of segments K and with the classes' sizes, so it is only read next to
a control: the same items, the same K, but random Gaussian vectors instead of learned embeddings
(k-means on noise: what segments look like when the embeddings carry no information). Learned
segments can be more uneven than those (a few tiny segments are pure by chance), so a second,
size-matched control shuffles the learned labels over the items: the same segment sizes, no
information. NMI (normalized mutual information, sklearn) is reported beside purity.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lens.anomaly.clustering import fit_clusters
from lens.errors import DataError

__all__ = ["PurityReport", "compare_with_random", "purity"]


def purity(labels: Sequence[int], classes: Sequence[str]) -> float:
    """Purity of segment ``labels`` [N] against ``classes`` [N] (see the module docstring)."""
    labels, classes = np.asarray(labels), np.asarray(classes)
    if len(labels) != len(classes) or len(labels) == 0:
        raise DataError(
            f"purity needs as many labels as classes (> 0), got {len(labels)} and {len(classes)}"
        )
    _, class_ids = np.unique(classes, return_inverse=True)
    _, label_ids = np.unique(labels, return_inverse=True)
    table = np.zeros((label_ids.max() + 1, class_ids.max() + 1), dtype=np.int64)  # [K, C]
    np.add.at(table, (label_ids, class_ids), 1)
    return float(table.max(axis=1).sum() / len(labels))


@dataclass(frozen=True)
class PurityReport:
    """Purity and NMI of the learned segments and of ``controls`` random-embedding segmentations
    (mean and standard deviation over control seeds 0..controls-1), and the purity of the
    learned labels shuffled over the items (``shuffled_purity``, same seeds), on ``items``
    classified items in ``classes`` classes, with ``k`` segments."""

    items: int
    classes: int
    k: int
    purity: float
    nmi: float
    controls: int
    control_purity: float
    control_purity_std: float
    control_nmi: float
    control_nmi_std: float
    shuffled_purity: float
    shuffled_purity_std: float

    @property
    def lift(self) -> float:
        """purity / control purity (1 = no better than random embeddings)."""
        return self.purity / self.control_purity if self.control_purity > 0 else float("nan")

    def to_dict(self) -> dict:
        return asdict(self) | {"lift": self.lift}

    def describe(self) -> str:
        return (
            f"subclass purity {self.purity:.4f} (NMI {self.nmi:.4f}) vs random-embedding control "
            f"{self.control_purity:.4f} ± {self.control_purity_std:.4f} (NMI {self.control_nmi:.4f}"
            f" ± {self.control_nmi_std:.4f}, {self.controls} seeds): lift {self.lift:.2f}x; "
            f"same segment sizes, shuffled: {self.shuffled_purity:.4f} ± "
            f"{self.shuffled_purity_std:.4f}; {self.items:,} products in {self.classes:,} "
            f"subclasses, K = {self.k}"
        )


def compare_with_random(
    labels: Sequence[int], classes: Sequence[str], *, k: int, dim: int, controls: int = 5
) -> PurityReport:
    """Score ``labels`` [N] (segments of N classified items, K = ``k``) against ``classes`` [N],
    and ``controls`` k-means segmentations of N random vectors of size ``dim`` into ``k``."""
    from sklearn.metrics import normalized_mutual_info_score

    if controls < 1:
        raise DataError(f"need at least one random control, got {controls}")
    classes, labels = np.asarray(classes), np.asarray(labels)
    control_purity, control_nmi, shuffled = [], [], []
    for seed in range(controls):
        rng = np.random.default_rng(seed)
        noise = rng.normal(size=(len(classes), dim))  # [N, dim]
        random_labels = fit_clusters(noise, k=k, seed=seed).assign(noise)
        control_purity.append(purity(random_labels, classes))
        control_nmi.append(normalized_mutual_info_score(classes, random_labels))
        shuffled.append(purity(rng.permutation(labels), classes))
    return PurityReport(
        items=len(classes),
        classes=len(np.unique(classes)),
        k=k,
        purity=purity(labels, classes),
        nmi=float(normalized_mutual_info_score(classes, labels)),
        controls=controls,
        control_purity=float(np.mean(control_purity)),
        control_purity_std=float(np.std(control_purity)),
        control_nmi=float(np.mean(control_nmi)),
        control_nmi_std=float(np.std(control_nmi)),
        shuffled_purity=float(np.mean(shuffled)),
        shuffled_purity_std=float(np.std(shuffled)),
    )
