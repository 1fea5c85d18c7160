"""Integration fixtures: one real Kafka broker for the whole session.

Setting LENS_KAFKA_BOOTSTRAP makes the tests use that cluster instead of starting a broker.
"""

import os

import pytest

from lens.settings import LensSettings, load_settings
from tests.conftest import free_port


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory) -> LensSettings:
    """Settings whose bootstrap_servers is a running, real Kafka cluster."""
    if os.environ.get("LENS_KAFKA_BOOTSTRAP"):
        yield load_settings()
        return
    from services.stack import LocalKafka

    settings = load_settings(
        run_dir=tmp_path_factory.mktemp("kafka-run"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    broker = LocalKafka(settings)
    broker.start()
    yield settings
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_settings) -> str:
    return kafka_settings.bootstrap_servers
