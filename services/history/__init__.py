"""The history sink: ``lens.sessions`` -> ``lens.history.SessionStore`` (``lens history sink``)."""

from services.history.sink import HistorySink, SinkConfig, SinkTotals

__all__ = ["HistorySink", "SinkConfig", "SinkTotals"]
