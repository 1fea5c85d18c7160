"""Every listening socket LENS opens binds to loopback unless configured otherwise."""

import argparse
import ipaddress

from lens.settings import LensSettings
from services.funnel.config import FunnelServiceConfig
from services.stack import LocalKafka
from serving.options import ServerOptions, add_flags


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def test_settings_defaults_bind_and_connect_to_loopback(clean_lens_env, tmp_path):
    settings = LensSettings(run_dir=tmp_path)
    assert is_loopback(settings.kafka_host)  # the local broker's listeners
    assert is_loopback(settings.alerts_metrics_host)  # the alert subscriber's /metrics
    assert is_loopback(settings.model_server.rsplit(":", 1)[0])
    assert is_loopback(FunnelServiceConfig.from_settings(settings).web_bind)  # worker /metrics


def test_the_local_broker_listens_on_loopback_only(clean_lens_env, tmp_path):
    broker = LocalKafka(LensSettings(run_dir=tmp_path))
    broker.home.mkdir(parents=True)
    broker._render_config()
    listeners = dict(
        line.split("=", 1) for line in broker.config_path.read_text().splitlines()
        if line.startswith(("listeners=", "advertised.listeners="))
    )
    addresses = [a for value in listeners.values() for a in value.split(",")]
    assert addresses and all(is_loopback(a.split("://")[1].rsplit(":", 1)[0]) for a in addresses)


def test_the_model_server_binds_to_loopback_by_default():
    parser = argparse.ArgumentParser()
    add_flags(parser)
    assert is_loopback(parser.parse_args([]).host)
    assert is_loopback(ServerOptions(model_base_path="/m").host)
