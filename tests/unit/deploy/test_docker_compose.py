"""docker-compose.yml (production topology) agrees with the code: images, commands, ports,
volumes and LENS_* settings."""

import base64
import shlex
from pathlib import Path

import pytest
import yaml

from lens.cli.main import build_parser
from lens.settings import LensSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LENS_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
# Services whose `lens` subcommand arrives with a later issue (allowed by the foundation issue).
NOT_BUILT_YET: dict[str, str] = {}


def test_expected_services_exist():
    assert {"kafka", "model-server", "funnel-worker", "alert-subscriber", "prometheus", "grafana"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_pulled_images_are_pinned(name):
    service = SERVICES[name]
    if "build" in service:
        return
    image, _, tag = service["image"].partition(":")
    assert tag and tag != "latest", f"{name}: pin a version of {image}"


def test_kafka_is_apache_kafka_4_1_in_kraft_mode():
    kafka = SERVICES["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:4.1.")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16


@pytest.mark.parametrize("name", sorted(LENS_SERVICES))
def test_lens_services_settings_are_real_settings(name):
    env_names = {f"LENS_{field.upper()}" for field in LensSettings.model_fields}
    for variable in LENS_SERVICES[name].get("environment", {}):
        assert variable in env_names, f"{name}: {variable} is not a LensSettings field"


@pytest.mark.parametrize("name", sorted(LENS_SERVICES))
def test_lens_services_reach_kafka_on_its_internal_listener(name):
    bootstrap = LENS_SERVICES[name]["environment"]["LENS_KAFKA_BOOTSTRAP"]
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{bootstrap}" in advertised


def test_funnel_worker_reaches_the_model_servers_grpc_port():
    host, port = SERVICES["funnel-worker"]["environment"]["LENS_MODEL_SERVER"].split(":")
    assert host == "model-server"
    assert f"--port={port}" in SERVICES["model-server"]["command"]
    assert port == LensSettings.model_fields["model_server"].default.split(":")[1]


@pytest.mark.parametrize("name", sorted(LENS_SERVICES))
def test_lens_commands_exist_in_the_cli(name):
    command = LENS_SERVICES[name]["command"]
    assert command[0] == "lens"
    if name in NOT_BUILT_YET:
        pytest.skip(f"`{shlex.join(command)}` arrives with {NOT_BUILT_YET[name]}")
    build_parser().parse_args(command[1:])


def test_bind_mounts_exist_and_model_server_flags_name_mounted_files():
    mounts = {}
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                mounts[target] = ROOT / source
    for flag in SERVICES["model-server"]["command"]:
        if flag.endswith("_file") or "_file=" in flag:
            path = flag.split("=", 1)[1]
            assert path in mounts and mounts[path].is_file(), f"{flag} is not a mounted file"


def test_model_config_base_paths_live_in_the_mounted_model_repository():
    config = (ROOT / "serving" / "models.config").read_text()
    assert 'base_path: "/models/lens"' in config
    assert "./serving/models:/models:ro" in SERVICES["model-server"]["volumes"]


def test_published_ports_bind_to_loopback():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_depends_on_names_defined_services():
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", []):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"


def test_prometheus_scrapes_services_that_exist():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        hosts = [t.split(":")[0] for c in job.get("static_configs", []) for t in c["targets"]]
        hosts += [n for c in job.get("dns_sd_configs", []) for n in c["names"]]
        assert hosts and all(h in SERVICES for h in hosts), job["job_name"]
