"""Recovery of a large funnel-state table from its changelog by a real `lens worker funnel`.

    .venv/bin/python bench/funnel_recovery.py [--customers 1000000] [--templates 2000] \
        [--days 90] [--sample 200] [--out bench/results/funnel-recovery.json]

1. A private broker (as `lens stack` starts it, under a temporary directory; or the cluster in
   LENS_KAFKA_BOOTSTRAP) and the worker's topics, created by the worker's own ``ensure_topics``.
2. Table values: a synthetic world of ``--templates`` customers (``lens data synth``, seed 3)
   through ``FunnelProcessor`` with in-memory tables, as ``bench/funnel_state_size.py`` does;
   customer i of ``--customers`` gets template i mod ``--templates`` under its own id. Each value
   is exactly what the worker writes (``FunnelState.to_bytes``), under the key the table writes
   (the customer id through the table's key serializer: Faust picks JSON for ``key_type=str``),
   on the partition the worker writes it to: that of the customer's pos.transactions records,
   murmur2 of the raw customer id as the POS publisher partitions them.
3. One worker (`lens worker funnel --no-model`, RocksDB tables) on an empty state directory:
   seconds from process start to "Worker ready", the restore phase from Faust's own log lines,
   the RocksDB size of the table on disk, the worker's peak RSS, a sample of customers read back
   through ``/funnel/customers/{id}/`` and compared with what was written, and the time until the
   worker has processed one new POS line of a recovered customer.
4. After a clean stop, every key of the table's RocksDB stores is counted (must be
   ``--customers``). The JSON summary is printed and written to ``--out``.
"""

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.partitioner import murmur2
from faust.serializers import codecs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.funnel_load import proc_cpu_s, proc_mib  # noqa: E402
from bench.funnel_state_size import world_through_processor  # noqa: E402
from lens.codec import encode  # noqa: E402
from lens.settings import LensSettings, load_settings  # noqa: E402
from services.funnel.config import FunnelServiceConfig  # noqa: E402
from services.kafka import KafkaConnection, wait_until_ready  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.processes import lens_env, line, worker_command  # noqa: E402

TABLE = "funnel-state"
PROCESSED = 'lens_funnel_records_total{outcome="processed"}'
# Faust's log line prefix: "[2026-11-27 03:00:00,123] [pid] [INFO] ..."
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000,
                        help="customers in the table (default 1,000,000)")
    parser.add_argument("--templates", type=int, default=2_000,
                        help="customers of the synthetic world whose states are replicated "
                        "(default 2,000)")
    parser.add_argument("--days", type=int, default=90, help="days of the synthetic world")
    parser.add_argument("--sample", type=int, default=200,
                        help="customers read back through the worker's view (default 200)")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/funnel-recovery.json")
    return parser.parse_args()


@dataclass(frozen=True)
class Changelog:
    """The funnel table's changelog topic and how the table encodes its keys."""

    topic: str
    partitions: int
    key_serializer: str

    def key(self, customer: str) -> bytes:
        return codecs.dumps(self.key_serializer, customer)

    def partition(self, customer: str) -> int:
        """The customer's pos.transactions partition (murmur2, as the POS publisher), which is
        the one the worker writes the customer's table value to."""
        return (murmur2(customer.encode()) & 0x7FFFFFFF) % self.partitions


# -- broker and topics ------------------------------------------------------------------------


def start_broker(folder: Path) -> tuple[LensSettings, object | None]:
    """The cluster in LENS_KAFKA_BOOTSTRAP, or a private broker under ``folder`` (returned so
    that it can be stopped)."""
    if os.environ.get("LENS_KAFKA_BOOTSTRAP"):
        return load_settings(), None
    from services.stack import LocalKafka

    settings = load_settings(run_dir=folder / "kafka-run", kafka_port=free_port(),
                             kafka_controller_port=free_port())
    broker = LocalKafka(settings)
    progress(f"starting a private broker at {settings.bootstrap_servers}")
    broker.start()
    return settings, broker


def create_worker_topics(settings: LensSettings, run_dir: Path, app_id: str) -> Changelog:
    """Create the worker's topics as the worker does; the funnel table's changelog."""
    from services.funnel.app import FunnelService, ensure_topics

    # The worker's own config and app, built in this process only to name and create topics;
    # its store directory is a scratch one, not the worker's.
    config = FunnelServiceConfig.from_settings(
        settings.model_copy(update={"run_dir": run_dir, "funnel_app_id": app_id}), no_model=True
    )
    service = FunnelService(config)
    ensure_topics(service)
    table = service.states
    return Changelog(table.changelog_topic.get_topic_name(), table.partitions,
                     table.key_serializer)


# -- table values -----------------------------------------------------------------------------


def template_states(customers: int, days: int) -> list[dict]:
    """Final table values of a synthetic world's customers (decoded JSON), through the
    worker's per-record logic with in-memory tables."""
    progress(f"synthetic world: {customers:,} customers, {days} days, through FunnelProcessor")
    tables, _, records, _ = world_through_processor(customers, days)
    progress(f"{records:,} POS records processed")
    return [json.loads(tables.states[c]) for c in sorted(tables.states)]


def customer_id(index: int) -> str:
    return f"C{index:07d}"


def table_value(templates: list[dict], index: int) -> bytes:
    """Customer ``index``'s value: its template under its own id, encoded as
    ``FunnelState.to_bytes`` encodes (the id is the top-level "c"; key order is kept)."""
    state = templates[index % len(templates)]
    state["c"] = customer_id(index)
    return json.dumps(state, separators=(",", ":"), allow_nan=False).encode()


def fill_changelog(kafka: KafkaConnection, changelog: Changelog, customers: int,
                   templates: list[dict]) -> dict:
    """Produce every customer's value to the changelog; records and bytes produced."""
    from confluent_kafka import Producer

    producer = Producer(kafka.client_config({
        "acks": "all",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "queue.buffering.max.kbytes": 262_144,
    }))
    failures: list[str] = []

    def on_delivery(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    value_bytes = key_bytes = 0
    began = time.monotonic()
    for index in range(customers):
        customer = customer_id(index)
        key, value = changelog.key(customer), table_value(templates, index)
        while True:
            try:
                producer.produce(changelog.topic, key=key, value=value,
                                 partition=changelog.partition(customer), on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
        key_bytes += len(key)
        value_bytes += len(value)
        if (index + 1) % 100_000 == 0:
            progress(f"produced {index + 1:,} / {customers:,} customers")
    remaining = producer.flush(300)
    if remaining or failures:
        raise RuntimeError(f"{remaining} records undelivered, {len(failures)} failed: "
                           f"{failures[:3]}")
    seconds = time.monotonic() - began
    progress(f"changelog filled: {customers:,} records, {value_bytes / 2**20:,.0f} MiB of "
             f"values in {seconds:.0f} s")
    return {"records": customers, "key_bytes": key_bytes, "value_bytes": value_bytes,
            "produce_seconds": round(seconds, 1)}


# -- the worker -------------------------------------------------------------------------------


class BenchWorker:
    """A `lens worker funnel --no-model` subprocess on an empty run directory."""

    def __init__(self, bootstrap: str, run_dir: Path, app_id: str) -> None:
        self.port = free_port()
        self.log_path = run_dir / "worker.log"
        # this process's Kafka security settings (a cluster in LENS_KAFKA_BOOTSTRAP), nothing else
        kafka_env = {k: v for k, v in os.environ.items() if k.startswith("LENS_KAFKA_")}
        env = lens_env(**{**kafka_env, "LENS_KAFKA_BOOTSTRAP": bootstrap},
                       LENS_RUN_DIR=str(run_dir))
        self.log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [*worker_command(), "--no-model", "--web-port", str(self.port), "--app-id", app_id],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str) -> float:
        """Seconds since start when ``text`` first appears in the log (polled: no deadline,
        as recovering a big table takes as long as it takes)."""
        while text not in self.log_text():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)
        return time.monotonic() - self.started

    def log_time(self, text: str) -> dt.datetime:
        """Faust's timestamp of the first log line containing ``text``."""
        for entry in self.log_text().splitlines():
            if text in entry and (stamp := LOG_TIME.match(entry)):
                return dt.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
        raise RuntimeError(f"no timestamped log line with {text!r}")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as answer:
            return answer.read()

    def processed(self) -> float:
        for entry in self.get("/metrics").decode().splitlines():
            if entry.startswith(PROCESSED):
                return float(entry.split()[-1])
        return 0.0

    def usage(self) -> dict[str, float]:
        """Peak and current RSS (MiB) and CPU seconds (all threads) of the worker so far."""
        pid = self.process.pid
        return {"peak_rss_mib": proc_mib(pid, "VmHWM"), "rss_mib": proc_mib(pid, "VmRSS"),
                "cpu_s": proc_cpu_s(pid)}

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()
        return self.process.returncode


def store_dirs(run_dir: Path) -> list[Path]:
    """The funnel table's RocksDB stores, one per partition (Faust: ``<table>-<partition>.db``)."""
    return sorted(run_dir.glob(f"funnel/**/{TABLE}-*.db"))


def disk_bytes(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in p.rglob("*") if f.is_file())


def check_sample(worker: BenchWorker, customers: int, templates: list[dict], sample: int) -> int:
    """Read ``sample`` customers spread over the table back through the worker's raw view;
    returns how many matched what was written (raises on the first that does not)."""
    step = max(1, customers // sample)
    indices = list(range(0, customers, step))[:sample]
    for index in indices:
        expected = json.loads(table_value(templates, index))
        got = json.loads(worker.get(f"/funnel/customers/{customer_id(index)}/"))
        if got != expected:
            raise RuntimeError(f"customer {customer_id(index)}: the worker's value differs")
    return len(indices)


def first_record_seconds(kafka: KafkaConnection, worker: BenchWorker, customers: int) -> float:
    """Seconds from producing one POS line of a recovered customer until the worker has
    processed it (its state is read from RocksDB)."""
    from confluent_kafka import Producer

    from lens.topics import POS_TRANSACTIONS

    producer = Producer(kafka.client_config({"partitioner": "murmur2_random"}))
    customer = customer_id(customers - 1)
    event = line("T-bench-1", 1, customer, "P0001", dt.datetime.now(dt.timezone.utc))
    began = time.monotonic()
    producer.produce(POS_TRANSACTIONS.name, key=customer.encode(), value=encode(event))
    producer.flush(30)
    while worker.processed() < 1:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.log_text()[-4000:]}")
        time.sleep(0.05)
    return time.monotonic() - began


def count_keys(stores: list[Path]) -> int:
    """Customers in the stopped worker's stores (Faust's own offset key excluded)."""
    from rocksdict import AccessType, Rdict

    total = 0
    for path in stores:
        db = Rdict(str(path), access_type=AccessType.read_only())
        try:
            total += sum(1 for key in db.keys() if not key.startswith(b"__faust"))
        finally:
            db.close()
    return total


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, folder: Path) -> dict:
    settings, broker = start_broker(folder)
    try:
        kafka = KafkaConnection.from_settings(settings)
        wait_until_ready(kafka, timeout_s=120)
        app_id = f"lens-funnel-bench-{uuid.uuid4().hex[:8]}"  # fresh topics on a shared cluster
        changelog = create_worker_topics(settings, folder / "setup", app_id)
        templates = template_states(args.templates, args.days)
        produced = fill_changelog(kafka, changelog, args.customers, templates)

        run_dir = folder / "worker"
        run_dir.mkdir()
        progress("starting the worker on an empty state directory")
        worker = BenchWorker(settings.bootstrap_servers, run_dir, app_id)
        try:
            ready_s = worker.wait_log("Worker ready")
            restore_s = (worker.log_time("Done reading from changelog topics")
                         - worker.log_time("Restoring state from changelog topics")).total_seconds()
            progress(f"worker ready after {ready_s:.1f} s (restore {restore_s:.1f} s)")
            usage_ready = worker.usage()
            load = os.getloadavg()  # the machine may be shared: how busy it was meanwhile
            stores = store_dirs(run_dir)
            disk_ready = disk_bytes(stores)
            sampled = check_sample(worker, args.customers, templates, args.sample)
            first_s = first_record_seconds(kafka, worker, args.customers)
            usage = worker.usage()
        finally:
            code = worker.stop()
        if code != 0:
            raise RuntimeError(f"worker exited with {code}:\n{worker.log_text()[-4000:]}")
        progress("counting the stopped worker's keys")
        keys = count_keys(stores)
        disk_stopped = disk_bytes(stores)
    finally:
        if broker is not None:
            broker.stop()
    return {
        "customers": args.customers,
        "template_customers": len(templates),
        "changelog": {"topic": changelog.topic, "partitions": changelog.partitions,
                      "key_serializer": changelog.key_serializer, **produced,
                      "value_bytes_per_customer": round(produced["value_bytes"] / args.customers)},
        "worker": {
            "start_to_ready_s": round(ready_s, 1),
            "restore_s": round(restore_s, 1),
            "records_per_s_restored": round(args.customers / restore_s),
            "first_new_record_s": round(first_s, 2),
            "cpu_s_at_ready": round(usage_ready["cpu_s"], 1),
            "rss_at_ready_mib": round(usage_ready["rss_mib"]),
            "peak_rss_mib": round(usage["peak_rss_mib"]),
        },
        "rocksdb": {
            "stores": len(stores),
            "bytes_at_ready": disk_ready,
            "bytes_after_stop": disk_stopped,
            "bytes_per_customer_after_stop": round(disk_stopped / args.customers),
            "keys": keys,
        },
        "machine": {"cpus": os.cpu_count(),
                    "load_average_1_5_15_min_at_ready": [round(x, 1) for x in load]},
        "sample_checked": sampled,
        "complete": keys == args.customers,
    }


def main() -> None:
    args = parse_args()
    # SIGTERM runs the finally blocks too: the worker and the private broker must not outlive us
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="lens-recovery-") as folder:
        summary = run(args, Path(folder))
    text = json.dumps(summary, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    if not summary["complete"]:
        sys.exit(f"the table holds {summary['rocksdb']['keys']:,} keys, not {args.customers:,}")


if __name__ == "__main__":
    main()
