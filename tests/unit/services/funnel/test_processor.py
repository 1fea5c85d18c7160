"""FunnelProcessor on dict tables: outcomes, dead letters, sweep, predictions, anomaly alerts."""

import datetime as dt

from lens import v1
from lens.stream.event_time import to_timestamp
from lens.topics import ANOMALY_ALERTS, DEAD_LETTERS, SESSIONS
from services.funnel.processor import FunnelProcessor, PartitionMeta, store_topic_name
from services.funnel.stockout import decode_store_events
from tests.unit.services.funnel.conftest import NOW_US, T0_US, closed, line

SECOND = 1_000_000


def feed(processor, tables, records, partition=3, now_us=NOW_US):
    results = []
    for offset, (key, value) in enumerate(records):
        results.append(processor.on_pos(
            tables, partition=partition, offset=offset, key=key, value=value, now_us=now_us
        ))
    return results


def sessions_of(results):
    return [v1.Session.FromString(o.value) for r in results for o in r.outputs
            if o.topic == SESSIONS.name]


def test_outcomes_reconcile_and_sessions_go_to_the_source_partition(make_config, tables, metrics):
    processor = FunnelProcessor(make_config(), metrics)
    records = [
        (b"c1", line("T1", 1, "c1", "milk", 0)),
        (b"c1", line("T1", 2, "c1", "bread", 1, quantity=2)),
        (b"c1", line("T1", 1, "c1", "milk", 0)),  # resent
        (b"c1", closed("T1", "c1", 2)),
        (b"c1", b"\x0a\x05ab"),  # truncated protobuf
        (b"c1", line("T2", 1, "c1", "tea", 3, quantity=-3)),
        (b"c1", line("T1", 3, "c1", "jam", 4)),  # after T1 closed: late
    ]
    results = feed(processor, tables, records)
    assert [r.outcome for r in results] == [
        "processed", "processed", "duplicate", "processed", "dead_lettered", "dead_lettered",
        "dead_lettered",
    ]
    (session,) = sessions_of(results)
    assert [(i.product_id, i.quantity) for i in session.items] == [("milk", 1), ("bread", 2)]
    assert session.close_reason == v1.CloseReason.CLOSE_REASON_BASKET_CLOSED
    assert [o.partition for r in results for o in r.outputs if o.topic == SESSIONS.name] == [3]
    letters = [v1.DeadLetter.FromString(o.value) for r in results for o in r.outputs
               if o.topic == DEAD_LETTERS.name]
    reasons = v1.DeadLetterReason
    assert [d.reason for d in letters] == [
        reasons.DEAD_LETTER_REASON_UNDECODABLE,
        reasons.DEAD_LETTER_REASON_INVALID_QUANTITY,
        reasons.DEAD_LETTER_REASON_LATE,
    ]
    assert letters[0].original_value == b"\x0a\x05ab" and letters[0].original_key == b"c1"
    assert (letters[0].source_partition, letters[0].source_offset) == (3, 4)
    assert letters[2].detail.startswith("late: line 3")
    counts = {o: metrics.records.labels(o)._value.get()
              for o in ("processed", "dead_lettered", "duplicate")}
    assert counts == {"processed": 3, "dead_lettered": 3, "duplicate": 1}
    assert sum(counts.values()) == len(records)
    # the closed session queued a prediction for the customer
    assert [s.customer_id for s in results[3].predict] == ["c1"]
    assert processor.metas[3].pending == {"c1"}


def test_sweep_closes_idle_baskets_only_once_the_watermark_passes(make_config, tables):
    processor = FunnelProcessor(make_config(quiet_after_s=10.0))
    feed(processor, tables, [(b"c1", line("T1", 1, "c1", "milk", 0))], now_us=NOW_US)
    assert processor.metas[3].open == {"c1"}
    # 5 s later: not quiet yet, watermark = the line's own time -> nothing closes
    early = processor.on_sweep(tables, partition=3, now_us=NOW_US + 5 * SECOND)
    assert sessions_of([early]) == []
    # quiet for 20 min of processing time: watermark = line time + 20 min < 30 min timeout
    later = processor.on_sweep(tables, partition=3, now_us=NOW_US + 1200 * SECOND)
    assert sessions_of([later]) == []
    # quiet for 31 min: the basket closes as INACTIVITY
    swept = processor.on_sweep(tables, partition=3, now_us=NOW_US + 1860 * SECOND)
    (session,) = sessions_of([swept])
    assert session.close_reason == v1.CloseReason.CLOSE_REASON_INACTIVITY
    assert processor.metas[3].open == set()
    # the partition record was saved and loads back
    saved = PartitionMeta.from_bytes(tables.metas[3], processor.config)
    assert saved.open == set() and saved.pending == {"c1"}


def test_sweep_follows_event_time_in_a_busy_stream(make_config, tables):
    processor = FunnelProcessor(make_config())
    feed(processor, tables, [
        (b"c1", line("T1", 1, "c1", "milk", 0)),
        (b"c2", line("U1", 1, "c2", "tea", 31 * 60)),  # another customer, 31 min later
    ])
    swept = processor.on_sweep(tables, partition=3, now_us=NOW_US)  # not quiet: event time
    assert [s.customer_id for s in sessions_of([swept])] == ["c1"]


def prediction(customer, index, products, days=1.0, store="S1", as_of_us=T0_US):
    return v1.Prediction(
        prediction_id=f"{customer}:{index}", customer_id=customer, store_id=store,
        as_of=to_timestamp(as_of_us), session_index=index, days_to_next=days,
        basket=[v1.PredictedItem(product_id=p, score=0.9, quantity=2) for p in products],
        model=v1.ModelRef(name="lens", version=3),
    )


def test_prediction_updates_state_clears_pending_and_routes_demand_by_store(make_config, tables):
    config = make_config()
    processor = FunnelProcessor(config)
    feed(processor, tables, [(b"c1", line("T1", 1, "c1", "milk", 0)), (b"c1", closed("T1", "c1", 1))])
    result = processor.on_prediction(
        tables, partition=3, offset=0, key=b"c1",
        value=prediction("c1", 1, ["milk", "eggs"]).SerializeToString(), now_us=NOW_US,
    )
    assert processor.metas[3].pending == set()
    assert tables.get_state("c1").last_prediction.products == ("milk", "eggs")
    (out,) = result.outputs
    assert out.topic == store_topic_name(config) and out.key == b"S1"
    (update,) = decode_store_events(out.value)
    assert update.contributor == "c1"
    # 2 units at score 0.9: 1.8 expected units each
    assert update.cells == {("milk", "2026-03-03"): 1_800_000, ("eggs", "2026-03-03"): 1_800_000}
    # the same prediction again changes nothing; a newer one for another store retracts S1
    again = processor.on_prediction(
        tables, partition=3, offset=1, key=b"c1",
        value=prediction("c1", 1, ["milk"]).SerializeToString(), now_us=NOW_US,
    )
    assert again.outputs == []
    moved = processor.on_prediction(
        tables, partition=3, offset=2, key=b"c1",
        value=prediction("c1", 2, ["milk"], store="S2").SerializeToString(), now_us=NOW_US,
    )
    assert [(o.key, decode_store_events(o.value)[0].cells == {}) for o in moved.outputs] == [
        (b"S1", True), (b"S2", False),
    ]


def test_the_same_prediction_again_clears_a_pending_mark_its_first_application_missed(
    make_config, tables
):
    processor = FunnelProcessor(make_config())
    feed(processor, tables, [(b"c1", line("T1", 1, "c1", "milk", 0)), (b"c1", closed("T1", "c1", 1))])
    value = prediction("c1", 1, ["milk"]).SerializeToString()
    processor.on_prediction(tables, partition=3, offset=0, key=b"c1", value=value, now_us=NOW_US)
    processor.metas[3].pending.add("c1")  # as if the mark outlived the first application
    again = processor.on_prediction(tables, partition=3, offset=1, key=b"c1", value=value,
                                    now_us=NOW_US)
    assert again.outputs == [] and processor.metas[3].pending == set()


def test_anomaly_alert_when_a_session_departs_from_its_prediction(make_config, tables, metrics):
    processor = FunnelProcessor(make_config(), metrics)
    # Three customers whose sessions match their predictions exactly (dA = 0), then one that
    # buys something else entirely (dA = 1): robust z = (1 - 0) / max(1.4826 * MAD=0, 0.05) = 20.
    alerts = []
    for i, customer in enumerate(["a", "b", "c", "d"]):
        key = customer.encode()
        feed(processor, tables, [(key, line("T1", 1, customer, "milk", i)),
                                 (key, closed("T1", customer, i + 1))])
        processor.on_prediction(tables, partition=3, offset=i, key=key, now_us=NOW_US,
                                value=prediction(customer, 1, ["milk"]).SerializeToString())
        bought = "caviar" if customer == "d" else "milk"
        results = feed(processor, tables, [(key, line("T2", 1, customer, bought, 100 + i)),
                                           (key, closed("T2", customer, 101 + i))])
        alerts += [v1.AnomalyAlert.FromString(o.value) for r in results for o in r.outputs
                   if o.topic == ANOMALY_ALERTS.name]
    (alert,) = alerts
    assert alert.customer_id == "d" and alert.alert_id == "d:2"
    assert alert.distance == 1.0 and alert.score == 20.0
    assert list(alert.predicted_items) == ["milk"] and list(alert.observed_items) == ["caviar"]
    assert alert.model.version == 3
    assert metrics.alerts.labels("anomaly")._value.get() == 1


def test_pending_customers_are_offered_again_by_the_sweep(make_config, tables):
    processor = FunnelProcessor(make_config())
    feed(processor, tables, [(b"c1", line("T1", 1, "c1", "milk", 0)), (b"c1", closed("T1", "c1", 1))])
    busy = processor.on_sweep(tables, partition=3, now_us=NOW_US, want_prediction=lambda c: False)
    assert busy.predict == []
    due = processor.on_sweep(tables, partition=3, now_us=NOW_US, want_prediction=lambda c: True)
    assert [s.customer_id for s in due.predict] == ["c1"]


def test_partition_record_survives_a_restart(make_config, tables):
    config = make_config()
    first = FunnelProcessor(config)
    feed(first, tables, [(b"c1", line("T1", 1, "c1", "milk", 0))])
    first.on_sweep(tables, partition=3, now_us=NOW_US)
    second = FunnelProcessor(config)  # a new worker took the partition over
    swept = second.on_sweep(tables, partition=3, now_us=NOW_US + int(dt.timedelta(hours=1).total_seconds()) * SECOND)
    assert [s.customer_id for s in sessions_of([swept])] == ["c1"]


def test_prediction_with_a_cluster_moves_the_customer_to_it(make_config, tables):
    processor = FunnelProcessor(make_config())
    feed(processor, tables, [(b"c1", line("T1", 1, "c1", "milk", 0)), (b"c1", closed("T1", "c1", 1))])
    processor.on_prediction(tables, partition=3, offset=0, key=b"c1", now_us=NOW_US, cluster=2,
                            value=prediction("c1", 1, ["milk"]).SerializeToString())
    assert tables.get_state("c1").cluster == 2


def test_without_a_model_nothing_waits_for_a_prediction(make_config, tables):
    processor = FunnelProcessor(make_config(), predicting=False)
    results = feed(processor, tables, [(b"c1", line("T1", 1, "c1", "milk", 0)),
                                       (b"c1", closed("T1", "c1", 1))])
    assert len(sessions_of(results)) == 1 and results[1].predict == []
    assert processor.metas[3].pending == set()


def test_lines_beyond_the_basket_cap_are_dead_lettered(make_config, tables, metrics):
    from lens.stream import ValidationConfig

    processor = FunnelProcessor(make_config(validation=ValidationConfig(max_basket_lines=2)),
                                metrics)
    records = [(b"c1", line("T1", n, "c1", f"p{n}", n)) for n in (1, 2, 3, 4)]
    records += [(b"c1", line("T1", 2, "c1", "p2", 2)), (b"c1", closed("T1", "c1", 9))]
    results = feed(processor, tables, records)
    assert [r.outcome for r in results] == [
        "processed", "processed", "dead_lettered", "dead_lettered", "duplicate", "processed"]
    letter = v1.DeadLetter.FromString(results[2].outputs[0].value)
    assert letter.reason == v1.DeadLetterReason.DEAD_LETTER_REASON_BASKET_TOO_LARGE
    (session,) = sessions_of(results)
    assert [i.product_id for i in session.items] == ["p1", "p2"]
    assert metrics.dead_letters.labels("pos.transactions", "basket_too_large")._value.get() == 2


def test_a_replayed_close_sends_its_session_again(make_config, tables, metrics):
    """After a kill -9 the table can be ahead of lens.sessions: the records since the last
    offset commit come again to a state that already closed their basket, while the session
    they closed may never have reached the broker. The replayed BasketClosed sends it again
    (identical bytes) and asks for its prediction again; the state counts it once."""
    processor = FunnelProcessor(make_config(), metrics)
    records = [(b"c1", line("T1", 1, "c1", "milk", 0)), (b"c1", line("T1", 2, "c1", "tea", 1)),
               (b"c1", closed("T1", "c1", 2, line_count=2))]
    first = feed(processor, tables, records)
    restarted = FunnelProcessor(make_config(), metrics)  # the crashed worker's successor
    again = feed(restarted, tables, records)
    assert [r.outcome for r in again] == ["duplicate", "duplicate", "processed"]
    assert [o.value for o in again[2].outputs] == [o.value for o in first[2].outputs]
    assert again[2].outputs[0].partition == 3
    assert [s.customer_id for s in again[2].predict] == ["c1"]
    assert restarted.metas[3].pending == {"c1"}
    state = tables.get_state("c1")
    assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)


def test_a_close_replayed_after_its_prediction_only_resends_the_session(make_config, tables):
    processor = FunnelProcessor(make_config())
    records = [(b"c1", line("T1", 1, "c1", "milk", 0)), (b"c1", closed("T1", "c1", 1))]
    feed(processor, tables, records)
    processor.on_prediction(tables, partition=3, offset=0, key=b"c1", now_us=NOW_US,
                            value=prediction("c1", 1, ["milk"]).SerializeToString())
    (again,) = feed(processor, tables, records[1:])
    assert len(sessions_of([again])) == 1 and again.predict == []
    assert processor.metas[3].pending == set()
