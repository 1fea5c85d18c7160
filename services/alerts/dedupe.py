"""Alert ids already handled, bounded and persisted, so a redelivered alert is not sent twice.

Kafka redelivers records after a crash between delivery and offset commit (at-least-once); the
alert topics may also carry the same alert twice (a worker that re-emits after a rebalance). The
subscriber records an id here *after* its sinks took the alert and *before* it commits the
offset, so across restarts a redelivered alert is recognised and skipped.

Storage: an append-only text file, one id per line, under the run dir
(``<run_dir>/alerts/<group>/delivered-ids.txt``). On open the last ``capacity`` ids are loaded;
the file is rewritten with only those when it grows past twice the capacity. Losing the file
costs duplicates, never lost alerts.
"""

from collections import OrderedDict
from pathlib import Path

__all__ = ["DeliveredIds"]


class DeliveredIds:
    """The ``capacity`` most recently delivered alert ids (oldest forgotten first)."""

    def __init__(self, path: Path | None, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.path = path
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lines_on_disk = 0
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line:
                        self._remember(line)
                        self._lines_on_disk += 1
            self._file = path.open("a", encoding="utf-8")
            if self._lines_on_disk > 2 * capacity:
                self._compact()

    def __contains__(self, alert_id: str) -> bool:
        return alert_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, alert_id: str) -> None:
        """Remember ``alert_id`` (durably, when persisted) before the offset is committed."""
        if "\n" in alert_id:
            alert_id = alert_id.replace("\n", " ")
        self._remember(alert_id)
        if self._file is not None:
            self._file.write(alert_id + "\n")
            self._file.flush()
            self._lines_on_disk += 1
            if self._lines_on_disk > 2 * self.capacity:
                self._compact()

    def _remember(self, alert_id: str) -> None:
        self._ids[alert_id] = None
        self._ids.move_to_end(alert_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def _compact(self) -> None:
        assert self.path is not None and self._file is not None
        self._file.close()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{i}\n" for i in self._ids), encoding="utf-8")
        tmp.replace(self.path)
        self._lines_on_disk = len(self._ids)
        self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
