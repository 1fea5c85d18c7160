"""The funnel-state worker as a real process (`python -m lens.cli.main worker funnel`) on a real
broker: sessions, dead letters, duplicates, the idle sweep, /metrics and a clean SIGTERM stop.

Every wait is a poll loop with a deadline; nothing asserts on speed.
"""

import datetime as dt
import urllib.request
import uuid

from confluent_kafka import Producer

from lens import v1
from lens.topics import DEAD_LETTERS, POS_TRANSACTIONS, SESSIONS
from tests.conftest import free_port
from tests.integration.processes import (
    ModelServer,
    Reader,
    Worker,
    closed,
    line,
    save_stand_in_model,
    topic_size,
    wait_for,
)


def test_worker_sessionizes_dead_letters_and_reconciles(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{run}", f"bob-{run}"
    t0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=30)
    s = dt.timedelta(seconds=1)
    events: list[tuple[str, bytes]] = [
        (alice, line("A1", 1, alice, "milk", t0).SerializeToString()),
        (alice, line("A1", 2, alice, "bread", t0 + s, quantity=2).SerializeToString()),
        (alice, line("A1", 1, alice, "milk", t0).SerializeToString()),  # resent: duplicate
        (alice, closed("A1", alice, t0 + 2 * s).SerializeToString()),  # -> session 1
        (alice, line("A2", 1, alice, "eggs", t0 + 600 * s).SerializeToString()),
        (alice, line("A3", 1, alice, "milk", t0 + 602 * s).SerializeToString()),  # closes A2
        (bob, line("B1", 1, bob, "tea", t0).SerializeToString()),
        (bob, closed("B1", bob, t0 + 3 * s, line_count=2).SerializeToString()),  # waits for line 2
        (bob, line("B1", 2, bob, "honey", t0 + 2 * s).SerializeToString()),  # -> closes B1
        (bob, b"\x0a\x05ab"),  # truncated protobuf: undecodable
        (bob, line("B2", 1, bob, "tea", t0 + 5 * s, quantity=-3).SerializeToString()),  # invalid
    ]
    # A3 stays open: only the sweep can close it (quiet partition -> processing-time watermark).
    sessions_reader = Reader(kafka_bootstrap, SESSIONS.name)
    dlq_reader = Reader(kafka_bootstrap, DEAD_LETTERS.name)
    worker = Worker(
        kafka_bootstrap, tmp_path, "--no-model", "--inactivity-timeout", "5",
        "--sweep-interval", "1", "--quiet-after", "2",
    )
    try:
        worker.wait_ready()
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        for key, value in events:
            producer.produce(POS_TRANSACTIONS.name, key=key.encode(), value=value)
        assert producer.flush(30) == 0

        def ours():
            found = [v1.Session.FromString(v) for _, v in sessions_reader.poll()]
            return [x for x in found if x.customer_id in (alice, bob)]

        sessions = wait_for(lambda: len(ours()) >= 4 and ours(), "4 sessions", worker)
        by_tx = {x.transaction_id: x for x in sessions}
        assert sorted(by_tx) == ["A1", "A2", "A3", "B1"] and len(sessions) == 4
        reason = v1.CloseReason
        assert by_tx["A1"].close_reason == reason.CLOSE_REASON_BASKET_CLOSED
        assert [(i.product_id, i.quantity) for i in by_tx["A1"].items] == [("milk", 1), ("bread", 2)]
        assert by_tx["A2"].close_reason == reason.CLOSE_REASON_NEW_TRANSACTION
        assert by_tx["A3"].close_reason == reason.CLOSE_REASON_INACTIVITY  # by the sweep
        assert [x.session_index for x in sessions if x.customer_id == alice] == [1, 2, 3]
        assert by_tx["B1"].close_reason == reason.CLOSE_REASON_BASKET_CLOSED
        assert [i.product_id for i in by_tx["B1"].items] == ["tea", "honey"]

        def our_letters():
            letters = [v1.DeadLetter.FromString(v) for _, v in dlq_reader.poll()]
            return [d for d in letters if d.original_key == bob.encode()]

        letters = wait_for(lambda: len(our_letters()) >= 2 and our_letters(), "2 dead letters", worker)
        reasons = {d.reason: d for d in letters}
        undecodable = reasons[v1.DeadLetterReason.DEAD_LETTER_REASON_UNDECODABLE]
        assert undecodable.original_value == b"\x0a\x05ab"
        assert undecodable.source_topic == POS_TRANSACTIONS.name and undecodable.service
        invalid = reasons[v1.DeadLetterReason.DEAD_LETTER_REASON_INVALID_QUANTITY]
        assert "quantity -3 must be > 0" in invalid.detail
        assert v1.PosEvent.FromString(invalid.original_value).line.transaction_id == "B2"
        produced = {(d.source_partition, d.source_offset) for d in letters}
        assert len(produced) == 2

        # Counts reconcile: every record of pos.transactions is processed, dead-lettered or a
        # duplicate (the topic may hold other tests' records too: all of them are counted).
        total = topic_size(kafka_bootstrap, POS_TRANSACTIONS.name, POS_TRANSACTIONS.partitions)

        def reconciled():
            m = worker.metrics()
            counted = sum(m.get(f'lens_funnel_records_total{{outcome="{o}"}}', 0.0)
                          for o in ("processed", "dead_lettered", "duplicate"))
            return m if counted == total else None

        m = wait_for(reconciled, f"{total} records counted in /metrics", worker)
        assert m['lens_funnel_records_total{outcome="duplicate"}'] >= 1
        assert m['lens_funnel_records_total{outcome="dead_lettered"}'] >= 2
        assert m['lens_funnel_dead_letters_total{reason="undecodable",topic="pos.transactions"}'] >= 1
        assert m['lens_funnel_sessions_closed_total{reason="inactivity"}'] >= 1
        assert any(name.startswith("lens_funnel_faust_") for name in m)  # Faust's own sensors
    finally:
        sessions_reader.close()
        dlq_reader.close()
        code = worker.stop()
    assert code == 0, worker.logs()


# -- predictions, anomaly and stock-out alerts with a real `lens serve` -------------------------


def test_predictions_survive_a_late_model_server_and_feed_both_alerts(kafka_bootstrap, tmp_path):
    from lens.topics import ANOMALY_ALERTS, PREDICTIONS, STOCKOUT_ALERTS, INVENTORY_RESUPPLIES

    models = tmp_path / "models" / "lens"
    models.mkdir(parents=True)
    save_stand_in_model(models)
    model_port = free_port()
    run = uuid.uuid4().hex[:6]
    store = f"store-{run}"
    regulars = [f"reg{i}-{run}" for i in range(3)]
    changer = f"changer-{run}"
    t0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=2)
    tomorrow = (t0.date() + dt.timedelta(days=1)).isoformat()
    minute = dt.timedelta(minutes=1)

    readers = {t: Reader(kafka_bootstrap, t) for t in
               (PREDICTIONS.name, ANOMALY_ALERTS.name, STOCKOUT_ALERTS.name)}
    worker = Worker(
        kafka_bootstrap, tmp_path / "worker", "--model-server", f"127.0.0.1:{model_port}",
        "--inactivity-timeout", "600", "--sweep-interval", "1", "--quiet-after", "2",
        "--predict-retry", "1", "--anomaly-min-history", "2", "--anomaly-min-sessions", "1",
        # the changer's second session is scored: its novelty against the one before it
        env={"LENS_ANOMALY_NOVELTY_WINDOW": "1", "LENS_ANOMALY_ESTABLISHED": "1"},
    )
    server = None
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})

    def send(customer, tx, product, at):
        # One partition for the test's customers: Algorithm 1's windows are per partition.
        for event in (line(tx, 1, customer, product, at, store=store),
                      closed(tx, customer, at + minute, store=store)):
            producer.produce(POS_TRANSACTIONS.name, key=customer.encode(),
                             value=event.SerializeToString(), partition=0)
        assert producer.flush(30) == 0

    def records(topic, message_type, keep):
        return [m for m in (message_type.FromString(v) for _, v in readers[topic].poll()) if keep(m)]

    try:
        worker.wait_ready()
        # 1. Model server down: sessions still close, predictions fail and stay pending.
        for customer in [*regulars, changer]:
            send(customer, "T1", "milk", t0)
        def closed_and_failing():
            # the 4 sessions may close in more than one batch: the first can fail to be
            # predicted before the last closes
            m = worker.metrics()
            sessions = m.get('lens_funnel_sessions_closed_total{reason="basket_closed"}', 0)
            failing = any(k.startswith("lens_funnel_model_errors_total") for k in m)
            return m if sessions >= 4 and failing else None

        m = wait_for(closed_and_failing, "4 sessions and model errors while the server is down",
                     worker)
        assert m["lens_funnel_predictions_pending"] >= 1
        assert not any(k.startswith("lens_funnel_predictions_total") for k in m)

        # 2. The model server comes up: the pending customers get their predictions.
        server = ModelServer(models, model_port, tmp_path / "serve.log")
        server.start()
        ours = set(regulars) | {changer}
        first = wait_for(
            lambda: (found := records(PREDICTIONS.name, v1.Prediction,
                                      lambda p: p.customer_id in ours))
            and len({p.customer_id for p in found}) == 4 and found,
            "4 predictions after the model server started", worker, timeout_s=240,
        )
        p = first[0]
        assert [i.product_id for i in p.basket] == ["milk"] and p.basket[0].quantity == 2.0
        assert p.days_to_next == 1.0 and p.model.name == "lens" and p.model.version == 1
        assert p.store_id == store and p.session_index == 1

        # 3. Algorithm 2: 4 customers x 2 units of milk at score 0.9 (7.2 expected units)
        # tomorrow vs a resupply of 1 unit.
        plan = v1.Resupply(store_id=store, product_id="milk", day=tomorrow, quantity=1)
        producer.produce(INVENTORY_RESUPPLIES.name, key=store.encode(), value=plan.SerializeToString())
        assert producer.flush(30) == 0
        stockouts = wait_for(
            lambda: [a for a in records(STOCKOUT_ALERTS.name, v1.StockoutAlert,
                                        lambda a: a.store_id == store)
                     if round(a.shortfall, 6) == 6.2],
            "a stock-out alert for 7.2 predicted units vs 1 planned", worker,
        )
        assert (stockouts[0].product_id, stockouts[0].day) == ("milk", tomorrow)
        assert round(stockouts[0].predicted_demand, 6) == 7.2
        assert stockouts[0].resupply_quantity == 1.0

        # 4. Algorithm 1: wait until every customer's prediction is in its state, then the
        # regulars buy milk again (dA = 0) and the changer buys caviar (dA = 1).
        def has_prediction(customer):
            url = f"http://127.0.0.1:{worker.port}/funnel/customers/{customer}/"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    import json

                    return json.loads(response.read())["p"] is not None
            except OSError:
                return False

        wait_for(lambda: all(has_prediction(c) for c in ours), "predictions in state", worker)
        for customer in regulars:
            send(customer, "T2", "milk", t0 + 60 * minute)
        send(changer, "T2", "caviar", t0 + 61 * minute)
        (alert,) = wait_for(
            lambda: records(ANOMALY_ALERTS.name, v1.AnomalyAlert,
                            lambda a: a.customer_id in ours),
            "an anomaly alert for the changer", worker,
        )
        assert alert.customer_id == changer and alert.alert_id == f"{changer}:2"
        assert alert.distance == 1.0 and alert.score > alert.threshold
        assert list(alert.observed_items) == ["caviar"] and list(alert.predicted_items) == ["milk"]
        m = worker.metrics()
        assert m['lens_funnel_alerts_total{type="anomaly"}'] >= 1
        assert m['lens_funnel_alerts_total{type="stockout"}'] >= 1
        assert m['lens_funnel_predictions_total{label="",version="1"}'] >= 4
        assert m["lens_funnel_prediction_latency_seconds_count"] >= 4
    finally:
        for reader in readers.values():
            reader.close()
        code = worker.stop()
        if server is not None:
            server.stop()
    assert code == 0, worker.logs()


def test_a_new_worker_resumes_an_open_basket_from_the_changelog(kafka_bootstrap, tmp_path):
    """Worker 1 sees half a basket and stops; worker 2 (same app id, empty disk) recovers the
    table from its changelog, recognises a resent line and closes the basket with every line."""
    import json

    customer = f"carol-{uuid.uuid4().hex[:6]}"
    t0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=20)
    s = dt.timedelta(seconds=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})

    def produce(*events):
        for event in events:
            producer.produce(POS_TRANSACTIONS.name, key=customer.encode(),
                             value=event.SerializeToString())
        assert producer.flush(30) == 0

    def open_lines(worker):
        url = f"http://127.0.0.1:{worker.port}/funnel/customers/{customer}/"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                basket = json.loads(response.read())["o"]
        except OSError:
            return None
        return basket and sorted(basket[5])

    flags = ("--no-model", "--inactivity-timeout", "600")
    first = Worker(kafka_bootstrap, tmp_path / "one", *flags)
    sessions_reader = Reader(kafka_bootstrap, SESSIONS.name)
    try:
        first.wait_ready()
        produce(line("C1", 1, customer, "apples", t0), line("C1", 2, customer, "pears", t0 + s))
        wait_for(lambda: open_lines(first) == [1, 2], "an open basket with lines 1 and 2", first)
    finally:
        assert first.stop() == 0, first.logs()

    # Same app id (consumer group, changelogs), another run dir: nothing on local disk.
    second = Worker(kafka_bootstrap, tmp_path / "two", *flags, app_id=first.app_id)
    try:
        second.wait_ready()
        produce(line("C1", 2, customer, "pears", t0 + s),  # resent: a duplicate, not a new line
                closed("C1", customer, t0 + 2 * s))

        def ours():
            return [x for x in (v1.Session.FromString(v) for _, v in sessions_reader.poll())
                    if x.customer_id == customer]

        (session,) = wait_for(ours, "the resumed basket's session", second)
        assert [(i.product_id, i.quantity) for i in session.items] == [("apples", 1), ("pears", 1)]
        assert session.close_reason == v1.CloseReason.CLOSE_REASON_BASKET_CLOSED
        assert second.metrics()['lens_funnel_records_total{outcome="duplicate"}'] >= 1
    finally:
        sessions_reader.close()
        code = second.stop()
    assert code == 0, second.logs()

