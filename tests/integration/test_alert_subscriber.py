"""The alert subscriber against a real broker: signed webhooks that fail at first still get
every alert exactly once; a webhook that never answers ends in lens.dlq; offsets are committed
only after delivery, so a subscriber that dies mid-delivery loses nothing."""

import datetime as dt
import http.server
import json
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from lens import v1
from lens.topics import ANOMALY_ALERTS, DEAD_LETTERS, STOCKOUT_ALERTS
from services.alerts import JsonlSink, WebhookSink, verify_signature
from services.kafka import create_topics
from tests.integration.processes import SubscriberThread, commit_at_end

SECRET = b"integration-secret"
WAIT_S = 60.0


def anomaly(alert_id):
    alert = v1.AnomalyAlert(alert_id=alert_id, customer_id=alert_id.split(":")[0], cluster=1, score=5.0,
                            threshold=3.0, distance=0.9, predicted_items=["P1"], observed_items=["P2"],
                            model=v1.ModelRef(name="lens", version=1))
    alert.event_time.FromDatetime(dt.datetime.now(dt.timezone.utc))
    return alert


def stockout(alert_id):
    store, product, day, _ = alert_id.split(":")
    alert = v1.StockoutAlert(alert_id=alert_id, store_id=store, product_id=product, day=day,
                             predicted_demand=9, resupply_quantity=2, shortfall=7,
                             model=v1.ModelRef(name="lens", version=1))
    alert.as_of.FromDatetime(dt.datetime.now(dt.timezone.utc))
    return alert


def publish(bootstrap, alerts):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for alert in alerts:
        topic = ANOMALY_ALERTS if isinstance(alert, v1.AnomalyAlert) else STOCKOUT_ALERTS
        key = alert.customer_id if topic is ANOMALY_ALERTS else alert.store_id
        producer.produce(topic.name, key=key.encode(), value=alert.SerializeToString())
    assert producer.flush(30) == 0


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail_first`` attempts of each alert id (all, when None)."""

    fail_first: int | None = 0
    attempts: dict = {}
    accepted: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        alert_id = self.headers["X-Lens-Alert-Id"]
        seen = self.attempts[alert_id] = self.attempts.get(alert_id, 0) + 1
        if self.fail_first is None or seen <= self.fail_first:
            self.send_response(503)
        else:
            valid = verify_signature(SECRET, self.headers["X-Lens-Timestamp"], body,
                                     self.headers["X-Lens-Signature"])
            self.accepted.append((alert_id, valid, json.loads(body)))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type("R", (Receiver,), {"attempts": {}, "accepted": [], "fail_first": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", handler
    server.shutdown()


def wait_for(condition, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def bootstrap(kafka_settings):
    create_topics(kafka_settings.bootstrap_servers)
    return kafka_settings.bootstrap_servers


def test_flaky_webhook_gets_every_alert_exactly_once_signed(bootstrap, receiver, tmp_path):
    url, handler = receiver
    handler.fail_first = 2  # two 503s per alert, then 200
    group = f"t-alerts-{uuid.uuid4().hex[:8]}"
    commit_at_end(bootstrap, group, [ANOMALY_ALERTS, STOCKOUT_ALERTS])
    run = uuid.uuid4().hex[:6]
    alerts = [anomaly(f"0{run}1:1"), anomaly(f"0{run}2:1"), stockout(f"S1:P{run}:2026-02-20:1")]
    jsonl = tmp_path / "alerts.jsonl"
    sub = SubscriberThread(bootstrap, [WebhookSink(url, SECRET), JsonlSink(jsonl)], group, tmp_path)
    try:
        publish(bootstrap, alerts + [alerts[0]])  # the first alert twice: a resend upstream
        assert wait_for(lambda: len(handler.accepted) >= 3 and
                        sub.metrics.registry.get_sample_value("lens_alerts_deduped_total", {"type": "anomaly"}) == 1)
    finally:
        sub.close()
    assert sub.error is None
    assert sorted(a for a, _, _ in handler.accepted) == sorted(a.alert_id for a in alerts)  # once each
    assert all(valid for _, valid, _ in handler.accepted)
    assert {a: n for a, n in handler.attempts.items()} == {a.alert_id: 3 for a in alerts}
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted(r["alert_id"] for r in rows) == sorted(a.alert_id for a in alerts)
    assert {r["customer_id"] for r in rows if r["type"] == "anomaly"} == {f"0{run}1", f"0{run}2"}

    # A restart of the same group redelivers nothing (all committed); a new record of an already
    # delivered id is skipped thanks to the persisted ids.
    sub = SubscriberThread(bootstrap, [WebhookSink(url, SECRET)], group, tmp_path)
    try:
        publish(bootstrap, [alerts[1]])
        assert wait_for(lambda: sub.metrics.registry.get_sample_value(
            "lens_alerts_deduped_total", {"type": "anomaly"}) == 1)
        time.sleep(1.0)
    finally:
        sub.close()
    assert len(handler.accepted) == 3


def test_webhook_that_always_fails_ends_in_the_dead_letter_topic(bootstrap, receiver, tmp_path):
    url, handler = receiver
    handler.fail_first = None
    group = f"t-alerts-{uuid.uuid4().hex[:8]}"
    commit_at_end(bootstrap, group, [ANOMALY_ALERTS, STOCKOUT_ALERTS])
    alert = stockout(f"S9:P{uuid.uuid4().hex[:6]}:2026-02-21:1")
    sub = SubscriberThread(bootstrap, [WebhookSink(url, SECRET)], group, tmp_path, max_attempts=3)
    try:
        publish(bootstrap, [alert])
        assert wait_for(lambda: sub.metrics.registry.get_sample_value(
            "lens_alerts_dead_lettered_total",
            {"type": "stockout", "sink": "webhook", "reason": "delivery_failed"}) == 1)
    finally:
        sub.close()
    assert handler.attempts == {alert.alert_id: 3} and handler.accepted == []

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([DEAD_LETTERS.name])
    found = []
    try:
        deadline = time.monotonic() + WAIT_S
        while not found and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            letter = v1.DeadLetter.FromString(message.value())
            if letter.original_value == alert.SerializeToString():
                found.append((message.key(), letter))
    finally:
        consumer.close()
    (key, letter), = found
    assert key == b"S9" and letter.original_key == b"S9"
    assert letter.reason == v1.DeadLetterReason.DEAD_LETTER_REASON_DELIVERY_FAILED
    assert letter.source_topic == STOCKOUT_ALERTS.name and letter.service == "alert-subscriber"
    assert "webhook failed after 3 attempt(s)" in letter.detail and "503" in letter.detail


def test_a_hanging_webhook_times_out_to_the_dead_letter_topic_and_other_sinks_still_deliver(
    bootstrap, tmp_path
):
    release = threading.Event()

    class Hanging(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            release.wait(30)  # never answers within the sink's timeout

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    group = f"t-alerts-{uuid.uuid4().hex[:8]}"
    commit_at_end(bootstrap, group, [ANOMALY_ALERTS, STOCKOUT_ALERTS])
    alerts = [anomaly(f"hang-{uuid.uuid4().hex[:6]}:{n}") for n in range(3)]
    webhook = WebhookSink(f"http://127.0.0.1:{server.server_port}/alerts", SECRET, timeout_s=0.3)
    jsonl = tmp_path / "alerts.jsonl"
    sub = SubscriberThread(bootstrap, [webhook, JsonlSink(jsonl)], group, tmp_path, max_attempts=2)
    try:
        publish(bootstrap, alerts)
        assert wait_for(lambda: sub.metrics.registry.get_sample_value(
            "lens_alerts_dead_lettered_total",
            {"type": "anomaly", "sink": "webhook", "reason": "delivery_failed"}) == 3)
        assert wait_for(lambda: jsonl.exists() and len(jsonl.read_text().splitlines()) == 3)
        assert sub.error is None and sub.thread.is_alive()  # the subscriber rode it out
    finally:
        release.set()
        sub.close()
        server.shutdown()
    delivered = [json.loads(line)["alert_id"] for line in jsonl.read_text().splitlines()]
    assert sorted(delivered) == sorted(a.alert_id for a in alerts)  # keys span partitions


class DyingSink:
    """A sink whose process dies (an unexpected error) on the first alert it sees."""

    name = "dying"

    def deliver(self, alert):
        raise SystemExit("killed mid-delivery")

    def close(self):
        pass


def test_offsets_are_committed_only_after_delivery(bootstrap, receiver, tmp_path):
    url, handler = receiver
    group = f"t-alerts-{uuid.uuid4().hex[:8]}"
    commit_at_end(bootstrap, group, [ANOMALY_ALERTS, STOCKOUT_ALERTS])
    alert = anomaly(f"0{uuid.uuid4().hex[:6]}:3")
    sub = SubscriberThread(bootstrap, [DyingSink()], group, tmp_path)
    publish(bootstrap, [alert])
    sub.thread.join(WAIT_S)
    assert isinstance(sub.error, SystemExit)  # died before committing

    sub = SubscriberThread(bootstrap, [WebhookSink(url, SECRET)], group, tmp_path)
    try:
        assert wait_for(lambda: len(handler.accepted) == 1)
    finally:
        sub.close()
    assert handler.accepted[0][0] == alert.alert_id and handler.accepted[0][1]


def test_tail_prints_alerts_readably(bootstrap):
    from services.alerts import tail_alerts

    alert = stockout(f"S7:P{uuid.uuid4().hex[:6]}:2026-03-01:2")
    publish(bootstrap, [alert])
    lines, stop = [], threading.Event()

    def say(line):
        lines.append(line)
        if alert.alert_id in line:
            stop.set()

    tail_alerts(bootstrap, from_beginning=True, stop=stop, idle_timeout_s=WAIT_S, say=say)
    (mine,) = [line for line in lines if alert.alert_id in line]
    assert mine.startswith("STOCKOUT 2026-03-01 store S7 product P") and "short 7.0" in mine
