"""What the synthetic generator plants for the detectors to find, and the records it keeps.

- **Behaviour changes** (Algorithm 1's anomalies): a customer's needs change on a known day:
  ``switch_segment`` (every need ends, a new segment's needs start), ``drop_need`` (every need of
  one department ends, e.g. no more baby products) or ``new_need`` (every category of a department
  the customer never bought starts, e.g. a new pet).
- **Demand surges** (Algorithm 2's out-of-stock alerts): a promotion of one product in one store
  on one day of the resupply window. A cohort of that store's customers have the product as a
  recurring need whose purchase falls exactly on that day, buying more units than usual. Each
  member's need keeps an exact rhythm of whole days through that day (the shopping simulation
  pins every purchase of an anchored need), so their histories predict the day: last purchase
  plus their usual interval. The resupply plan, forecast from history, does not know about it
  and falls short.
"""

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np

from lens.data.synthetic_world import (
    CATEGORIES,
    MIN_PERIOD,
    SEASONAL,
    SEGMENTS,
    Catalog,
    Needs,
    Population,
    draw_needs,
    need_rows,
)

__all__ = [
    "CHANGE_KINDS",
    "BehaviourChange",
    "DemandSurge",
    "SurgePlan",
    "plant_changes",
    "plant_surges",
]

CHANGE_KINDS = ("switch_segment", "drop_need", "new_need")
CHANGE_KIND_SHARE = (0.4, 0.3, 0.3)
CHANGE_WINDOW = (0.35, 0.7)  # change days fall in this part of the period
MIN_COHORT = 5
PROMOTED_MAX_PERIOD = 8  # promote products of frequently bought categories (typical period, days)
PROMOTION_EXTRA_UNITS = 2  # a promoted purchase buys this many units more than usual

DEPARTMENTS = tuple(sorted({c.department for c in CATEGORIES} - {"seasonal"}))
_DEPT_OF_CAT = np.array(
    [DEPARTMENTS.index(c.department) if c.department in DEPARTMENTS else -1 for c in CATEGORIES]
)


@dataclass(frozen=True)
class BehaviourChange:
    """A planted change of one customer's behaviour, effective from ``date`` (inclusive)."""

    customer_id: str
    date: dt.date
    kind: str  # one of CHANGE_KINDS
    segment_before: str
    segment_after: str  # differs from segment_before only for switch_segment
    categories_dropped: tuple[str, ...]  # needs that end on ``date``
    categories_added: tuple[str, ...]  # needs that start on ``date``


@dataclass(frozen=True)
class DemandSurge:
    """A planted promotion whose demand the resupply plan does not cover.

    ``expected_demand`` = ``baseline_forecast`` (what history predicts for that store, product and
    day) + ``promoted_units`` (the cohort's scheduled purchases); ``planned_resupply`` is the plan's
    quantity for the cell and ``realized_demand`` the units in transactions.csv.
    """

    store_id: str
    product_id: str
    date: dt.date
    customers: tuple[str, ...]  # the cohort scheduled to buy the product that day
    promoted_units: int
    baseline_forecast: float
    expected_demand: float
    planned_resupply: int
    realized_demand: int


@dataclass(frozen=True)
class SurgePlan:
    """A surge before simulation: (store, product, day) indices and the cohort."""

    store: int
    product: int
    day: int
    customers: np.ndarray  # global customer indices
    units: int  # promoted units the cohort will buy


@dataclass(frozen=True)
class ChangePlan:
    """A change before naming: indices, kind, segments and category indices."""

    customer: int
    day: int
    kind: str
    segment_before: int
    segment_after: int
    dropped: tuple[int, ...]
    added: tuple[int, ...]


def _end_rows(needs: Needs, mask: np.ndarray, day: np.ndarray) -> Needs:
    """Needs whose rows in ``mask`` end at ``day`` (aligned with the rows)."""
    active_to = needs.active_to.copy()
    active_to[mask] = np.minimum(active_to[mask], day[mask])
    return replace(needs, active_to=active_to)


def plant_changes(
    rng: np.random.Generator, pop: Population, catalog: Catalog, fraction: float, days: int
) -> tuple[Needs, list[ChangePlan]]:
    """Pick ``fraction`` of customers and change their needs from a day in CHANGE_WINDOW."""
    n = pop.segment.size
    k = int(round(fraction * n))
    if k == 0:
        return pop.needs, []
    who = np.sort(rng.choice(n, size=k, replace=False))
    lo, hi = (int(round(f * days)) for f in CHANGE_WINDOW)
    day = rng.integers(lo, hi + 1, size=k)
    kind = rng.choice(len(CHANGE_KINDS), size=k, p=CHANGE_KIND_SHARE)
    needs = pop.needs
    change_day = np.full(n, np.inf)
    change_day[who] = day
    row_day = change_day[needs.customer]
    theirs = np.flatnonzero(np.isin(needs.customer, who))  # need rows of changed customers
    cats_of: dict[int, list[tuple[int, float]]] = {int(c): [] for c in who}
    for c, cat, period in zip(
        needs.customer[theirs].tolist(),
        needs.category[theirs].tolist(),
        needs.period[theirs].tolist(),
    ):
        cats_of[c].append((cat, 1.0 / period))

    plans: list[ChangePlan] = []
    end_mask = np.zeros(len(needs), dtype=bool)
    new_parts: list[Needs] = []
    switch_c, switch_seg = [], []
    add_c, add_cat = [], []
    for c, d, kd in zip(who.tolist(), day.tolist(), kind.tolist()):
        seg = int(pop.segment[c])
        mine = cats_of[c]
        have = {cat for cat, _ in mine}
        depts: dict[int, float] = {}  # department -> purchases per day
        for cat, rate in mine:
            if _DEPT_OF_CAT[cat] >= 0:
                depts[_DEPT_OF_CAT[cat]] = depts.get(_DEPT_OF_CAT[cat], 0.0) + rate
        name = CHANGE_KINDS[kd]
        if name == "drop_need" and len(depts) < 2:
            name = "new_need"  # dropping the only department would silence the customer
        if name == "new_need" and len(depts) == len(DEPARTMENTS):
            name = "switch_segment"  # nothing left to pick up
        if name == "switch_segment":
            new_seg = int((seg + 1 + rng.integers(0, len(SEGMENTS) - 1)) % len(SEGMENTS))
            switch_c.append(c)
            switch_seg.append(new_seg)
            plans.append(ChangePlan(c, d, name, seg, new_seg, tuple(sorted(have)), ()))
        elif name == "drop_need":
            dept = max(depts, key=lambda d: (depts[d], -d))  # the department bought most often
            dropped = tuple(sorted(cat for cat in have if _DEPT_OF_CAT[cat] == dept))
            plans.append(ChangePlan(c, d, name, seg, seg, dropped, ()))
        else:
            absent = [i for i in range(len(DEPARTMENTS)) if i not in depts]
            dept = absent[int(rng.integers(0, len(absent)))]
            added = tuple(int(i) for i in np.flatnonzero(_DEPT_OF_CAT == dept))
            add_c += [c] * len(added)
            add_cat += list(added)
            plans.append(ChangePlan(c, d, "new_need", seg, seg, (), added))
    # end the dropped rows
    by_customer = {p.customer: p for p in plans}
    for r, c, cat in zip(
        theirs.tolist(), needs.customer[theirs].tolist(), needs.category[theirs].tolist()
    ):
        if cat in by_customer[c].dropped:
            end_mask[r] = True
    needs = _end_rows(needs, end_mask, row_day)
    if switch_c:
        sc = np.array(switch_c)
        new = draw_needs(
            rng, catalog, sc, np.array(switch_seg), pop.store[sc], pop.pace[sc],
            pop.household[sc], change_day[sc], np.full(sc.size, np.inf),
        )
        new_parts.append(new)
        cats_after = {}
        for c, cat in zip(new.customer.tolist(), new.category.tolist()):
            cats_after.setdefault(c, set()).add(cat)
        plans = [
            replace(
                p,
                dropped=tuple(sorted(set(p.dropped) - cats_after[p.customer])),
                added=tuple(sorted(cats_after[p.customer] - set(p.dropped))),
            )
            if p.kind == "switch_segment"
            else p
            for p in plans
        ]
    if add_c:
        ac = np.array(add_c)
        new_parts.append(
            need_rows(
                rng, catalog, ac, np.array(add_cat), pop.store[ac], pop.pace[ac],
                pop.household[ac], change_day[ac], np.full(ac.size, np.inf),
            )
        )
    return Needs.concat([needs, *new_parts]), plans


def plant_surges(
    rng: np.random.Generator,
    pop: Population,
    needs: Needs,
    catalog: Catalog,
    n_surges: int,
    share: float,
    window: tuple[int, int],
    stores: int,
    exclude: np.ndarray,
) -> tuple[Needs, list[SurgePlan]]:
    """Plant ``n_surges`` promotions on days in ``window`` (start inclusive, end exclusive).

    Each picks a store, a product sold everywhere that is not its category's leader nor seasonal,
    and a cohort of ``share`` of the store's customers (at least MIN_COHORT), none in ``exclude``
    nor in another cohort. Fewer are planted when the stores run out of such customers.
    """
    frequent = np.array([c.period_days <= PROMOTED_MAX_PERIOD for c in CATEGORIES])
    product_ok = (catalog.store < 0) & (catalog.category != SEASONAL) & frequent[catalog.category]
    product_ok[catalog.cat_start] = False
    candidates = np.flatnonzero(product_ok)
    free = np.ones(pop.segment.size, dtype=bool)
    free[exclude] = False
    used: set[tuple[int, int]] = set()
    plans: list[SurgePlan] = []
    whole = (needs.active_from == 0) & np.isinf(needs.active_to)
    key = needs.customer * len(CATEGORIES) + needs.category
    favourite, loyalty, period = needs.favourite.copy(), needs.loyalty.copy(), needs.period.copy()
    anchor, anchor_units = needs.anchor.copy(), needs.anchor_units.copy()
    add_c, add_cat, add_day, add_units, add_prod = [], [], [], [], []
    for _ in range(20 * n_surges):  # tries; a (store, product) is promoted at most once
        if len(plans) == n_surges:
            break
        store = int(rng.integers(0, stores))
        product = int(candidates[rng.integers(0, candidates.size)])
        day = int(rng.integers(window[0], window[1]))
        pool = np.flatnonzero(free & (pop.store == store))
        size = min(pool.size, max(MIN_COHORT, math.ceil(share * int((pop.store == store).sum()))))
        if (store, product) in used or size == 0:
            continue
        used.add((store, product))
        cohort = np.sort(rng.choice(pool, size=size, replace=False))
        free[cohort] = False
        cat = int(catalog.category[product])
        rows = np.flatnonzero(np.isin(key, cohort * len(CATEGORIES) + cat) & whole)
        has_row = np.isin(cohort, needs.customer[rows])
        typical = np.zeros(cohort.size, dtype=np.int64)
        # members with the need: re-point it at the promoted product and pin a purchase on the day
        idx = {int(c): j for j, c in enumerate(cohort)}
        for r in rows.tolist():
            j = idx[int(needs.customer[r])]
            typical[j] = int(round(needs.units[r]))
            favourite[r] = product
            loyalty[r] = max(loyalty[r], 0.9)
            period[r] = min(period[r], max(MIN_PERIOD, day / 2.5))  # history shows the rhythm
            anchor[r] = day + 0.5
            anchor_units[r] = typical[j] + PROMOTION_EXTRA_UNITS
        # members without it: the promotion gives them the need
        for c in cohort[~has_row].tolist():
            add_c.append(c)
            add_cat.append(cat)
            add_day.append(day + 0.5)
            add_prod.append(product)
            units = max(1, int(round(CATEGORIES[cat].units * pop.household[c])))
            typical[idx[c]] = units
            add_units.append(units + PROMOTION_EXTRA_UNITS)
        plans.append(
            SurgePlan(
                store, product, day, cohort, int(typical.sum()) + PROMOTION_EXTRA_UNITS * size
            )
        )
    needs = replace(
        needs, favourite=favourite, loyalty=loyalty, period=period, anchor=anchor,
        anchor_units=anchor_units,
    )
    if add_c:
        ac = np.array(add_c)
        new = need_rows(
            rng, catalog, ac, np.array(add_cat), pop.store[ac], pop.pace[ac], pop.household[ac],
            np.zeros(ac.size), np.full(ac.size, np.inf),
        )
        new = replace(
            new,
            favourite=np.array(add_prod),
            loyalty=np.maximum(new.loyalty, 0.9),
            period=np.minimum(new.period, np.maximum(MIN_PERIOD, np.array(add_day) / 2.5)),
            anchor=np.array(add_day),
            anchor_units=np.array(add_units, dtype=np.int64),
        )
        needs = Needs.concat([needs, new])
    return needs, plans
