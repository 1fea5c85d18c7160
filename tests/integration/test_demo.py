"""`lens demo` (what `make demo` runs) round-trips a TransactionLine through a broker it starts."""

import os
import subprocess
import sys

from tests.conftest import free_port


def test_demo_starts_kafka_round_trips_a_transaction_and_stops(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENS_")}
    env.update(
        LENS_RUN_DIR=str(tmp_path),
        LENS_KAFKA_PORT=str(free_port()),
        LENS_KAFKA_CONTROLLER_PORT=str(free_port()),
    )
    result = subprocess.run(
        [sys.executable, "-m", "lens.cli.main", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Kafka 4.1." in result.stdout
    assert 'customer_id: "01104905"' in result.stdout
    assert "came back unchanged" in result.stdout
    assert result.stdout.rstrip().endswith("Kafka stopped")
    assert not (tmp_path / "kafka" / "broker.pid").exists()


def test_stack_up_status_down(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENS_")}
    env.update(LENS_RUN_DIR=str(tmp_path))
    ports = ["--kafka-port", str(free_port()), "--kafka-controller-port", str(free_port())]

    def lens(*args):
        return subprocess.run(
            [sys.executable, "-m", "lens.cli.main", "stack", *args, *ports],
            env=env, capture_output=True, text=True, timeout=300,
        )

    try:
        up = lens("up")
        assert up.returncode == 0, up.stderr
        assert "pos.transactions" in up.stdout
        status = lens("status")
        assert status.returncode == 0, status.stderr
        assert "lens.alerts.stockout" in status.stdout and "4 partitions" in status.stdout
        again = lens("up")  # idempotent: reuses the running broker, creates nothing
        assert "none (all existed)" in again.stdout
    finally:
        down = lens("down")
    assert down.returncode == 0 and "Kafka stopped" in down.stdout
    assert lens("status").returncode == 1
