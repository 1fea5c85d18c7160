import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.tensors import to_ndarray, to_tensor_proto


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(4, dtype=np.int64),
        np.array([[1, 2]], dtype=np.int32),
        np.array([True, False]),
        np.float64(2.5),
        np.zeros((0, 3), dtype=np.float32),
        np.array([b"a", b"bc"], dtype=object),
    ],
)
def test_round_trip_and_tensorflow_agrees(array):
    proto = to_tensor_proto(array)
    np.testing.assert_array_equal(to_ndarray(proto), array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # what TF Serving parses
    np.testing.assert_array_equal(to_ndarray(tf.make_tensor_proto(array)), array)


def test_reads_typed_value_fields_as_tf_serving_answers():
    # TF Serving's AsProtoField: values in float_val, not tensor_content.
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0, 2.0, 3.0, 4.0])
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=2)
    np.testing.assert_array_equal(to_ndarray(proto), [[1.0, 2.0], [3.0, 4.0]])


def test_a_single_value_fills_the_shape():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, int64_val=[7])
    proto.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(to_ndarray(proto), [7, 7, 7])


def test_wrong_content_size_is_an_error():
    proto = to_tensor_proto(np.zeros(3, dtype=np.float32))
    proto.tensor_shape.dim[0].size = 4
    with pytest.raises(ValueError):
        to_ndarray(proto)


def test_strings_from_str_are_utf8():
    proto = to_tensor_proto(np.array(["é"]))
    assert proto.dtype == types_pb2.DT_STRING and proto.string_val == ["é".encode()]


def test_an_object_array_of_bytes_and_str_is_all_bytes():
    proto = to_tensor_proto(np.array([[b"milk", "é"], [b"", np.bytes_(b"tea")]], dtype=object))
    assert proto.string_val == [b"milk", "é".encode(), b"", b"tea"]
    assert [d.size for d in proto.tensor_shape.dim] == [2, 2]
