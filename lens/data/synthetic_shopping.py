"""Turns needs into shopping trips: the vectorized simulation behind :mod:`lens.data.synthetic`.

For one chunk of customers:

1. every need row runs a renewal process: the first purchase falls uniformly in its first period
   (or within half a period of the day a new need starts), each next one ``period * LogNormal(0,
   jitter)`` later, while the need is active. A row with an ``anchor`` (planted promotion) keeps
   an exact rhythm instead: its purchases fall on ``anchor + k * round(period)`` (whole days, no
   jitter), each a forced trip, so the history before the anchor predicts the anchor's day;
2. purchases become trips, per customer greedily: the earliest purchase not yet made triggers a
   trip 0-2 days before it is due (busy weekdays, above all Saturday, attract the trip); the trip
   also buys everything due within ``min(horizon, 0.75 * period)`` days. A forced purchase gets a
   trip on its own day. A customer makes at most one trip a day;
3. a purchase buys the favourite product with probability ``loyalty``, else mostly the need's
   alternative brand (ALTERNATIVE_SHARE), else a popular brand of the category; seasonal needs
   buy whatever is in season; units ``1 + Poisson(units - 1)``;
4. a trip goes to the preferred store, or with probability ``other_store`` to another one (forced
   trips always go to the preferred store); products a store does not sell become the category's
   national leader; with probability ``explore`` the trip adds one item outside the needs.
"""

from dataclasses import dataclass

import numpy as np

from lens.data.synthetic_world import ALTERNATIVE_SHARE, SEASONAL, Catalog, Population

__all__ = ["DOW_WEIGHT", "Lines", "shop"]

# Monday .. Sunday: how strongly each weekday attracts a trip.
DOW_WEIGHT = np.array([0.6, 0.55, 0.6, 0.7, 1.1, 2.0, 1.4])
SHIFT_DECAY = 0.7  # a trip 1 (2) days before the trigger is SHIFT_DECAY (squared) as likely
OPEN_MINUTE, CLOSE_MINUTE = 8 * 60, 22 * 60  # trips happen in [08:00, 22:00)


@dataclass(frozen=True)
class Lines:
    """Transaction lines of a chunk, one per (trip, product). Shapes ``[n_lines]``.

    A trip is identified by (customer, day): a customer shops at most once a day.
    """

    customer: np.ndarray  # int32 global customer index
    day: np.ndarray  # int16 days since the start
    minute: np.ndarray  # int16 minute of the day
    store: np.ndarray  # int8
    product: np.ndarray  # int16
    units: np.ndarray  # int32, >= 1

    @staticmethod
    def concat(parts: list["Lines"]) -> "Lines":
        fields = Lines.__dataclass_fields__
        return Lines(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def _purchase_times(
    rng: np.random.Generator,
    period: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    jitter: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Renewal process per row: returns (row, time) of every purchase with start <= time < end."""
    rows, times = [], []
    idx = np.arange(period.size)
    t = start.copy()
    while idx.size:
        alive = t < end[idx]
        idx, t = idx[alive], t[alive]
        rows.append(idx)
        times.append(t)
        t = t + period[idx] * rng.lognormal(0.0, jitter[idx])
    return np.concatenate(rows), np.concatenate(times)


def _anchor(
    row: np.ndarray, t: np.ndarray, anchor: np.ndarray, period: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Put anchored rows on their exact rhythm; returns (row, t, forced, promoted).

    An anchored row's renewal purchases are replaced by ``anchor + k * round(period)`` for every
    whole k with 0 <= time < ``end``; all are forced (a trip on their own day). Were only the
    anchor forced, the earlier purchases would drift early (trips come 0-2 days ahead and bundle
    what falls due soon) and jitter, and the history would point days before the anchor: on the
    demo world only 6 of 39 promoted customers' rhythms pointed within a day of their promotion.
    ``promoted`` marks the anchor purchases themselves (the promotion's units).
    """
    a_rows = np.flatnonzero(anchor >= 0)
    if a_rows.size == 0:
        none = np.zeros(row.size, dtype=bool)
        return row, t, none, none
    keep = ~np.isin(row, a_rows)
    step = np.maximum(1.0, np.round(period[a_rows]))
    first = -np.floor(anchor[a_rows] / step)  # k of the first purchase at or after day 0
    last = np.ceil((end[a_rows] - anchor[a_rows]) / step) - 1  # of the last before ``end``
    count = (last - first + 1).astype(np.int64)
    k = np.concatenate([np.arange(f, f + n) for f, n in zip(first, count, strict=True)])
    pinned = np.repeat(a_rows, count)
    pinned_t = anchor[pinned] + k * np.repeat(step, count)
    row = np.concatenate([row[keep], pinned])
    t = np.concatenate([t[keep], pinned_t])
    forced = np.concatenate([np.zeros(int(keep.sum()), dtype=bool), np.ones(pinned.size, bool)])
    promoted = np.concatenate([np.zeros(int(keep.sum()), dtype=bool), k == 0])
    return row, t, forced, promoted


def _trips(
    rng: np.random.Generator,
    cust: np.ndarray,
    t: np.ndarray,
    period: np.ndarray,
    forced: np.ndarray,
    earliest: np.ndarray,
    horizon: np.ndarray,
    first_weekday: int,
) -> np.ndarray:
    """Day of the trip on which each purchase (``cust[i]`` due at ``t[i]``) is made.

    Per customer, greedily: the earliest purchase not yet made triggers a trip 0-2 days before
    it is due (the shift favours busy weekdays); the trip also buys every purchase due within
    ``min(horizon, 0.75 * period)`` days of it. Forced purchases get a trip on their own day.
    No purchase is made before its ``earliest`` day (the day its need starts).
    """
    day = np.floor(t).astype(np.int64)
    out = day.copy()
    free = np.flatnonzero(~forced)
    order = free[np.lexsort((t[free], cust[free]))]  # remaining purchases, by customer then time
    # compacted views of the remaining purchases, shrunk every round
    r_idx, r_cust, r_t, r_day, r_min = order, cust[order], t[order], day[order], earliest[order]
    r_reach = np.minimum(horizon[r_cust], 0.75 * period[order])
    back = np.arange(3)  # (3,)
    while r_idx.size:
        first = np.ones(r_idx.size, dtype=bool)
        first[1:] = r_cust[1:] != r_cust[:-1]
        d0 = r_day[first]  # (n_active,) day each customer's earliest remaining purchase is due
        # (n_active, 3) weights of a trip 0, 1, 2 days early
        w = DOW_WEIGHT[(first_weekday + d0[:, None] - back) % 7] * SHIFT_DECAY**back
        w[d0[:, None] - back < 0] = 0.0
        cw = np.cumsum(w, axis=1)
        pick = (rng.random(d0.size)[:, None] * cw[:, -1:] > cw).sum(axis=1)
        trip = np.maximum(d0 - pick, r_min[first])  # (n_active,)
        tday = trip[np.cumsum(first) - 1]  # (n_remaining,) the trip day of each one's customer
        take = ((r_t < tday + r_reach) & (r_min <= tday)) | first
        out[r_idx[take]] = tday[take]
        keep = ~take
        r_idx, r_cust, r_t, r_day, r_min, r_reach = (
            r_idx[keep], r_cust[keep], r_t[keep], r_day[keep], r_min[keep], r_reach[keep]
        )
    return out


def shop(
    rng: np.random.Generator,
    population: Population,
    catalog: Catalog,
    lo: int,
    hi: int,
    days: int,
    stores: int,
    first_weekday: int,
) -> Lines:
    """Simulate customers ``lo .. hi-1`` over ``days`` days (day 0 is a ``first_weekday``)."""
    pop = population
    needs_all = pop.needs
    a, b = np.searchsorted(needs_all.customer, [lo, hi])
    nd = needs_all.take(np.arange(a, b))

    # 1. when each need is bought
    fresh = nd.active_from > 0
    phase = rng.random(len(nd))
    start = np.where(fresh, nd.active_from + phase * 0.5 * nd.period, phase * nd.period)
    end = np.minimum(nd.active_to, days)
    row, t = _purchase_times(rng, nd.period, start, end, pop.jitter[nd.customer])
    row, t, forced, promoted = _anchor(row, t, nd.anchor, nd.period, end)
    inside = (t >= nd.active_from[row]) & (t < end[row])
    row, t, forced, promoted = row[inside], t[inside], forced[inside], promoted[inside]
    n_ev = row.size
    cust = nd.customer[row] - lo  # local customer index

    # 2. on which trip
    earliest = np.ceil(nd.active_from[row]).astype(np.int64)
    trip_day = _trips(
        rng, cust, t, nd.period[row], forced, earliest, pop.horizon[lo:hi], first_weekday
    )
    trip_key = cust * days + trip_day
    trips, trip_of = np.unique(trip_key, return_inverse=True)  # (n_trips,), (n_ev,)
    n_trips = trips.size
    t_cust, t_day = trips // days, trips % days
    t_forced = np.zeros(n_trips, dtype=bool)
    t_forced[trip_of[forced]] = True

    # 3. what is bought
    cat = nd.category[row]
    u = rng.random(n_ev)
    loyalty = nd.loyalty[row]
    product = np.where(
        u < loyalty,
        nd.favourite[row],
        np.where(
            u < loyalty + (1 - loyalty) * ALTERNATIVE_SHARE,
            nd.alternative[row],
            catalog.draw_in_category(cat, rng.random(n_ev)),
        ),
    )
    seasonal = cat == SEASONAL
    product[seasonal] = catalog.draw_seasonal(
        t_day[trip_of[seasonal]], rng.random(int(seasonal.sum()))
    )
    product[forced] = nd.favourite[row[forced]]
    units = 1 + rng.poisson(nd.units[row] - 1.0)
    units[promoted] = nd.anchor_units[row[promoted]]

    # 4. where and when, plus exploration
    g = t_cust + lo
    pref = pop.store[g]
    store = pref.copy()
    if stores > 1:
        away = (rng.random(n_trips) < pop.other_store[g]) & ~t_forced
        store[away] = (pref[away] + 1 + rng.integers(0, stores - 1, int(away.sum()))) % stores
    minute = np.round((pop.hour[g] + rng.normal(0.0, 1.3, n_trips)) * 60).astype(np.int64)
    minute = np.where(minute < OPEN_MINUTE, 2 * OPEN_MINUTE - minute, minute)  # reflect
    minute = np.where(minute >= CLOSE_MINUTE, 2 * (CLOSE_MINUTE - 1) - minute, minute)
    minute = np.clip(minute, OPEN_MINUTE, CLOSE_MINUTE - 1)
    explorer = np.flatnonzero(rng.random(n_trips) < pop.explore[g])
    line_trip = np.concatenate([trip_of, explorer])
    product = np.concatenate(
        [product, catalog.draw_explore(t_day[explorer], rng.random(explorer.size))]
    )
    units = np.concatenate([units, np.ones(explorer.size, dtype=np.int64)])
    product = catalog.in_store(product, store[line_trip])

    # one line per (trip, product)
    line_key = line_trip * catalog.n_products + product
    lines, line_of = np.unique(line_key, return_inverse=True)
    units = np.bincount(line_of, weights=units, minlength=lines.size).astype(np.int64)
    tr = lines // catalog.n_products
    return Lines(
        customer=g[tr].astype(np.int32),
        day=t_day[tr].astype(np.int16),
        minute=minute[tr].astype(np.int16),
        store=store[tr].astype(np.int8),
        product=(lines % catalog.n_products).astype(np.int16),
        units=units.astype(np.int32),
    )
