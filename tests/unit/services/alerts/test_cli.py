import argparse
from pathlib import Path

import pytest
import yaml

from lens.cli import alerts as alerts_cli
from lens.cli import pos as pos_cli
from lens.errors import LensError
from lens.settings import LensSettings

ROOT = Path(__file__).resolve().parents[4]


def parse(*argv):
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    alerts_cli.register(subparsers)
    pos_cli.register(subparsers)
    return parser.parse_args(list(argv))


def test_serve_defaults_and_repeatable_sinks():
    args = parse("alerts", "serve", "--sink", "console", "--sink", "jsonl:/tmp/a.jsonl", "--sink", "webhook:http://h/x")
    assert args.sink == ["console", "jsonl:/tmp/a.jsonl", "webhook:http://h/x"]
    assert args.max_attempts == 5
    assert parse("alerts", "tail", "--from-beginning", "--type", "stockout").from_beginning


def test_metrics_port_matches_the_prometheus_scrape_target():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "lens-alert-subscriber"]
    defaults = LensSettings.model_fields
    port = defaults["alerts_metrics_port"].default
    assert job["static_configs"][0]["targets"] == [f"alert-subscriber:{port}"]
    assert defaults["alerts_metrics_host"].default == "127.0.0.1"


def test_pos_commands_parse():
    assert parse("pos", "replay", "--data", "x.csv", "--speed", "60").speed == "60"
    assert parse("pos", "simulate", "--baskets", "5").baskets == 5
    assert parse("resupply", "load", "plan.csv").path == "plan.csv"


@pytest.mark.parametrize("argv,message", [
    (["pos", "replay", "--data", "/nonexistent.csv"], "no such file"),
    (["pos", "replay", "--data", "x.csv", "--speed", "fast"], "--speed"),
    (["resupply", "load", "/nonexistent.csv"], "no such file"),
    (["alerts", "serve", "--sink", "smoke-signals"], "console, jsonl:PATH or webhook:URL"),
    (["alerts", "serve", "--sink", "webhook:http://h/x"], "signing secret"),
])
def test_bad_input_fails_before_touching_kafka(argv, message, clean_lens_env):
    from lens.settings import load_settings

    args = parse(*argv)
    with pytest.raises(LensError, match=message):
        args.handler(args, load_settings(kafka_bootstrap="127.0.0.1:1"))
