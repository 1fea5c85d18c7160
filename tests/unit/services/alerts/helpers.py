"""Tiny alerts and in-process fakes of the Kafka clients the subscriber uses."""

import datetime as dt

from lens import v1


def anomaly(alert_id="01104905:7", customer="01104905"):
    alert = v1.AnomalyAlert(alert_id=alert_id, customer_id=customer, cluster=3, score=4.25,
                            threshold=3.0, distance=0.8, predicted_items=["P1", "P2"],
                            observed_items=["P9"], model=v1.ModelRef(name="lens", version=2))
    alert.event_time.FromDatetime(dt.datetime(2026, 1, 5, 10, 31, tzinfo=dt.timezone.utc))
    return alert


def stockout(alert_id="S1:P0042:2026-02-20:1"):
    alert = v1.StockoutAlert(alert_id=alert_id, store_id="S1", product_id="P0042", day="2026-02-20",
                             predicted_demand=12.0, resupply_quantity=5.0, shortfall=7.0,
                             model=v1.ModelRef(name="lens", version=2))
    alert.as_of.FromDatetime(dt.datetime(2026, 2, 19, tzinfo=dt.timezone.utc))
    return alert


class Record:
    def __init__(self, topic, value, offset=0, key=b"k", partition=0):
        self._topic, self._value, self._offset, self._key, self._partition = topic, value, offset, key, partition

    def topic(self):
        return self._topic

    def value(self):
        return self._value

    def key(self):
        return self._key

    def offset(self):
        return self._offset

    def partition(self):
        return self._partition

    def timestamp(self):
        return (1, 0)

    def error(self):
        return None


class FakeConsumer:
    def __init__(self, records=()):
        self.records = list(records)
        self.committed = []
        self.closed = False

    def subscribe(self, topics):
        self.topics = topics

    def poll(self, timeout):
        return self.records.pop(0) if self.records else None

    def commit(self, message, asynchronous):
        assert asynchronous is False
        self.committed.append(message.offset())

    def close(self):
        self.closed = True


class FakeProducer:
    def __init__(self, error=None):
        self.records = []
        self.error = error
        self._pending = []

    def produce(self, topic, key, value, on_delivery):
        self.records.append((topic, key, value))
        self._pending.append(on_delivery)

    def flush(self, timeout):
        for callback in self._pending:
            callback(self.error, None)
        self._pending = []
        return 0


class FlakySink:
    """Fails the first ``failures`` attempts (DeliveryError), then takes alerts."""

    name = "flaky"

    def __init__(self, failures=0, retryable=True, crash=False):
        self.failures, self.retryable, self.crash = failures, retryable, crash
        self.attempts = 0
        self.delivered = []

    def deliver(self, alert):
        from services.alerts import DeliveryError

        self.attempts += 1
        if self.crash:
            raise RuntimeError("sink process died")
        if self.failures:
            self.failures -= 1
            raise DeliveryError("receiver said 503", retryable=self.retryable)
        self.delivered.append(alert.alert_id)

    def close(self):
        pass
