"""The history that grows from the stream: closed sessions kept in a durable, idempotent store
(``SessionStore``), read back as the minimal CSV every ``lens`` command takes.

    with SessionStore(".run/history/sessions.sqlite") as store:
        store.append(sessions)                 # redelivered sessions change nothing
        store.export_csv("history.csv", since_days=90)

The Kafka consumer that feeds it lives in ``services.history`` (no Kafka below ``lens/``).
"""

from lens.history.session_store import AppendResult, SessionStore

__all__ = ["AppendResult", "SessionStore"]
