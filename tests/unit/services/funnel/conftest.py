"""Factories for the funnel service's unit tests: dict-backed tables and tiny events."""

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry

from lens import v1
from lens.anomaly import AnomalyConfig
from lens.settings import LensSettings
from lens.stream import FunnelState, SessionizerConfig
from services.funnel import FunnelMetrics, FunnelServiceConfig

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)  # a Monday
T0_US = int(T0.timestamp()) * 1_000_000
NOW_US = T0_US + 3_600 * 1_000_000  # processing time: one hour after T0


class DictTables:
    """FunnelTables and StoreTables over dicts of bytes, like the Faust tables."""

    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}
        self.metas: dict[int, bytes] = {}
        self.stores: dict[str, bytes] = {}

    def get_state(self, customer_id):
        data = self.states.get(customer_id)
        return FunnelState.from_bytes(data) if data else None

    def put_state(self, state):
        self.states[state.customer_id] = state.to_bytes()

    def get_meta(self, partition):
        return self.metas.get(partition)

    def put_meta(self, partition, data):
        self.metas[partition] = data

    def get_store(self, store_id):
        return self.stores.get(store_id)

    def put_store(self, store_id, data):
        self.stores[store_id] = data

    def delete_store(self, store_id):
        self.stores.pop(store_id, None)


def stamp(seconds: float) -> Timestamp:
    micros = T0_US + int(seconds * 1_000_000)
    return Timestamp(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)


def line(tx, line_no, customer, product, at_s, quantity=1.0, store="S1") -> bytes:
    return v1.PosEvent(line=v1.TransactionLine(
        transaction_id=tx, line_no=line_no, customer_id=customer, store_id=store,
        product_id=product, timestamp=stamp(at_s), quantity=quantity, amount=quantity,
    )).SerializeToString()


def closed(tx, customer, at_s, line_count=0, store="S1") -> bytes:
    return v1.PosEvent(basket_closed=v1.BasketClosed(
        transaction_id=tx, customer_id=customer, store_id=store, timestamp=stamp(at_s),
        line_count=line_count,
    )).SerializeToString()


def store_event(processor, tables, value, partition=0):
    """``processor.on_store_event`` on one store event, written to ``tables`` right away (a
    store cache of capacity 0, flushed): the store agent one event at a time."""
    from services.funnel.stockout import StoreCache

    cache = StoreCache(tables, processor.config, 0)
    result = processor.on_store_event(cache.partition(partition), value)
    cache.flush(partition)
    return result


@pytest.fixture
def tables() -> DictTables:
    return DictTables()


@pytest.fixture
def metrics() -> FunnelMetrics:
    return FunnelMetrics(CollectorRegistry())


@pytest.fixture
def make_config(tmp_path: Path, clean_lens_env):
    """The worker's config as the entry point builds it (``from_settings``), with test-sized
    sessionizer and anomaly configs; keyword overrides replace config fields."""

    def make(**overrides) -> FunnelServiceConfig:
        settings = LensSettings(
            run_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", funnel_quiet_after_s=10.0
        )
        given = dict(
            sessionizer=SessionizerConfig(inactivity_timeout=dt.timedelta(minutes=30)),
            # a customer's level from their 2nd session on (novelty of 1 session after 1)
            anomaly=AnomalyConfig(min_history=2, window=10, threshold=3.5, min_sessions=1,
                                  novelty_window=1, established=1),
        )
        given.update(overrides)
        return dataclasses.replace(FunnelServiceConfig.from_settings(settings), **given)

    return make
