"""Continuous training end to end, on the real broker, `lens serve`, a funnel worker, the history
sink and `lens retrain`: customers' behaviour drifts, the champion's live hit rate falls, a
retrained challenger is published and served without a restart and the hit rate recovers; a
deliberately bad challenger is rejected; a canary that does worse live is rolled back.

The world: 48 customers in 8 taste groups. Before the drift each buys 2 of their group's 4
products "P.."; after it, 2 of 4 new products "N.." (the champion has never seen them). Every
customer shops once per round; a round waits until every customer's prediction is back in the
worker, so each prediction is checked against the next basket.

Every wait is a poll loop with a deadline; nothing asserts on speed.
"""

import csv
import datetime as dt
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import grpc
from confluent_kafka import Producer

from lens import v1
from lens.topics import POS_TRANSACTIONS, PREDICTIONS, SESSIONS
from services.kafka import KafkaConnection
from tests.conftest import free_port
from tests.integration.processes import (
    ModelServer,
    Reader,
    Worker,
    closed,
    commit_at_end,
    lens_env,
    line,
    own_records_app,
    wait_for,
)

GROUPS, PER_GROUP, CUSTOMERS = 8, 4, 48
OFFLINE_SESSIONS = 8  # the champion's training history, before the stream starts
MIN_CHECKS = 20  # canary evidence per label: below one round of either half of the customers
LABELS_WAIT_S = 120.0


class DriftWorld:
    def __init__(self, run: str) -> None:
        self.customers = [f"drift-{run}-c{c:02d}" for c in range(CUSTOMERS)]
        self.t0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=60)

    def basket(self, customer: int, index: int, family: str) -> list[str]:
        group = customer % GROUPS
        return [f"{family}{group * PER_GROUP + (index + k) % PER_GROUP:02d}" for k in range(2)]

    def when(self, customer: int, index: int) -> dt.datetime:
        return self.t0 + dt.timedelta(days=2 * index, minutes=customer)

    def write_csv(self, path: Path, sessions: range, family: str) -> Path:
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["TRAN_ID", "CLIENT_ID", "PROD_ID", "TIMESTAMP", "PROD_AMOUNT",
                          "PRODT_QTY", "STORE_ID"])
            for c, customer in enumerate(self.customers):
                for index in sessions:
                    for product in self.basket(c, index, family):
                        out.writerow([f"{customer}-{index}", customer, product,
                                      self.when(c, index).replace(tzinfo=None).isoformat(),
                                      2.5, 1, "S1"])
        return path

    def publish_round(self, producer: Producer, index: int, family: str) -> None:
        for c, customer in enumerate(self.customers):
            tx, t = f"{customer}-{index}", self.when(c, index)
            products = self.basket(c, index, family)
            events = [line(tx, n + 1, customer, p, t) for n, p in enumerate(products)]
            events.append(closed(tx, customer, t + dt.timedelta(seconds=30), len(products)))
            for event in events:
                producer.produce(POS_TRANSACTIONS.name, key=customer.encode(),
                                 value=event.SerializeToString())
        assert producer.flush(30) == 0


def lens_command(*args: str, run_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lens.cli.main", *args], env=lens_env(LENS_RUN_DIR=str(run_dir)),
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"lens {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def write_labels(path: Path, base: Path, stable: int, canary: int) -> None:
    path.write_text(
        f'model_config_list {{ config {{ name: "lens" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { all {} } '
        f'version_labels {{ key: "stable" value: {stable} }} '
        f'version_labels {{ key: "canary" value: {canary} }} }} }}\n'
    )


def labelled_version(port: int, label: str) -> int | None:
    """The version the server answers ``label`` with (GetModelMetadata), None while it cannot."""
    from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "lens"
    request.model_spec.version_label = label
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            return stub.GetModelMetadata(request, timeout=5).model_spec.version.value
        except grpc.RpcError:
            return None


class LiveHitRate:
    """Hit rates per model version from the worker's lens_funnel_prediction_checks_total,
    between two readings."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.before = self._counts()

    def _counts(self) -> dict[tuple[int, str], float]:
        counts: dict[tuple[int, str], float] = {}
        for name, value in self.worker.metrics().items():
            if name.startswith("lens_funnel_prediction_checks_total{"):
                labels = dict(part.split("=") for part in name[name.index("{") + 1:-1].split(","))
                key = (int(labels["version"].strip('"')), labels["outcome"].strip('"'))
                counts[key] = counts.get(key, 0.0) + value
        return counts

    def since(self) -> dict[int, tuple[float, float]]:
        """version -> (hit rate, checks) since this reading began."""
        now = self._counts()
        delta = {k: now.get(k, 0.0) - self.before.get(k, 0.0) for k in now}
        versions = {v for v, _ in delta}
        out = {}
        for version in versions:
            checked = delta.get((version, "hit"), 0.0) + delta.get((version, "miss"), 0.0)
            if checked:
                out[version] = (delta.get((version, "hit"), 0.0) / checked, checked)
        return out


def test_drift_retrain_rollout_reject_and_canary_rollback(kafka_settings, tmp_path):
    bootstrap = kafka_settings.bootstrap_servers
    world = DriftWorld(uuid.uuid4().hex[:6])
    ours = set(world.customers)
    base = tmp_path / "models" / "lens"

    # The champion: trained offline on the history before the drift, exported as version 1.
    before = world.write_csv(tmp_path / "before.csv", range(OFFLINE_SESSIONS), "P")
    lens_command("train", "--data", str(before), "--config", "tiny", "--protocol", "nbr",
                 "--epochs", "5", "--split", "none", "--out", str(tmp_path / "champion"),
                 "--export", str(base), run_dir=tmp_path)
    labels = tmp_path / "models.config"
    write_labels(labels, base, stable=1, canary=1)
    server = ModelServer(None, free_port(), tmp_path / "serve.log", config_file=labels)
    server.start()

    app_id = own_records_app(bootstrap)
    sink_group = f"history-{uuid.uuid4().hex[:8]}"
    commit_at_end(bootstrap, sink_group, [SESSIONS])
    worker = Worker(
        bootstrap, tmp_path / "worker", "--model-server", f"127.0.0.1:{server.port}",
        "--canary-share", "0.5", app_id=app_id,
        env={"LENS_MODEL_VERSION_LABEL": "stable", "LENS_MODEL_CANARY_MIN_CHECKS": str(MIN_CHECKS),
             "LENS_MODEL_CANARY_MARGIN": "0.2"},
    )
    predictions = Reader(bootstrap, PREDICTIONS.name)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    session = 0  # the live session ordinal, the same for every customer

    def our_predictions() -> list[v1.Prediction]:
        found = (v1.Prediction.FromString(value) for _, value in predictions.poll())
        return [p for p in found if p.customer_id in ours]

    def shop(family: str) -> list[v1.Prediction]:
        """One round; returns its predictions once the worker has read every one of them back."""
        nonlocal session
        world.publish_round(producer, OFFLINE_SESSIONS + session, family)
        session += 1

        def answered():
            latest = {p.customer_id: p for p in our_predictions() if p.session_index == session}
            m = worker.metrics()
            return (len(latest) == CUSTOMERS and m.get("lens_funnel_predictions_pending") == 0
                    and list(latest.values()))

        return wait_for(answered, f"predictions for session {session}", worker)

    try:
        worker.wait_ready()

        # Before the drift the champion hits; after it, it cannot (the new products are unknown).
        rate = LiveHitRate(worker)
        for _ in range(2):
            shop("P")
        hit_before, _ = rate.since()[1]
        rate = LiveHitRate(worker)
        for _ in range(3):
            shop("N")
        hit_drifted, checks = rate.since()[1]
        assert hit_before >= 0.8 and hit_drifted <= 0.2, (hit_before, hit_drifted, checks)

        # The history sink stores the streamed sessions; the retrain on them publishes version 2.
        from lens.history import SessionStore
        from services.history import HistorySink, SinkConfig

        store_path = tmp_path / "history.sqlite"
        stop = threading.Event()
        safety = threading.Timer(120, stop.set)
        safety.start()
        with SessionStore(store_path) as store:
            HistorySink(KafkaConnection.from_settings(kafka_settings), store,
                        config=SinkConfig(group_id=sink_group)).run(stop, max_records=session * CUSTOMERS)
            assert store.counts()["customers"] == CUSTOMERS
        safety.cancel()
        out = lens_command("retrain", "--store", str(store_path), "--base", str(base),
                           "--champion", str(tmp_path / "champion"), "--eval-days", "7",
                           "--out", str(tmp_path / "retrain-good"), run_dir=tmp_path)
        assert f"published as version 2 under {base}" in out, out
        assert (base / "2" / "model_card.json").is_file()

        # Promote it: the running server takes the new version and the new label, no restart.
        write_labels(labels, base, stable=2, canary=2)
        wait_for(lambda: all(labelled_version(server.port, x) == 2 for x in ("stable", "canary")),
                 "labels on version 2", worker, timeout_s=LABELS_WAIT_S)
        rate = LiveHitRate(worker)
        for _ in range(3):
            made = shop("N")
        assert {p.model.version for p in made} == {2}
        hit_recovered, checks = rate.since()[2]
        assert hit_recovered >= 0.8, (hit_recovered, checks, hit_drifted)
        print(f"live hit rate: champion {hit_before:.3f} before the drift, {hit_drifted:.3f} "
              f"after it; retrained version 2 {hit_recovered:.3f} ({checks:.0f} checks)")
        assert server.process.poll() is None  # the same server process throughout

        # A deliberately bad challenger (a learning rate 100,000 times too high: its training
        # diverges) is rejected, with a model card that says why...
        out = lens_command("retrain", "--store", str(store_path), "--base", str(base),
                           "--eval-days", "7", "--learning-rate", "100",
                           "--out", str(tmp_path / "retrain-bad"), run_dir=tmp_path)
        assert "rejected: challenger training diverged" in out and not (base / "3").exists(), out
        card = json.loads((tmp_path / "retrain-bad" / "model_card.json").read_text())
        assert (card["outcome"], card["version"], card["challenger"]) == ("rejected", None, {})

        # ...and a challenger trained on the stale window before the drift, pushed as the canary
        # by hand (no retrain would publish it), does worse live and is rolled back.
        from lens.model.export import export_saved_model
        from lens.model.trained_lens import TrainedLens

        export_saved_model(TrainedLens.load(tmp_path / "champion"), base)
        write_labels(labels, base, stable=2, canary=3)
        wait_for(lambda: labelled_version(server.port, "canary") == 3, "canary on version 3",
                 worker, timeout_s=LABELS_WAIT_S)
        versions = set()
        for _ in range(3):
            versions |= {p.model.version for p in shop("N")}
            if worker.metrics().get("lens_funnel_canary_rolled_back") == 1:
                break
        assert 3 in versions and worker.metrics().get("lens_funnel_canary_rolled_back") == 1
        made = shop("N")  # every customer back on the stable version
        assert {(p.model.label, p.model.version) for p in made} == {("stable", 2)}
    finally:
        predictions.close()
        code = worker.stop()
        server.stop()
    assert code == 0, worker.logs()
