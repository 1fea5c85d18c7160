"""One store's Algorithm 2 state: predicted demand, resupply plan, residuals and alert memory.

    R[product][day] = resupply[product][day] - demand[product][day]
    alert every cell with R < 0 (shortfall = -R > min_shortfall)

Everything is keyed by one store, so the service can partition stock-out aggregation by store
(``inventory.resupplies`` and ``ContributionUpdate`` are both keyed by store_id).

- ``apply(update)``: replace one contributor's cells (a customer's newer prediction replaces its
  older one); an update older (by as_of) than the contributor's current one is ignored.
- ``set_resupply(product, day, quantity)``: a newer Resupply for a cell replaces the older one.
- Alerts: a cell alerts once per (whole units short, resupply) state; it alerts again only after
  its shortfall crosses a whole unit or its plan changes (still short: new revision; recovered
  then short again: new revision). Demand is in expected units, so every contributor's update
  moves it by fractions: alerting on each would repeat the same news dozens of times.
- ``expire_before(day)``: drops cells of past days (bounds the state; call it with the
  event-time watermark's date). It scans the state only when something can be older than
  ``day`` (the store remembers a lower bound of its days), so calling it on every event costs
  nothing until the date moves on.
- Plan coverage: a day the store's resupply plan has no row for is unknown supply, not zero
  supply, so its cells never alert; once the plan covers a day (any product), a product without
  a row that day gets nothing (R = -demand). Cells of a day wait for its plan and are checked
  when the first row for that day arrives.

State (``to_dict``): per contributor ~40 bytes + ~30 per cell; per cell of demand, resupply and
alert memory ~40 bytes each. Quantities are integer micro-units (exact in any order).

In parts (the worker's table, ``services.funnel.stockout``): ``contribution_row`` per
contributor, ``day_rows`` per day (demand, source, alert memory and revisions of the day's cells,
~50 bytes per cell), ``plan_day`` per day, and ``planned_days`` with ``horizon``. A store can be
worked on with only some parts loaded (``in_parts``, then ``load_contribution``, ``load_day``,
``load_plan_day``): ``apply`` needs the contributor and the days of its old and new cells with
their plan, ``set_resupply`` its day and that day's plan, ``expire_before`` every contributor
(parts of the days it drops need not be loaded: they are dropped whole).

Cost: ``apply`` and ``set_resupply`` on a day already planned work on the cells they change
(and the contributor's previous cells) only, whatever the store's size; the first row of a new
plan day also looks through the store's demand for that day's cells (once per day).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lens import v1
from lens.errors import DataError
from lens.stockout.demand import MICRO, Cell, ContributionUpdate, StockoutConfig, to_micro
from lens.stream.event_time import iso_date, to_timestamp

__all__ = ["StoreStockout"]


@dataclass
class _Contribution:
    as_of: int
    cells: dict[Cell, int]


@dataclass
class StoreStockout:
    store_id: str
    config: StockoutConfig = field(default_factory=StockoutConfig)
    contributions: dict[str, _Contribution] = field(default_factory=dict)
    demand: dict[Cell, int] = field(default_factory=dict)
    resupply: dict[Cell, int] = field(default_factory=dict)
    # cell -> (as_of, model name, version, label) of the newest prediction that changed it
    cell_source: dict[Cell, tuple[int, str, int, str]] = field(default_factory=dict)
    # cell -> (whole units short, resupply micro-units) when it last alerted
    alerted: dict[Cell, tuple[int, int]] = field(default_factory=dict)
    revisions: dict[Cell, int] = field(default_factory=dict)
    # days with at least one resupply row (derived from ``resupply``, so not serialised)
    planned_days: set[str] = field(default_factory=set)
    # no cell, planned day or cell-less contribution is of a day before this one (a lower
    # bound, derived, so not serialised by ``to_dict``): ``expire_before`` up to it has nothing
    # to do
    _horizon: str = field(default="", init=False, repr=False, compare=False)
    # day -> products with a cell of that day in the cell-state tables (demand, sources, alert
    # memory; derived, may name cells since emptied): ``day_rows`` then costs the day's cells,
    # not the store's. Every such cell had demand once, so ``_add_demand`` keeps it complete.
    _day_products: dict[str, set[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    # day -> products with a resupply row that day (derived): ``plan_days`` costs the days asked
    _plan_products: dict[str, set[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.planned_days.update(day for _, day in self.resupply)
        for product, day in self.resupply:
            self._plan_products.setdefault(day, set()).add(product)
        for table in (self.demand, self.cell_source, self.alerted, self.revisions):
            for product, day in table:
                self._day_products.setdefault(day, set()).add(product)
        days = [*self.planned_days, *(d for _, d in self.demand), *(d for _, d in self.alerted),
                *(d for _, d in self.cell_source), *(d for _, d in self.revisions)]
        for entry in self.contributions.values():
            days += [d for _, d in entry.cells] if entry.cells else [iso_date(entry.as_of)]
        self._horizon = min(days, default="")

    # -- updates ------------------------------------------------------------------------------

    def apply(self, update: ContributionUpdate) -> list[v1.StockoutAlert]:
        """Replace ``update.contributor``'s cells; returns the alerts of the cells it changed."""
        if update.store_id != self.store_id:
            raise DataError(f"update for store {update.store_id!r} sent to store {self.store_id!r}")
        old = self.contributions.get(update.contributor)
        if old is not None and update.as_of < old.as_of:
            return []  # an older prediction than the one in force: replaying, or reordered
        old_cells = old.cells if old is not None else {}
        new_cells = {cell: q for cell, q in update.cells.items() if q > 0}
        changed = set()
        for cell, q in old_cells.items():
            self._add_demand(cell, -q)
            changed.add(cell)
        for cell, q in new_cells.items():
            self._add_demand(cell, q)
            changed.add(cell)
        changed = {c for c in changed if old_cells.get(c, 0) != new_cells.get(c, 0)}
        self.contributions[update.contributor] = _Contribution(update.as_of, new_cells)
        days = {d for _, d in new_cells} or {iso_date(update.as_of)}
        self._horizon = min(self._horizon, *days)
        name, version, label = update.model
        for cell in changed:
            current = self.cell_source.get(cell)
            if current is None or update.as_of >= current[0]:
                self.cell_source[cell] = (update.as_of, name, version, label)
        return self._check(changed, (update.contributor, update.session_index))

    def set_resupply(self, product_id: str, day: str, quantity: float) -> list[v1.StockoutAlert]:
        """The plan for (product, day) is now ``quantity`` units (replacing any older plan)."""
        cell = (product_id, day)
        micro = to_micro(quantity)
        if self.resupply.get(cell) == micro:
            return []
        self.resupply[cell] = micro
        self._plan_products.setdefault(day, set()).add(product_id)
        self._horizon = min(self._horizon, day)
        if day in self.planned_days:
            return self._check({cell})
        self.planned_days.add(day)
        return self._check({cell} | {c for c in self.demand if c[1] == day})

    def on_resupply(self, resupply: v1.Resupply) -> list[v1.StockoutAlert]:
        if resupply.store_id != self.store_id:
            raise DataError(
                f"resupply for store {resupply.store_id!r} sent to store {self.store_id!r}"
            )
        return self.set_resupply(resupply.product_id, resupply.day, resupply.quantity)

    def expire_before(self, day: str) -> set[str]:
        """Forget every cell of a day before ``day`` (ISO date) and contributors left without
        cells whose prediction is older than that day; returns the planned days forgotten."""
        if day <= self._horizon:
            return set()  # nothing is that old
        for contributor in list(self.contributions):
            entry = self.contributions[contributor]
            entry.cells = {c: q for c, q in entry.cells.items() if c[1] >= day}
            if not entry.cells and iso_date(entry.as_of) < day:
                del self.contributions[contributor]
        for table in (self.demand, self.resupply, self.cell_source, self.alerted, self.revisions):
            for cell in [c for c in table if c[1] < day]:
                del table[cell]
        for index in (self._day_products, self._plan_products):
            for old in [d for d in index if d < day]:
                del index[old]
        expired = {d for d in self.planned_days if d < day}
        self.planned_days -= expired
        self._horizon = day
        return expired

    # -- queries ------------------------------------------------------------------------------

    def residual(self, product_id: str, day: str) -> float:
        """R = resupply - demand for one cell, in units."""
        cell = (product_id, day)
        return (self.resupply.get(cell, 0) - self.demand.get(cell, 0)) / MICRO

    def shortfalls(self) -> list[tuple[str, str, float]]:
        """Every cell of a planned day with R < 0 now: (product, day, shortfall), by day then
        product."""
        found = []
        for cell, d in self.demand.items():
            if cell[1] not in self.planned_days:
                continue
            r = self.resupply.get(cell, 0)
            if d - r > to_micro(self.config.min_shortfall):
                found.append((cell[0], cell[1], (d - r) / MICRO))
        return sorted(found, key=lambda x: (x[1], x[0]))

    # -- internals ----------------------------------------------------------------------------

    def _add_demand(self, cell: Cell, micro: int) -> None:
        self._day_products.setdefault(cell[1], set()).add(cell[0])
        total = self.demand.get(cell, 0) + micro
        if total:
            self.demand[cell] = total
        else:
            self.demand.pop(cell, None)

    def _check(
        self, cells: Iterable[Cell], raised_by: tuple[str, int] | None = None
    ) -> list[v1.StockoutAlert]:
        """Alerts of ``cells`` that are short in a state not alerted yet; ``raised_by``: the
        (contributor, session index) of the prediction whose update is being applied."""
        alerts = []
        for cell in sorted(cells, key=lambda c: (c[1], c[0])):
            d, r = self.demand.get(cell, 0), self.resupply.get(cell, 0)
            if cell[1] not in self.planned_days or d - r <= to_micro(self.config.min_shortfall):
                self.alerted.pop(cell, None)
                continue
            state = ((d - r) // MICRO, r)
            if self.alerted.get(cell) == state:
                continue
            self.alerted[cell] = state
            self.revisions[cell] = self.revisions.get(cell, 0) + 1
            alerts.append(self._alert(cell, raised_by))
        return alerts

    def standing_alerts(self) -> list[v1.StockoutAlert]:
        """An alert for every cell short now (already sent or not), by day then product."""
        return [self._alert((p, day)) for p, day, _ in self.shortfalls()]

    def _alert(self, cell: Cell, raised_by: tuple[str, int] | None = None) -> v1.StockoutAlert:
        d, r = self.demand.get(cell, 0), self.resupply.get(cell, 0)
        as_of, name, version, label = self.cell_source.get(cell, (0, "", 0, ""))
        alert = v1.StockoutAlert(
            alert_id=f"{self.store_id}:{cell[0]}:{cell[1]}:{self.revisions.get(cell, 0)}",
            store_id=self.store_id,
            product_id=cell[0],
            day=cell[1],
            predicted_demand=d / MICRO,
            resupply_quantity=r / MICRO,
            shortfall=(d - r) / MICRO,
            as_of=to_timestamp(as_of),
            model=v1.ModelRef(name=name, version=version, label=label),
        )
        if raised_by is not None and raised_by[1] > 0:
            alert.raised_by.customer_id, alert.raised_by.session_index = raised_by
        return alert

    # -- serialisation ------------------------------------------------------------------------

    def plan_day(self, day: str) -> dict[str, int]:
        """The resupply plan of one day: product -> micro-units (what ``load_plan_day`` takes)."""
        return self.plan_days({day})[day]

    def plan_days(self, days: Iterable[str]) -> dict[str, dict[str, int]]:
        """``plan_day`` of each of ``days``."""
        return {day: {product: self.resupply[(product, day)]
                      for product in self._plan_products.get(day, ())} for day in days}

    def load_plan_day(self, day: str, plan: dict[str, int]) -> None:
        """Put one day's stored plan (from ``plan_day``) back, without alerting: the state it was
        saved with already accounts for it."""
        for product, micro in plan.items():
            self.resupply[(product, day)] = micro
        self._plan_products.setdefault(day, set()).update(plan)

    # -- storage in parts (``services.funnel.stockout``: a key per contributor, per day) ------

    @classmethod
    def in_parts(
        cls, store_id: str, config: StockoutConfig, planned_days: Iterable[str], horizon: str
    ) -> "StoreStockout":
        """A store kept in parts before any part is loaded: its planned days and its stored
        ``horizon`` (it bounds the parts not loaded too, which ``expire_before`` relies on)."""
        store = cls(store_id, config, planned_days=set(planned_days))
        store._horizon = horizon
        return store

    @property
    def horizon(self) -> str:
        """No cell, planned day or cell-less contribution is of a day before this one ("": no
        bound known yet)."""
        return self._horizon

    def cell_days(self) -> set[str]:
        """Days that may have cell state (``day_rows`` of any other day is empty)."""
        return set(self._day_products)

    def contribution_row(self, contributor: str) -> list[Any]:
        """One contributor as [as_of, [[product, day, micro-units], ...]] (cells sorted; what
        ``load_contribution`` takes)."""
        entry = self.contributions[contributor]
        return [entry.as_of, [[p, d, q] for (p, d), q in sorted(entry.cells.items())]]

    def load_contribution(self, contributor: str, row: list[Any]) -> None:
        as_of, cells = row
        self.contributions[contributor] = _Contribution(as_of, {(p, d): q for p, d, q in cells})

    def day_rows(self, day: str) -> list[list[Any]]:
        """The cell state of one day: [product, demand, source, alerted, revisions] per cell
        that has any, by product (source and alerted as lists, or None); what ``load_day``
        takes."""
        rows = (self.cell_row(product, day) for product in sorted(self._day_products.get(day, ())))
        return [row for row in rows if row is not None]

    def cell_row(self, product_id: str, day: str) -> list[Any] | None:
        """The ``day_rows`` row of one cell; None for a cell without state."""
        cell = (product_id, day)
        source, alerted = self.cell_source.get(cell), self.alerted.get(cell)
        demand, revisions = self.demand.get(cell, 0), self.revisions.get(cell, 0)
        if not (demand or revisions or source or alerted):
            return None
        return [product_id, demand, source and list(source), alerted and list(alerted), revisions]

    def load_day(self, day: str, rows: list[list[Any]]) -> None:
        """Put one day's stored cell state (from ``day_rows``) back, without alerting."""
        products = self._day_products.setdefault(day, set())
        for product, demand, source, alerted, revisions in rows:
            cell = (product, day)
            products.add(product)
            if demand:
                self.demand[cell] = demand
            if source is not None:
                self.cell_source[cell] = tuple(source)
            if alerted is not None:
                self.alerted[cell] = tuple(alerted)
            if revisions:
                self.revisions[cell] = revisions

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: cells as [product, day, value...] lists, sorted, so equal states give
        equal dicts."""

        def rows(table: dict[Cell, Any]) -> list[list[Any]]:
            return [
                [c[0], c[1], *(v if isinstance(v, tuple) else (v,))]
                for c, v in sorted(table.items())
            ]

        return {
            "v": 1,
            "store": self.store_id,
            "contributions": {
                k: [e.as_of, rows(e.cells)] for k, e in sorted(self.contributions.items())
            },
            "demand": rows(self.demand),
            "resupply": rows(self.resupply),
            "source": rows(self.cell_source),
            "alerted": rows(self.alerted),
            "revisions": rows(self.revisions),
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: StockoutConfig = StockoutConfig()
    ) -> "StoreStockout":
        """The state of ``to_dict``; also the whole-store record of the worker's table before it
        was kept in parts (no "resupply", the planned days under "planned")."""
        if data.get("v") != 1:
            raise DataError(f"stock-out state format {data.get('v')!r} is not 1")

        def single(rows: list[list[Any]]) -> dict[Cell, Any]:
            return {(r[0], r[1]): r[2] for r in rows}

        def multi(rows: list[list[Any]]) -> dict[Cell, tuple[Any, ...]]:
            return {(r[0], r[1]): tuple(r[2:]) for r in rows}

        return cls(
            store_id=data["store"],
            config=config,
            contributions={
                k: _Contribution(as_of, single(cells))
                for k, (as_of, cells) in data["contributions"].items()
            },
            demand=single(data["demand"]),
            resupply=single(data.get("resupply", [])),
            planned_days=set(data.get("planned", [])),
            cell_source=multi(data["source"]),
            alerted=multi(data["alerted"]),
            revisions=single(data["revisions"]),
        )

