"""Bytes per customer in the funnel-state table, and the processor's own speed, on a large world.

    .venv/bin/python bench/funnel_state_size.py [--customers 20000] [--days 90]

A synthetic world (``lens data synth``, seed 3) goes through ``FunnelProcessor.on_pos`` with
in-memory tables, exactly the per-record logic of the worker without Kafka or Faust: records/s
of the logic alone, and the size of every customer's table value (the changelog record) at the
end: mean, median, p99, max, and the extrapolation to 1,000,000 customers.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lens.codec import encode  # noqa: E402
from lens.data.loaders import load_funnels  # noqa: E402
from lens.settings import LensSettings  # noqa: E402
from services.funnel.config import FunnelServiceConfig  # noqa: E402
from services.funnel.processor import FunnelProcessor  # noqa: E402
from services.pos import baskets_in_time_order  # noqa: E402
from services.pos.events import basket_events, event_key  # noqa: E402
from tests.unit.services.funnel.conftest import DictTables  # noqa: E402  (the worker's tables as dicts)

NOW_US = 1_900_000_000_000_000  # processing time after the world's period


def world_through_processor(customers: int, days: int):
    """A synthetic world (``lens data synth``, seed 3) through ``FunnelProcessor.on_pos`` with
    in-memory tables: (tables, funnels, POS records, seconds of processor logic)."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "lens.cli.main", "data", "synth", "--customers",
                        str(customers), "--days", str(days), "--seed", "3", "--out", folder],
                       check=True, capture_output=True)
        funnels = load_funnels(Path(folder) / "transactions.csv").funnels
    records = [(event_key(e), encode(e)) for b in baskets_in_time_order(funnels)
               for e in basket_events(b)]
    processor = FunnelProcessor(FunnelServiceConfig.from_settings(LensSettings(), no_model=True))
    tables = DictTables()
    began = time.perf_counter()
    for offset, (key, value) in enumerate(records):
        processor.on_pos(tables, partition=hash(key) % 8, offset=offset, key=key, value=value,
                         now_us=NOW_US)
    return tables, funnels, len(records), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    tables, funnels, records, seconds = world_through_processor(args.customers, args.days)
    sizes = np.array([len(v) for v in tables.states.values()])
    sessions = np.mean([len(h) for h in funnels.values()])
    print(f"{len(sizes):,} customers ({sessions:.1f} sessions each), {records:,} records in "
          f"{seconds:.1f} s: {records / seconds:,.0f} records/s of processor logic")
    print(f"bytes per customer: mean {sizes.mean():,.0f}, median {np.median(sizes):,.0f}, "
          f"p99 {np.percentile(sizes, 99):,.0f}, max {sizes.max():,}; 1,000,000 such customers: "
          f"{sizes.mean() * 1e6 / 2**30:.1f} GiB of table values")


if __name__ == "__main__":
    main()
