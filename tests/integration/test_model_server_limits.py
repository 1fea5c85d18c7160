"""The model server refuses oversized requests with a clear status and keeps serving."""

import grpc
import numpy as np
import pytest

from serving.tensors import to_ndarray
from tests.integration.test_model_server import InProcessServer, rpc_error
from tests.unit.serving.fixtures import expected_y, predict_request, save_toy_version

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("limits") / "toy"
    save_toy_version(base, 1)
    running = InProcessServer(model_name="toy", model_base_path=str(base), max_request_bytes=LIMIT)
    yield running
    running.stop()


def test_a_request_over_the_limit_is_refused_with_resource_exhausted(small_server):
    rows = np.ones((LIMIT // 12 + 1, 3), np.float32)  # 12 bytes a row: just over the limit
    request = predict_request(rows)
    error = rpc_error(small_server.predict.Predict, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"larger than max ({request.ByteSize()} vs. {LIMIT})" in error.details()


def test_requests_under_the_limit_are_still_served(small_server):
    rows = np.ones((LIMIT // 24, 3), np.float32)
    response = small_server.predict.Predict(predict_request(rows), timeout=30)
    np.testing.assert_allclose(to_ndarray(response.outputs["y"]), expected_y(rows, 1))
