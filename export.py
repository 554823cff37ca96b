"""Exporting trained models for serving (TensorFlow Serving, or `tf.saved_model.load`).

A SavedModel written here has two signatures over the same graph:
- `serving_default`: int32 `input_ids`, `input_mask`, `segment_ids`, each
  `[batch_size, max_seq_length]`, as `tokenization.py` and the task's featurization make them;
- `examples:serving_default`: a `[batch_size]` string tensor `examples` of serialized
  `tf.train.Example`s with those three features (what the TFRecords of the scripts hold).
The outputs are whatever the task's model_fn names in its `export_outputs` (e.g.
`probabilities` and `logits` for the classifier).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

import estimator_builder

tf1 = tf.compat.v1

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")


def serving_input_receiver_fn(max_seq_length: int) -> Callable[[], object]:
    """The receiver of both signatures.

    The int tensors are the features the model reads; they are computed from the serialized
    examples, and a client of `serving_default` feeds them directly, so both ways in share
    one graph.
    """

    def receiver():
        serialized = tf1.placeholder(tf.string, [None], name="examples")
        spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in INPUT_NAMES}
        parsed = tf.io.parse_example(serialized, spec)
        features = {
            name: tf.identity(tf.cast(parsed[name], tf.int32), name=name) for name in INPUT_NAMES
        }
        return tf.estimator.export.ServingInputReceiver(
            features=features,
            receiver_tensors=features,
            receiver_tensors_alternatives={"examples": {"examples": serialized}},
        )

    return receiver


def export_saved_model(
    model_fn: estimator_builder.ModelFn,
    checkpoint_path: str,
    export_dir_base: str,
    max_seq_length: int,
) -> str:
    """Writes a SavedModel of `checkpoint_path` under `export_dir_base/<timestamp>/` (the
    versioned layout TensorFlow Serving watches) and returns its path.

    `model_fn` is the task's TPUEstimator-style model_fn; in PREDICT mode it must return
    `export_outputs`. Export always builds the CPU graph, also for a TPU-trained model.
    """
    estimator = tf.estimator.Estimator(estimator_builder.as_estimator_model_fn(model_fn))
    path = estimator.export_saved_model(
        export_dir_base,
        serving_input_receiver_fn(max_seq_length),
        checkpoint_path=checkpoint_path,
    )
    path = path.decode() if isinstance(path, bytes) else path
    tf1.logging.info("Exported %s as a SavedModel to %s", checkpoint_path, path)
    return path
