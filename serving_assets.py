"""What TensorFlow Serving reads beside a SavedModel: warmup requests and a batching example.

`assets.extra/tf_serving_warmup_requests` is a TFRecord file of `tensorflow.serving.
PredictionLog` protos that TF Serving replays through a model before it reports the model
AVAILABLE, so the first real request does not pay for graph optimisation and memory
allocation. The protos come from tensorflow_serving's `apis/` package, which is not a
dependency here; the few fields a warmup record uses are written directly in the protobuf
wire format (field numbers from `prediction_log.proto`, `predict.proto` and `model.proto`),
while the tensors are TensorFlow's own `TensorProto`s:

  PredictionLog  { predict_log = 6: PredictLog }
  PredictLog     { request = 1: PredictRequest }
  PredictRequest { model_spec = 1: ModelSpec; inputs = 2: map<string, TensorProto> }
  ModelSpec      { name = 1: string; signature_name = 3: string }

`batching_parameters.txt` is an example for `tensorflow_model_server --enable_batching
--batching_parameters_file=...` (a text-format `BatchingParameters`), sized like serve.py's
defaults; TF Serving reads it only when given that flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

WARMUP_FILE = "tf_serving_warmup_requests"
BATCHING_FILE = "batching_parameters.txt"
# One small and one batched request at the full length: the shapes a server sees most.
WARMUP_BATCH_SIZES = (1, 8)

_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or an embedded message)."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def predict_request(
    inputs: dict[str, np.ndarray], model_name: str = "", signature_name: str = "serving_default"
) -> bytes:
    """A serialized `PredictRequest` of `inputs` (name -> array)."""
    spec = b""
    if model_name:
        spec += _field(1, model_name.encode())
    spec += _field(3, signature_name.encode())
    message = _field(1, spec)
    for name in sorted(inputs):
        tensor = tf.make_tensor_proto(inputs[name]).SerializeToString()
        entry = _field(1, name.encode()) + _field(2, tensor)
        message += _field(2, entry)
    return message


def prediction_log(request: bytes) -> bytes:
    """A serialized `PredictionLog` holding one `PredictLog` of `request`."""
    return _field(6, _field(1, request))


def warmup_inputs(shapes: Mapping[str, Sequence[int]], batch_size: int) -> dict[str, np.ndarray]:
    """int32 `[batch_size, *shape]` inputs every export accepts (`shapes`: one example's
    shape per input, e.g. `[seq_length]`, or `[num_choices, seq_length]`): token id 0 (in
    every vocabulary) at the first three positions, marked real, padding after; segment 0."""
    values = {}
    for name, shape in shapes.items():
        array = np.zeros([batch_size, *shape], np.int32)
        if name.endswith("_mask"):
            array[..., : min(3, shape[-1])] = 1
        values[name] = array
    return values


def write_warmup_requests(
    path: str,
    shapes: Mapping[str, Sequence[int]],
    batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES,
) -> None:
    """Writes one PredictionLog record per batch size to `path` (a TFRecord file)."""
    with tf.io.TFRecordWriter(path) as writer:
        for batch_size in batch_sizes:
            inputs = warmup_inputs(shapes, batch_size)
            writer.write(prediction_log(predict_request(inputs)))


def batching_parameters(max_batch_size: int = 32, batch_timeout_micros: int = 5000) -> str:
    """An example `BatchingParameters` in text format."""
    return (
        "# tensorflow_model_server --enable_batching --batching_parameters_file=<this file>\n"
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {batch_timeout_micros} }}\n"
        "max_enqueued_batches { value: 64 }\n"
        "num_batch_threads { value: 2 }\n"
        "pad_variable_length_inputs: true\n"
    )


def write_serving_assets(directory: str, shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Writes both files into `directory` (`shapes`: one example's shape per input); returns
    the `assets_extra` entries of `export.export_saved_model` that ship them (name in
    `assets.extra/` -> file)."""
    warmup = os.path.join(directory, WARMUP_FILE)
    write_warmup_requests(warmup, shapes)
    batching = os.path.join(directory, BATCHING_FILE)
    with open(batching, "w", encoding="utf-8") as writer:
        writer.write(batching_parameters())
    return {WARMUP_FILE: warmup, BATCHING_FILE: batching}
