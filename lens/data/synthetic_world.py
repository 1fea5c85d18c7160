"""The synthetic retail world: what is sold, who shops, and what each shopper needs.

Used by :mod:`lens.data.synthetic`; nothing here draws a single purchase. The world is

- a **catalog** of products grouped into need categories (milk, diapers, pet food, ...), each
  category inside a department (dairy, baby, pets, ...). The first product of every category is
  the national leader, sold in every store; other products may be exclusive to one store; the
  ``seasonal`` category holds items whose popularity peaks at different points of the period;
- a **population** of customers, each in a segment (need profile), with a preferred store, a
  shopping rhythm and a table of recurring **needs**: (customer, category, favourite product,
  alternative product, period in days, brand loyalty, mean units, active interval, optional
  promotion anchor).

Planted behaviour changes edit the needs table (rows end or start at the change day); planted
demand surges anchor one need of a cohort of customers on the surge day.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ALTERNATIVE_SHARE",
    "CATEGORIES",
    "SEASONAL",
    "SEGMENTS",
    "Catalog",
    "Category",
    "MAX_PERIOD",
    "MIN_PERIOD",
    "Needs",
    "Population",
    "Segment",
    "build_catalog",
    "build_population",
    "draw_needs",
    "need_rows",
]


@dataclass(frozen=True)
class Category:
    """One need category: what a recurring need buys and how often (before personal variation)."""

    name: str
    department: str
    period_days: float  # typical days between purchases
    units: float  # typical units per purchase
    price_range: tuple[float, float]  # unit price in money units, lowest and highest brand
    n_products: int  # brands; product 0 is the national leader


@dataclass(frozen=True)
class Segment:
    """A need profile: probability that a customer of the segment has each category as a need."""

    name: str
    weight: float  # share of the population
    needs: dict[str, float]


CATEGORIES: tuple[Category, ...] = (
    Category("milk", "dairy", 5, 2.0, (0.9, 1.6), 5),
    Category("yogurt", "dairy", 7, 4.0, (0.4, 0.9), 6),
    Category("cheese", "dairy", 11, 1.2, (2.5, 6.0), 6),
    Category("butter", "dairy", 14, 1.0, (1.5, 3.5), 4),
    Category("eggs", "dairy", 9, 1.0, (2.0, 4.0), 3),
    Category("bread", "bakery", 4, 1.2, (1.0, 3.0), 6),
    Category("pastries", "bakery", 8, 2.0, (0.8, 2.5), 5),
    Category("fruit", "produce", 6, 2.0, (1.5, 3.5), 8),
    Category("vegetables", "produce", 6, 2.0, (1.0, 3.0), 8),
    Category("salad", "produce", 5, 1.0, (1.0, 2.5), 4),
    Category("meat", "meat_fish", 8, 1.3, (5.0, 12.0), 6),
    Category("cold_cuts", "meat_fish", 6, 1.0, (1.5, 4.0), 6),
    Category("fish", "meat_fish", 12, 1.1, (6.0, 15.0), 4),
    Category("coffee", "pantry", 15, 1.0, (4.0, 9.0), 6),
    Category("tea", "pantry", 21, 1.0, (2.0, 5.0), 4),
    Category("cereal", "pantry", 13, 1.0, (2.5, 5.0), 5),
    Category("pasta", "pantry", 13, 2.0, (1.0, 2.5), 5),
    Category("rice", "pantry", 20, 1.0, (1.5, 4.0), 4),
    Category("sauces", "pantry", 14, 1.0, (1.5, 4.0), 6),
    Category("canned", "pantry", 12, 2.0, (0.8, 2.5), 6),
    Category("oil", "pantry", 30, 1.0, (3.0, 9.0), 4),
    Category("spreads", "pantry", 18, 1.0, (2.0, 5.0), 5),
    Category("diapers", "baby", 10, 1.0, (9.0, 16.0), 4),
    Category("baby_food", "baby", 6, 3.0, (1.0, 2.0), 5),
    Category("baby_wipes", "baby", 12, 1.0, (2.0, 5.0), 3),
    Category("pet_food", "pets", 9, 2.0, (2.0, 8.0), 5),
    Category("cat_litter", "pets", 21, 1.0, (4.0, 9.0), 3),
    Category("pet_treats", "pets", 14, 1.0, (2.0, 6.0), 4),
    Category("detergent", "household", 26, 1.0, (5.0, 12.0), 4),
    Category("toilet_paper", "household", 19, 1.0, (3.0, 7.0), 3),
    Category("dish_soap", "household", 30, 1.0, (1.5, 4.0), 3),
    Category("paper_towels", "household", 20, 1.0, (2.0, 5.0), 3),
    Category("personal_care", "personal_care", 21, 1.0, (2.0, 6.0), 6),
    Category("shampoo", "personal_care", 30, 1.0, (3.0, 8.0), 5),
    Category("toothpaste", "personal_care", 35, 1.0, (2.0, 5.0), 4),
    Category("snacks", "snacks", 6, 2.0, (1.0, 3.0), 8),
    Category("chocolate", "snacks", 7, 2.0, (1.0, 3.0), 6),
    Category("chips", "snacks", 7, 1.0, (1.5, 3.0), 5),
    Category("soft_drinks", "beverages", 7, 2.0, (1.0, 2.5), 6),
    Category("water", "beverages", 8, 2.0, (0.5, 1.5), 4),
    Category("juice", "beverages", 7, 2.0, (1.2, 3.0), 6),
    Category("beer", "alcohol", 8, 1.0, (4.0, 10.0), 6),
    Category("wine", "alcohol", 11, 1.2, (5.0, 15.0), 6),
    Category("frozen", "frozen_ready", 11, 2.0, (2.0, 6.0), 6),
    Category("ready_meals", "frozen_ready", 4, 1.0, (3.0, 6.0), 6),
    Category("ice_cream", "frozen_ready", 10, 1.0, (3.0, 6.0), 5),
    Category("seasonal", "seasonal", 14, 1.0, (2.0, 8.0), 6),
)

SEGMENTS: tuple[Segment, ...] = (
    Segment("young_family", 0.15, {
        "milk": .9, "yogurt": .7, "bread": .8, "fruit": .8, "vegetables": .6, "diapers": .9,
        "baby_food": .8, "baby_wipes": .7, "cereal": .4, "cheese": .3, "eggs": .4,
        "toilet_paper": .4, "detergent": .3, "juice": .5, "spreads": .3}),
    Segment("pet_owner", 0.12, {
        "pet_food": .95, "cat_litter": .6, "pet_treats": .6, "ready_meals": .5, "coffee": .5,
        "snacks": .5, "bread": .5, "milk": .4, "beer": .3, "cold_cuts": .4, "chips": .3}),
    Segment("health_conscious", 0.14, {
        "fruit": .9, "vegetables": .9, "salad": .8, "yogurt": .7, "fish": .5, "tea": .6,
        "water": .7, "eggs": .5, "cereal": .3, "rice": .4, "juice": .3}),
    Segment("student", 0.12, {
        "snacks": .8, "soft_drinks": .7, "pasta": .8, "sauces": .6, "beer": .6,
        "ready_meals": .5, "frozen": .5, "coffee": .4, "chips": .6, "chocolate": .4,
        "canned": .4}),
    Segment("traditional_family", 0.20, {
        "bread": .9, "milk": .8, "meat": .8, "vegetables": .7, "cheese": .6, "butter": .5,
        "eggs": .5, "pasta": .5, "detergent": .4, "toilet_paper": .5, "soft_drinks": .4,
        "wine": .3, "pastries": .4, "oil": .4, "rice": .3, "cold_cuts": .5, "dish_soap": .3}),
    Segment("senior", 0.12, {
        "bread": .8, "milk": .7, "pastries": .6, "tea": .6, "cheese": .5, "butter": .5,
        "fruit": .6, "fish": .4, "personal_care": .4, "canned": .4, "toothpaste": .3}),
    Segment("professional", 0.15, {
        "coffee": .8, "ready_meals": .7, "wine": .6, "cheese": .5, "fruit": .4, "water": .5,
        "personal_care": .4, "frozen": .3, "salad": .5, "ice_cream": .3, "shampoo": .3}),
)

BACKGROUND_NEED = 0.08  # chance of any category outside the segment's profile
SEASONAL_NEED = 0.25  # chance of a recurring appetite for whatever seasonal item is in season
MIN_NEEDS = 2
MIN_PERIOD, MAX_PERIOD = 3.0, 45.0
PERIOD_SCALE = 1.6  # every period is this much longer than its category's typical one
ALTERNATIVE_SHARE = 0.6  # share of disloyal purchases that go to the need's alternative brand
EXCLUSIVE_SHARE = 0.2  # chance that a non-leader product is sold in one store only


@dataclass(frozen=True)
class Catalog:
    """Products sorted by category. Shapes: ``[n_products]`` unless noted."""

    category: np.ndarray  # int, index into CATEGORIES
    price_cents: np.ndarray  # int64 unit price
    popularity: np.ndarray  # float, sums to 1 within each category
    store: np.ndarray  # int, -1 = every store, else the one store that sells it
    season_peak: np.ndarray  # float day of peak popularity, nan for non-seasonal
    cat_start: np.ndarray  # [n_categories] first product (the national leader) of each category
    cat_size: np.ndarray  # [n_categories]
    within_cat_cdf: np.ndarray  # c + cumulative popularity; for draws within category c
    season_weight: np.ndarray  # [days, n_products] relative popularity on each day
    seasonal_cdf: np.ndarray  # [days * n_seasonal] day + cumulative share among seasonal items
    explore_cdf: np.ndarray  # [days * n_products] day + cumulative chance of an exploration pick

    @property
    def n_products(self) -> int:
        return int(self.category.size)

    def available(self, product: np.ndarray, store: np.ndarray) -> np.ndarray:
        """Whether ``product[i]`` is sold in ``store[i]``."""
        owner = self.store[product]
        return (owner < 0) | (owner == store)

    def in_store(self, product: np.ndarray, store: np.ndarray) -> np.ndarray:
        """``product`` where sold in ``store``, else its category's national leader."""
        return np.where(
            self.available(product, store), product, self.cat_start[self.category[product]]
        )

    def draw_in_category(self, cat: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A popularity-weighted product of category ``cat[i]`` for uniform ``u[i]`` in [0, 1)."""
        return np.searchsorted(self.within_cat_cdf, cat + u, side="right")

    def draw_seasonal(self, day: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The seasonal item bought on ``day[i]``: in-season items are the likely ones."""
        start, n = self.cat_start[SEASONAL], self.cat_size[SEASONAL]
        return start + np.searchsorted(self.seasonal_cdf, day + u, side="right") - day * n

    def draw_explore(self, day: np.ndarray, u: np.ndarray) -> np.ndarray:
        """An item tried outside one's needs on ``day[i]``: any category, popular brands first."""
        return np.searchsorted(self.explore_cdf, day + u, side="right") - day * self.n_products


def category_index(name: str) -> int:
    return next(i for i, c in enumerate(CATEGORIES) if c.name == name)


SEASONAL = category_index("seasonal")


def _day_cdf(weight: np.ndarray) -> np.ndarray:
    """[days, n] weights -> flat [days * n] ``day + cumulative share`` (each day ends at day+1)."""
    cum = np.cumsum(weight, axis=1)
    cum /= cum[:, -1:]
    cum[:, -1] = 1.0
    return (cum + np.arange(weight.shape[0])[:, None]).ravel()


def build_catalog(rng: np.random.Generator, stores: int, days: int) -> Catalog:
    category, price, popularity, store, peak = [], [], [], [], []
    for c, cat in enumerate(CATEGORIES):
        n = cat.n_products
        lo, hi = cat.price_range
        category += [c] * n
        price += list(np.round(rng.uniform(lo, hi, n) * 100).astype(np.int64))
        pop = rng.dirichlet(np.full(n, 2.0))
        pop = np.sort(pop)[::-1]  # leader first
        popularity += list(pop / pop.sum())
        owner = np.full(n, -1)
        if stores > 1 and cat.name != "seasonal":
            exclusive = rng.random(n) < EXCLUSIVE_SHARE
            exclusive[0] = False  # the leader is everywhere
            owner[exclusive] = rng.integers(0, stores, int(exclusive.sum()))
        store += list(owner)
        if cat.name == "seasonal":
            peak += list(np.linspace(0, days - 1, n))
        else:
            peak += [np.nan] * n
    category_a = np.asarray(category, dtype=np.int64)
    popularity_a = np.asarray(popularity)
    cat_size = np.bincount(category_a, minlength=len(CATEGORIES))
    cat_start = np.concatenate([[0], np.cumsum(cat_size)[:-1]])
    cdf = np.empty_like(popularity_a)
    for c in range(len(CATEGORIES)):
        s, n = cat_start[c], cat_size[c]
        cum = np.cumsum(popularity_a[s : s + n])
        cum /= cum[-1]
        cum[-1] = 1.0
        cdf[s : s + n] = c + cum
    peak_a = np.asarray(peak, dtype=float)
    season = np.ones((days, category_a.size))
    seasonal = ~np.isnan(peak_a)
    width = max(days / 6.0, 3.0)
    t = np.arange(days)[:, None]
    season[:, seasonal] = 0.05 + np.exp(-0.5 * ((t - peak_a[seasonal]) / width) ** 2)
    explore = season * popularity_a  # every category alike, popular brands first
    return Catalog(
        category=category_a,
        price_cents=np.asarray(price, dtype=np.int64),
        popularity=popularity_a,
        store=np.asarray(store, dtype=np.int64),
        season_peak=peak_a,
        cat_start=cat_start,
        cat_size=cat_size,
        within_cat_cdf=cdf,
        season_weight=season,
        seasonal_cdf=_day_cdf(season[:, seasonal]),
        explore_cdf=_day_cdf(explore),
    )


@dataclass(frozen=True)
class Needs:
    """The recurring needs table, one row per (customer, category, active interval).

    Shapes ``[n_rows]``. A need is bought about every ``period`` days while
    ``active_from <= t < active_to`` (days since the start; ``active_to`` may be ``inf``).
    ``anchor`` >= 0 pins one purchase of ``favourite`` at that time (a planted promotion), with
    ``anchor_units`` units; -1 means no anchor.
    """

    customer: np.ndarray
    category: np.ndarray
    favourite: np.ndarray
    alternative: np.ndarray  # the brand bought when not the favourite, most of the time
    period: np.ndarray
    loyalty: np.ndarray
    units: np.ndarray
    active_from: np.ndarray
    active_to: np.ndarray
    anchor: np.ndarray
    anchor_units: np.ndarray

    @staticmethod
    def concat(parts: Sequence["Needs"]) -> "Needs":
        fields = Needs.__dataclass_fields__
        merged = Needs(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})
        order = np.lexsort((merged.active_from, merged.category, merged.customer))
        return merged.take(order)

    def take(self, index: np.ndarray) -> "Needs":
        return Needs(**{f: getattr(self, f)[index] for f in Needs.__dataclass_fields__})

    def __len__(self) -> int:
        return int(self.customer.size)


@dataclass(frozen=True)
class Population:
    """Customers and their needs. Customer arrays have shape ``[n_customers]``."""

    segment: np.ndarray  # int, index into SEGMENTS (the segment at the start)
    store: np.ndarray  # int, preferred store
    horizon: np.ndarray  # days ahead a trip also buys for (stock-up horizon)
    other_store: np.ndarray  # chance a trip goes to another store
    explore: np.ndarray  # chance a trip adds one item outside the needs
    hour: np.ndarray  # preferred hour of day
    jitter: np.ndarray  # coefficient of variation of the gap between purchases of a need
    pace: np.ndarray  # personal multiplier of every period
    household: np.ndarray  # personal multiplier of every quantity
    needs: Needs


def _segment_matrix() -> np.ndarray:
    """[n_segments, n_categories] probability that a segment has each category as a need."""
    m = np.full((len(SEGMENTS), len(CATEGORIES)), BACKGROUND_NEED)
    for s, seg in enumerate(SEGMENTS):
        for name, p in seg.needs.items():
            m[s, category_index(name)] = p
    m[:, category_index("seasonal")] = SEASONAL_NEED
    return m


def need_rows(
    rng: np.random.Generator,
    catalog: Catalog,
    customer: np.ndarray,
    category: np.ndarray,
    store: np.ndarray,
    pace: np.ndarray,
    household: np.ndarray,
    active_from: np.ndarray,
    active_to: np.ndarray,
) -> Needs:
    """Need rows for (``customer[i]``, ``category[i]``), with personal period, units, favourite.

    ``store``, ``pace`` and ``household`` are the customers' own values, aligned with the rows.
    """
    k = customer.size
    base = np.array([c.period_days for c in CATEGORIES])[category]
    period = np.clip(base * pace * rng.lognormal(0.0, 0.2, k), MIN_PERIOD, MAX_PERIOD)
    typical = np.array([c.units for c in CATEGORIES])[category]
    units = np.maximum(1.0, typical * household * rng.lognormal(0.0, 0.2, k))
    favourite = catalog.in_store(catalog.draw_in_category(category, rng.random(k)), store)
    alternative = catalog.draw_in_category(category, rng.random(k))
    same = alternative == favourite  # the next brand of the category instead
    start, size = catalog.cat_start[category], catalog.cat_size[category]
    alternative[same] = start[same] + (alternative[same] - start[same] + 1) % size[same]
    alternative = catalog.in_store(alternative, store)
    return Needs(
        customer=customer.astype(np.int64),
        category=category.astype(np.int64),
        favourite=favourite,
        alternative=alternative,
        period=period,
        loyalty=np.clip(rng.beta(6.0, 2.0, k), 0.4, 0.98),
        units=units,
        active_from=np.asarray(active_from, dtype=float),
        active_to=np.asarray(active_to, dtype=float),
        anchor=np.full(k, -1.0),
        anchor_units=np.zeros(k, dtype=np.int64),
    )


def draw_needs(
    rng: np.random.Generator,
    catalog: Catalog,
    customers: np.ndarray,
    segment: np.ndarray,
    store: np.ndarray,
    pace: np.ndarray,
    household: np.ndarray,
    active_from: np.ndarray,
    active_to: np.ndarray,
) -> Needs:
    """Needs of ``customers`` drawn from their segments' profiles (arrays align with customers)."""
    n, n_cat = customers.size, len(CATEGORIES)
    prob = _segment_matrix()[segment]  # (n, C)
    has = rng.random((n, n_cat)) < prob
    # everyone gets at least MIN_NEEDS: top up with the segment's most likely categories
    short = has.sum(axis=1) < MIN_NEEDS
    if short.any():
        noise = rng.random((int(short.sum()), n_cat)) * 1e-3
        top = np.argsort(-(prob[short] + noise), axis=1)[:, :MIN_NEEDS]
        fill = np.zeros((int(short.sum()), n_cat), dtype=bool)
        np.put_along_axis(fill, top, True, axis=1)
        has[short] |= fill
    row, cat = np.nonzero(has)  # (k,), (k,)
    return need_rows(
        rng, catalog, customers[row], cat, store[row], pace[row], household[row],
        active_from[row], active_to[row],
    )


def build_population(
    rng: np.random.Generator, catalog: Catalog, n_customers: int, stores: int
) -> Population:
    n = n_customers
    seg_w = np.array([s.weight for s in SEGMENTS])
    segment = rng.choice(len(SEGMENTS), size=n, p=seg_w / seg_w.sum())
    store_w = 1.0 / np.sqrt(np.arange(1, stores + 1))
    store = rng.choice(stores, size=n, p=store_w / store_w.sum())
    horizon = rng.uniform(3.0, 9.0, n)
    other_store = rng.beta(1.0, 9.0, n) if stores > 1 else np.zeros(n)
    explore = rng.uniform(0.05, 0.3, n)
    hour = rng.choice([10.0, 12.5, 17.5], size=n, p=[0.35, 0.2, 0.45]) + rng.normal(0, 0.7, n)
    jitter = rng.uniform(0.08, 0.25, n)
    pace = PERIOD_SCALE * rng.lognormal(0.0, 0.15, n)
    household = rng.lognormal(0.0, 0.25, n)
    needs = draw_needs(
        rng, catalog, np.arange(n), segment, store, pace, household,
        np.zeros(n), np.full(n, np.inf),
    )
    return Population(
        segment=segment, store=store, horizon=horizon, other_store=other_store,
        explore=explore, hour=hour, jitter=jitter, pace=pace, household=household, needs=needs,
    )
