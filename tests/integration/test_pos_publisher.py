"""The POS publisher against a real broker: every line and BasketClosed of a tiny history file
arrives on pos.transactions, keyed by customer, in order; resupply plans arrive keyed by store."""

import argparse
import time
import uuid

from confluent_kafka import Consumer
from google.protobuf.message import DecodeError

from lens import v1
from lens.cli import pos as pos_cli
from lens.topics import INVENTORY_RESUPPLIES, POS_TRANSACTIONS
from services.kafka import create_topics


def body_of(event):
    """The TransactionLine or BasketClosed inside a PosEvent; an empty message for none."""
    kind = event.WhichOneof("event")
    return getattr(event, kind) if kind else v1.BasketClosed()


def run_cli(settings, *argv):
    parser = argparse.ArgumentParser()
    pos_cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.handler(args, settings)


def read_until(bootstrap, topic, message_type, done, timeout_s=60.0):
    """Records (key, value, partition) of ``topic`` from the start until ``done(records)``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(records):
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            try:
                value = message_type.FromString(message.value())
            except DecodeError:
                continue  # the session broker also holds other tests' deliberately corrupt records
            records.append((message.key(), value, message.partition()))
    finally:
        consumer.close()
    return records


def test_replay_publishes_every_line_then_basket_closed_keyed_by_customer(kafka_settings, tmp_path, capsys):
    create_topics(kafka_settings.bootstrap_servers)
    run = uuid.uuid4().hex[:6]
    rows = [  # TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID
        f"{run}-T2,0{run}B,P9,2026-01-05T11:00:00,4.5,1,S2",
        f"{run}-T1,0{run}A,P1,2026-01-05T10:00:00,10,2,S1",
        f"{run}-T1,0{run}A,P2,2026-01-05T10:00:00,3,1,S1",
        f"{run}-T3,0{run}A,P1,2026-01-07T09:30:00,5,1,S1",
    ]
    data = tmp_path / "history.csv"
    data.write_text("TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID\n" + "\n".join(rows) + "\n")

    assert run_cli(kafka_settings, "pos", "replay", "--data", str(data), "--speed", "max", "--no-progress") == 0
    assert "published 4 lines and 3 baskets" in capsys.readouterr().out

    def mine(records):
        return [(k, e) for k, e, _ in records if run in body_of(e).transaction_id]

    records = read_until(kafka_settings.bootstrap_servers, POS_TRANSACTIONS.name, v1.PosEvent,
                         lambda r: len(mine(r)) >= 7)
    events = mine(records)
    assert len(events) == 7  # 4 lines + 3 BasketClosed, nothing twice
    for key, event in events:
        body = getattr(event, event.WhichOneof("event"))
        assert key == body.customer_id.encode()
    by_customer = {}
    for key, event in events:
        kind = event.WhichOneof("event")
        body = getattr(event, kind)
        by_customer.setdefault(key, []).append((kind, body.transaction_id.split("-")[1],
                                                body.line_no if kind == "line" else body.line_count))
    # One partition per customer keeps each customer's events in send (= time) order.
    assert by_customer[f"0{run}A".encode()] == [
        ("line", "T1", 1), ("line", "T1", 2), ("basket_closed", "T1", 2),
        ("line", "T3", 1), ("basket_closed", "T3", 1)]
    assert by_customer[f"0{run}B".encode()] == [("line", "T2", 1), ("basket_closed", "T2", 1)]
    line = next(e.line for _, e in events if e.WhichOneof("event") == "line" and e.line.product_id == "P1"
                and e.line.transaction_id.endswith("T1"))
    assert (line.quantity, line.amount, line.store_id) == (2.0, 10.0, "S1")
    assert line.timestamp.ToJsonString() == "2026-01-05T10:00:00Z"


def test_resupply_load_publishes_every_row_keyed_by_store(kafka_settings, tmp_path, capsys):
    create_topics(kafka_settings.bootstrap_servers)
    product = f"P{uuid.uuid4().hex[:6]}"
    plan = tmp_path / "resupplies.csv"
    plan.write_text(f"STORE_ID,PROD_ID,DAY,QUANTITY\nS1,{product},2026-02-20,12\nS2,{product},2026-02-21,0\n")
    assert run_cli(kafka_settings, "resupply", "load", str(plan)) == 0
    assert "published 2 resupply records" in capsys.readouterr().out

    def mine(records):
        return [(k, r) for k, r, _ in records if r.product_id == product]

    records = mine(read_until(kafka_settings.bootstrap_servers, INVENTORY_RESUPPLIES.name, v1.Resupply,
                              lambda r: len(mine(r)) >= 2))
    assert sorted((k, r.store_id, r.day, r.quantity) for k, r in records) == [
        (b"S1", "S1", "2026-02-20", 12.0), (b"S2", "S2", "2026-02-21", 0.0)]


def test_simulate_publishes_a_live_stream_stamped_now(kafka_settings, capsys):
    import datetime as dt

    create_topics(kafka_settings.bootstrap_servers)
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert run_cli(kafka_settings, "pos", "simulate", "--customers", "20", "--stores", "1", "--days", "28",
                   "--baskets", "4", "--speed", "max", "--no-progress") == 0
    out = capsys.readouterr().out
    run = out.split("(run ")[1].split(")")[0]
    assert "and 4 baskets" in out

    def mine(records):
        return [e for _, e, _ in records if body_of(e).transaction_id.startswith(run)]

    events = mine(read_until(kafka_settings.bootstrap_servers, POS_TRANSACTIONS.name, v1.PosEvent,
                             lambda r: sum(e.WhichOneof("event") == "basket_closed" for e in mine(r)) >= 4))
    closed = [e.basket_closed for e in events if e.WhichOneof("event") == "basket_closed"]
    assert len(closed) == 4
    lines = [e.line for e in events if e.WhichOneof("event") == "line"]
    assert sum(c.line_count for c in closed) == len(lines)
    stamps = [e.timestamp.ToDatetime(dt.timezone.utc) for e in lines + closed]
    assert all(started <= t <= dt.datetime.now(dt.timezone.utc) for t in stamps)
