"""FunnelProcessor alone, no Kafka: microseconds per pos.transactions record over dict tables.

    .venv/bin/python bench/funnel_processor.py [--customers 300] [--days 60] [--batch N]
        [--profile N]

The inner loop of the funnel worker (``services.funnel.processor``) on a synthetic world
(``lens data synth``, seed 7) replayed in time order, with a sweep per partition every 500
records and no model. The tables hold encoded bytes like the worker's Faust tables: without
``--batch`` every record decodes its customer's state and writes it back (the worker before the
state cache), with ``--batch N`` the records go through ``services.funnel.tables.StateCache``
and each changed state is written once per N records, as the worker does per batch.
``bench/funnel_state_size.py`` measures the first on a much larger world. ``--profile N``
prints the N most expensive functions (cProfile, cumulative).
"""

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lens.settings import LensSettings  # noqa: E402
from lens.topics import POS_TRANSACTIONS  # noqa: E402
from services.funnel import FunnelServiceConfig  # noqa: E402
from services.funnel.processor import FunnelProcessor  # noqa: E402
from services.funnel.tables import StateCache  # noqa: E402
from tests.unit.services.funnel.conftest import DictTables  # noqa: E402  (the worker's tables as dicts)


def records(customers: int, days: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every POS event of a synthetic world, in time order."""
    from lens.data.loaders import load_funnels
    from services.pos.events import basket_events, baskets_in_time_order, event_key

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "lens.cli.main", "data", "synth", "--customers",
                        str(customers), "--days", str(days), "--seed", "7", "--out", folder],
                       check=True, capture_output=True, cwd=REPO)
        funnels = load_funnels(Path(folder) / "transactions.csv").funnels
    out = []
    for basket in baskets_in_time_order(funnels):
        for event in basket_events(basket):
            key = event_key(event)
            out.append((zlib.crc32(key) % POS_TRANSACTIONS.partitions, key,
                        event.SerializeToString()))
    return out


def run(config: FunnelServiceConfig, stream: list[tuple[int, bytes, bytes]],
        batch: int | None) -> float:
    """Seconds to process ``stream`` once, in batches of ``batch`` records as the worker takes
    them (the state cache written back after each; None = no cache, a decode and a write per
    record), a sweep of every partition per 500 records."""
    processor = FunnelProcessor(config, predicting=False)
    tables = DictTables()
    cache = StateCache(tables, config.state_cache_size)

    def tables_for(partition: int):
        return tables if batch is None else cache.partition(partition)

    def flush() -> None:
        for p in cache.dirty_partitions():
            cache.flush(p)

    now = time.time_ns() // 1000
    start = time.perf_counter()
    for offset, (partition, key, value) in enumerate(stream):
        processor.on_pos(tables_for(partition), partition=partition, offset=offset, key=key,
                         value=value, now_us=now)
        if batch is not None and offset % batch == batch - 1:
            flush()
        if offset % 500 == 499:
            for p in range(POS_TRANSACTIONS.partitions):
                processor.on_sweep(tables_for(p), partition=p, now_us=now)
    flush()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--batch", type=int, default=None,
                        help="records per batch through the state cache (default: no cache)")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    stream = records(args.customers, args.days)
    config = FunnelServiceConfig.from_settings(LensSettings(run_dir=Path(tempfile.mkdtemp())))
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run, config, stream, args.batch)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
        return
    best = min(run(config, stream, args.batch) for _ in range(3))
    print(f"{len(stream)} records: {best * 1e6 / len(stream):.0f} us/record "
          f"({len(stream) / best:,.0f} records/s), best of 3")


if __name__ == "__main__":
    main()
