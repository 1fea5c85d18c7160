from pathlib import Path

import pytest

from lens.errors import ConfigError
from lens.settings import LensSettings, load_settings


def test_defaults_point_at_the_local_broker(clean_lens_env):
    settings = load_settings()
    assert settings.uses_local_kafka
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.run_dir == Path(".run")


def test_environment_variables_with_lens_prefix_are_read(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_PORT", "19092")
    monkeypatch.setenv("LENS_RUN_DIR", "/tmp/x")
    settings = load_settings()
    assert settings.kafka_port == 19092
    assert settings.run_dir == Path("/tmp/x")


def test_flags_win_over_environment_and_none_means_not_given(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_PORT", "19092")
    assert load_settings(kafka_port=29092).kafka_port == 29092
    assert load_settings(kafka_port=None).kafka_port == 19092


def test_external_cluster_replaces_the_local_broker(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    settings = load_settings()
    assert not settings.uses_local_kafka
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_invalid_values_raise_config_error_naming_the_field(clean_lens_env):
    with pytest.raises(ConfigError, match="kafka_port"):
        load_settings(kafka_port=70000)


def test_unknown_settings_are_rejected(clean_lens_env):
    with pytest.raises(ConfigError, match="kafka_prot"):
        load_settings(kafka_prot=1)


def test_settings_are_frozen(clean_lens_env):
    settings = LensSettings()
    with pytest.raises(Exception):
        settings.kafka_port = 1


# -- the funnel worker's knobs: env vars, `lens worker funnel` flags, the derived config ----------


def worker_settings(*flags: str) -> LensSettings:
    """Settings as `lens worker funnel <flags>` builds them at its entry point."""
    from lens.cli.main import build_parser, settings_from_args

    return settings_from_args(build_parser().parse_args(["worker", "funnel", *flags]))


def test_worker_knobs_have_their_documented_defaults(clean_lens_env):
    settings = worker_settings()
    assert (settings.worker_web_port, settings.funnel_app_id) == (6066, "lens-funnel")
    assert settings.funnel_inactivity_timeout_s == 3600.0
    assert (settings.funnel_sweep_interval_s, settings.funnel_quiet_after_s) == (5.0, 10.0)
    assert (settings.model_name, settings.model_version_label) == ("lens", "")
    assert (settings.predict_timeout_s, settings.predict_retry_s) == (2.0, 5.0)
    assert settings.cluster_model is None
    assert (settings.anomaly_min_history, settings.stockout_days) == (30, 7)
    assert settings.stockout_min_shortfall == 0.5
    assert settings.funnel_event_loop == "uvloop"


def test_environment_sets_a_worker_knob_and_the_flag_wins(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_FUNNEL_INACTIVITY_TIMEOUT_S", "600")
    monkeypatch.setenv("LENS_WORKER_WEB_PORT", "7001")
    assert worker_settings().funnel_inactivity_timeout_s == 600.0
    settings = worker_settings("--inactivity-timeout", "120", "--web-port", "7002")
    assert settings.funnel_inactivity_timeout_s == 120.0
    assert settings.worker_web_port == 7002


def test_every_worker_flag_lands_in_its_settings_field(clean_lens_env, tmp_path):
    settings = worker_settings(
        "--web-port", "7003", "--app-id", "lens-funnel-b", "--model-server", "ms:8500",
        "--model-name", "lens2", "--predict-retry", "1.5", "--inactivity-timeout", "900",
        "--sweep-interval", "2", "--quiet-after", "0", "--anomaly-min-history", "5",
        "--clusters", str(tmp_path / "clusters.json"), "--stockout-days", "3",
        "--stockout-min-shortfall", "1.5", "--event-loop", "asyncio",
    )
    assert settings.model_dump(include={
        "worker_web_port", "funnel_app_id", "model_server", "model_name", "predict_retry_s",
        "funnel_inactivity_timeout_s", "funnel_sweep_interval_s", "funnel_quiet_after_s",
        "anomaly_min_history", "cluster_model", "stockout_days", "stockout_min_shortfall",
        "funnel_event_loop",
    }) == {
        "worker_web_port": 7003, "funnel_app_id": "lens-funnel-b", "model_server": "ms:8500",
        "model_name": "lens2", "predict_retry_s": 1.5, "funnel_inactivity_timeout_s": 900.0,
        "funnel_sweep_interval_s": 2.0, "funnel_quiet_after_s": 0.0, "anomaly_min_history": 5,
        "cluster_model": tmp_path / "clusters.json", "stockout_days": 3,
        "stockout_min_shortfall": 1.5, "funnel_event_loop": "asyncio",
    }


def test_the_funnel_worker_config_is_derived_from_settings(clean_lens_env, monkeypatch, tmp_path):
    import datetime as dt

    from services.funnel.config import FunnelServiceConfig

    monkeypatch.setenv("LENS_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("LENS_MODEL_VERSION_LABEL", "canary")
    monkeypatch.setenv("LENS_PREDICT_TIMEOUT_S", "0.5")
    monkeypatch.setenv("LENS_CLUSTER_MODEL", str(tmp_path / "clusters.json"))
    monkeypatch.setenv("LENS_STOCKOUT_MIN_SHORTFALL", "2")
    settings = worker_settings("--inactivity-timeout", "120", "--anomaly-min-history", "600",
                               "--stockout-days", "3", "--app-id", "lens-funnel-b",
                               "--anomaly-threshold", "2.5", "--anomaly-min-sessions", "2")
    config = FunnelServiceConfig.from_settings(settings)
    assert config.store_dir == tmp_path / "funnel"
    assert (config.app_id, config.web_port) == ("lens-funnel-b", 6066)
    assert (config.model_server, config.model_version_label) == ("127.0.0.1:8500", "canary")
    assert config.predict_timeout_s == 0.5
    assert config.cluster_model_path == tmp_path / "clusters.json"
    assert config.sessionizer.inactivity_timeout == dt.timedelta(minutes=2)
    assert (config.anomaly.min_history, config.anomaly.window) == (600, 600)  # window >= history
    assert (config.anomaly.threshold, config.anomaly.min_sessions) == (2.5, 2)
    assert (config.stockout.n_days, config.stockout.min_shortfall) == (3, 2.0)
    assert FunnelServiceConfig.from_settings(settings, no_model=True).model_server is None
    assert config.anomaly.categories is None  # no catalog: the product-level level only


def test_the_worker_reads_the_anomaly_catalog_flag_or_variable(clean_lens_env, monkeypatch,
                                                                tmp_path):
    from services.funnel.config import FunnelServiceConfig

    catalog = tmp_path / "products.csv"
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nP0000,milk\nP0001,diapers\n")
    config = FunnelServiceConfig.from_settings(worker_settings("--catalog", str(catalog)))
    assert config.anomaly.categories == {"P0000": "milk", "P0001": "diapers"}
    assert (config.anomaly.drop_weight, config.anomaly.new_weight) == (0.3, 0.5)
    assert config.anomaly.discovery_weight == 0.3
    monkeypatch.setenv("LENS_ANOMALY_CATALOG", str(catalog))
    monkeypatch.setenv("LENS_ANOMALY_NEW_WEIGHT", "0.8")
    config = FunnelServiceConfig.from_settings(worker_settings())
    assert config.anomaly.categories == {"P0000": "milk", "P0001": "diapers"}
    assert config.anomaly.new_weight == 0.8
    monkeypatch.setenv("LENS_ANOMALY_CATALOG", "")
    assert FunnelServiceConfig.from_settings(worker_settings()).anomaly.categories is None


def test_the_worker_reads_the_need_intervals_flag_or_variable(clean_lens_env, monkeypatch,
                                                              tmp_path):
    from lens.anomaly import write_need_intervals
    from services.funnel.config import FunnelServiceConfig

    catalog = tmp_path / "products.csv"
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nP0000,milk\nP0001,diapers\n")
    intervals = write_need_intervals({"milk": 4.5, "diapers": 11.0}, tmp_path / "n.json",
                                     customers=300)
    config = FunnelServiceConfig.from_settings(worker_settings(
        "--catalog", str(catalog), "--need-intervals", str(intervals)))
    assert config.anomaly.need_intervals == {"milk": 4.5, "diapers": 11.0}
    assert config.anomaly.overdue_tolerance_used == 1.5
    assert FunnelServiceConfig.from_settings(worker_settings(
        "--catalog", str(catalog))).anomaly.need_intervals is None
    monkeypatch.setenv("LENS_ANOMALY_CATALOG", str(catalog))
    monkeypatch.setenv("LENS_ANOMALY_NEED_INTERVALS", str(intervals))
    assert FunnelServiceConfig.from_settings(worker_settings()).anomaly.need_intervals == {
        "milk": 4.5, "diapers": 11.0}
    monkeypatch.setenv("LENS_ANOMALY_NEED_INTERVALS", "")
    assert FunnelServiceConfig.from_settings(worker_settings()).anomaly.need_intervals is None
    monkeypatch.setenv("LENS_ANOMALY_NEED_INTERVALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="cannot read need intervals"):
        FunnelServiceConfig.from_settings(worker_settings())
    monkeypatch.setenv("LENS_ANOMALY_NEED_INTERVALS", str(intervals))
    monkeypatch.setenv("LENS_ANOMALY_CATALOG", "")
    with pytest.raises(ConfigError, match="set the catalog too"):
        FunnelServiceConfig.from_settings(worker_settings())


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("LENS_FUNNEL_INACTIVITY_TIMEOUT_S", "0", "funnel_inactivity_timeout_s"),
        ("LENS_FUNNEL_SWEEP_INTERVAL_S", "-1", "funnel_sweep_interval_s"),
        ("LENS_FUNNEL_QUIET_AFTER_S", "-0.5", "funnel_quiet_after_s"),
        ("LENS_FUNNEL_EVENT_LOOP", "trio", "funnel_event_loop"),
        ("LENS_WORKER_WEB_PORT", "70000", "worker_web_port"),
        ("LENS_PREDICT_TIMEOUT_S", "0", "predict_timeout_s"),
        ("LENS_PREDICT_RETRY_S", "abc", "predict_retry_s"),
        ("LENS_ANOMALY_MIN_HISTORY", "0", "anomaly_min_history"),
        ("LENS_ANOMALY_THRESHOLD", "-1", "anomaly_threshold"),
        ("LENS_ANOMALY_MIN_SESSIONS", "0", "anomaly_min_sessions"),
        ("LENS_STOCKOUT_DAYS", "0", "stockout_days"),
        ("LENS_STOCKOUT_MIN_SHORTFALL", "-0.5", "stockout_min_shortfall"),
    ],
)
def test_invalid_worker_knobs_raise_config_error_naming_the_field(
    clean_lens_env, monkeypatch, variable, value, field
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=field):
        load_settings()


def test_an_invalid_worker_flag_raises_config_error_naming_the_field(clean_lens_env):
    with pytest.raises(ConfigError, match="funnel_sweep_interval_s"):
        worker_settings("--sweep-interval", "0")
    with pytest.raises(ConfigError, match="worker_web_port"):
        worker_settings("--web-port", "0")


def test_a_blank_cluster_model_variable_means_no_file(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_CLUSTER_MODEL", "")
    assert load_settings().cluster_model is None


def test_webhook_secret_is_read_from_the_environment_and_never_printed(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_ALERTS_WEBHOOK_SECRET", "s3cret-value")
    settings = load_settings()
    assert settings.alerts_webhook_secret.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in str(settings)


def test_history_store_defaults_under_the_run_dir_and_reads_its_variable(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_RUN_DIR", "/srv/lens")
    assert load_settings().history_store_path == Path("/srv/lens/history/sessions.sqlite")
    monkeypatch.setenv("LENS_HISTORY_STORE", "")  # blank = unset, not "."
    assert load_settings().history_store_path == Path("/srv/lens/history/sessions.sqlite")
    monkeypatch.setenv("LENS_HISTORY_STORE", "/data/history.sqlite")
    assert load_settings().history_store_path == Path("/data/history.sqlite")
