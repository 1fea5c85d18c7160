"""The position of the worker's batch agents (the funnel agent on its customer source topics, the
store agent on the store topic) in each partition they read, and the records they read
themselves (issue 8).

Faust 0.15.3 does not deliver every record of a partition to an agent around a rebalance.
``Recovery.on_recovery_completed`` resumes the partitions before ``Consumer.perform_seek``, and
``Consumer.seek`` sets the read offset back while records fetched before the seek are still on
their way. Such a record moves the read offset forward again (``Consumer._drain_messages``), so
the records that the seek fetches again are dropped as already read, and the offsets passed
over become an offset gap (``Consumer._add_gap``) that Faust counts as acked and commits once a
later record is acked. Reading the partition again through Faust's consumer races the same way
(the worker's first answer to this, which then took a hole still there after 3 reads as a gap in
the log: in a loaded run, records that were in the log). So an agent does not depend on
Faust's delivery for completeness:

- ``Sequence`` keeps, per (topic, partition), the next offset the agent expects: every record
  before it has been applied. After an assignment it starts at the group's committed offset
  (read from the broker when the partition's first record arrives), so a hole at the very start
  of a partition that moved is seen too. A record past the expected offset means records are
  missing: the agent reads them itself (``LogReader``) and applies them first, in order. A
  record before it is a replay (the state recognises those it has already seen, or applying
  it again changes nothing).
- ``LogReader`` reads a range of offsets of one partition straight from the broker (its own
  consumer: no group membership, no commits). An offset of the range that it does not find is
  not in the log (a transactional producer's control record, a compacted record): the read
  goes on to the record the agent holds, which is there, so "absent" is what the broker says.
- ``Sequence.committable`` bounds what Faust may commit to the durable position: the expected
  offset as of the last batch whose table writes and outputs are on the broker. Faust's gap
  bookkeeping can otherwise commit past a record it delivered but the agent has not applied
  (the gap it adds includes the record that arrived past it).
"""

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LogReader", "LogRecord", "Sequence"]

log = logging.getLogger(__name__)

Key = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class LogRecord:
    """A record read from the broker by ``LogReader``: what the agent reads of a Faust message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = None


class Sequence:
    """Per (topic, partition): the next offset the agent reading it expects, and the next offset
    whose effects are durable (see the module docstring)."""

    def __init__(self) -> None:
        self._next: dict[Key, int] = {}
        self._durable: dict[Key, int] = {}

    def unknown(self, keys: Iterable[Key]) -> set[Key]:
        """The partitions without an expected offset (none applied since the assignment)."""
        return {key for key in keys if key not in self._next}

    def start(self, key: Key, offset: int | None) -> None:
        """The partition's committed offset (None: the group has none; the first record the
        agent gets then sets the expected offset)."""
        if offset is not None and key not in self._next:
            self._next[key] = self._durable[key] = offset

    def expected(self, key: Key) -> int | None:
        return self._next.get(key)

    def missing(self, offsets: Iterable[tuple[Key, int]]) -> dict[Key, list[tuple[int, int]]]:
        """The ranges [start, end) that records at ``offsets`` (in the order the agent applies
        them) would pass over, as ``advance`` would see them: what to read before applying."""
        position = dict(self._next)
        holes: dict[Key, list[tuple[int, int]]] = {}
        for key, offset in offsets:
            expected = position.get(key)
            if expected is not None and offset > expected:
                holes.setdefault(key, []).append((expected, offset))
            if expected is None or offset >= expected:
                position[key] = offset + 1
        return holes

    def advance(self, key: Key, offset: int) -> None:
        """The agent applies the record at ``offset`` (after any it read for the hole before
        it); a replay (before the expected offset) leaves the expected offset where it is."""
        expected = self._next.get(key)
        if expected is None or offset >= expected:
            self._next[key] = offset + 1

    def positions(self, keys: Iterable[Key]) -> dict[Key, int]:
        return {key: self._next[key] for key in keys if key in self._next}

    def durable(self, positions: Mapping[Key, int]) -> None:
        """The records before ``positions`` (taken before the batch's wait) are on the broker,
        with their effects."""
        for key, offset in positions.items():
            if key in self._next and offset > self._durable.get(key, -1):
                self._durable[key] = offset

    def committable(self, key: Key, offset: int) -> int | None:
        """What of ``offset`` may be committed: at most the durable position; None (nothing)
        when the partition has none, e.g. no record applied since it was assigned."""
        durable = self._durable.get(key)
        return None if durable is None else min(offset, durable)

    def forget(self, topics: Iterable[str], partitions: Iterable[int]) -> None:
        """The ``partitions`` of ``topics`` are no longer assigned. Topics are named because the
        customer and store topics are assigned independently: a partition number of one says
        nothing of the other."""
        partitions = set(partitions)
        gone = {(topic, partition) for topic in topics for partition in partitions}
        for table in (self._next, self._durable):
            for key in gone & table.keys():
                del table[key]


class LogReader:
    """Reads offsets of partitions straight from the broker, and the group's committed offsets:
    a confluent-kafka consumer of its own (created on first use, used from a worker thread so
    the event loop keeps running, one call at a time). It never joins the group or commits.

    Args:
      client_config: librdkafka properties (address and security, ``KafkaConnection``).
      group_id: the worker's consumer group (the Faust app id), whose committed offsets it reads.
      timeout_s: how long a read may take before it fails (the broker must answer).
    """

    def __init__(self, client_config: dict[str, Any], group_id: str,
                 timeout_s: float = 60.0) -> None:
        self._config = {
            **client_config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.partition.eof": True,  # the end of the log ends a read too
            "isolation.level": "read_uncommitted",  # what Faust's consumer reads
            "auto.offset.reset": "earliest",  # a range that retention cut: read what is left
            "log_level": 3,
        }
        self.timeout_s = timeout_s
        self._consumer: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(self._config)
        return self._consumer

    async def starts(self, keys: Iterable[Key], earliest: bool) -> dict[Key, int | None]:
        """Where the group's consumer starts each partition: its committed offset; with none
        committed, the partition's first offset if ``earliest`` (Faust's
        ``consumer_auto_offset_reset``), else None (unknown)."""
        keys = sorted(keys)
        return await asyncio.get_running_loop().run_in_executor(None, self._starts, keys, earliest)

    async def read(
        self, holes: Mapping[Key, list[tuple[int, int]]]
    ) -> dict[Key, dict[int, LogRecord]]:
        """The records in each range [start, end) of ``holes``, by offset (an offset absent
        is not in the log). The record at each range's end must be in the log."""
        holes = {key: list(ranges) for key, ranges in holes.items()}
        return await asyncio.get_running_loop().run_in_executor(None, self._read, holes)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

    # -- in a worker thread -----------------------------------------------------------------------

    def _starts(self, keys: list[Key], earliest: bool) -> dict[Key, int | None]:
        from confluent_kafka import KafkaException, TopicPartition

        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            while True:
                try:
                    consumer = self._client()
                    found = consumer.committed(
                        [TopicPartition(topic, partition) for topic, partition in keys],
                        timeout=min(10.0, self.timeout_s))
                    starts: dict[Key, int | None] = {}
                    for tp in found:
                        offset = tp.offset if tp.offset >= 0 else None
                        if offset is None and earliest:
                            offset = consumer.get_watermark_offsets(
                                TopicPartition(tp.topic, tp.partition),
                                timeout=min(10.0, self.timeout_s))[0]
                        starts[tp.topic, tp.partition] = offset
                    return starts
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

    def _read(self, holes: dict[Key, list[tuple[int, int]]]) -> dict[Key, dict[int, LogRecord]]:
        """All partitions at once, each from its first hole to the end of its last (the record
        there is in the log: the agent holds it) or the end of the log, keeping the offsets
        inside the holes."""
        from confluent_kafka import KafkaError, TopicPartition

        found: dict[Key, dict[int, LogRecord]] = {key: {} for key in holes}
        ends = {key: max(end for _, end in ranges) for key, ranges in holes.items()}
        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            consumer = self._client()
            consumer.assign([TopicPartition(topic, partition, min(start for start, _ in ranges))
                             for (topic, partition), ranges in sorted(holes.items())])
            try:
                while ends:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"offsets of {sorted(ends)} not read within "
                                           f"{self.timeout_s:.0f}s")
                    for message in consumer.consume(num_messages=500, timeout=0.2):
                        key, offset = (message.topic(), message.partition()), message.offset()
                        error = message.error()
                        if error is not None:
                            if error.code() == KafkaError._PARTITION_EOF:
                                ends.pop(key, None)  # nothing after: the rest is not in the log
                            else:
                                log.warning("reading %s[%d]: %s", key[0], key[1], error)
                            continue
                        if key not in ends:
                            continue
                        if offset >= ends[key]:
                            del ends[key]  # (no pause: librdkafka keeps it past unassign)
                        elif any(start <= offset < end for start, end in holes[key]):
                            found[key][offset] = LogRecord(
                                key[0], key[1], offset, message.key(), message.value(),
                                message.headers())
            finally:
                consumer.unassign()
        return found
