"""The store agent's table writes: the whole-record layout against the layout in parts.

    .venv/bin/python bench/store_side.py [--stores 3] [--customers 300] [--days 3] [--batch 15]

A stream of store events (each store's 14-day plan of ``--products`` products, then
``--customers`` customers spread over the stores sending ~3 predictions a day of ~10 cells over
the next week for ``--days`` days, while the plan rolls on a day at a time) goes, in batches of
``--batch`` events, through ``StoreProcessor.on_store_event`` and ``StoreCache.flush`` over a
dict-backed table, exactly the store agent's per-batch logic without Kafka or Faust. Once with
the whole-record layout (``services/funnel/stockout.py`` and ``lens/stockout/store_stockout.py``
as of ``--old-ref``, read with ``git show``) and once with the working tree's layout in parts,
each with the worker's store cache (256) and with none (every batch reads its stores again).
Reported per variant: CPU us per event (demand phase, and the whole stream), table writes and
bytes written per batch (demand phase), table reads per event, and the CPU time of a full
``load_store`` (what ``GET /v1/stores/{id}`` does). Both must raise the same alerts.
"""

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lens import v1  # noqa: E402
from lens.settings import LensSettings  # noqa: E402
from lens.stockout import ContributionUpdate  # noqa: E402
from lens.topics import STOCKOUT_ALERTS  # noqa: E402
from services.funnel import stockout as new_stockout  # noqa: E402
from services.funnel.config import FunnelServiceConfig  # noqa: E402
from services.funnel.processor import encode_store_event  # noqa: E402

OLD_REF = "390b042f2165a25d039edb1656bac97bd8fe993a"  # the last commit of the whole-record layout
DAY_US = 86_400_000_000
T0 = 1_772_409_600_000_000  # 2026-03-02T00:00Z
PLAN_DAYS = 14
QUERY_ROUNDS = 10


def day(n: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime((T0 + n * DAY_US) // 1_000_000))


def old_modules(ref: str) -> ModuleType:
    """``services.funnel.stockout`` as of ``ref``, over the ``StoreStockout`` of ``ref``."""

    def load(name: str, source: str) -> ModuleType:
        spec = importlib.util.spec_from_loader(name, loader=None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        exec(compile(source, f"{ref[:10]}:{name}", "exec"), module.__dict__)
        return module

    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout

    load("_old_store_stockout", show("lens/stockout/store_stockout.py"))
    source = show("services/funnel/stockout.py")
    imported = "from lens.stockout import ContributionUpdate, StoreStockout\n"
    if imported not in source:
        raise SystemExit(f"{ref}: services/funnel/stockout.py no longer imports {imported!r}")
    return load("_old_funnel_stockout", source.replace(
        imported, "from lens.stockout import ContributionUpdate\n"
                  "from _old_store_stockout import StoreStockout\n"))


def stream(args: argparse.Namespace) -> tuple[list[tuple[int, bytes]], int]:
    """(partition, value) of every event, and how many of the first are the initial plan."""
    rng = random.Random(args.seed)
    stores = [f"S{i}" for i in range(args.stores)]
    products = [f"p{i:04d}" for i in range(args.products)]

    def resupply(store: str, product: str, d: int) -> tuple[int, bytes]:
        return stores.index(store), new_stockout.encode_resupply_event(v1.Resupply(
            store_id=store, product_id=product, day=day(d), quantity=rng.randrange(1, 40)))

    plan = [resupply(s, p, d) for d in range(PLAN_DAYS) for s in stores for p in products]
    timed: list[tuple[int, tuple[int, bytes]]] = []
    for c in range(args.customers):
        store = stores[c % len(stores)]
        favourites = rng.sample(products, 25)  # a customer's usual products
        for _ in range(3 * args.days):
            as_of = T0 + rng.randrange(args.days * DAY_US)
            today = (as_of - T0) // DAY_US
            cells = {(rng.choice(favourites), day(today + rng.randrange(7))):
                     rng.randrange(50_000, 2_000_000) for _ in range(10)}
            update = ContributionUpdate(store, f"c{c}", cells, as_of, ("lens", 1, ""))
            timed.append((as_of, (stores.index(store), encode_store_event(update))))
    for d in range(1, args.days + 1):  # the plan rolls on: the day 14 days ahead, each day
        at = T0 + d * DAY_US - 1
        timed += [(at, resupply(s, p, d + PLAN_DAYS - 1)) for s in stores for p in products]
    timed.sort(key=lambda item: item[0])
    return plan + [event for _, event in timed], len(plan)


class Tables:
    """StoreTables over a dict, counting reads, writes and bytes written."""

    def __init__(self) -> None:
        self.stores: dict[str, bytes] = {}
        self.reads = self.writes = self.bytes = 0

    def get_store(self, key: str) -> bytes | None:
        self.reads += 1
        return self.stores.get(key)

    def put_store(self, key: str, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(key) + len(data)
        self.stores[key] = data

    def delete_store(self, key: str) -> None:
        self.writes += 1
        self.bytes += len(key)
        self.stores.pop(key, None)


def replay(module: ModuleType, config: FunnelServiceConfig, events: list[tuple[int, bytes]],
           planned: int, batch: int, capacity: int) -> dict:
    tables = Tables()
    processor = module.StoreProcessor(config)
    cache = module.StoreCache(tables, config, capacity)
    alerts: list[str] = []
    cpu = {"plan": 0.0, "demand": 0.0}
    demand = {"events": 0, "batches": 0, "writes": 0, "bytes": 0, "reads": 0}
    for start in range(0, len(events), batch):
        chunk = events[start:start + batch]
        phase = "plan" if start + len(chunk) <= planned else "demand"
        reads, writes, written = tables.reads, tables.writes, tables.bytes
        began = time.process_time()
        for partition, value in chunk:
            for out in processor.on_store_event(cache.partition(partition), value).outputs:
                if out.topic == STOCKOUT_ALERTS.name:
                    alerts.append(v1.StockoutAlert.FromString(out.value).alert_id)
        for partition in cache.dirty_partitions():
            cache.flush(partition)
        cpu[phase] += time.process_time() - began
        if phase == "demand":
            demand["events"] += len(chunk)
            demand["batches"] += 1
            demand["writes"] += tables.writes - writes
            demand["bytes"] += tables.bytes - written
            demand["reads"] += tables.reads - reads
    stores = sorted({partition for partition, _ in events})
    began = time.process_time()
    for _ in range(QUERY_ROUNDS):
        for i in stores:
            module.load_store(tables, f"S{i}", config)
    query = (time.process_time() - began) / QUERY_ROUNDS / len(stores)
    return {
        "alerts": alerts,
        "us_per_event_demand": cpu["demand"] / demand["events"] * 1e6,
        "us_per_event_all": sum(cpu.values()) / len(events) * 1e6,
        "writes_per_batch": demand["writes"] / demand["batches"],
        "kb_per_batch": demand["bytes"] / demand["batches"] / 1e3,
        "reads_per_event": demand["reads"] / demand["events"],
        "table_kb": sum(len(k) + len(v) for k, v in tables.stores.items()) / 1e3,
        "query_load_ms": query * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument("--customers", type=int, default=300, help="over all stores")
    parser.add_argument("--products", type=int, default=200, help="in each store's plan")
    parser.add_argument("--days", type=int, default=3, help="of predictions")
    parser.add_argument("--batch", type=int, default=15, help="events per batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--old-ref", default=OLD_REF, help="git commit of the whole-record layout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as run_dir:
        config = FunnelServiceConfig.from_settings(
            LensSettings(run_dir=Path(run_dir), kafka_bootstrap="127.0.0.1:9"))
    events, planned = stream(args)
    print(f"{len(events)} events ({planned} of the initial plan, then "
          f"{len(events) - planned} demand and rolling plan), batches of {args.batch}")
    results = {}
    for capacity in (config.store_cache_size, 0):
        for name, module in (("whole record", old_modules(args.old_ref)),
                             ("parts", new_stockout)):
            results[name, capacity] = replay(module, config, events, planned, args.batch,
                                             capacity)
        if results["whole record", capacity]["alerts"] != results["parts", capacity]["alerts"]:
            raise SystemExit(f"the layouts raised different alerts (cache {capacity})")
    alerts = len(results["parts", config.store_cache_size]["alerts"])
    print(f"both layouts raised the same {alerts} alerts\n")
    columns = ["us_per_event_demand", "us_per_event_all", "writes_per_batch", "kb_per_batch",
               "reads_per_event", "table_kb", "query_load_ms"]
    print(f"{'layout':14}{'cache':>6}" + "".join(f"{c:>21}" for c in columns))
    for (name, capacity), found in results.items():
        print(f"{name:14}{capacity:>6}" + "".join(f"{found[c]:>21.1f}" for c in columns))
    for capacity in (config.store_cache_size, 0):
        old, new = results["whole record", capacity], results["parts", capacity]
        print(f"cache {capacity}: parts / whole record: CPU per demand event "
              f"{new['us_per_event_demand'] / old['us_per_event_demand']:.3f}, bytes per batch "
              f"{new['kb_per_batch'] / old['kb_per_batch']:.3f}")
    print(json.dumps({f"{n} (cache {c})": {k: round(v, 2) for k, v in r.items() if k != "alerts"}
                      for (n, c), r in results.items()}))


if __name__ == "__main__":
    main()
