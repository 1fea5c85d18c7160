"""Where alerts go: the terminal, a JSONL file, or a signed HTTP webhook.

A sink's ``deliver(alert)`` returns when the alert is delivered and raises ``DeliveryError``
when it is not; ``retryable`` on the error says whether trying again may help. Retries and the
dead-letter fallback belong to the subscriber, not to the sinks.

Webhook signing (receivers verify with ``verify_signature``)::

    X-Lens-Timestamp: <unix seconds>
    X-Lens-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The timestamp is inside the signed bytes so a captured request cannot be replayed later with a
fresh timestamp; receivers should also reject timestamps older than a few minutes.
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Protocol

from lens.errors import ConfigError, LensError
from services.alerts.alert import Alert

__all__ = [
    "ConsoleSink",
    "DeliveryError",
    "JsonlSink",
    "Sink",
    "WebhookSink",
    "parse_sink",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Lens-Signature"
TIMESTAMP_HEADER = "X-Lens-Timestamp"


class DeliveryError(LensError):
    """A sink did not take an alert. ``retryable``: a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sink(Protocol):
    name: str  # label in metrics and dead letters: "console", "jsonl", "webhook"

    def deliver(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class ConsoleSink:
    """One readable line per alert on ``stream`` (stdout)."""

    name = "console"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def deliver(self, alert: Alert) -> None:
        print(alert.line(), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class JsonlSink:
    """One JSON object per line, appended to ``path`` and fsynced before ``deliver`` returns."""

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open the JSONL sink {self.path}: {exc}") from exc

    def deliver(self, alert: Alert) -> None:
        try:
            self._file.write(json.dumps(alert.to_dict(), sort_keys=True) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc}") from exc

    def close(self) -> None:
        self._file.close()


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Lens-Signature value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver checks (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSink:
    """POSTs each alert as a JSON body to ``url``, signed with ``secret`` (HMAC-SHA256).

    2xx = delivered. Connection errors, timeouts, 408, 429 and 5xx are retryable; any other
    status is a refusal that retrying will not change.
    """

    name = "webhook"

    def __init__(self, url: str, secret: bytes | None, *, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook URL {url!r} must start with http:// or https://")
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s

    def request(self, alert: Alert, now: float | None = None) -> urllib.request.Request:
        body = json.dumps(alert.to_dict(), sort_keys=True).encode("utf-8")
        timestamp = str(int(now if now is not None else time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "lens-alerts/1",
            "X-Lens-Alert-Id": alert.alert_id,
            "X-Lens-Alert-Type": alert.kind,
            TIMESTAMP_HEADER: timestamp,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def deliver(self, alert: Alert) -> None:
        try:
            with urllib.request.urlopen(self.request(alert), timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            retryable = exc.code in (408, 429) or exc.code >= 500
            raise DeliveryError(f"{self.url} answered HTTP {exc.code}", retryable=retryable) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{self.url} unreachable: {reason}") from exc

    def close(self) -> None:
        pass


def parse_sink(spec: str, *, webhook_secret: bytes | None = None, webhook_timeout_s: float = 10.0) -> Sink:
    """``console`` | ``jsonl:PATH`` | ``webhook:URL`` -> a sink."""
    kind, _, target = spec.partition(":")
    if kind == "console" and not target:
        return ConsoleSink()
    if kind == "jsonl" and target:
        return JsonlSink(target)
    if kind == "webhook" and target:
        if not webhook_secret:
            raise ConfigError(
                "a webhook sink needs a signing secret: set LENS_ALERTS_WEBHOOK_SECRET"
            )
        return WebhookSink(target, webhook_secret, timeout_s=webhook_timeout_s)
    raise ConfigError(
        f"--sink {spec!r} is not a sink; use console, jsonl:PATH or webhook:URL (repeatable)"
    )
