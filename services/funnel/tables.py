"""StateCache: the funnel agent's decoded customer states, written back to the table per batch.

Decoding a customer's JSON state on every record and encoding it again after (plus a RocksDB
write and a changelog record) was most of the worker's cost per record. The agent processes
records in micro-batches (``FunnelService``); within and across batches it keeps each decoded
``FunnelState`` here, and at the end of a batch writes every customer it changed once
(``flush``). The table stays the source of truth: it is written, and its changelog records are
on the broker, before the batch's records are acked (``SentTable``), so recovery (changelog,
kill -9 replay, a partition that moves) sees what it saw before, and the query views read it
directly (at most one batch behind). The agent never awaits between a batch's first record and
its ``flush``, so a rebalance (``forget``) never finds a changed state that is only here.

Entries are grouped by partition: the Faust table writes a key into the partition of the event
being processed, so ``flush`` goes partition by partition, and a revoked partition's entries are
dropped (``forget``): if it comes back its states are decoded from the table again. A batch that
fails drops everything (``clear``): its half-applied changes must not outlive it.
"""

from collections.abc import Iterable
from typing import Any

import faust
from faust.types import FutureMessage

from lens.stream import FunnelState
from services.funnel.processor import FunnelTables

__all__ = ["SentTable", "StateCache"]


class SentTable(faust.Table):
    """A Faust table that keeps the futures of the changelog records it sends until
    ``take_sent``: the funnel agent waits for them before Faust may ack the batch that wrote
    them (see ``FunnelService.process_customer_batch``). Only for tables whose writer takes
    them, or the list grows."""

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


class StateCache:
    """Decoded states over ``tables`` (a ``FunnelTables`` that encodes), at most ``capacity``
    clean ones kept; ``partition(p)`` is the ``FunnelTables`` the processor gets for a record of
    partition ``p``."""

    def __init__(self, tables: FunnelTables, capacity: int) -> None:
        self.tables = tables
        self.capacity = capacity
        self._states: dict[int, dict[str, FunnelState]] = {}
        self._dirty: dict[int, set[str]] = {}
        self._size = 0

    def partition(self, partition: int) -> "PartitionStates":
        return PartitionStates(self, partition)

    def __len__(self) -> int:
        return self._size

    def dirty_partitions(self) -> list[int]:
        return sorted(p for p, customers in self._dirty.items() if customers)

    def flush(self, partition: int) -> int:
        """Write the partition's changed states to the table (must run in an event of that
        partition); returns how many. Then evicts the partition's oldest clean states while the
        cache is over capacity."""
        dirty = self._dirty.pop(partition, set())
        states = self._states.get(partition, {})
        for customer in dirty:
            self.tables.put_state(states[customer])
        while self._size > self.capacity and states:
            del states[next(iter(states))]
            self._size -= 1
        return len(dirty)

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._size -= len(self._states.pop(partition, {}))
            self._dirty.pop(partition, None)

    def clear(self) -> None:
        self.forget(list(self._states))

    def _get(self, partition: int, customer_id: str) -> FunnelState | None:
        states = self._states.setdefault(partition, {})
        state = states.pop(customer_id, None)
        if state is None:
            state = self.tables.get_state(customer_id)
            if state is None:
                return None
            self._size += 1
        states[customer_id] = state  # (re)inserted last: eviction takes the least recent
        return state

    def _put(self, partition: int, state: FunnelState) -> None:
        states = self._states.setdefault(partition, {})
        if states.pop(state.customer_id, None) is None:
            self._size += 1
        states[state.customer_id] = state
        self._dirty.setdefault(partition, set()).add(state.customer_id)


class PartitionStates:
    """``FunnelTables`` for one partition: states through the cache, the partition record
    straight to the table (it is written once per sweep, not per record)."""

    def __init__(self, cache: StateCache, partition: int) -> None:
        self.cache = cache
        self.number = partition

    def get_state(self, customer_id: str) -> FunnelState | None:
        return self.cache._get(self.number, customer_id)

    def put_state(self, state: FunnelState) -> None:
        self.cache._put(self.number, state)

    def get_meta(self, partition: int) -> bytes | None:
        return self.cache.tables.get_meta(partition)

    def put_meta(self, partition: int, data: bytes) -> None:
        self.cache.tables.put_meta(partition, data)
