"""numpy <-> ``tensorflow.TensorProto`` without a TensorFlow op.

``to_tensor_proto`` writes ``dtype``, ``tensor_shape`` and packed ``tensor_content`` (strings go
to ``string_val``), the encoding every TensorFlow Serving accepts. ``to_ndarray`` reads both
encodings a server may answer with: ``tensor_content`` and the typed ``*_val`` fields
(TensorFlow Serving's ``AsProtoField``), including a single value broadcast over the shape.
Unusual dtypes fall back to ``tf.make_tensor_proto`` / ``tf.make_ndarray``.
"""

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

__all__ = ["dtype_name", "to_ndarray", "to_tensor_proto"]

# DataType -> (numpy dtype, the repeated field that holds values when tensor_content is empty)
_NUMERIC = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
}
_FROM_NUMPY = {np.dtype(np_type): dt for dt, (np_type, _) in _NUMERIC.items()}


def dtype_name(dtype: int) -> str:
    """``types_pb2.DT_FLOAT`` -> ``"DT_FLOAT"``."""
    return types_pb2.DataType.Name(dtype)


def _shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in shape]
    )


def to_tensor_proto(value) -> tensor_pb2.TensorProto:
    """A numpy array (or anything ``np.asarray`` takes) as a TensorProto."""
    array = np.asarray(value)
    if array.dtype.kind in ("U", "S", "O"):
        flat = array.reshape(-1).tolist()
        try:  # bytes already (the funnel inputs: hundreds per row), protobuf checks each in C
            strings = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=flat)
        except TypeError:
            strings = tensor_pb2.TensorProto(
                dtype=types_pb2.DT_STRING,
                string_val=[v.encode() if isinstance(v, str) else bytes(v) for v in flat],
            )
        strings.tensor_shape.CopyFrom(_shape_proto(array.shape))
        return strings
    dtype = _FROM_NUMPY.get(np.dtype(array.dtype.type))
    if dtype is None:
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    return tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=_shape_proto(array.shape),
        tensor_content=np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        if array.dtype.byteorder == ">"
        else np.ascontiguousarray(array).tobytes(),
    )


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """A TensorProto as a numpy array (raises ValueError when it cannot be parsed)."""
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if proto.dtype == types_pb2.DT_STRING:
        values = np.array(list(proto.string_val), dtype=object)
        return _fill(values, shape, count)
    if proto.dtype not in _NUMERIC:
        import tensorflow as tf

        return tf.make_ndarray(proto)
    np_type, field = _NUMERIC[proto.dtype]
    if proto.tensor_content:
        flat = np.frombuffer(proto.tensor_content, dtype=np.dtype(np_type).newbyteorder("<"))
        if flat.size != count:
            raise ValueError(f"tensor_content holds {flat.size} values, shape {list(shape)} needs {count}")
        return flat.astype(np_type, copy=False).reshape(shape)
    values = np.asarray(getattr(proto, field), dtype=np_type)
    return _fill(values, shape, count)


def _fill(values: np.ndarray, shape: tuple[int, ...], count: int) -> np.ndarray:
    if values.size == count:
        return values.reshape(shape)
    if values.size == 0:
        return np.zeros(shape, dtype=values.dtype) if values.dtype != object else np.full(shape, b"", dtype=object)
    if values.size < count:  # TensorFlow repeats the last value to fill the shape
        padded = np.concatenate([values, np.repeat(values[-1:], count - values.size)])
        return padded.reshape(shape)
    raise ValueError(f"{values.size} values do not fit shape {list(shape)}")
