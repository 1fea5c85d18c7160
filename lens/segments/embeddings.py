"""What a trained LENS run says about products and customers: item embeddings and funnel readouts.

    item_embeddings(trained, products)        -> float64 [N, E], row i = products[i]
    FunnelReader(trained).read(histories)     -> FunnelReadout: per customer the funnel embedding
                                                 fE [H] (the vector Algorithm 1 clusters), the
                                                 decoded next basket and the days to the next visit

Both read a ``lens.model.TrainedLens`` (``TrainedLens.load(run_dir)``), the same weights the
exported ``item_embedding`` and ``funnel_embedding`` signatures serve. A FunnelReader compiles the
model's inference graph once (tens of seconds for lens1000), so build one and read with it often.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lens.data.basket import Funnels
from lens.data.vocabulary import OOV_ID
from lens.errors import DataError

__all__ = ["FunnelReadout", "FunnelReader", "item_embeddings"]

log = logging.getLogger(__name__)

# Customers per call of the compiled predictor between two progress lines.
READ_CHUNK = 2048

Progress = Callable[[int, int], None]  # (done, total)


def item_embeddings(trained, products: Sequence[str]) -> np.ndarray:
    """The learned embedding of each product: float64 [N, E]. DataError names a product the
    model's vocabulary does not know (it has no embedding of its own, only the OOV row)."""
    ids = trained.vocabulary.encode(products)  # int32 [N]
    unknown = [p for p, i in zip(products, ids, strict=True) if i == OOV_ID]
    if unknown:
        raise DataError(
            f"{len(unknown)} product(s) are not in the model's vocabulary (first: {unknown[0]!r}); "
            "segment only products the model was trained on."
        )
    return np.asarray(trained.model.item_embedding(ids), dtype=np.float64)


@dataclass(frozen=True)
class FunnelReadout:
    """The model's view of each customer, index-aligned with ``customers`` ([N] each).

    embeddings: float64 [N, H], the funnel embedding fE of the whole history;
    days_to_next: float64 [N], the time head's predicted days to the next visit;
    baskets / quantities: the decoded next basket (product ids) and its predicted units.
    """

    customers: tuple[str, ...]
    embeddings: np.ndarray
    days_to_next: np.ndarray
    baskets: tuple[tuple[str, ...], ...]
    quantities: tuple[tuple[float, ...], ...]


class FunnelReader:
    """Runs a TrainedLens over customer histories, in chunks of READ_CHUNK customers."""

    def __init__(self, trained) -> None:
        from lens.model import Predictor

        self.trained = trained
        self._predictor = Predictor(trained)

    def read(self, histories: Funnels, *, progress: Progress | None = None) -> FunnelReadout:
        """Every customer of ``histories`` (each history non-empty), in ``histories`` order;
        ``progress(done, total)`` is called after each chunk."""
        customers = list(histories)
        if not customers:
            raise DataError("no customers to read: the history is empty")
        empty = [c for c in customers if len(histories[c]) == 0]
        if empty:
            raise DataError(f"{len(empty)} customer(s) have no basket (first: {empty[0]!r})")
        decode = self.trained.vocabulary.decode
        embeddings, days, baskets, quantities = [], [], [], []
        for start in range(0, len(customers), READ_CHUNK):
            chunk = customers[start : start + READ_CHUNK]
            out = self._predictor.predict_arrays({c: histories[c] for c in chunk})
            embeddings.append(out["encoding"])  # [B, H]
            days.append(out["days_to_next"])  # [B]
            for row in range(len(chunk)):
                size = int(out["sizes"][row])
                ids = out["items"][row][:size]
                # decode() skips reserved ids; keep the quantities of the items it keeps.
                kept = ids >= 2
                baskets.append(tuple(decode(ids[kept])))
                quantities.append(tuple(float(q) for q in out["quantities"][row][:size][kept]))
            if progress is not None:
                progress(start + len(chunk), len(customers))
        return FunnelReadout(
            customers=tuple(customers),
            embeddings=np.concatenate(embeddings).astype(np.float64),
            days_to_next=np.concatenate(days).astype(np.float64),
            baskets=tuple(baskets),
            quantities=tuple(quantities),
        )
