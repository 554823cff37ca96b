"""Exporting trained models for serving (TensorFlow Serving, or `tf.saved_model.load`).

A SavedModel written here has two signatures over the same graph:
- `serving_default`: int32 `input_ids`, `input_mask`, `segment_ids`, each
  `[batch_size, max_seq_length]`, as `tokenization.py` and the task's featurization make them
  (a task may add inputs and give them other shapes: multiple choice feeds
  `[batch_size, num_choices, max_seq_length]`);
- `examples:serving_default`: a `[batch_size]` string tensor `examples` of serialized
  `tf.train.Example`s with those three features (what the TFRecords of the scripts hold).
The outputs are whatever the task's model_fn names in its `export_outputs` (e.g.
`probabilities` and `logits` for the classifier).
"""

from __future__ import annotations

import bert_logging

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf
from absl import flags

import atomic_files
import estimator_builder
import serving_assets
import tfrecord_io

tf1 = tf.compat.v1

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")


def define_export_flag() -> None:
    """The --export_dir flag every task script takes."""
    flags.DEFINE_string(
        "export_dir",
        None,
        "Write a SavedModel for serving under this directory, in a timestamped "
        "subdirectory as TensorFlow Serving expects.",
    )


InputShapes = Mapping[str, Sequence[int]]


def input_shapes_of(
    max_seq_length: int, input_names: Sequence[str], input_shapes: InputShapes | None = None
) -> dict[str, list[int]]:
    """The shape of one example's value of each input: `input_shapes[name]` where given,
    else `[max_seq_length]` (multiple choice, for one, feeds `[num_choices, max_seq_length]`)."""
    input_shapes = input_shapes or {}
    unknown = sorted(set(input_shapes) - set(input_names))
    if unknown:
        raise ValueError(f"input_shapes names inputs {unknown} that are not in {input_names}")
    return {name: list(input_shapes.get(name, [max_seq_length])) for name in input_names}


def serving_input_receiver_fn(
    max_seq_length: int,
    input_names: Sequence[str] = INPUT_NAMES,
    input_shapes: InputShapes | None = None,
    dynamic_length: bool = True,
) -> Callable[[], object]:
    """The receiver of both signatures.

    The int tensors `input_names` (a task may add to the encoder's three) are the features
    the model reads, each `[batch_size, *shape]` with the shape of `input_shapes_of`; they
    are computed from the serialized examples, and a client of `serving_default` feeds them
    directly, so both ways in share one graph. With `dynamic_length`, when every input is
    one value per position (`[max_seq_length]`), they are `[batch_size, None]`: a client may
    feed any length up to the model's max_position_embeddings (a short query then costs a
    short forward pass), and a batch of examples (written at `max_seq_length`) is cut to its
    longest member. Otherwise they keep their static shapes.
    """
    shapes = input_shapes_of(max_seq_length, input_names, input_shapes)
    per_position = all(shape == [max_seq_length] for shape in shapes.values())
    dynamic_length = dynamic_length and per_position

    def receiver():
        serialized = tf1.placeholder(tf.string, [None], name="examples")
        spec = {name: tf.io.FixedLenFeature(shapes[name], tf.int64) for name in input_names}
        parsed = tf.io.parse_example(serialized, spec)
        parsed = {name: tf.cast(parsed[name], tf.int32) for name in input_names}
        if dynamic_length:
            longest = tf.reduce_max(tfrecord_io.batch_sequence_lengths(parsed["input_mask"]))
            length = tf.maximum(longest, 0)
            features = {
                name: tf1.placeholder_with_default(
                    parsed[name][:, :length], shape=[None, None], name=name
                )
                for name in input_names
            }
        else:
            features = {name: tf.identity(parsed[name], name=name) for name in input_names}
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
    assets_extra: dict[str, str] | None = None,
    metadata: dict | None = None,
    input_names: Sequence[str] = INPUT_NAMES,
    input_shapes: InputShapes | None = None,
    dynamic_length: bool = True,
    tf_serving_assets: bool = True,
    description: ModelDescription | None = None,
) -> str:
    """Writes a SavedModel of `checkpoint_path` under `export_dir_base/<timestamp>/` (the
    versioned layout TensorFlow Serving watches) and returns its path.

    `model_fn` is the task's TPUEstimator-style model_fn; in PREDICT mode it must return
    `export_outputs`. Export always builds the CPU graph, also for a TPU-trained model.
    `description` (the task's settings, tokenizer and config, see `ModelDescription`) is
    written into `assets.extra/` with `max_seq_length` added to its metadata
    (`<METADATA_FILE>`, which is what `predictor.py` reads). Without one, `metadata` is
    written so, and `assets_extra` maps file names inside `assets.extra/` to files to copy
    there (e.g. `tokenizer_assets(...)`). `input_names`,
    `input_shapes` and `dynamic_length`: see `serving_input_receiver_fn`.
    `tf_serving_assets` adds TF Serving's warmup requests and a batching-parameters example
    to `assets.extra/` (see `serving_assets.py`).
    """
    if description is not None and (metadata or assets_extra):
        raise ValueError("export_saved_model: give a description, or metadata and assets_extra")
    if description is None:
        description = ModelDescription(dict(metadata or {}))
    with tempfile.TemporaryDirectory() as scratch:
        estimator = tf.estimator.Estimator(
            estimator_builder.as_estimator_model_fn(model_fn),
            model_dir=os.path.join(scratch, "model"),
            params={},
        )
        assets_extra = dict(assets_extra or {})
        # The metadata is always written: with dynamic-length inputs the signature no longer
        # tells the length the model was trained at, which a predictor pads and truncates to.
        assets_extra.update(write_description(scratch, description, max_seq_length))
        if tf_serving_assets:
            assets_extra.update(
                serving_assets.write_serving_assets(
                    scratch, input_shapes_of(max_seq_length, input_names, input_shapes)
                )
            )
        path = estimator.export_saved_model(
            export_dir_base,
            serving_input_receiver_fn(max_seq_length, input_names, input_shapes, dynamic_length),
            assets_extra=assets_extra or None,
            checkpoint_path=checkpoint_path,
        )
    path = path.decode() if isinstance(path, bytes) else path
    tf1.logging.info("Exported %s as a SavedModel to %s", checkpoint_path, path)
    return path


# ------------------------------------------- what a predictor needs, and frozen graphs
# Files of `assets.extra/` that `predictor.py` reads: the export's settings, and the
# tokenizer's vocabulary (WordPiece) or model (SentencePiece).
METADATA_FILE = "bert_export.json"
VOCAB_ASSET = "vocab.txt"
SPM_MODEL_ASSET = "spm.model"
EXTRA_ASSETS_DIR = "assets.extra"

# The encoder's config, beside the weights of a run or an export (convert_checkpoint.py
# reads it there).
BERT_CONFIG_ASSET = "bert_config.json"


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What a fine-tuned model needs beside its weights to be used elsewhere.

    Attributes:
      metadata: the task's settings, written as `bert_export.json` (labels, task_kind,
        do_lower_case...: what `predictor.py` and `convert_checkpoint.py` read).
      vocab_file, spm_model_file: the tokenizer's file (see `tokenizer_assets`).
      bert_config_file: the encoder's config, copied as `bert_config.json`.

    The fine-tuning loop writes it into a run's output directory when the run starts, and
    `export_saved_model` into an export's `assets.extra/`: the same files in both places.
    """

    metadata: Mapping[str, Any]
    vocab_file: str | None = None
    spm_model_file: str | None = None
    bert_config_file: str | None = None

    def files(self) -> dict[str, str]:
        """The files to copy: name in the written directory -> source path."""
        files = tokenizer_assets(self.vocab_file, self.spm_model_file)
        if self.bert_config_file:
            files[BERT_CONFIG_ASSET] = self.bert_config_file
        return files


def write_description(
    directory: str, description: ModelDescription, max_seq_length: int
) -> dict[str, str]:
    """Writes `description` into `directory`: its metadata with `max_seq_length` added as
    `<METADATA_FILE>`, its files copied under their names (a file already in place is
    left alone). Each file appears whole or not at all. Returns name -> path written."""
    metadata_path = os.path.join(directory, METADATA_FILE)
    metadata = dict(description.metadata, max_seq_length=max_seq_length)
    atomic_files.write_text(metadata_path, json.dumps(metadata, indent=2) + "\n")
    written = {METADATA_FILE: metadata_path}
    for name, source in description.files().items():
        target = os.path.join(directory, name)
        if os.path.abspath(source) != os.path.abspath(target):
            with atomic_files.writing(target) as temporary:
                tf.io.gfile.copy(source, temporary)
        written[name] = target
    return written


@contextlib.contextmanager
def initialized_checkpoint(
    model_fn: estimator_builder.ModelFn,
    max_seq_length: int,
    input_names: Sequence[str] = INPUT_NAMES,
    input_shapes: InputShapes | None = None,
):
    """Yields a temporary checkpoint of what `model_fn` initializes itself with (e.g. its
    --init_checkpoint), holding exactly the variables of its PREDICT graph.

    A pre-trained checkpoint may hold other heads and lack `global_step` (converted ones
    do), while a SavedModel export restores every variable of its graph by name; so the
    variables are initialized through the model_fn's own restoring and saved anew.
    """
    with tempfile.TemporaryDirectory() as staging:
        with tf.Graph().as_default():
            shapes = input_shapes_of(max_seq_length, input_names, input_shapes)
            inputs = {
                name: tf1.placeholder(tf.int32, [None, *shapes[name]], name=name)
                for name in input_names
            }
            model_fn(inputs, None, tf.estimator.ModeKeys.PREDICT, {})
            tf1.train.get_or_create_global_step()
            with tf1.Session() as session:
                session.run(tf1.global_variables_initializer())
                checkpoint = tf1.train.Saver().save(session, os.path.join(staging, "model.ckpt"))
        yield checkpoint


def export_initialized_model(
    model_fn: estimator_builder.ModelFn,
    export_dir_base: str,
    max_seq_length: int,
    **export_kwargs,
) -> str:
    """Exports what `model_fn` initializes itself with rather than a training checkpoint
    (see `initialized_checkpoint`); `export_kwargs` go to `export_saved_model`."""
    with initialized_checkpoint(model_fn, max_seq_length) as checkpoint:
        return export_saved_model(
            model_fn, checkpoint, export_dir_base, max_seq_length, **export_kwargs
        )


def tokenizer_assets(vocab_file: str | None, spm_model_file: str | None) -> dict[str, str]:
    """The `assets_extra` of `export_saved_model` that ship the tokenizer's file with the
    model: SentencePiece when `spm_model_file` is set (as `tokenization.create_tokenizer`
    decides), else the WordPiece vocab."""
    if spm_model_file:
        return {SPM_MODEL_ASSET: spm_model_file}
    if vocab_file:
        return {VOCAB_ASSET: vocab_file}
    return {}


def resolve_saved_model_dir(path: str) -> str:
    """`path` itself when it holds a SavedModel, else its newest timestamped export (the
    `export_dir_base` layout written by `export_saved_model`)."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = []
    if tf.io.gfile.isdir(path):
        for name in tf.io.gfile.listdir(path):
            name = name.rstrip("/")
            if name.isdigit() and tf.io.gfile.exists(os.path.join(path, name, "saved_model.pb")):
                versions.append(name)
    if not versions:
        raise FileNotFoundError(
            f"{path}: no saved_model.pb there nor in a timestamped subdirectory of it"
        )
    return os.path.join(path, max(versions, key=int))


def read_export_metadata(export_path: str) -> dict:
    """The settings `export_saved_model(..., metadata=...)` wrote beside the model."""
    path = os.path.join(export_path, EXTRA_ASSETS_DIR, METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: this SavedModel was exported without the tokenizer settings "
            "a predictor needs (export it again with run_classifier.py --export_dir)"
        )
    with tf.io.gfile.GFile(path) as reader:
        try:
            return json.load(reader)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err


def freeze_saved_model(
    saved_model_dir: str, output_pb: str, signature: str = "serving_default"
) -> dict[str, dict[str, str]]:
    """Writes one of a SavedModel's signatures as a single frozen GraphDef `.pb`.

    Variables become constants, each signature input becomes a Placeholder (so the
    tf.Example parsing in front of `serving_default` goes), and only the nodes the outputs
    need are kept. Each output also gets an Identity node named after its signature key
    (`probabilities`, `logits`...) when that name is free. `saved_model_dir` may be an
    `export_dir_base`; its newest export is used.

    Returns and logs `{"inputs": {key: tensor name}, "outputs": {key: tensor name}}`: what to
    feed and fetch after `tf.compat.v1.import_graph_def(graph_def, name="")`.
    """
    export_path = resolve_saved_model_dir(saved_model_dir)
    graph = tf.Graph()
    with tf1.Session(graph=graph) as session:
        meta_graph = tf1.saved_model.loader.load(
            session, [tf1.saved_model.tag_constants.SERVING], export_path
        )
        if signature not in meta_graph.signature_def:
            raise ValueError(
                f"{export_path} has no signature {signature!r}; it has "
                f"{sorted(meta_graph.signature_def)}"
            )
        signature_def = meta_graph.signature_def[signature]
        with graph.as_default():
            outputs = {
                key: tf.identity(graph.get_tensor_by_name(info.name), name=key).name
                for key, info in sorted(signature_def.outputs.items())
            }
        output_nodes = [name.split(":")[0] for name in outputs.values()]
        frozen = tf1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), output_nodes
        )
    inputs = _inputs_as_placeholders(frozen, signature_def.inputs)
    frozen = tf1.graph_util.extract_sub_graph(frozen, output_nodes)
    tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(output_pb)))
    with tf.io.gfile.GFile(output_pb, "wb") as writer:
        writer.write(frozen.SerializeToString())
    nodes = {"inputs": inputs, "outputs": outputs}
    tf1.logging.info(
        "Froze signature %r of %s into %s (%d nodes): inputs %s, outputs %s",
        signature,
        export_path,
        output_pb,
        len(frozen.node),
        inputs,
        outputs,
    )
    return nodes


def _inputs_as_placeholders(graph_def, signature_inputs) -> dict[str, str]:
    """Turns, in place, the node behind each signature input into a Placeholder of the
    input's dtype and shape, cutting off whatever computed it; returns the inputs' tensor
    names by key. An input that is not its node's first output is left as it is (it can
    still be fed)."""
    nodes = {node.name: node for node in graph_def.node}
    names = {}
    for key, info in sorted(signature_inputs.items()):
        node_name, _, index = info.name.partition(":")
        names[key] = info.name
        node = nodes[node_name]
        if node.op == "Placeholder" or index not in ("", "0"):
            continue
        node.Clear()
        node.name = node_name
        node.op = "Placeholder"
        node.attr["dtype"].type = info.dtype
        node.attr["shape"].shape.CopyFrom(info.tensor_shape)
    return names


def _define_freeze_flags() -> None:
    flags.DEFINE_string(
        "saved_model_dir",
        None,
        "The SavedModel to freeze, or the --export_dir holding timestamped exports (the "
        "newest is used).",
    )
    flags.DEFINE_string("output_pb", None, "Where to write the frozen GraphDef (.pb).")
    flags.DEFINE_string("signature", "serving_default", "The signature to freeze.")


def _freeze_main(_) -> None:
    bert_logging.configure()
    nodes = freeze_saved_model(
        flags.FLAGS.saved_model_dir, flags.FLAGS.output_pb, flags.FLAGS.signature
    )
    for kind in ("inputs", "outputs"):
        for key, name in nodes[kind].items():
            print(f"{kind[:-1]}\t{key}\t{name}")


if __name__ == "__main__":
    # python export.py --saved_model_dir=EXPORT_DIR --output_pb=model.pb
    from absl import app

    import flag_help

    _define_freeze_flags()
    flag_help.use_grouped_help(required=("saved_model_dir", "output_pb"))
    app.run(_freeze_main)
