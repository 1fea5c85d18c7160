"""SessionStore: the durable history of closed sessions, grown from ``lens.sessions``.

One SQLite file, one table of session lines (a session's products, one row each) keyed by
``(customer_id, session_index, line)``. Why SQLite: it needs no extra service next to Kafka, a
primary key plus ``INSERT OR IGNORE`` makes every write idempotent (a redelivered session, after
a crash between the write and the offset commit, changes nothing), and the schema is one plain
table a retailer can recreate in the database they already run.

The store is read back as the paper's minimal CSV (``export_csv``), the one format every ``lens``
command reads, so retraining and batch scoring see exactly what ``lens train`` would.
"""

import csv
import datetime as dt
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lens import v1
from lens.data.minimal_csv import DEFAULT_STORE_ID, MINIMAL_COLUMNS, STORE_COLUMN
from lens.errors import DataError

__all__ = ["AppendResult", "SessionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_lines (
    customer_id    TEXT    NOT NULL,
    session_index  INTEGER NOT NULL,  -- 1-based ordinal in the customer's funnel (v1.Session)
    line           INTEGER NOT NULL,  -- position of the product in the basket, 0-based
    transaction_id TEXT    NOT NULL,
    store_id       TEXT    NOT NULL,
    timestamp      TEXT    NOT NULL,  -- ISO-8601, UTC, no offset (sorts as text)
    product_id     TEXT    NOT NULL,
    quantity       REAL    NOT NULL,
    amount         REAL    NOT NULL,
    backfilled     INTEGER NOT NULL,
    PRIMARY KEY (customer_id, session_index, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_lines_by_time ON session_lines (timestamp);
"""


@dataclass(frozen=True)
class AppendResult:
    """What one ``append`` did: sessions newly stored, sessions already there (redeliveries),
    sessions refused (no customer, no index or no items: they cannot be keyed or replayed)."""

    stored: int = 0
    duplicates: int = 0
    refused: int = 0


class SessionStore:
    """Closed sessions in a SQLite file at ``path`` (created with its table on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            # WAL: an export or `lens retrain` can read while the sink writes.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: cannot open the history store ({exc}).") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def append(self, sessions: Iterable[v1.Session]) -> AppendResult:
        """Store ``sessions`` in one transaction (all or none); a session whose key is already
        stored is left as it is."""
        stored = duplicates = refused = 0
        with self._db:  # one transaction: commits on success, rolls back on error
            for session in sessions:
                if not (session.customer_id and session.session_index and session.items):
                    refused += 1
                    continue
                cursor = self._db.executemany(
                    "INSERT OR IGNORE INTO session_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _lines(session),
                )
                if cursor.rowcount > 0:
                    stored += 1
                else:
                    duplicates += 1
        return AppendResult(stored, duplicates, refused)

    def counts(self) -> dict[str, int]:
        """Sessions, lines and customers stored."""
        sessions, lines, customers = self._db.execute(
            "SELECT COUNT(DISTINCT customer_id || '/' || session_index), COUNT(*), "
            "COUNT(DISTINCT customer_id) FROM session_lines"
        ).fetchone()
        return {"sessions": sessions, "lines": lines, "customers": customers}

    def newest(self) -> dt.datetime | None:
        """Event time of the newest stored session (None when the store is empty)."""
        (newest,) = self._db.execute("SELECT MAX(timestamp) FROM session_lines").fetchone()
        return dt.datetime.fromisoformat(newest) if newest else None

    def start_of_window(self, days: float | None) -> dt.datetime | None:
        """The start of the last ``days`` days before the newest session (None: everything).
        Windows count back from the data, not the wall clock, so a replayed or late history
        gives the same window."""
        newest = self.newest()
        if days is None or newest is None:
            return None
        return newest - dt.timedelta(days=days)

    def active_customers(self, days: float) -> list[str]:
        """Customers with a session in the last ``days`` days before the newest one, in id order."""
        since = self.start_of_window(days)
        if since is None:
            return []
        rows = self._db.execute(
            "SELECT DISTINCT customer_id FROM session_lines WHERE timestamp >= ? "
            "ORDER BY customer_id",
            (since.isoformat(),),
        )
        return [customer for (customer,) in rows]

    def export_csv(self, path: str | Path, *, since_days: float | None = None) -> int:
        """Write the store (sessions of the last ``since_days`` days, or all) as a minimal-schema
        CSV with STORE_ID, oldest first; returns the number of lines written."""
        since = self.start_of_window(since_days)
        rows = self._db.execute(
            "SELECT transaction_id, customer_id, product_id, timestamp, amount, quantity, store_id "
            "FROM session_lines WHERE timestamp >= ? "
            "ORDER BY timestamp, customer_id, session_index, line",
            (since.isoformat() if since else "",),
        )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow((*MINIMAL_COLUMNS, STORE_COLUMN))
            for row in rows:
                writer.writerow(row)
                written += 1
        return written


def _lines(session: v1.Session) -> list[tuple]:
    """The rows of one session, in basket order."""
    timestamp = session.timestamp.ToDatetime().isoformat()  # naive UTC
    store = session.store_id or DEFAULT_STORE_ID
    return [
        (
            session.customer_id,
            session.session_index,
            line,
            session.transaction_id or f"{session.customer_id}:{session.session_index}",
            store,
            timestamp,
            item.product_id,
            item.quantity,
            item.amount,
            int(session.backfilled),
        )
        for line, item in enumerate(session.items)
    ]
