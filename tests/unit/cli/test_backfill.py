"""`lens backfill`: the history goes to pos.transactions as POS events, every record marked."""

import confluent_kafka

import services.kafka
from lens import v1
from lens.cli.main import main
from lens.topics import POS_TRANSACTIONS
from services.funnel.backfill import is_backfill


class FakeProducer:
    """confluent-kafka's Producer as far as PosPublisher uses it; acknowledges every record."""

    def __init__(self, config):
        self.config = config
        self.records = []
        FakeProducer.last = self

    def produce(self, topic, *, value, key, on_delivery, headers=None):
        self.records.append((topic, key, value, headers))
        on_delivery(None, None)

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        return 0


def test_backfill_publishes_marked_pos_events_in_time_order(tmp_path, monkeypatch, clean_lens_env, capsys):
    monkeypatch.setattr(confluent_kafka, "Producer", FakeProducer)
    monkeypatch.setattr(services.kafka, "wait_until_ready", lambda kafka, timeout_s: None)
    data = tmp_path / "tx.csv"
    data.write_text(
        "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID\n"
        "t2,bob,tea,2026-03-02T10:00:00,2,1,S1\n"
        "t1,ann,milk,2026-03-01T10:00:00,2,1,S1\n"
        "t1,ann,jam,2026-03-01T10:00:00,3,2,S1\n"
    )
    assert main(["--kafka-bootstrap", "127.0.0.1:9", "backfill", "--data", str(data), "--no-progress"]) == 0
    assert "published 3 lines and 2 baskets" in capsys.readouterr().out
    producer = FakeProducer.last
    assert producer.config["enable.idempotence"] is True
    events = [(key, v1.PosEvent.FromString(value)) for _, key, value, _ in producer.records]
    assert [(k, e.WhichOneof("event")) for k, e in events] == [
        (b"ann", "line"), (b"ann", "line"), (b"ann", "basket_closed"), (b"bob", "line"),
        (b"bob", "basket_closed"),
    ]
    assert events[2][1].basket_closed.line_count == 2
    assert {topic for topic, *_ in producer.records} == {POS_TRANSACTIONS.name}
    assert all(is_backfill(headers) for *_, headers in producer.records)
