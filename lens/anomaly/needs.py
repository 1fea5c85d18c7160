"""Need-level signals of Algorithm 1's level, over the retailer's product catalog (optional).

A customer's needs are the catalog categories of what they buy (``categories``: product ->
category, e.g. Ta-Feng's PRODUCT_SUBCLASS or the ``products.csv`` of ``lens data synth``, read by
``lens.segments.read_product_subclasses``). Products the catalog does not list are left out.
With the sessions split as in ``repertoire.novelty`` (the last ``window`` sessions against the
sessions before them, at least ``established`` of those):

    dropped = sum of r_c over the established categories absent from the window
              / max(sum of r_c over all established categories, ``floor``)
              (r_c = share of the earlier sessions holding category c; established: r_c >=
              ``regular`` and bought in at least ``min_count`` earlier sessions; the floor
              keeps a customer with a single regular category, who skips it for a few
              sessions, from the share of 1 that a dropped department reaches)
    new     = share of the window's distinct categories that no earlier session holds and that
              at least ``repeat`` of the window's sessions hold

Why categories, not products: a need buys its favourite product only some of the time (brand
loyalty), so a product-level repertoire sees a brand switch where a need goes on; the category
stays. A need that stops (``drop_need``: no more baby products) leaves no new product for the
novelty to see, only established categories that no longer come (measured on the synthetic
benchmark, BENCHMARKS.md: with the world's categories the dropped share is 0 for most ordinary
customers). A need that starts (a new pet) brings categories the customer never bought, bought
again soon; one-off exploration seldom repeats within a few sessions.
"""

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from lens.anomaly.repertoire import split_window
from lens.errors import ConfigError

__all__ = ["dropped_needs", "need_sessions", "new_needs", "read_catalog"]


def read_catalog(path: str | Path) -> dict[str, str]:
    """product -> category of a catalog file (``lens.segments.read_product_subclasses``: a CSV,
    plain or zipped, with PROD_ID or PRODUCT_ID and PRODUCT_SUBCLASS); ConfigError when the file
    is missing or lists no product with a category."""
    from lens.segments.catalog import read_product_subclasses  # pandas: only when configured

    if not Path(path).is_file():
        raise ConfigError(f"anomaly catalog {path} does not exist (LENS_ANOMALY_CATALOG)")
    categories = read_product_subclasses(path)
    if not categories:
        raise ConfigError(
            f"anomaly catalog {path} lists no product with a category: it needs a PROD_ID (or "
            "PRODUCT_ID) and a PRODUCT_SUBCLASS column, e.g. the products.csv of lens data synth"
        )
    return categories


def need_sessions(
    sessions: Sequence[Sequence[str]], categories: Mapping[str, str]
) -> list[frozenset[str]]:
    """The categories of each session's products (oldest first); unlisted products left out."""
    return [frozenset(categories[p] for p in products if p in categories) for products in sessions]


def dropped_needs(
    needs: Sequence[Collection[str]],
    *,
    window: int,
    established: int,
    regular: float = 0.5,
    min_count: int = 4,
    floor: float = 2.0,
) -> float | None:
    """Share (weighted by how regularly each came) of the customer's established categories that
    the last ``window`` sessions of ``needs`` (categories per session, oldest first) do not hold,
    its denominator at least ``floor``; None when fewer than ``established`` sessions come
    before the window, 0.0 without an established category."""
    parts = split_window(needs, window, established)
    if parts is None:
        return None
    before, recent = parts
    counts = Counter(c for session in before for c in set(session))
    rates = {
        c: k / len(before) for c, k in counts.items()
        if k >= min_count and k / len(before) >= regular
    }
    if not rates:
        return 0.0
    bought = {c for session in recent for c in session}
    missing = sum(r for c, r in rates.items() if c not in bought)
    return missing / max(sum(rates.values()), floor)


def new_needs(
    needs: Sequence[Collection[str]], *, window: int, established: int, repeat: int = 2
) -> float | None:
    """Share of the distinct categories of the last ``window`` sessions of ``needs`` that no
    earlier session holds and at least ``repeat`` sessions of the window hold; None when fewer
    than ``established`` sessions come before the window, 0.0 when the window holds none."""
    parts = split_window(needs, window, established)
    if parts is None:
        return None
    before, recent = parts
    known = {c for session in before for c in session}
    seen = Counter(c for session in recent for c in set(session))
    if not seen:
        return 0.0
    return sum(1 for c, k in seen.items() if c not in known and k >= repeat) / len(seen)
