"""KafkaConnection: which cluster to talk to and how to authenticate, for every Kafka client.

``KafkaConnection.from_settings(settings)`` is the one place the ``LENS_KAFKA_*`` security
settings become client configuration: ``client_config()`` for confluent-kafka (librdkafka
property names) and ``faust_credentials()`` for the Faust app (aiokafka underneath). The
functions of ``services.kafka`` and the services' clients take a ``Kafka``: a KafkaConnection,
or a bare ``host:port[,host:port]`` string, which means a PLAINTEXT cluster.
"""

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import SecretStr

from lens.errors import ConfigError
from lens.settings import LensSettings

if TYPE_CHECKING:
    from faust.auth import Credentials

__all__ = ["Kafka", "KafkaConnection", "as_connection"]


@dataclass(frozen=True)
class KafkaConnection:
    """Attributes (``LensSettings`` field in brackets, validated there):
    bootstrap: ``host:port[,host:port]`` [``bootstrap_servers``].
    security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL [``kafka_security_protocol``].
    sasl_mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 [``kafka_sasl_mechanism``].
    sasl_username, sasl_password: the SASL user [``kafka_sasl_username``, ``kafka_sasl_password``].
    ssl_cafile: CA bundle that verifies the brokers; None = the system's CAs [``kafka_ssl_cafile``].

    ``str()`` is the bootstrap address, so error messages can name the cluster; the password
    stays a SecretStr until a client config is built, so neither repr nor str shows it.
    """

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None

    def __post_init__(self) -> None:
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ConfigError(
                f"{self.security_protocol} needs a SASL username and password "
                "(LENS_KAFKA_SASL_USERNAME, LENS_KAFKA_SASL_PASSWORD)"
            )

    @classmethod
    def from_settings(cls, settings: LensSettings) -> "KafkaConnection":
        return cls(
            bootstrap=settings.bootstrap_servers,
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            ssl_cafile=settings.kafka_ssl_cafile,
        )

    def __str__(self) -> str:
        return self.bootstrap

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_config(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """librdkafka properties for a confluent-kafka Producer, Consumer or AdminClient:
        address and security, then ``extra`` (the client's own properties)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.uses_sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.uses_ssl and self.ssl_cafile is not None:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        return {**config, **(extra or {})}

    def faust_credentials(self) -> "Credentials | None":
        """``faust.App(broker_credentials=...)``; None = PLAINTEXT."""
        # Imported here: the confluent-kafka clients (POS, alerts) need no Faust.
        from faust.auth import SASLCredentials, SSLCredentials

        if self.security_protocol == "PLAINTEXT":
            return None
        context = None
        if self.uses_ssl:
            cafile = str(self.ssl_cafile) if self.ssl_cafile is not None else None
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        if not self.uses_sasl:
            return SSLCredentials(context)
        return SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password.get_secret_value(),
            mechanism=self.sasl_mechanism,
            ssl_context=context,
        )


Kafka: TypeAlias = KafkaConnection | str


def as_connection(kafka: Kafka) -> KafkaConnection:
    """``kafka`` itself, or a PLAINTEXT connection to the bare address it is."""
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)
