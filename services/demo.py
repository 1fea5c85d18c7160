"""The end-to-end demo behind ``make demo`` (``lens demo``).

From a fresh clone it builds, once, under ``<run dir>/demo``: a small synthetic retail world
(``lens data synth``) and a small LENS model trained on it and exported for serving
(``lens train --export``). Then it starts the pipeline: Kafka (a local broker with its own
storage under ``<run dir>/demo/live``, unless ``LENS_KAFKA_BOOTSTRAP`` is set), the model server
(``lens serve``), a funnel worker (``lens worker funnel``, with the world's product catalog and
its need intervals, ``lens data need-intervals``, for Algorithm 1's need-level signals) and an
alert subscriber (``lens alerts serve``, console + JSONL), loads the resupply plan, replays the
transactions (a day every 2 s), shows predictions and alerts as they happen and, once every
basket has been sessionized and predicted (bounded wait), prints a summary, compares the alerts
with the planted ground truth and stops everything it started. ``follow=True`` keeps the stack
up until Ctrl-C.
"""

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lens.errors import RuntimeDependencyError
from lens.settings import LensSettings
from services.kafka.connection import KafkaConnection

__all__ = ["DemoConfig", "run_demo"]

NEED_INTERVALS = "need_intervals.json"


@dataclass(frozen=True)
class DemoConfig:
    customers: int = 300
    days: int = 60
    seed: int = 7
    stores: int = 3
    surges: int = 3
    change_fraction: float = 0.05
    train_config: str = "small"
    epochs: int = 15
    anomaly_min_history: int = 20
    # below the service default (3.5): a 300-customer world has few sessions per cluster, and the
    # demo should show what an alert looks like. On the demo's own world (seed 7) with its need
    # intervals, 3.0 finds all 15 planted changes alerting 20 customers, 2.5 the same alerting
    # 28 (bench/planted_detection.py)
    anomaly_threshold: float = 3.0
    stockout_days: int = 7
    # A day of transactions every 2 s: each customer's prediction is back before their next
    # basket, so Algorithm 1 compares every session with the prediction made just before it.
    replay_speed: float = 43_200.0
    catch_up_timeout_s: float = 360.0
    start_timeout_s: float = 240.0
    show_predictions: int = 8
    follow: bool = False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lens(*args: str) -> list[str]:
    return [sys.executable, "-m", "lens.cli.main", *args]


@dataclass
class _Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    log: object = None

    def logs(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if self.log is not None:
            self.log.close()
        return self.process.returncode


@dataclass
class _Tail:
    """Reads lens.predictions in a thread: counts them and prints the first few."""

    kafka: KafkaConnection
    show: int
    say: Callable[[str], None]
    from_beginning: bool
    count: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="demo-predictions", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from confluent_kafka import DeserializingConsumer
        from confluent_kafka.serialization import StringDeserializer

        from lens.topics import PREDICTIONS
        from services.kafka import ProtobufDeserializer

        consumer = DeserializingConsumer({
            **self.kafka.client_config(),
            "group.id": f"lens-demo-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if self.from_beginning else "latest",
            "enable.auto.commit": False,
            "key.deserializer": StringDeserializer(),
            "value.deserializer": ProtobufDeserializer(PREDICTIONS.value_type),
        })
        consumer.subscribe([PREDICTIONS.name], on_assign=lambda *_: self.ready.set())
        try:
            while not self.stop.is_set():
                message = consumer.poll(0.5)
                if message is None or message.error():
                    continue
                self.count += 1
                if self.count <= self.show:
                    self.say("PREDICTION " + _prediction_line(message.value()))
                elif self.count == self.show + 1:
                    self.say("... (more predictions are counted, not printed)")
        finally:
            consumer.close()


def _prediction_line(p) -> str:
    try:
        from google.protobuf.json_format import MessageToDict

        d = MessageToDict(p, preserving_proto_field_name=True)
    except Exception:  # noqa: BLE001 - display only
        return str(p).replace("\n", " ")[:200]
    basket = d.get("basket") or d.get("items") or []
    if basket and isinstance(basket[0], dict):
        basket = [b.get("product_id", str(b)) for b in basket]
    days = d.get("days_to_next")
    extra = f", next visit in {float(days):.1f} days" if days is not None else ""
    return f"customer {d.get('customer_id', '?')}: basket {basket[:8]}{extra}"


def _metrics(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


def _total(samples: dict[str, float], name: str, label: str = "") -> float:
    return sum(
        v for k, v in samples.items()
        if k.split("{")[0] == f"{name}_total" and label in k
    )


def _build(demo_dir: Path, config: DemoConfig, settings: LensSettings, say) -> Path:
    """Synthetic world, its need intervals and exported model, reused when already there (the
    intervals are refitted with a new world)."""
    data = demo_dir / "transactions.csv"
    env = _child_env(settings, demo_dir / "build")
    generate = not all((demo_dir / name).exists() for name in (
        "transactions.csv", "resupplies.csv", "ground_truth.json", "products.csv"))
    if generate:
        say(f"generating a synthetic world ({config.customers} customers x {config.days} days, "
            f"seed {config.seed}) into {demo_dir} ...")
        _run_step(_lens(
            "data", "synth", "--customers", str(config.customers), "--days", str(config.days),
            "--seed", str(config.seed), "--stores", str(config.stores), "--surges",
            str(config.surges), "--change-fraction", str(config.change_fraction),
            "--out", str(demo_dir),
        ), env, demo_dir / "synth.log", say)
    else:
        say(f"reusing the synthetic world in {demo_dir}")
    if generate or not (demo_dir / NEED_INTERVALS).exists():  # a new world's own rhythms
        say("fitting the catalog's need intervals (Algorithm 1) ...")
        _run_step(_lens(
            "data", "need-intervals", "--data", str(data), "--catalog",
            str(demo_dir / "products.csv"), "--out", str(demo_dir / NEED_INTERVALS),
        ), env, demo_dir / "need_intervals.log", say)
    models = demo_dir / "models" / "lens"
    if not any(p.name.isdigit() for p in models.glob("*")) if models.exists() else True:
        say(f"training a {config.train_config} LENS model ({config.epochs} epochs) and exporting "
            f"it to {models} ...")
        _run_step(_lens(
            "train", "--data", str(data), "--config", config.train_config, "--split", "none",
            "--epochs", str(config.epochs), "--out", str(demo_dir / "train"),
            "--export", str(models),
        ), env, demo_dir / "train.log", say)
    else:
        say(f"reusing the model in {models}")
    return models


def _run_step(command: list[str], env: dict, log_path: Path, say) -> None:
    began = time.monotonic()
    with log_path.open("wb") as log:
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    text = log_path.read_text(errors="replace")
    if code != 0:
        raise RuntimeDependencyError(f"{' '.join(command[2:5])} failed (log {log_path}):\n"
                                     f"{text[-3000:]}")
    lines = [line for line in text.splitlines()
             if line.startswith(("wrote", "trained", "exported", "published", "replayed"))
             or "baskets" in line and "INFO" not in line]
    for line in lines[-4:]:
        say(f"  {line.strip()}")
    say(f"  done in {time.monotonic() - began:.0f}s (log {log_path})")


def _child_env(settings: LensSettings, run_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENS_")}
    env.update(
        LENS_RUN_DIR=str(run_dir),
        LENS_KAFKA_BOOTSTRAP=settings.bootstrap_servers,
        LENS_KAFKA_SECURITY_PROTOCOL=settings.kafka_security_protocol,
        LENS_KAFKA_SASL_MECHANISM=settings.kafka_sasl_mechanism,
        PYTHONUNBUFFERED="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    # the children reach the same cluster with the same credentials (environment only: never on
    # a command line, where other users of the machine could read them)
    if settings.kafka_sasl_username:
        env["LENS_KAFKA_SASL_USERNAME"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        env["LENS_KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile is not None:
        env["LENS_KAFKA_SSL_CAFILE"] = str(settings.kafka_ssl_cafile)
    env.update(extra)
    return env


def run_demo(
    settings: LensSettings, say: Callable[[str], None] = print, follow: bool = False,
    config: DemoConfig | None = None,
) -> dict:
    """Run the demo; return the summary numbers."""
    from services.kafka import create_topics, wait_until_ready
    from services.stack import LocalKafka

    config = config or DemoConfig(follow=follow)
    follow = follow or config.follow
    demo_dir = Path(settings.run_dir).resolve() / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    models = _build(demo_dir, config, settings, say)

    live = demo_dir / "live"  # this run's broker storage, worker tables, logs: fresh each run
    if live.exists():
        stale = LocalKafka(settings.model_copy(update={"run_dir": live}))
        if stale.running_pid() is not None:
            stale.stop()
        shutil.rmtree(live)
    live.mkdir(parents=True)
    local = settings.uses_local_kafka
    broker_settings = settings.model_copy(update={"run_dir": live})
    broker = LocalKafka(broker_settings) if local else None
    kafka = KafkaConnection.from_settings(broker_settings)
    children: list[_Child] = []
    tail: _Tail | None = None
    summary: dict = {}

    def spawn(name: str, command: list[str], env: dict) -> _Child:
        log_path = live / f"{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        child = _Child(name, process, log_path, log)
        children.append(child)
        return child

    try:
        if broker is not None:
            say(f"starting Apache Kafka at {broker_settings.bootstrap_servers} ...")
            status = broker.start()
            say(f"Kafka {status.version} is up (log: {status.log})")
        else:
            wait_until_ready(kafka, settings.kafka_start_timeout_s)
            say(f"using the Kafka cluster at {settings.bootstrap_servers}")
        created = create_topics(kafka)
        say(f"topics created: {', '.join(created) if created else 'none (all existed)'}")

        model_port, web_port, alerts_port = _free_port(), _free_port(), _free_port()
        run_id = uuid.uuid4().hex[:6]
        env = _child_env(broker_settings, live)
        spawn("model-server", _lens(
            "serve", f"--port={model_port}", "--model_name=lens", f"--model_base_path={models}",
        ), env)
        worker = spawn("worker", _lens(
            "worker", "funnel", "--web-port", str(web_port), "--model-server",
            f"127.0.0.1:{model_port}", "--app-id", f"lens-demo-{run_id}",
            "--sweep-interval", "10", "--quiet-after", "3", "--predict-retry", "120",
            "--anomaly-min-history", str(config.anomaly_min_history),
            "--anomaly-threshold", str(config.anomaly_threshold),
            "--stockout-days", str(config.stockout_days),
            "--catalog", str(demo_dir / "products.csv"),
            "--need-intervals", str(demo_dir / NEED_INTERVALS),
        ), env)
        alerts_jsonl = live / "alerts.jsonl"
        subscriber = spawn("alerts", _lens(
            "alerts", "serve", "--sink", "console", "--sink", f"jsonl:{alerts_jsonl}",
            "--group", f"lens-demo-alerts-{run_id}", "--metrics-port", str(alerts_port),
        ) + ([] if local else ["--from-latest"]), env)
        say(f"started the model server (port {model_port}), the funnel worker and the alert "
            f"subscriber; logs in {live}")

        deadline = time.monotonic() + config.start_timeout_s
        while True:
            for child in children:
                if not child.alive():
                    raise RuntimeDependencyError(
                        f"{child.name} exited early (log {child.log_path}):\n{child.logs()}")
            ready = "Worker ready" in worker.logs(200_000)
            if ready:
                try:
                    _metrics(web_port)
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeDependencyError(
                    f"the funnel worker was not ready within {config.start_timeout_s:.0f}s:\n"
                    f"{worker.logs()}")
            time.sleep(0.5)
        say(f"funnel worker ready (metrics http://127.0.0.1:{web_port}/metrics)")

        tail = _Tail(kafka, config.show_predictions, say, from_beginning=local)
        tail.start()
        tail.ready.wait(30)

        alert_echo = threading.Thread(target=_echo_alerts, args=(subscriber, say, tail.stop),
                                      daemon=True)
        alert_echo.start()

        say("loading the resupply plan ...")
        say(f"  {_load_resupplies(kafka, demo_dir / 'resupplies.csv')}")
        baskets = _count_baskets(demo_dir / "transactions.csv")
        say(f"replaying {baskets} baskets, a day every {86_400 / config.replay_speed:.1f}s ...")
        began = time.monotonic()
        say(f"  {_replay(kafka, demo_dir / 'transactions.csv', config.replay_speed)}")
        replayed_s = time.monotonic() - began

        say("waiting for the worker to close every basket and predict ...")
        deadline = time.monotonic() + config.catch_up_timeout_s
        samples: dict[str, float] = {}
        stable_since = None
        last = None
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeDependencyError(f"the worker exited:\n{worker.logs()}")
            try:
                samples = _metrics(web_port)
            except OSError:
                time.sleep(1)
                continue
            sessions = _total(samples, "lens_funnel_sessions_closed")
            predictions = _total(samples, "lens_funnel_predictions")
            pending = samples.get("lens_funnel_predictions_pending", 0.0)
            open_baskets = samples.get("lens_funnel_open_baskets", 0.0)
            now = (sessions, predictions, _total(samples, "lens_funnel_alerts"))
            # no customer pending: every prediction is in the state (Algorithms 1 and 2)
            if sessions >= baskets and pending == 0 and open_baskets == 0:
                stable_since = stable_since if now == last else time.monotonic()
                if time.monotonic() - stable_since >= 3:  # let the last alerts through
                    break
            last = now
            time.sleep(1)
        else:
            say(f"(stopped waiting after {config.catch_up_timeout_s:.0f}s)")
        caught_up_s = time.monotonic() - began
        _wait_for_delivery(alerts_jsonl, int(_total(samples, "lens_funnel_alerts")), subscriber)
        summary = _summary(samples, alerts_jsonl, demo_dir / "ground_truth.json", baskets,
                           replayed_s, caught_up_s, tail.count)
        _print_summary(summary, say, web_port, alerts_port, model_port, alerts_jsonl, live)
        if follow:
            say("--follow: the stack keeps running; Ctrl-C stops it")
            try:
                while all(c.alive() for c in children):
                    time.sleep(1)
            except KeyboardInterrupt:
                say("interrupted")
        return summary
    finally:
        # A second Ctrl-C must not leave processes behind: ignore SIGINT while stopping.
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            previous = None
        try:
            if tail is not None:
                tail.stop.set()
            for child in reversed(children):
                code = child.stop()
                say(f"{child.name} stopped (exit {code})")
            if tail is not None and tail.thread is not None:
                tail.thread.join(10)
            if broker is not None:
                broker.stop()
                say("Kafka stopped")
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _wait_for_delivery(alerts_jsonl: Path, emitted: int, subscriber: _Child,
                       timeout_s: float = 60.0) -> None:
    """Give the subscriber a bounded time to deliver every emitted alert (repeats of an alert id
    are dropped, so fewer lines than alerts can be final)."""
    deadline = time.monotonic() + timeout_s
    previous, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline and subscriber.alive():
        try:
            delivered = sum(1 for _ in alerts_jsonl.open())
        except OSError:
            delivered = 0
        if delivered >= emitted:
            return
        if delivered != previous:
            previous, stable_since = delivered, time.monotonic()
        elif time.monotonic() - stable_since > 10:
            return
        time.sleep(0.5)


def _echo_alerts(child: _Child, say, stop: threading.Event) -> None:
    """Print the subscriber's console sink lines as they are written."""
    position = 0
    while not stop.is_set():
        try:
            with child.log_path.open("rb") as f:
                f.seek(position)
                chunk = f.read()
        except OSError:
            chunk = b""
        if chunk:
            complete = chunk.rfind(b"\n") + 1
            position += complete
            for line in chunk[:complete].decode(errors="replace").splitlines():
                if line.startswith(("ANOMALY", "STOCKOUT")):
                    say(line)
        time.sleep(0.5)


def _load_resupplies(kafka: KafkaConnection, path: Path) -> str:
    from lens.topics import INVENTORY_RESUPPLIES
    from services.pos import PosPublisher
    from services.pos.resupply import publish_resupplies

    with PosPublisher(kafka, topic=INVENTORY_RESUPPLIES.name) as publisher:
        count = publish_resupplies(path, publisher)
    return f"published {count} resupply records to {INVENTORY_RESUPPLIES.name}"


def _replay(kafka: KafkaConnection, path: Path, speed: float) -> str:
    from lens.data.loaders import load_funnels
    from services.pos import PosPublisher, baskets_in_time_order, replay

    baskets = baskets_in_time_order(load_funnels(path).funnels)
    with PosPublisher(kafka) as publisher:
        stats = replay(baskets, publisher, speed=speed, restamp=False, duration_s=None,
                       progress=False)
    return stats.summary()


def _count_baskets(path: Path) -> int:
    import csv

    with path.open(newline="") as f:
        return len({row["TRAN_ID"] for row in csv.DictReader(f)})


def _summary(samples, alerts_jsonl: Path, truth_path: Path, baskets: int, replayed_s: float,
             caught_up_s: float, tailed: int) -> dict:
    delivered: list[dict] = []
    if alerts_jsonl.exists():
        for line in alerts_jsonl.read_text().splitlines():
            if line.strip():
                delivered.append(json.loads(line))
    by_type = Counter(a.get("type") for a in delivered)
    truth = json.loads(truth_path.read_text())
    changed = {c["customer_id"]: c["date"] for c in truth.get("behaviour_changes", [])}
    surges = [s for s in truth.get("stock_shortfalls", []) if s.get("planted")]
    short = {(s["store_id"], s["product_id"], s["date"]) for s in truth.get("stock_shortfalls", [])}
    plan_start = truth.get("period", {}).get("resupply_first_day", "")
    anomalies = [a for a in delivered if a.get("type") == "anomaly"]
    stockouts = [a for a in delivered if a.get("type") == "stockout"]
    # found: an anomaly on or after the customer's planted change day; a stock-out naming the
    # surge's store and product within a day of it (bench/planted_detection.py, same rules)
    found_changes = {a.get("customer_id") for a in anomalies
                     if a.get("customer_id") in changed
                     and a.get("event_time", "")[:10] >= changed[a.get("customer_id")]}
    found_surges = {(s["store_id"], s["product_id"], s["date"]) for s in surges
                    if any((a.get("store_id"), a.get("product_id")) == (s["store_id"], s["product_id"])
                           and _days_apart(a.get("day", ""), s["date"]) <= 1 for a in stockouts)}
    records = _total(samples, "lens_funnel_records", 'outcome="processed"')
    return {
        "baskets_replayed": baskets,
        "records_processed": int(records),
        "sessions": int(_total(samples, "lens_funnel_sessions_closed")),
        "predictions": int(_total(samples, "lens_funnel_predictions")),
        "predictions_seen_on_topic": tailed,
        "alerts_emitted": {
            "anomaly": int(_total(samples, "lens_funnel_alerts", 'type="anomaly"')),
            "stockout": int(_total(samples, "lens_funnel_alerts", 'type="stockout"')),
        },
        "alerts_delivered": {"anomaly": by_type.get("anomaly", 0),
                             "stockout": by_type.get("stockout", 0)},
        "dead_letters": int(_total(samples, "lens_funnel_dead_letters")),
        "replay_s": round(replayed_s, 1),
        "caught_up_s": round(caught_up_s, 1),
        "throughput_records_per_s": round(records / caught_up_s, 1) if caught_up_s else 0.0,
        "anomaly_customers_with_planted_change": sorted(found_changes),
        "anomaly_customers": len({a.get("customer_id") for a in anomalies}),
        "planted_changes": len(changed),
        "planted_surges_alerted": sorted(found_surges),
        "stockout_cells_true_shortfall": len(
            {(a.get("store_id"), a.get("product_id"), a.get("day")) for a in stockouts} & short),
        "stockout_cells": len({(a.get("store_id"), a.get("product_id"), a.get("day"))
                               for a in stockouts}),
        "planted_surges": len(surges),
        "plan_first_day": plan_start,
    }


def _days_apart(day: str, other: str) -> int:
    try:
        return abs((dt.date.fromisoformat(day) - dt.date.fromisoformat(other)).days)
    except ValueError:
        return 1 << 30


def _print_summary(s: dict, say, web_port, alerts_port, model_port, alerts_jsonl, live) -> None:
    say("")
    say("== LENS demo summary ==")
    say(f"baskets replayed: {s['baskets_replayed']} ({s['records_processed']} records processed)")
    say(f"sessions: {s['sessions']}")
    say(f"predictions: {s['predictions']}")
    say(f"alerts: anomaly {s['alerts_emitted']['anomaly']}, stockout "
        f"{s['alerts_emitted']['stockout']} (delivered: anomaly "
        f"{s['alerts_delivered']['anomaly']}, stockout {s['alerts_delivered']['stockout']}; "
        "repeats of an alert id are delivered once)")
    say(f"dead letters: {s['dead_letters']}")
    say(f"throughput: {s['throughput_records_per_s']} records/s (replay {s['replay_s']}s, "
        f"all processed after {s['caught_up_s']}s)")
    say(f"planted behaviour changes found: {len(s['anomaly_customers_with_planted_change'])} "
        f"of {s['planted_changes']} ({s['anomaly_customers']} customers alerted)")
    say(f"planted demand surges found: {len(s['planted_surges_alerted'])} of "
        f"{s['planted_surges']} ({s['stockout_cells_true_shortfall']} of {s['stockout_cells']} "
        f"alerted cells were real shortfalls; the resupply plan starts {s['plan_first_day']})")
    say(f"metrics: worker http://127.0.0.1:{web_port}/metrics, alert subscriber "
        f"http://127.0.0.1:{alerts_port}/metrics, model server gRPC 127.0.0.1:{model_port}")
    say(f"alerts JSONL: {alerts_jsonl}; logs: {live}")
    say("== end of summary ==")
