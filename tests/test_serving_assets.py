"""Tests for serving_assets.py: the warmup file of an export parses as TF Serving's
PredictionLog records (decoded with protobuf's own parser over the message definitions of
tensorflow_serving's .proto files, rebuilt here) and its requests replay through the
SavedModel."""

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorflow.core.framework import tensor_pb2

import export
import extract_features
import modeling
import serving_assets
from helpers import write_tiny_model

SEQ_LENGTH = 16
_F = descriptor_pb2.FieldDescriptorProto


def serving_messages():
    """PredictionLog and the messages it holds, as tensorflow_serving/apis/*.proto define
    them (only the fields a warmup record can use), in a private descriptor pool."""
    pool = descriptor_pool.DescriptorPool()
    tensor_file = descriptor_pb2.FileDescriptorProto()
    tensor_pb2.DESCRIPTOR.CopyToProto(tensor_file)
    for dependency in tensor_pb2.DESCRIPTOR.dependencies:
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(proto)
        for nested in dependency.dependencies:
            inner = descriptor_pb2.FileDescriptorProto()
            nested.CopyToProto(inner)
            pool.Add(inner)
        pool.Add(proto)
    pool.Add(tensor_file)

    serving = descriptor_pb2.FileDescriptorProto(
        name="serving_test.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[tensor_pb2.DESCRIPTOR.name],
    )

    def message(name, *fields, nested=()):
        proto = serving.message_type.add(name=name)
        for field_name, number, kind, type_name, label in fields:
            proto.field.add(
                name=field_name, number=number, type=kind, type_name=type_name, label=label
            )
        for entry in nested:
            proto.nested_type.add().CopyFrom(entry)
        return proto

    optional, repeated = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message(
        "ModelSpec",
        ("name", 1, _F.TYPE_STRING, None, optional),
        ("signature_name", 3, _F.TYPE_STRING, None, optional),
    )
    inputs_entry = descriptor_pb2.DescriptorProto(name="InputsEntry")
    inputs_entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=optional)
    inputs_entry.field.add(
        name="value",
        number=2,
        type=_F.TYPE_MESSAGE,
        type_name=".tensorflow.TensorProto",
        label=optional,
    )
    inputs_entry.options.map_entry = True
    message(
        "PredictRequest",
        ("model_spec", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec", optional),
        ("inputs", 2, _F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry", repeated),
        ("output_filter", 3, _F.TYPE_STRING, None, repeated),
        nested=[inputs_entry],
    )
    message(
        "PredictLog",
        ("request", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest", optional),
    )
    message(
        "PredictionLog",
        ("predict_log", 6, _F.TYPE_MESSAGE, ".tensorflow.serving.PredictLog", optional),
    )
    pool.Add(serving)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.PredictionLog")
    )


@pytest.fixture(scope="module")
def encoder_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving_assets")
    flags = write_tiny_model(root)
    config = modeling.BertConfig.from_json_file(flags["bert_config_file"])
    model_fn = extract_features.model_fn_builder(
        config,
        None,
        [-1],
        use_tpu=False,
        use_one_hot_embeddings=False,
        pooling_settings={
            "strategy": "REDUCE_MEAN",
            "layers": [-1],
            "mask_cls_sep": False,
            "normalize": True,
        },
    )
    return export.export_initialized_model(model_fn, str(root / "export"), SEQ_LENGTH)


def test_warmup_requests_parse_as_prediction_logs_and_replay(encoder_export):
    PredictionLog = serving_messages()
    path = f"{encoder_export}/assets.extra/{serving_assets.WARMUP_FILE}"
    records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert len(records) == len(serving_assets.WARMUP_BATCH_SIZES)
    signature = tf.saved_model.load(encoder_export).signatures["serving_default"]
    for record, batch_size in zip(records, serving_assets.WARMUP_BATCH_SIZES, strict=True):
        log = PredictionLog.FromString(record)
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert sorted(request.inputs) == sorted(export.INPUT_NAMES)
        inputs = {name: tf.make_ndarray(request.inputs[name]) for name in request.inputs}
        assert inputs["input_ids"].shape == (batch_size, SEQ_LENGTH)
        assert inputs["input_mask"].dtype == np.int32
        assert inputs["input_mask"].sum(axis=1).tolist() == [3] * batch_size
        outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
        vectors = outputs["encodes"].numpy()
        assert vectors.shape == (batch_size, 32)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=0, atol=1e-5)


def test_batching_parameters_example_ships_beside_the_model(encoder_export):
    text = open(f"{encoder_export}/assets.extra/{serving_assets.BATCHING_FILE}").read()
    assert "max_batch_size { value: 32 }" in text
    assert "pad_variable_length_inputs: true" in text


def test_varints_and_lengths_over_127_bytes_are_encoded_in_several_bytes():
    # 300 = 0b10_0101100: low seven bits first with the continuation bit, then 0b10.
    assert serving_assets._varint(300) == bytes([0xAC, 0x02])
    payload = b"x" * 200
    assert serving_assets._field(2, payload) == bytes([0x12, 0xC8, 0x01]) + payload


def test_a_tagger_with_a_fourth_input_gets_replayable_warmup_requests(tmp_path):
    from serve_helpers import export_tiny_models

    (ner_export,) = export_tiny_models(tmp_path, SEQ_LENGTH, ("ner",)).values()
    PredictionLog = serving_messages()
    path = f"{ner_export}/assets.extra/{serving_assets.WARMUP_FILE}"
    signature = tf.saved_model.load(ner_export).signatures["serving_default"]
    for record in tf.data.TFRecordDataset(path):
        request = PredictionLog.FromString(bytes(record.numpy())).predict_log.request
        assert sorted(request.inputs) == ["input_ids", "input_mask", "label_mask", "segment_ids"]
        inputs = {
            name: tf.constant(tf.make_ndarray(request.inputs[name])) for name in request.inputs
        }
        tag_ids = signature(**inputs)["tag_ids"].numpy()
        assert tag_ids.shape == tuple(inputs["input_ids"].shape)
