"""Synthetic retail data with known answers: transactions, a resupply plan and the ground truth.

``generate(SynthConfig(...))`` simulates a chain of stores and its customers; ``write(dataset,
out_dir)`` saves

- ``transactions.csv``: ``TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID``,
  the paper's minimal schema plus the store, one row per (basket, product), sorted by timestamp.
  PROD_AMOUNT is the line's money value, PRODT_QTY its units (integer >= 1), TIMESTAMP an ISO-8601
  datetime to the minute (``2026-01-05T10:31:00``); ids are strings (``T0000001``, ``C000123``,
  ``P0042``, ``S1``);
- ``resupplies.csv``: ``STORE_ID,PROD_ID,DAY,QUANTITY``, the a-priori resupply plan (units
  available per store, product and day) for the last ``resupply_days`` days, for every product
  a store sells: a forecast from the 4 weeks before the window, ``mu`` (the cell's mean daily
  units times the store's weekday factor), plus a margin: ``max(1, ceil(mu * (1 +
  resupply_margin) + 2 * sqrt(mu * d)))``, ``d`` the product's units-per-line dispersion. The
  forecast knows nothing of the planted promotions, so their cells fall short;
- ``products.csv``: ``PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT``, the retailer's product catalog:
  every product, its need category (``milk``, ``diapers``, ...; Ta-Feng's PRODUCT_SUBCLASS,
  read by ``lens.segments.read_product_subclasses``) and the category's department (``dairy``,
  ``baby``, ...; ``lens.segments.read_category_departments``), the two levels of a category
  hierarchy a retailer's catalog has. Nothing about customers, changes or promotions: it is
  what a retailer knows anyway;
- ``ground_truth.json``: parameters and seed, products, every customer's segment, store and
  needs, the planted behaviour changes and demand surges, and every cell of the window where
  demand exceeded the plan (planted or not).

The world (see :mod:`lens.data.synthetic_world`, :mod:`lens.data.synthetic_shopping` and
:mod:`lens.data.synthetic_plants`): products in need categories; customers in segments with
recurring needs of personal periodicity, brand loyalty and exploration; a preferred store;
store-exclusive and seasonal items; busier weekends; planted behaviour changes and promotions the
resupply plan misses. The same config gives the same files, byte for byte.
"""

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lens.data.synthetic_plants import (
    CHANGE_KINDS,
    BehaviourChange,
    DemandSurge,
    plant_changes,
    plant_surges,
)
from lens.data.synthetic_shopping import Lines, shop
from lens.data.synthetic_world import (
    CATEGORIES,
    SEGMENTS,
    Catalog,
    Needs,
    build_catalog,
    build_population,
)
from lens.errors import ConfigError, DataError

__all__ = [
    "CATALOG_COLUMNS",
    "CHANGE_KINDS",
    "RESUPPLY_COLUMNS",
    "TRANSACTION_COLUMNS",
    "BehaviourChange",
    "DemandSurge",
    "SynthConfig",
    "SyntheticDataset",
    "generate",
    "write",
]

GENERATOR_VERSION = 1
CHUNK = 2048  # customers simulated together; part of the seed derivation, never change it
FORECAST_WEEKS = 4
SAFETY_Z = 2.0
TRANSACTION_COLUMNS = (
    "TRAN_ID", "CLIENT_ID", "PROD_ID", "TIMESTAMP", "PROD_AMOUNT", "PRODT_QTY", "STORE_ID",
)
RESUPPLY_COLUMNS = ("STORE_ID", "PROD_ID", "DAY", "QUANTITY")
CATALOG_COLUMNS = ("PROD_ID", "PRODUCT_SUBCLASS", "DEPARTMENT")
_DATETIME_FORMATS = {"TIMESTAMP": "%Y-%m-%dT%H:%M:%S", "DAY": "%Y-%m-%d"}


@dataclass(frozen=True)
class SynthConfig:
    """What to simulate. Validated on construction (``ConfigError`` names the flag to fix)."""

    customers: int = 200
    days: int = 60
    seed: int = 0
    stores: int = 3
    start: dt.date = dt.date(2026, 1, 5)  # a Monday
    change_fraction: float = 0.05  # customers whose behaviour changes on a known day
    surges: int = 3  # planted promotions the resupply plan misses
    surge_share: float = 0.1  # share of a store's customers in a promotion's cohort
    resupply_days: int = 14  # the resupply plan covers the last this many days
    resupply_margin: float = 0.2  # plan = forecast * (1 + margin) + safety stock

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        for name in ("customers", "days", "seed", "stores", "surges", "resupply_days"):
            value = getattr(self, name)
            need(
                isinstance(value, int) and not isinstance(value, bool),
                f"{name} must be an integer (got {value!r})",
            )
        need(
            isinstance(self.start, dt.date) and not isinstance(self.start, dt.datetime),
            f"start must be a date (got {self.start!r}); pass --start YYYY-MM-DD",
        )
        need(self.seed >= 0, f"--seed must be >= 0 (got {self.seed})")
        need(self.customers >= 20, f"--customers must be at least 20 (got {self.customers})")
        need(
            1 <= self.stores <= 99,
            f"--stores must be between 1 and 99 (got {self.stores})",
        )
        need(
            self.customers >= 10 * self.stores,
            f"--customers must be at least 10 per store ({10 * self.stores} for "
            f"{self.stores} stores, got {self.customers}); raise --customers or lower --stores",
        )
        need(self.resupply_days >= 1, f"--resupply-days must be >= 1 (got {self.resupply_days})")
        need(
            self.days >= self.resupply_days + 14,
            f"--days must leave at least 14 days of history before the {self.resupply_days}-day "
            f"resupply window (got {self.days}); use --days {self.resupply_days + 14} or more",
        )
        need(self.days <= 3660, f"--days must be at most 3660 (got {self.days})")
        need(
            0.0 <= self.change_fraction <= 0.5,
            f"--change-fraction must be between 0 and 0.5 (got {self.change_fraction})",
        )
        need(0 <= self.surges <= 100, f"--surges must be between 0 and 100 (got {self.surges})")
        need(
            0.0 < self.surge_share <= 0.5,
            f"surge_share must be in (0, 0.5] (got {self.surge_share})",
        )
        need(
            self.resupply_margin >= 0.0,
            f"--resupply-margin must be >= 0 (got {self.resupply_margin})",
        )
        end = self.start + dt.timedelta(days=self.days)
        need(end.year <= 9999, f"--start plus --days runs past year 9999 (ends {end})")

    @property
    def end(self) -> dt.date:
        """The first day after the period."""
        return self.start + dt.timedelta(days=self.days)

    @property
    def resupply_start(self) -> dt.date:
        return self.end - dt.timedelta(days=self.resupply_days)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["start"] = self.start.isoformat()
        return out


@dataclass(frozen=True)
class SyntheticDataset:
    """A generated world and its answers. Ids are strings exactly as written to disk.

    The files' frames keep the files' column names:

    - ``transactions``: TRANSACTION_COLUMNS (ids categorical, TIMESTAMP datetime64, PROD_AMOUNT
      float, PRODT_QTY int), sorted by TIMESTAMP;
    - ``resupplies``: RESUPPLY_COLUMNS (DAY datetime64 at midnight, QUANTITY int).

    The ground truth (also in ground_truth.json, same names, None left out of needs):

    - ``products``: product_id, category, department, price, store (None = sold everywhere),
      season_peak (date or None);
    - ``customers``: customer_id, segment (at the start), store_id (preferred store);
    - ``needs``: customer_id, category, product_id (favourite), alternative_id (the usual other
      brand), period_days, loyalty (chance of the favourite), mean_units, active_from and
      active_to (date; None = from the start / to the end), promotion (date of a planted
      promoted purchase, or None);
    - ``changes`` / ``surges``: the planted behaviour changes and demand surges;
    - ``shortfalls``: store_id, product_id, date, demand, resupply, planted: every cell of the
      resupply window where demand exceeded the plan.
    """

    config: SynthConfig
    transactions: pd.DataFrame
    resupplies: pd.DataFrame
    products: pd.DataFrame
    customers: pd.DataFrame
    needs: pd.DataFrame
    changes: tuple[BehaviourChange, ...]
    surges: tuple[DemandSurge, ...]
    shortfalls: pd.DataFrame

    def ground_truth(self) -> dict[str, Any]:
        """Everything ground_truth.json holds, as plain JSON values."""
        cfg = self.config
        return {
            "generator": "lens.data.synthetic",
            "version": GENERATOR_VERSION,
            "config": cfg.to_dict(),
            "period": {
                "first_day": cfg.start.isoformat(),
                "last_day": (cfg.end - dt.timedelta(days=1)).isoformat(),
                "resupply_first_day": cfg.resupply_start.isoformat(),
            },
            "segments": {s.name: s.needs for s in SEGMENTS},
            "products": _records(self.products),
            "customers": _customer_records(self.customers, self.needs),
            "behaviour_changes": [_plain(dataclasses.asdict(c)) for c in self.changes],
            "demand_surges": [_plain(dataclasses.asdict(s)) for s in self.surges],
            "stock_shortfalls": _records(self.shortfalls),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.date().isoformat() if isinstance(value, pd.Timestamp) else value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_column(column: pd.Series) -> list[Any]:
    """A frame column as JSON-ready values: dates as ISO strings, NaN and None as None."""
    if column.dtype.kind == "f":
        values = column.to_numpy()
        if not np.isnan(values).any():
            return values.tolist()
    cache: dict[Any, Any] = {}
    out = []
    for v in column.tolist():
        if v is None:
            out.append(None)
            continue
        try:
            out.append(cache[v])
        except KeyError:
            out.append(cache.setdefault(v, _plain(v)))
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(frame.columns)
    data = [_json_column(frame[c]) for c in columns]
    return [dict(zip(columns, row)) for row in zip(*data)]


def _customer_records(customers: pd.DataFrame, needs: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per customer with its needs; a need's unset dates are left out."""
    need_cols = [c for c in needs.columns if c != "customer_id"]
    data = [_json_column(needs[c]) for c in need_cols]
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for cid, row in zip(needs["customer_id"].tolist(), zip(*data)):
        need = {k: v for k, v in zip(need_cols, row) if v is not None}
        by_customer.setdefault(cid, []).append(need)
    return [
        {"customer_id": cid, "segment": seg, "store_id": store, "needs": by_customer.get(cid, [])}
        for cid, seg, store in zip(
            customers["customer_id"].tolist(),
            customers["segment"].tolist(),
            customers["store_id"].tolist(),
        )
    ]


def _ids(prefix: str, n: int, width: int) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def generate(config: SynthConfig, progress: bool = False) -> SyntheticDataset:
    """Simulate ``config``'s world. ``progress`` shows a tqdm bar over customer chunks."""
    cfg = config
    world_rng = np.random.default_rng([cfg.seed, 0])
    catalog = build_catalog(world_rng, cfg.stores, cfg.days)
    pop = build_population(world_rng, catalog, cfg.customers, cfg.stores)
    needs, change_plans = plant_changes(world_rng, pop, catalog, cfg.change_fraction, cfg.days)
    window = (cfg.days - cfg.resupply_days, cfg.days)
    changed = np.array([p.customer for p in change_plans], dtype=np.int64)
    needs, surge_plans = plant_surges(
        world_rng, pop, needs, catalog, cfg.surges, cfg.surge_share, window, cfg.stores, changed
    )
    pop = dataclasses.replace(pop, needs=needs)

    parts = []
    starts = range(0, cfg.customers, CHUNK)
    for i, lo in enumerate(tqdm(starts, desc="simulating", unit="chunk", disable=not progress)):
        rng = np.random.default_rng([cfg.seed, 1, i])
        hi = min(lo + CHUNK, cfg.customers)
        parts.append(shop(rng, pop, catalog, lo, hi, cfg.days, cfg.stores, cfg.start.weekday()))
    lines = Lines.concat(parts)
    del parts

    customer_ids = _ids("C", cfg.customers, max(6, len(str(cfg.customers - 1))))
    product_ids = _ids("P", catalog.n_products, 4)
    store_ids = [f"S{k + 1}" for k in range(cfg.stores)]
    start = pd.Timestamp(cfg.start)

    transactions = _transactions(lines, catalog, customer_ids, product_ids, store_ids, start)
    demand = np.bincount(
        (lines.store.astype(np.int64) * catalog.n_products + lines.product) * cfg.days + lines.day,
        weights=lines.units,
        minlength=cfg.stores * catalog.n_products * cfg.days,
    ).reshape(cfg.stores, catalog.n_products, cfg.days)  # (S, P, days) units sold
    history = lines.day < window[0]
    mu, plan = _resupply_plan(
        cfg, catalog, demand, lines.product[history].astype(np.int64), lines.units[history]
    )
    del lines

    def date(day: int) -> dt.date:
        return cfg.start + dt.timedelta(days=int(day))

    stores = np.arange(cfg.stores)[:, None]
    sold = (catalog.store[None, :] < 0) | (catalog.store[None, :] == stores)  # (S, P)
    w0 = window[0]
    surges = tuple(
        DemandSurge(
            store_id=store_ids[p.store],
            product_id=product_ids[p.product],
            date=date(p.day),
            customers=tuple(customer_ids[c] for c in p.customers.tolist()),
            promoted_units=p.units,
            baseline_forecast=round(float(mu[p.store, p.product, p.day - w0]), 2),
            expected_demand=round(float(mu[p.store, p.product, p.day - w0]) + p.units, 2),
            planned_resupply=int(plan[p.store, p.product, p.day - w0]),
            realized_demand=int(demand[p.store, p.product, p.day]),
        )
        for p in surge_plans
    )
    changes = tuple(
        BehaviourChange(
            customer_id=customer_ids[p.customer],
            date=date(p.day),
            kind=p.kind,
            segment_before=SEGMENTS[p.segment_before].name,
            segment_after=SEGMENTS[p.segment_after].name,
            categories_dropped=tuple(CATEGORIES[c].name for c in p.dropped),
            categories_added=tuple(CATEGORIES[c].name for c in p.added),
        )
        for p in change_plans
    )
    planted = {(p.store, p.product, p.day - w0) for p in surge_plans}
    return SyntheticDataset(
        config=cfg,
        transactions=transactions,
        resupplies=_resupplies_frame(plan, sold, w0, store_ids, product_ids, start),
        products=_products_frame(catalog, product_ids, store_ids, date),
        customers=pd.DataFrame(
            {
                "customer_id": customer_ids,
                "segment": [SEGMENTS[s].name for s in pop.segment.tolist()],
                "store_id": [store_ids[s] for s in pop.store.tolist()],
            }
        ),
        needs=_needs_frame(pop.needs, customer_ids, product_ids, cfg.days, date),
        changes=changes,
        surges=surges,
        shortfalls=_shortfalls_frame(
            demand[:, :, w0:], plan, sold, planted, w0, store_ids, product_ids, date
        ),
    )


def _resupplies_frame(
    plan: np.ndarray,
    sold: np.ndarray,
    first_day: int,
    store_ids: list[str],
    product_ids: list[str],
    start: pd.Timestamp,
) -> pd.DataFrame:
    """The plan ``(S, P, W)`` as rows for every (store, product it sells, day), by day."""
    s_idx, p_idx = np.nonzero(sold)
    n_days = plan.shape[2]
    day = np.repeat(np.arange(first_day, first_day + n_days), s_idx.size)
    return pd.DataFrame(
        {
            "STORE_ID": pd.Categorical.from_codes(np.tile(s_idx, n_days), store_ids),
            "PROD_ID": pd.Categorical.from_codes(np.tile(p_idx, n_days), product_ids),
            "DAY": (start + pd.to_timedelta(day, unit="D")).as_unit("s"),
            "QUANTITY": plan[s_idx, p_idx, :].T.ravel(),
        }
    )


def _shortfalls_frame(
    demand: np.ndarray,
    plan: np.ndarray,
    sold: np.ndarray,
    planted: set[tuple[int, int, int]],
    first_day: int,
    store_ids: list[str],
    product_ids: list[str],
    date: Callable[[int], dt.date],
) -> pd.DataFrame:
    """Cells of the window (``demand``, ``plan``: ``(S, P, W)``) where demand exceeds the plan."""
    short = np.argwhere((demand > plan) & sold[:, :, None])  # (n, 3) store, product, window day
    short = short[np.lexsort((short[:, 1], short[:, 0], short[:, 2]))]  # by day, store, product
    cells = [tuple(int(x) for x in cell) for cell in short]
    return pd.DataFrame(
        {
            "store_id": [store_ids[s] for s, _, _ in cells],
            "product_id": [product_ids[p] for _, p, _ in cells],
            "date": [date(first_day + d) for _, _, d in cells],
            "demand": [int(demand[cell]) for cell in cells],
            "resupply": [int(plan[cell]) for cell in cells],
            "planted": [cell in planted for cell in cells],
        },
        columns=["store_id", "product_id", "date", "demand", "resupply", "planted"],
    )


def _transactions(
    lines: Lines,
    catalog: Catalog,
    customer_ids: list[str],
    product_ids: list[str],
    store_ids: list[str],
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Lines -> the transactions frame, sorted by time, one TRAN_ID per (customer, day) trip."""
    minute = lines.day.astype(np.int64) * 1440 + lines.minute
    customer, product = lines.customer.astype(np.int64), lines.product.astype(np.int64)
    n_c, n_p = len(customer_ids), len(product_ids)
    if (int(minute.max(initial=0)) + 1) * n_c * n_p < 2**62:  # keys are unique: any sort will do
        order = np.argsort((minute * n_c + customer) * n_p + product)
    else:
        order = np.lexsort((product, customer, minute))
    minute, customer, product = minute[order], customer[order], product[order]
    units, store = lines.units[order].astype(np.int64), lines.store[order].astype(np.int64)
    new_trip = np.ones(order.size, dtype=bool)
    new_trip[1:] = (minute[1:] != minute[:-1]) | (customer[1:] != customer[:-1])
    trip = np.cumsum(new_trip) - 1
    n_trips = int(trip[-1]) + 1 if trip.size else 0
    tran_ids = pd.Index(_ids("T", n_trips, max(7, len(str(n_trips)))))
    return pd.DataFrame(
        {
            "TRAN_ID": pd.Categorical.from_codes(trip, categories=tran_ids),
            "CLIENT_ID": pd.Categorical.from_codes(customer, categories=customer_ids),
            "PROD_ID": pd.Categorical.from_codes(product, categories=product_ids),
            "TIMESTAMP": (start + pd.to_timedelta(minute, unit="min")).as_unit("s"),
            "PROD_AMOUNT": catalog.price_cents[product] * units / 100.0,
            "PRODT_QTY": units,
            "STORE_ID": pd.Categorical.from_codes(store, categories=store_ids),
        }
    )


def _resupply_plan(
    cfg: SynthConfig, catalog: Catalog, demand: np.ndarray, product: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Forecast ``mu`` and plan for the resupply window, both ``(S, P, resupply_days)``.

    ``mu`` = the cell's mean daily units over the FORECAST_WEEKS weeks before the window (all the
    history if shorter) times the store's weekday factor over the same days. Plan =
    ``max(1, ceil(mu * (1 + margin) + SAFETY_Z * sqrt(mu * dispersion)))``, ``dispersion`` the
    product's E[units^2] / E[units] per line in the history (compound-Poisson variance).
    """
    w0 = cfg.days - cfg.resupply_days
    n_p = catalog.n_products
    sum_u = np.bincount(product, weights=units, minlength=n_p)
    sum_u2 = np.bincount(product, weights=units.astype(float) ** 2, minlength=n_p)
    dispersion = np.where(sum_u > 0, sum_u2 / np.maximum(sum_u, 1), 1.0)  # (P,)
    past = demand[:, :, max(0, w0 - 7 * FORECAST_WEEKS) : w0]  # (S, P, H)
    weekday = (cfg.start.weekday() + np.arange(max(0, w0 - 7 * FORECAST_WEEKS), w0)) % 7  # (H,)
    level = past.mean(axis=2)  # (S, P)
    store_day = past.sum(axis=1)  # (S, H)
    factor = np.ones((cfg.stores, 7))
    for k in range(7):
        on_k = weekday == k
        if on_k.any():
            mean_day = np.maximum(store_day.mean(axis=1), 1e-9)
            factor[:, k] = store_day[:, on_k].mean(axis=1) / mean_day
    w_weekday = (cfg.start.weekday() + np.arange(w0, cfg.days)) % 7  # (W,)
    mu = level[:, :, None] * factor[:, None, w_weekday]  # (S, P, W)
    plan = np.ceil(
        mu * (1 + cfg.resupply_margin) + SAFETY_Z * np.sqrt(mu * dispersion[None, :, None])
    )
    return mu, np.maximum(plan, 1).astype(np.int64)


def _products_frame(
    catalog: Catalog, product_ids: list[str], store_ids: list[str], date: Callable[[int], dt.date]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": product_ids,
            "category": [CATEGORIES[c].name for c in catalog.category.tolist()],
            "department": [CATEGORIES[c].department for c in catalog.category.tolist()],
            "price": catalog.price_cents / 100.0,
            "store": [store_ids[s] if s >= 0 else None for s in catalog.store.tolist()],
            "season_peak": [
                None if math.isnan(p) else date(round(p)) for p in catalog.season_peak.tolist()
            ],
        }
    )


def _needs_frame(
    needs: Needs,
    customer_ids: list[str],
    product_ids: list[str],
    days: int,
    date: Callable[[int], dt.date],
) -> pd.DataFrame:
    def day_or_none(values: np.ndarray, none_if: Callable[[float], bool]) -> list[Any]:
        return [None if none_if(v) else date(math.floor(v)) for v in values.tolist()]

    return pd.DataFrame(
        {
            "customer_id": [customer_ids[c] for c in needs.customer.tolist()],
            "category": [CATEGORIES[c].name for c in needs.category.tolist()],
            "product_id": [product_ids[p] for p in needs.favourite.tolist()],
            "alternative_id": [product_ids[p] for p in needs.alternative.tolist()],
            "period_days": np.round(needs.period, 2),
            "loyalty": np.round(needs.loyalty, 3),
            "mean_units": np.round(needs.units, 2),
            "active_from": day_or_none(needs.active_from, lambda v: v <= 0),
            "active_to": day_or_none(needs.active_to, lambda v: v >= days),
            "promotion": day_or_none(needs.anchor, lambda v: v < 0),
        }
    )


def write(
    dataset: SyntheticDataset, out_dir: str | Path, progress: bool = False
) -> dict[str, Path]:
    """Write transactions.csv, resupplies.csv, products.csv and ground_truth.json into
    ``out_dir``.

    Creates ``out_dir`` if needed and replaces those four files. Returns their paths by name.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create output folder {out}: {exc}. Pick another --out.") from exc
    paths = {
        "transactions": out / "transactions.csv",
        "resupplies": out / "resupplies.csv",
        "products": out / "products.csv",
        "ground_truth": out / "ground_truth.json",
    }
    try:
        _write_csv(dataset.transactions[list(TRANSACTION_COLUMNS)], paths["transactions"], progress)
        _write_csv(dataset.resupplies[list(RESUPPLY_COLUMNS)], paths["resupplies"], False)
        _write_catalog(dataset.products, paths["products"])
        _write_ground_truth(dataset.ground_truth(), paths["ground_truth"])
    except OSError as exc:
        raise DataError(
            f"cannot write into {out}: {exc}. Check free space and permissions."
        ) from exc
    return paths


def _small_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True) for ints, by offset when their range is small."""
    if values.size == 0:
        return values, values
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < 1_000_000:
        return np.arange(lo, hi + 1), values - lo
    return np.unique(values, return_inverse=True)


def _column_text(name: str, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(texts, codes): ASCII bytes of each distinct value, and each row's index into them."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        texts = column.cat.categories.astype(str).to_numpy(dtype=object)
        codes = column.cat.codes.to_numpy()
    elif np.issubdtype(column.dtype, np.datetime64):
        uniq, codes = np.unique(column.to_numpy(), return_inverse=True)
        fmt = _DATETIME_FORMATS.get(name, "%Y-%m-%dT%H:%M:%S")
        texts = [pd.Timestamp(u).strftime(fmt) for u in uniq]
    elif np.issubdtype(column.dtype, np.floating):  # money: two decimals
        uniq, codes = _small_unique(np.round(column.to_numpy() * 100).astype(np.int64))
        texts = [f"{'-' if u < 0 else ''}{abs(u) // 100}.{abs(u) % 100:02d}" for u in uniq.tolist()]
    else:
        uniq, codes = _small_unique(column.to_numpy().astype(np.int64))
        texts = [str(u) for u in uniq.tolist()]
    try:
        return np.asarray([t.encode("ascii") for t in texts], dtype=bytes), codes
    except UnicodeEncodeError as exc:
        raise DataError(f"column {name} holds non-ASCII text ({exc}); ids must be ASCII") from exc


def _write_csv(frame: pd.DataFrame, path: Path, progress: bool, chunk: int = 500_000) -> None:
    """Write ``frame`` as CSV (no quoting: every value is an id or a number)."""
    columns = [_column_text(name, frame[name]) for name in frame.columns]
    starts = range(0, len(frame), chunk)
    with path.open("wb") as fh:
        fh.write((",".join(frame.columns) + "\n").encode("ascii"))
        for lo in tqdm(starts, desc=f"writing {path.name}", unit="chunk", disable=not progress):
            line = None
            for j, (texts, codes) in enumerate(columns):
                field = texts[codes[lo : lo + chunk]]
                line = field if line is None else np.strings.add(line, field)
                line = np.strings.add(line, b"," if j < len(columns) - 1 else b"\n")
            fh.write(b"".join(line.tolist()))


def _write_catalog(products: pd.DataFrame, path: Path) -> None:
    """products.csv: each product, its category and department, in product id order (the
    catalog only)."""
    rows = sorted(zip(products["product_id"], products["category"], products["department"],
                      strict=True))
    with path.open("w", encoding="ascii", newline="") as fh:
        fh.write(",".join(CATALOG_COLUMNS) + "\n")
        fh.writelines(f"{product},{category},{department}\n"
                      for product, category, department in rows)


def _write_ground_truth(truth: dict[str, Any], path: Path) -> None:
    """Pretty at the top, one line per list element, so big files stay greppable."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("{\n")
        items = list(truth.items())
        for i, (key, value) in enumerate(items):
            fh.write(f"  {json.dumps(key)}: ")
            if isinstance(value, list):
                if value:
                    fh.write("[\n")
                    lines = ("    " + json.dumps(v, separators=(",", ":")) for v in value)
                    fh.write(",\n".join(lines))
                    fh.write("\n  ]")
                else:
                    fh.write("[]")
            else:
                fh.write(json.dumps(value, separators=(", ", ": ")))
            fh.write(",\n" if i < len(items) - 1 else "\n")
        fh.write("}\n")
