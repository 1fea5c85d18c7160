import http.server
import io
import json
import threading

import pytest

from lens.errors import ConfigError
from services.alerts import (
    ConsoleSink, DeliveryError, JsonlSink, WebhookSink, alert_from_record, parse_sink, sign,
    verify_signature,
)
from tests.unit.services.alerts.helpers import anomaly, stockout


def as_alert(message):
    topic = "lens.alerts.anomaly" if message.DESCRIPTOR.name == "AnomalyAlert" else "lens.alerts.stockout"
    return alert_from_record(topic, message.SerializeToString())


def test_console_prints_one_readable_line_per_alert():
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.deliver(as_alert(anomaly()))
    sink.deliver(as_alert(stockout()))
    first, second = out.getvalue().splitlines()
    assert first.startswith("ANOMALY  2026-01-05T10:31:00Z customer 01104905 cluster 3 score 4.25")
    assert "predicted [P1 P2] observed [P9] lens/v2" in first
    assert second.startswith("STOCKOUT 2026-02-20 store S1 product P0042 demand 12.0 vs resupply 5.0 -> short 7.0")


def test_jsonl_writes_one_object_per_alert_with_ids_as_strings(tmp_path):
    sink = JsonlSink(tmp_path / "out" / "alerts.jsonl")
    sink.deliver(as_alert(anomaly(alert_id="007:1", customer="007")))
    sink.deliver(as_alert(stockout()))
    sink.close()
    rows = [json.loads(line) for line in (tmp_path / "out" / "alerts.jsonl").read_text().splitlines()]
    assert rows[0]["type"] == "anomaly" and rows[0]["customer_id"] == "007" and rows[0]["alert_id"] == "007:1"
    assert rows[0]["event_time"] == "2026-01-05T10:31:00Z" and rows[0]["observed_items"] == ["P9"]
    assert rows[1]["type"] == "stockout" and rows[1]["product_id"] == "P0042" and rows[1]["shortfall"] == 7.0


def test_signature_covers_timestamp_and_body():
    signature = sign(b"s3cret", "1700000000", b'{"a":1}')
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(b"s3cret", "1700000000", b'{"a":1}', signature)
    assert not verify_signature(b"s3cret", "1700000001", b'{"a":1}', signature)
    assert not verify_signature(b"s3cret", "1700000000", b'{"a":2}', signature)
    assert not verify_signature(b"other", "1700000000", b'{"a":1}', signature)


class Receiver(http.server.BaseHTTPRequestHandler):
    statuses: list = []
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.statuses.pop(0) if self.statuses else 200
        self.received.append((dict(self.headers), body))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.statuses, Receiver.received = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Receiver
    server.shutdown()


def test_webhook_posts_signed_json(receiver):
    url, handler = receiver
    WebhookSink(url, b"s3cret").deliver(as_alert(anomaly()))
    headers, body = handler.received[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Lens-Alert-Id"] == "01104905:7"
    assert verify_signature(b"s3cret", headers["X-Lens-Timestamp"], body, headers["X-Lens-Signature"])
    assert json.loads(body)["customer_id"] == "01104905"


@pytest.mark.parametrize("status,retryable", [(500, True), (503, True), (429, True), (400, False), (404, False)])
def test_webhook_errors_say_whether_a_retry_may_help(receiver, status, retryable):
    url, handler = receiver
    handler.statuses = [status]
    with pytest.raises(DeliveryError) as error:
        WebhookSink(url, b"s").deliver(as_alert(stockout()))
    assert error.value.retryable is retryable and str(status) in str(error.value)


def test_unreachable_webhook_is_retryable():
    with pytest.raises(DeliveryError) as error:
        WebhookSink("http://127.0.0.1:9/", b"s", timeout_s=1).deliver(as_alert(stockout()))
    assert error.value.retryable


def test_parse_sink(tmp_path):
    assert isinstance(parse_sink("console"), ConsoleSink)
    assert isinstance(parse_sink(f"jsonl:{tmp_path}/a.jsonl"), JsonlSink)
    assert isinstance(parse_sink("webhook:http://x/h", webhook_secret=b"k"), WebhookSink)
    with pytest.raises(ConfigError, match="signing secret"):
        parse_sink("webhook:http://x/h")
    with pytest.raises(ConfigError, match="console, jsonl:PATH or webhook:URL"):
        parse_sink("kafka:foo")
    with pytest.raises(ConfigError, match="http"):
        parse_sink("webhook:ftp://x", webhook_secret=b"k")
