import grpc
import numpy as np
import pytest

from serving.errors import ServingError
from serving.servable import Servable
from serving.tensors import to_tensor_proto
from tests.unit.serving.fixtures import expected_y, predict_request


@pytest.fixture(scope="module")
def servable(tmp_path_factory):
    from tests.unit.serving.fixtures import save_toy_version

    path = save_toy_version(tmp_path_factory.mktemp("servable"), 2)
    return Servable("toy", 2, path)


def failure(servable, request, batching=False) -> ServingError:
    with pytest.raises(ServingError) as info:
        servable.prepare(request, batching=batching)
    return info.value


def test_empty_signature_name_means_serving_default(servable):
    prepared = servable.prepare(predict_request([[1, 2, 3]]))
    assert prepared.signature_name == "serving_default"
    assert prepared.output_aliases == ("total", "y")
    outputs = servable.run(prepared.signature_name, prepared.inputs, prepared.output_aliases)
    # y = 2x + version: [[4, 6, 8]]; total = 18
    np.testing.assert_allclose(outputs["y"], expected_y([[1, 2, 3]], 2))
    np.testing.assert_allclose(outputs["total"], [18.0])


def test_signature_def_map_is_read_from_saved_model_pb(servable):
    signatures = servable.signature_def_map().signature_def
    assert {"serving_default", "pair", "scalar"} <= set(signatures)
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"
    assert set(signatures["serving_default"].inputs) == {"x"}


def test_unknown_signature(servable):
    error = failure(servable, predict_request([[1, 2, 3]], signature="nope"))
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == 'Serving signature key "nope" not found.'


def test_too_many_inputs_uses_tf_serving_wording(servable):
    request = predict_request([[1, 2, 3]])
    request.inputs["extra"].CopyFrom(to_tensor_proto(np.zeros(1, np.float32)))
    error = failure(servable, request)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == (
        "input size does not match signature: 2!=1 len({extra,x}) != len({x}). "
        "Sent extra: {extra}. Missing but required: {}."
    )


def test_missing_input(servable):
    request = predict_request([[1, 2]], signature="pair")
    request.inputs["a"].CopyFrom(request.inputs.pop("x"))
    error = failure(servable, request)
    assert error.message == (
        "input size does not match signature: 1!=2 len({a}) != len({a,b}). "
        "Sent extra: {}. Missing but required: {b}."
    )


def test_misnamed_input(servable):
    request = predict_request([[1, 2, 3]])
    request.inputs["z"].CopyFrom(request.inputs.pop("x"))
    error = failure(servable, request)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message.startswith("Signature input alias: x(feed name: ")
    assert "not found in request and no default value provided" in error.message


def test_output_filter(servable):
    prepared = servable.prepare(predict_request([[1, 2, 3]], output_filter=["total"]))
    assert prepared.output_aliases == ("total",)
    error = failure(servable, predict_request([[1, 2, 3]], output_filter=["nope"]))
    assert error.message == (
        "output tensor alias not found in signature: nope Outputs expected to be in the set {total,y}."
    )
    error = failure(servable, predict_request([[1, 2, 3]], output_filter=["y", "y"]))
    assert error.message == "duplicate output tensor alias: y"


def test_wrong_dtype_and_shape(servable):
    request = predict_request([[1, 2, 3]])
    request.inputs["x"].CopyFrom(to_tensor_proto(np.array([[1, 2, 3]], np.int64)))
    assert failure(servable, request).message == "Expects arg[0] to be float but int64 is provided"
    error = failure(servable, predict_request([[1, 2]]))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "[1, 2]" in error.message


def test_unparsable_tensor(servable):
    request = predict_request([[1, 2, 3]])
    request.inputs["x"].tensor_shape.dim[1].size = 4
    assert failure(servable, request).message == "tensor parsing error: x"


def test_batching_needs_batch_major_inputs(servable):
    request = predict_request([[1, 2, 3]], signature="scalar")
    request.inputs["s"].CopyFrom(to_tensor_proto(np.float32(1)))
    del request.inputs["x"]
    assert servable.predict(request)["t"] == pytest.approx(2.0)  # fine without batching
    error = failure(servable, request, batching=True)
    assert error.message == "Batching Run() input tensors must have at least one dimension"
    pair = predict_request([[1, 2]], signature="pair")
    pair.inputs["a"].CopyFrom(pair.inputs.pop("x"))
    pair.inputs["b"].CopyFrom(to_tensor_proto(np.array([1, 2], np.int64)))
    error = failure(servable, pair, batching=True)
    assert error.message == "Batching Run() input tensors must have equal 0th-dimension size"
