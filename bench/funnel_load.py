"""One funnel worker with the real model under load: throughput, latency, CPU and memory.

    .venv/bin/python bench/funnel_load.py [--model-base .run/demo/models/lens]
        [--customers 300] [--days 60 | --data PATH] [--out bench/results/funnel-load.json]

Starts its own stack on free ports under a temporary folder: a local Kafka broker, ``lens
serve`` on ``--model-base`` (an exported LENS model; ``make demo`` leaves one in
.run/demo/models/lens; with server-side batching as docker-compose.yml runs it, unless
``--no-server-batching``) and one ``lens worker funnel``. Two synthetic worlds of the same size
(``lens data synth``, seeds 7 and 8, the second with its customer and transaction ids prefixed so
its customers are new) feed two phases. First, world A's resupply plan (``resupplies.csv``,
inventory.resupplies) is published and applied: Algorithm 2 treats an unplanned day as unknown
supply and never alerts on it, so with the plan both worlds' demand in the same stores runs
short and the store side does its full work (alerts) in both phases. With ``--data`` (a real
purchase history such as Ta-Feng, served by a model trained on it) the two phases replay two
disjoint random draws of ``--customers`` of its customers instead, without a resupply plan: the
store side updates its demand but alerts on nothing (an unplanned day is unknown supply).

1. **Capacity**: world A published as fast as the producer goes; the worker's own metrics,
   polled every second, give lines/s and sessions/s from the first record to the last session,
   and predictions/s over the same span plus the prediction backlog drain; then the time until
   the store side (Algorithm 2's agent) has processed every demand event those predictions sent
   (its committed offsets reach what was sent: Faust commits a record's offset once the agent
   acked it, every ~3 s; the time it had merely read them, into the stream's buffer, is reported
   beside it). Beside it, the model
   server's own capacity at the same model: ``next_basket`` on batches of 64 of the histories
   phase 1 asks about (a customer's first k baskets, drawn at random over customers and k), 4
   calls in flight, for ``--server-seconds``. The ratio
   end-to-end predictions/s : server predictions/s is the streaming layer's efficiency (goal
   >= 0.8 when predictions are the bottleneck).
2. **Latency**: world B (``lens data synth`` defaults: 5 % of customers change behaviour on a
   planted day, 3 planted demand surges) replayed at half the session rate the whole worker
   sustained in phase 1 (its sessions over the time until the store side had drained, or its
   predictions/s if lower: a model slower than the worker sets the pace); every
   record stamped on the broker from the start of phase 2 on is read back, and the time from the
   BasketClosed of its session being sent to the record's broker timestamp gives p50 / p99:
   - predictions (lens.predictions), matched by customer and session index;
   - anomaly alerts (lens.alerts.anomaly; alert_id = "<customer_id>:<session_index>", the session
     whose close raised it), matched the same way;
   - stock-out alerts (lens.alerts.stockout) raised by a prediction, matched by the session in
     their ``raised_by`` (an alert a resupply record raised has none: counted, not timed).

CPU seconds and peak resident memory (VmHWM) per process come from /proc, the bench's own
included ("bench": it publishes phase 1's records and polls the metrics). All processes share
this machine's cores with the bench itself: the figures are for one worker, one model server and
one broker on the same 2 cores. With ``--server-cpus N`` the model server gets the last N CPUs
and the rest (broker, worker, this bench) the others, in phase 1 and in the server's own
capacity alike: the efficiency then says whether the streaming layer keeps a server of fixed
capacity busy, which sharing the cores cannot (the worker's CPU is then taken from the server).
"""

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lens.settings import LensSettings  # noqa: E402
from lens.topics import (  # noqa: E402
    ANOMALY_ALERTS,
    INVENTORY_RESUPPLIES,
    PREDICTIONS,
    STOCKOUT_ALERTS,
)
from services.kafka.connection import KafkaConnection  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def lens(*args: str, profile: Path | None = None) -> list[str]:
    """A ``lens`` command; ``profile``: run it under cProfile, stats written there at exit."""
    prefix = [] if profile is None else ["-m", "cProfile", "-o", str(profile.resolve())]
    return [sys.executable, *prefix, "-m", "lens.cli.main", *args]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mib(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of /proc/<pid>/status in MiB: VmHWM (peak RSS) by default, or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metrics(port: int) -> dict[str, float]:
    samples = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
    return samples


def total(samples: dict[str, float], prefix: str, label: str = "") -> float:
    return sum(v for k, v in samples.items()
               if k.split("{")[0] in (prefix, prefix + "_total") and label in k)


STORE_SENT = "lens_funnel_faust_topic_messages_sent_total"
BATCHING = REPO / "serving" / "batching.config"  # the production server's (docker-compose.yml)
# the worker's model client: customers per coalesced Predict (the server measures on 64)
COALESCED = "lens_model_client_coalesced_batch_rows"


def _on_store_topic(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(name + "{") and '-store-events"' in k)


def store_unread(samples: dict[str, float]) -> float:
    """Records sent to the worker's internal store topic that its consumer has not fetched yet
    (a fetched record may still wait in the store agent's stream buffer)."""
    return (_on_store_topic(samples, STORE_SENT)
            - _on_store_topic(samples, "lens_funnel_faust_messages_received_per_topic_total"))


def store_backlog(samples: dict[str, float]) -> float:
    """Records sent to the worker's internal store topic that its store agent has not finished:
    sent minus the committed offsets of the topic's partitions (the topic is this run's own, so
    an offset counts the records before it; Faust commits only what the agent acked)."""
    return (_on_store_topic(samples, STORE_SENT)
            - _on_store_topic(samples, "lens_funnel_faust_topic_partition_offset_commited"))


def world(folder: Path, customers: int, days: int, seed: int, prefix: str):
    """A synthetic world (``lens data synth``): its baskets in time order, and its histories,
    with customer and basket ids prefixed."""
    from lens.data.loaders import load_funnels

    subprocess.run(lens("data", "synth", "--customers", str(customers), "--days", str(days),
                        "--seed", str(seed), "--out", str(folder)),
                   check=True, capture_output=True)
    return prefixed(load_funnels(folder / "transactions.csv").funnels, prefix)


def prefixed(funnels: dict, prefix: str):
    """(every basket in time order, histories) with customer and basket ids prefixed: the two
    phases' customers are new to each other and to the worker."""
    from services.pos import baskets_in_time_order

    baskets = [dataclasses.replace(b, customer_id=prefix + b.customer_id,
                                   basket_id=prefix + b.basket_id)
               for b in baskets_in_time_order(funnels)]
    return baskets, {prefix + c: h for c, h in funnels.items()}


def history_worlds(path: Path, customers: int, seed: int = 0):
    """Two disjoint draws of ``customers`` customers each from a real purchase history (e.g.
    Ta-Feng), for phase 1 and phase 2: (baskets, histories) of each, as ``world`` gives."""
    from lens.data.loaders import load_funnels

    funnels = load_funnels(path).funnels
    ids = sorted(funnels)
    if 2 * customers > len(ids):
        raise SystemExit(f"--customers {customers}: {path} has {len(ids)} customers, and the "
                         "two phases draw that many each")
    drawn = np.random.default_rng(seed).permutation(len(ids))
    halves = drawn[:customers], drawn[customers:2 * customers]
    return [prefixed({ids[i]: funnels[ids[i]] for i in half}, prefix)
            for half, prefix in zip(halves, "AB")]


class TimedSink:
    """Forwards POS events to the publisher and notes when each basket's BasketClosed left."""

    def __init__(self, publisher) -> None:
        self.publisher = publisher
        self.closed_at: dict[tuple[str, int], float] = {}  # (customer, session index) -> time
        self._count: dict[str, int] = {}

    def send(self, event) -> None:
        self.publisher.send(event)
        if event.WhichOneof("event") == "basket_closed":
            customer = event.basket_closed.customer_id
            self._count[customer] = self._count.get(customer, 0) + 1
            self.closed_at[(customer, self._count[customer])] = time.time()


def wait_until(probe, what: str, timeout_s: float, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(poll_s)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")


def phase1_histories(funnels: dict, count: int = 64, seed: int = 0) -> dict:
    """``count`` of the histories phase 1 asks the model about, drawn at random: a customer's
    first k baskets for every k, as each of their sessions closes. The model encodes only the
    sessions a history has, so the server's own rate is measured on this mix, not on whole
    histories."""
    every = [(customer, k) for customer, funnel in funnels.items()
             for k in range(1, len(funnel) + 1)]
    picks = np.random.default_rng(seed).choice(len(every), size=count, replace=False)
    return {f"{every[i][0]}@{every[i][1]}": funnels[every[i][0]][: every[i][1]] for i in picks}


async def server_capacity(target: str, histories, seconds: float) -> float:
    """Predictions/s of ``next_basket`` on batches of the 64 given histories, 4 calls in
    flight."""
    from prometheus_client import CollectorRegistry

    from lens.model.export import serving_inputs
    from serving.client import ModelServerClient
    from services.funnel.predictor import ModelPredictor

    async with ModelServerClient(target, "lens", timeout_s=60,
                                 registry=CollectorRegistry()) as client:
        await client.wait_until_serving(timeout_s=120)
        sessions, items = await ModelPredictor(client).input_shape()
        chosen = dict(list(histories.items())[:64])
        inputs = serving_inputs(chosen, sessions, items)
        await client.predict(inputs, signature_name="next_basket")  # warm
        done, deadline = 0, time.perf_counter() + seconds

        async def caller():
            nonlocal done
            while time.perf_counter() < deadline:
                await client.predict(inputs, signature_name="next_basket")
                done += len(chosen)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(4)))
        return done / (time.perf_counter() - start)


def phase2_records(kafka: KafkaConnection, topics: list[str], since: float, timeout_s: float):
    """(topic, value, broker timestamp in s) of every record on ``topics`` stamped at or after
    ``since`` (wall time), until none came for 10 s or ``timeout_s`` passed."""
    from confluent_kafka import Consumer

    consumer = Consumer(kafka.client_config({
        "group.id": f"bench-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }))
    consumer.subscribe(topics)
    deadline, idle_since = time.monotonic() + timeout_s, time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - idle_since < 10:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            idle_since = time.monotonic()
            stamped = message.timestamp()[1] / 1000
            if stamped >= since:
                yield message.topic(), message.value(), stamped
    finally:
        consumer.close()


def session_of(topic: str, value: bytes) -> tuple[str, int] | None:
    """The (customer, session index) whose close led to a prediction or an alert; None for a
    stock-out alert that a resupply record raised."""
    from lens import v1

    if topic == PREDICTIONS.name:
        prediction = v1.Prediction.FromString(value)
        return prediction.customer_id, prediction.session_index
    if topic == ANOMALY_ALERTS.name:
        alert = v1.AnomalyAlert.FromString(value)  # alert_id = "<customer_id>:<session_index>"
        return alert.customer_id, int(alert.alert_id.rpartition(":")[2])
    alert = v1.StockoutAlert.FromString(value)
    if not alert.HasField("raised_by"):
        return None
    return alert.raised_by.customer_id, alert.raised_by.session_index


def phase2_latencies(kafka: KafkaConnection, closed_at: dict, since: float,
                     timeout_s: float) -> dict[str, dict]:
    """Per output topic: records sent in phase 2, and the seconds from each matched session's
    BasketClosed being sent to the record's broker timestamp."""
    topics = [PREDICTIONS.name, ANOMALY_ALERTS.name, STOCKOUT_ALERTS.name]
    found = {topic: {"records": 0, "latencies": []} for topic in topics}
    for topic, value, stamped in phase2_records(kafka, topics, since, timeout_s):
        found[topic]["records"] += 1
        sent = closed_at.get(session_of(topic, value))
        if sent is not None:
            found[topic]["latencies"].append(stamped - sent)
    return found


def latency_summary(records: int, latencies: list[float]) -> dict:
    """Records, matched records and p50 / p99 latency in ms (None when nothing matched)."""

    def percentile(q: float) -> float | None:
        return round(float(np.percentile(latencies, q)) * 1000, 1) if latencies else None

    return {"records": records, "matched": len(latencies),
            "p50_ms": percentile(50), "p99_ms": percentile(99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base", type=Path, default=REPO / ".run/demo/models/lens",
                        help="exported LENS model base path (versions inside)")
    parser.add_argument("--customers", type=int, default=300,
                        help="customers per phase (default 300)")
    parser.add_argument("--days", type=int, default=60,
                        help="days of the synthetic worlds (default 60)")
    parser.add_argument("--data", type=Path, default=None, metavar="PATH",
                        help="draw both phases' customers from this purchase history (e.g. "
                             "../shared/data/ta_feng.csv.zip; serve a model trained on it) "
                             "instead of two synthetic worlds: no resupply plan, so the store "
                             "side raises no stock-out alerts")
    parser.add_argument("--server-seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, metavar="PSTATS",
                        help="run the worker under cProfile, stats written here when it stops")
    parser.add_argument("--server-cpus", type=int, default=0, metavar="N",
                        help="give the model server the last N CPUs and everything else (broker, "
                             "worker, this bench) the others, in both the end-to-end run and the "
                             "server's own capacity: the efficiency then compares the same server "
                             "capacity with and without the streaming layer in front (0: all "
                             "processes share every CPU)")
    parser.add_argument("--server-batching", action=argparse.BooleanOptionalAction, default=True,
                        help="run the model server with server-side batching (--enable_batching "
                             "with serving/batching.config), as docker-compose.yml does "
                             "(default: on)")
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the worker's event loop (LENS_FUNNEL_EVENT_LOOP, default uvloop)")
    args = parser.parse_args()
    server_cpus, other_cpus = split_cpus(args.server_cpus)
    if not any(p.name.isdigit() for p in args.model_base.glob("*")):
        raise SystemExit(f"no exported model under {args.model_base}: run `make demo` once, or "
                         "pass --model-base serving/models/<name>")

    from services.kafka import create_topics
    from services.pos import PosPublisher, replay
    from services.pos.resupply import publish_resupplies
    from services.stack import LocalKafka

    scratch = Path(tempfile.mkdtemp(prefix="lens-bench-"))
    settings = LensSettings(run_dir=scratch, kafka_port=free_port(),
                            kafka_controller_port=free_port())
    kafka = KafkaConnection.from_settings(settings)
    broker = LocalKafka(settings)
    children: dict[str, subprocess.Popen] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENS_")}
    env.update(LENS_RUN_DIR=str(scratch), LENS_KAFKA_BOOTSTRAP=settings.bootstrap_servers,
               LENS_FUNNEL_EVENT_LOOP=args.event_loop, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        if args.data is None:
            print("building two synthetic worlds ...", flush=True)
            baskets_a, histories_a = world(scratch / "a", args.customers, args.days, 7, "A")
            baskets_b, _ = world(scratch / "b", args.customers, args.days, 8, "B")
        else:
            print(f"drawing two sets of {args.customers} customers from {args.data} ...",
                  flush=True)
            (baskets_a, histories_a), (baskets_b, _) = history_worlds(args.data, args.customers)
        asked = phase1_histories(histories_a)
        lines_a = sum(len(b.items) for b in baskets_a)
        broker.start()
        create_topics(kafka)
        model_port, web_port = free_port(), free_port()
        for name, command in {
            "model-server": lens("serve", f"--port={model_port}", "--model_name=lens",
                                 f"--model_base_path={args.model_base.resolve()}",
                                 *(["--enable_batching", f"--batching_parameters_file={BATCHING}"]
                                   if args.server_batching else [])),
            "worker": lens("worker", "funnel", "--web-port", str(web_port), "--model-server",
                           f"127.0.0.1:{model_port}", "--app-id", f"bench-{uuid.uuid4().hex[:6]}",
                           "--sweep-interval", "5", "--quiet-after", "3", profile=args.profile),
        }.items():
            log = (scratch / f"{name}.log").open("wb")
            cpus = server_cpus if name == "model-server" else other_cpus
            children[name] = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                preexec_fn=(lambda cpus=cpus: os.sched_setaffinity(0, cpus)) if cpus else None)
        wait_until(lambda: _ready(web_port), "the worker", 240)
        target = f"127.0.0.1:{model_port}"
        asyncio.run(server_capacity(target, asked, 2.0))  # warm-up
        pids = {name: p.pid for name, p in children.items()} | {"kafka": broker.running_pid(),
                                                                "bench": os.getpid()}
        planned = 0
        if args.data is None:
            with PosPublisher(kafka, topic=INVENTORY_RESUPPLIES.name) as publisher:
                planned = publish_resupplies(scratch / "a" / "resupplies.csv", publisher)
            wait_until(lambda: _on_store_topic(metrics(web_port), STORE_SENT) >= planned,
                       "the plan re-keyed onto the store topic", 600)
            wait_until(lambda: store_backlog(metrics(web_port)) == 0, "the plan applied", 600)
            print(f"published and applied world A's resupply plan ({planned} rows)", flush=True)
        cpu0 = {name: proc_cpu_s(pid) for name, pid in pids.items()}
        metrics0 = metrics(web_port)

        print(f"phase 1: {len(baskets_a)} baskets ({lines_a} lines) as fast as possible ...",
              flush=True)
        began = time.monotonic()
        with PosPublisher(kafka) as publisher:
            replay(baskets_a, publisher, progress=False)
        published_s = time.monotonic() - began
        timeline = []

        def caught_up():
            m = metrics(web_port)
            timeline.append((time.monotonic() - began, m))
            sessions = total(m, "lens_funnel_sessions_closed")
            return (sessions >= len(baskets_a)
                    and m.get("lens_funnel_predictions_pending", 1) == 0) and m

        final = wait_until(caught_up, "phase 1 to drain", 1800)
        done_s = time.monotonic() - began
        sessions_done_s = next(t for t, m in timeline
                               if total(m, "lens_funnel_sessions_closed") >= len(baskets_a))
        predictions = total(final, "lens_funnel_predictions")
        calls = total(final, f"{COALESCED}_count") - total(metrics0, f"{COALESCED}_count")
        rows_per_call = ((total(final, f"{COALESCED}_sum") - total(metrics0, f"{COALESCED}_sum"))
                         / max(1.0, calls))
        # The store side (Algorithm 2) consumes the demand events the predictions send; it may
        # lag behind them. Phase 2 starts once it caught up, so that it measures a steady state.
        wait_until(lambda: store_unread(metrics(web_port)) == 0, "the store side to read", 1800)
        store_read_s = time.monotonic() - began
        wait_until(lambda: store_backlog(metrics(web_port)) == 0, "the store side to drain", 1800)
        store_done_s = time.monotonic() - began
        cpu1 = {name: proc_cpu_s(pid) for name, pid in pids.items()}
        server = asyncio.run(server_capacity(target, asked, args.server_seconds))

        session_rate = len(baskets_a) / sessions_done_s
        # the maximum the whole worker sustains: its store side included, and no more sessions
        # than the model server predicts (a slow model is the bottleneck, not the worker)
        half_load = min(len(baskets_a) / store_done_s, predictions / done_s) / 2
        speed = _speed_for(baskets_b, half_load)
        print(f"phase 2: {len(baskets_b)} new baskets at {half_load:.1f} sessions/s ...",
              flush=True)
        phase2_began = time.time()
        with PosPublisher(kafka) as publisher:
            sink = TimedSink(publisher)
            replay(baskets_b, sink, speed=speed, progress=False)
        found = phase2_latencies(kafka, sink.closed_at, phase2_began, 600)
        latency = {topic: latency_summary(**kind) for topic, kind in found.items()}
        prediction_latency = latency[PREDICTIONS.name]
        result = {
            "data": str(args.data) if args.data else "synthetic",
            "baskets": len(baskets_a), "lines": lines_a,
            "publish_s": round(published_s, 1),
            "lines_per_s": round(lines_a / sessions_done_s, 1),
            "sessions_per_s": round(session_rate, 1),
            "predictions": int(predictions),
            "predictions_per_s": round(predictions / done_s, 1),
            "server_predictions_per_s": round(server, 1),
            "customers_per_model_call": round(rows_per_call, 1),
            "streaming_efficiency": round(predictions / done_s / server, 3),
            "store_side_read_s": round(store_read_s, 1),
            "store_side_drained_s": round(store_done_s, 1),
            "sessions_per_s_store_side_included": round(len(baskets_a) / store_done_s, 1),
            "latency_load_sessions_per_s": round(half_load, 1),
            "latency_matched": prediction_latency["matched"],
            "latency_p50_ms": prediction_latency["p50_ms"],
            "latency_p99_ms": prediction_latency["p99_ms"],
            "anomaly_alert_latency": latency[ANOMALY_ALERTS.name],
            "resupply_records": planned,
            "stockout_alert_latency": latency[STOCKOUT_ALERTS.name],
            "cpu_s_phase1": {n: round(cpu1[n] - cpu0[n], 1) for n in pids},
            "server_cpus": sorted(server_cpus) or "shared",
            "event_loop": args.event_loop,
            "server_batching": args.server_batching,
            "peak_rss_mib": {n: round(proc_mib(pid), 1) for n, pid in pids.items()},
        }
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {args.out}")
    finally:
        for process in children.values():
            process.terminate()
        for process in children.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        broker.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def split_cpus(server_count: int) -> tuple[set[int], set[int]]:
    """(the model server's CPUs, everyone else's) for ``--server-cpus``; the bench process moves
    to the others at once, so the broker and worker it starts inherit them. Empty sets: no
    pinning."""
    if server_count <= 0:
        return set(), set()
    cpus = sorted(os.sched_getaffinity(0))
    if server_count >= len(cpus):
        raise SystemExit(f"--server-cpus {server_count}: this machine has {len(cpus)} CPUs, "
                         "and the streaming layer needs at least one")
    server, others = set(cpus[-server_count:]), set(cpus[:-server_count])
    os.sched_setaffinity(0, others)
    return server, others


def _ready(web_port: int) -> bool:
    try:
        metrics(web_port)
        return True
    except OSError:
        return False


def _speed_for(baskets, sessions_per_s: float) -> float:
    """The replay speed (event time / wall time) that sends ``sessions_per_s`` baskets/s."""
    span = (baskets[-1].timestamp - baskets[0].timestamp).total_seconds()
    return span / (len(baskets) / sessions_per_s)


if __name__ == "__main__":
    main()
