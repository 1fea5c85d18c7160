"""Decoded table values kept between records and written back once per batch.

Decoding a value's JSON on every record and encoding it again after (plus a RocksDB write and a
changelog record) was most of an agent's cost per record: a customer's ``FunnelState`` in the
funnel agent, a store's whole Algorithm 2 record in the store agent. Both agents process records
in micro-batches (``FunnelService``); within and across batches they keep each decoded value in a
``DecodedCache`` (``StateCache`` for customers, ``services.funnel.stockout.StoreCache`` for
stores), and once the batch's outputs are on the broker write every value they changed once
(``flush``; ``FunnelService`` says why in that order). The table stays the source of truth: it
is written, and its changelog records are on the broker, before the batch's records are acked
(``SentTable``), so recovery (changelog, kill -9 replay, a partition that moves) sees what it saw
before, and the query views read it directly (at most one batch behind). A rebalance
(``forget``) while a batch waits for its outputs drops the changes of the partitions revoked:
their records are not committed, so whoever owns them next reads them again.

Entries are grouped by partition: the Faust table writes a key into the partition of the event
being processed, so ``flush`` goes partition by partition, and a revoked partition's entries are
dropped (``forget``): if it comes back its values are decoded from the table again. A batch that
fails drops everything (``clear``): its half-applied changes must not outlive it.
"""

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import faust
from faust.types import FutureMessage

from lens.stream import FunnelState
from services.funnel.processor import FunnelTables

__all__ = ["DecodedCache", "PartitionStates", "SentTable", "StateCache"]

V = TypeVar("V")


class SentTable(faust.Table):
    """A Faust table that keeps the futures of the changelog records it sends until
    ``take_sent``: an agent waits for them before Faust may ack the batch that wrote them (see
    ``FunnelService.process_customer_batch``). Only for tables whose writer takes them, or the
    list grows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent: list[FutureMessage] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        fut = super().send_changelog(*args, **kwargs)
        self._sent.append(fut)
        return fut

    def take_sent(self) -> list[FutureMessage]:
        """The changelog records sent since the last call (each resolves once on the broker)."""
        sent, self._sent = self._sent, []
        return sent


class DecodedCache(Generic[V]):
    """Decoded values by partition and key over a table: ``load(key)`` decodes one from the
    table (None: none there), ``save(key, value)`` encodes and writes it. At most ``capacity``
    clean values are kept (dirty ones stay until ``flush``), least recently used dropped
    first."""

    def __init__(
        self, load: Callable[[str], V | None], save: Callable[[str, V], None], capacity: int
    ) -> None:
        self._load = load
        self._save = save
        self.capacity = capacity
        self._values: dict[int, dict[str, V]] = {}
        self._dirty: dict[int, set[str]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def get(self, partition: int, key: str) -> V | None:
        """The value of ``key`` (decoded from the table on first use)."""
        values = self._values.setdefault(partition, {})
        value = values.pop(key, None)
        if value is None:
            value = self._load(key)
            if value is None:
                return None
            self._size += 1
        values[key] = value  # (re)inserted last: eviction takes the least recent
        return value

    def put(self, partition: int, key: str, value: V) -> None:
        """``key`` now has ``value``: written to the table by the partition's next ``flush``."""
        values = self._values.setdefault(partition, {})
        if values.pop(key, None) is None:
            self._size += 1
        values[key] = value
        self._dirty.setdefault(partition, set()).add(key)

    def dirty_partitions(self) -> list[int]:
        return sorted(p for p, keys in self._dirty.items() if keys)

    def flush(self, partition: int) -> int:
        """Write the partition's changed values to the table (must run in an event of that
        partition); returns how many. Then evicts the partition's oldest clean values while the
        cache is over capacity."""
        dirty = self._dirty.pop(partition, set())
        values = self._values.get(partition, {})
        for key in sorted(dirty):
            self._save(key, values[key])
        while self._size > self.capacity and values:
            del values[next(iter(values))]
            self._size -= 1
        return len(dirty)

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._size -= len(self._values.pop(partition, {}))
            self._dirty.pop(partition, None)

    def clear(self) -> None:
        self.forget(list(self._values))


class StateCache(DecodedCache[FunnelState]):
    """Decoded customer states over ``tables`` (a ``FunnelTables`` that encodes), and each
    partition's record (``put_meta``), written with the partition's states by ``flush``;
    ``partition(p)`` is the ``FunnelTables`` the processor gets for a record of partition
    ``p``."""

    def __init__(self, tables: FunnelTables, capacity: int) -> None:
        super().__init__(tables.get_state, lambda _, state: tables.put_state(state), capacity)
        self.tables = tables
        self._metas: dict[int, bytes] = {}  # partition records not written yet

    def get_meta(self, partition: int) -> bytes | None:
        if partition in self._metas:
            return self._metas[partition]
        return self.tables.get_meta(partition)

    def put_meta(self, partition: int, data: bytes) -> None:
        self._metas[partition] = data

    def dirty_partitions(self) -> list[int]:
        return sorted({*super().dirty_partitions(), *self._metas})

    def flush(self, partition: int) -> int:
        written = super().flush(partition)
        if partition in self._metas:
            self.tables.put_meta(partition, self._metas.pop(partition))
            written += 1
        return written

    def forget(self, partitions: Iterable[int]) -> None:
        partitions = list(partitions)
        super().forget(partitions)
        for partition in partitions:
            self._metas.pop(partition, None)

    def clear(self) -> None:
        super().clear()
        self._metas.clear()

    def partition(self, partition: int) -> "PartitionStates":
        return PartitionStates(self, partition)


class PartitionStates:
    """``FunnelTables`` for one partition, through the cache."""

    def __init__(self, cache: StateCache, partition: int) -> None:
        self.cache = cache
        self.number = partition

    def get_state(self, customer_id: str) -> FunnelState | None:
        return self.cache.get(self.number, customer_id)

    def put_state(self, state: FunnelState) -> None:
        self.cache.put(self.number, state.customer_id, state)

    def get_meta(self, partition: int) -> bytes | None:
        return self.cache.get_meta(partition)

    def put_meta(self, partition: int, data: bytes) -> None:
        self.cache.put_meta(partition, data)
