import shutil

import numpy as np
import pytest
from tensorflow_serving.apis import prediction_log_pb2

from serving.errors import ServingError
from serving.manager import ModelManager, State
from serving.servable import Servable
from serving.warmup import MAX_WARMUP_RECORDS, run_warmup, warmup_path, write_warmup_file
from tests.unit.serving.fixtures import config_for, predict_request, spec


class CountingServable(Servable):
    calls = 0

    def predict(self, request):
        CountingServable.calls += 1
        return super().predict(request)


def test_warmup_requests_run_before_the_version_is_available(make_repo):
    base = make_repo(1)
    write_warmup_file(base / "1", [predict_request([[1, 2, 3]]), predict_request([[0, 0, 0]] * 4)])
    seen_states = []

    def factory(name, version, path):
        seen_states.append(manager.status(spec(version=version))[0].state)
        return CountingServable(name, version, path)

    manager = ModelManager(config_for(base), servable_factory=factory)
    manager.poll()
    assert seen_states == [State.LOADING]
    assert CountingServable.calls == 2
    assert manager.servable(spec()).version == 1


def test_a_failing_warmup_request_fails_the_load(make_repo):
    base = make_repo(1)
    write_warmup_file(base / "1", [predict_request([[1, 2, 3]], signature="nope")])
    manager = ModelManager(config_for(base), max_num_load_retries=0)
    manager.poll()
    (status,) = manager.status(spec())
    assert status.state == State.END
    assert status.error == 'Serving signature key "nope" not found.'


def test_more_than_1000_records_is_refused(make_repo):
    base = make_repo(1)
    write_warmup_file(base / "1", [predict_request([[1, 2, 3]])] * (MAX_WARMUP_RECORDS + 1))
    with pytest.raises(ServingError, match=r"exceeds the maximum \(1000\)"):
        run_warmup(Servable("toy", 1, base / "1"))


def test_no_warmup_file_is_fine(make_repo):
    base = make_repo(1)
    assert not warmup_path(base / "1").exists()
    assert run_warmup(Servable("toy", 1, base / "1")) == 0


def test_warmup_file_is_a_tfrecord_of_prediction_logs(tmp_path):
    import tensorflow as tf

    path = write_warmup_file(tmp_path, [predict_request(np.ones((1, 3)))])
    (raw,) = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    entry = prediction_log_pb2.PredictionLog.FromString(raw)
    assert entry.predict_log.request.model_spec.name == "toy"
    shutil.rmtree(tmp_path)
