"""FunnelService wiring without a broker: topics, tables, and an agent through test_context()."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from lens import v1
from lens.errors import ConfigError
from lens.topics import DEAD_LETTERS, POS_TRANSACTIONS
from services.funnel.app import FunnelService, internal_topics


def test_app_is_built_from_the_config(make_config):
    config = make_config(model_server=None, web_port=7777, producer_linger_s=0.02)
    service = FunnelService(config, registry=CollectorRegistry())
    conf = service.app.conf
    assert conf.producer_linger == 0.02
    assert conf.broker[0].host == "127.0.0.1" and conf.broker[0].port == 9
    assert conf.web_bind == "127.0.0.1" and conf.web_port == 7777
    assert str(conf.datadir).startswith(str(config.store_dir))
    assert conf.topic_partitions == POS_TRANSACTIONS.partitions
    ticks, store_events = internal_topics(config)
    assert set(service.customer_source.topics) == {POS_TRANSACTIONS.name, ticks.name}
    assert service.states.partitions == 8 and service.stores.partitions == 4
    assert store_events.partitions == 4


class EmptyLog:
    """A ``LogReader`` for a group that has committed nothing, over a log without holes."""

    async def starts(self, keys, earliest):
        return {key: None for key in keys}

    async def read(self, holes):
        return {}


def test_resupplies_agent_dead_letters_raw_bytes(make_config, monkeypatch):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    service.log_reader = EmptyLog()
    sent = []

    def capture(outputs):
        sent.extend(outputs)
        return []  # nothing to wait for

    monkeypatch.setattr(service, "_send_soon", capture)

    async def main():
        async with service.resupplies_agent.test_context() as agent:
            await agent.put(b"\x0a\x05ab", key=b"S1", partition=2)

    asyncio.run(main())
    (out,) = sent
    assert out.topic == DEAD_LETTERS.name
    letter = v1.DeadLetter.FromString(out.value)
    assert letter.reason == v1.DeadLetterReason.DEAD_LETTER_REASON_UNDECODABLE
    assert (letter.source_topic, letter.source_partition) == ("inventory.resupplies", 2)
    assert letter.original_value == b"\x0a\x05ab" and letter.original_key == b"S1"


def test_a_negative_linger_or_an_empty_batch_is_refused(make_config):
    for bad in ({"producer_linger_s": -0.001}, {"batch_max": 0}, {"batch_within_s": 0.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            make_config(**bad)
