"""What Faust's sensor costs the worker per record: the same calls through three monitors.

    .venv/bin/python bench/faust_sensor.py [--records 50000] [--repeats 3]

One "record" here is what the funnel worker's sensor sees for a record it consumes and a record
it sends: a message in, its stream event in and out, the message out, a table read and write,
a send initiated and completed, the partition's end offset. The calls go through
- Faust's ``Monitor``: its own counts in Python numbers, what any Faust app pays;
- Faust's ``PrometheusMonitor``: those, plus a Prometheus update per count (a lock, argument
  checks), the sensor as Faust ships it;
- the worker's ``services.funnel.metrics.FaustMonitor``: Faust's counts, turned into the same
  Prometheus samples only when /metrics is scraped.

Prints microseconds per record for each, best of ``--repeats``, measured side by side in one run.
"""

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faust.sensors.monitor import Monitor  # noqa: E402
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor  # noqa: E402
from faust.types import TP  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from services.funnel.metrics import FaustMonitor  # noqa: E402


class _Message:
    time_in = None


class _Stream:
    shortlabel = "Stream: funnel"

    def __init__(self) -> None:
        self.task_owner = self  # weakly referenced by Faust's monitor

    def __str__(self) -> str:
        return self.shortlabel


class _Table:
    name = "funnel-state"


def per_record_us(monitor, records: int) -> float:
    tp, stream, table = TP("pos.transactions", 3), _Stream(), _Table()
    began = time.perf_counter()
    for offset in range(records):
        message = _Message()
        monitor.on_message_in(tp, offset, message)
        state = monitor.on_stream_event_in(tp, offset, stream, None)
        monitor.on_stream_event_out(tp, offset, stream, None, state)
        monitor.on_message_out(tp, offset, message)
        monitor.on_table_get(table, "k")
        monitor.on_table_set(table, "k", b"v")
        sent = monitor.on_send_initiated(None, "lens.sessions", None, 1, 2)
        monitor.on_send_completed(None, sent, None)
        monitor.track_tp_end_offset(tp, offset + 1)
    return (time.perf_counter() - began) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    def metrics(registry: CollectorRegistry) -> FaustMetrics:
        return FaustMetrics.create(registry, "lens_funnel_faust")

    faust_prometheus = PrometheusMonitor(metrics=metrics(CollectorRegistry()))
    registry = CollectorRegistry()
    monitors = {
        "Faust's Monitor (no Prometheus)": Monitor(),
        "Faust's PrometheusMonitor": faust_prometheus,
        "the worker's FaustMonitor": FaustMonitor(metrics(registry), registry),
    }
    best = {name: float("inf") for name in monitors}
    for _ in range(args.repeats):  # interleaved, so that the machine's swings hit all three
        for name, monitor in monitors.items():
            best[name] = min(best[name], per_record_us(monitor, args.records))
    base = best["Faust's PrometheusMonitor"]
    for name, us in best.items():
        print(f"{name:34s} {us:6.2f} us per record  ({us / base:.2f} of Faust's Prometheus sensor)")


if __name__ == "__main__":
    main()
