r"""Extracts BERT's hidden states for every token of a text file, and sentence vectors.

Each line of `--input_file` is one example; `text_a ||| text_b` makes a sentence pair.

  python extract_features.py --input_file=input.txt --output_file=output.jsonl \
      --vocab_file=$BERT/vocab.txt --bert_config_file=$BERT/bert_config.json \
      --init_checkpoint=$BERT/bert_model.ckpt --layers=-1,-2,-3,-4 --max_seq_length=128

Outputs (any combination, at least one):
- `--output_file`: JSON lines as the original writes them, one per input line:
  `{"linex_index": i, "features": [{"token": "[CLS]", "layers": [{"index": -1,
  "values": [...]}, ...]}, ...]}`, one entry per real token (`[CLS] a [SEP] b [SEP]`), values
  rounded to 6 decimals.
- `--pooled_output_file=vectors.npy`: one float32 vector per input line, `[num_lines,
  width]`, in input order. With `--pooling=cls|mean` (the earlier flags, kept), from the
  layer given first in `--layers`: `cls` takes the vector of `[CLS]`; `mean` averages over
  every real token, `[CLS]` and the `[SEP]`s included, padding excluded. Without
  `--pooling`, bert-as-service's pooling: `--pooling_strategy` (REDUCE_MEAN by default) over
  `--pooling_layer` (-2 by default), `--mask_cls_sep`, `--normalize_vectors` (see
  `pooling.py`); `NONE` writes `[num_lines, max_seq_length, width]` token vectors.
  Leave `--output_file` unset to skip the (large) JSON for big inputs.
- `--export_dir`: a SavedModel of the encoder of `--init_checkpoint` (see `export.py`) whose
  outputs are `pooled_output` `[batch_size, hidden_size]` (BERT's pooler: tanh-dense over
  `[CLS]`, as in TF Hub's BERT), `sequence_output` `[batch_size, seq_length, hidden_size]`
  (the last layer) and `encodes`, the sentence vectors of the pooling flags above, so a TF
  Serving client gets vectors directly; the tokenizer's file and settings (the pooling
  included) go to its `assets.extra/`.
"""

from __future__ import annotations

import bert_logging

import contextlib
import dataclasses
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf
from absl import app, flags

import atomic_files
import encoder_inputs
import estimator_builder
import export
import flag_help
import input_files
import modeling
import pooling as pooling_lib
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

POOLING_MODES = ("cls", "mean")
_PAIR_SEPARATOR = re.compile(r"^(.*) \|\|\| (.*)$")
_NUM_EXAMPLES_TO_LOG = 5


def define_flags() -> None:
    """The original script's flags (same names and defaults), plus the pooled and
    SavedModel outputs and the shared hardware flags."""
    flags.DEFINE_string(
        "input_file", None, "Text file, one example a line; 'text_a ||| text_b' for pairs."
    )
    flags.DEFINE_string(
        "output_file",
        None,
        "JSON lines of every token's values in --layers. Leave unset to write only "
        "--pooled_output_file (or only --export_dir).",
    )
    flags.DEFINE_string(
        "layers",
        "-1,-2,-3,-4",
        "Comma-separated encoder layers to output; -1 is the last, 0 the first.",
    )
    flags.DEFINE_string(
        "bert_config_file",
        None,
        "The config json file of the pre-trained BERT model; it sets the architecture.",
    )
    flags.DEFINE_integer(
        "max_seq_length",
        128,
        "The maximum total input sequence length after WordPiece tokenization. Longer "
        "sequences are truncated, shorter ones padded.",
    )
    flags.DEFINE_string(
        "init_checkpoint", None, "Initial checkpoint (usually from a pre-trained BERT model)."
    )
    flags.DEFINE_string(
        "vocab_file", None, "The vocabulary file that the BERT model was trained on."
    )
    flags.DEFINE_string(
        "spm_model_file",
        None,
        "A SentencePiece model to tokenize with instead of --vocab_file.",
    )
    flags.DEFINE_bool(
        "do_lower_case",
        True,
        "Whether to lower case the input text. True for uncased models, False for cased ones.",
    )
    flags.DEFINE_integer("batch_size", 32, "Batch size for predictions.")
    flags.DEFINE_bool(
        "use_one_hot_embeddings",
        False,
        "Look embeddings up with a one-hot matmul instead of a gather (faster on TPUs).",
    )
    flags.DEFINE_enum(
        "pooling",
        None,
        list(POOLING_MODES),
        "With --pooled_output_file: 'cls' (the [CLS] vector) or 'mean' (the average over "
        "real tokens, [CLS] and [SEP] included) of the first layer in --layers. Unset: "
        "--pooling_strategy over --pooling_layer.",
    )
    flags.DEFINE_string(
        "pooled_output_file",
        None,
        "A .npy file of float32 [num_lines, width] sentence vectors (see --pooling and "
        "--pooling_strategy).",
    )
    pooling_lib.define_flags()
    # The encoder of --init_checkpoint, outputs pooled_output and sequence_output.
    export.define_export_flag()
    input_files.define_input_encoding_flag()
    estimator_builder.define_hardware_flags()
    estimator_builder.define_gpu_flags()


# ---------------------------------------------------------------------------------- the data


@dataclasses.dataclass
class InputExample:
    """One line of the input file; `unique_id` is its 0-based line number."""

    unique_id: int
    text_a: str
    text_b: str | None


@dataclasses.dataclass
class InputFeatures:
    """The model inputs of one example.

    Attributes:
      tokens: the real tokens, `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, unpadded.
      input_ids, input_mask, input_type_ids: `[seq_length]` ids, 1/0 real-token mask and
        segment ids, zero-padded.
    """

    unique_id: int
    tokens: list[str]
    input_ids: list[int]
    input_mask: list[int]
    input_type_ids: list[int]


def read_examples(
    input_file: str, encoding: str = input_files.DEFAULT_ENCODING
) -> list[InputExample]:
    """One example a line; `text_a ||| text_b` (the last ` ||| ` splits) makes a pair.

    Lines are stripped of surrounding whitespace; a blank line is an empty example, as in
    the original, so that line i of the input is always example i of the output.

    Raises:
      input_files.InputFileError: the file is empty (there would be nothing to write), a
        git-lfs pointer, or not text in `encoding` (the message gives the line).
    """
    if not tf.io.gfile.exists(input_file):
        raise FileNotFoundError(f"--input_file: {input_file} does not exist")
    examples = []
    with tf.io.gfile.GFile(input_file, "rb") as reader:
        for line_number, raw in enumerate(reader, start=1):
            if line_number == 1 and input_files.is_lfs_pointer(raw):
                raise input_files.InputFileError(
                    input_files.lfs_pointer_message(input_file, "input file")
                )
            line = input_files.decode(raw, input_file, encoding, first_line=line_number).strip()
            match = _PAIR_SEPARATOR.match(line)
            text_a, text_b = (match.group(1), match.group(2)) if match else (line, None)
            examples.append(InputExample(len(examples), text_a, text_b))
    if not examples:
        raise input_files.InputFileError(
            f"--input_file={input_file} is empty: there are no lines to extract features of"
        )
    return examples


def convert_examples_to_features(
    examples: Iterable[InputExample], seq_length: int, tokenizer: tokenization.Tokenizer
) -> list[InputFeatures]:
    """Tokenizes, truncates and pads each example to `[seq_length]`, exactly as
    run_classifier does: a pair is cut longest-first to `seq_length - 3` tokens, a single
    sequence to `seq_length - 2`."""
    encoder_inputs.check_max_seq_length(seq_length)
    tokenization.require_tokens(tokenizer, tokenization.FEATURE_TOKENS, "the model's inputs")
    features = []
    for example in examples:
        inputs = encoder_inputs.text_inputs(example.text_a, example.text_b, seq_length, tokenizer)
        feature = InputFeatures(
            unique_id=example.unique_id,
            tokens=inputs.tokens,
            input_ids=inputs.input_ids,
            input_mask=inputs.input_mask,
            input_type_ids=inputs.segment_ids,
        )
        if len(features) < _NUM_EXAMPLES_TO_LOG:
            _log_feature(feature)
        features.append(feature)
    return features


def _log_feature(feature: InputFeatures) -> None:
    # The first example of the run is shown; the next ones need --verbosity=1.
    level = bert_logging.first_time_level("extract_features example")
    tf1.logging.log(level, "*** Example ***")
    tf1.logging.log(level, "unique_id: %s", feature.unique_id)
    tf1.logging.log(level, "tokens: %s", " ".join(feature.tokens))
    tf1.logging.log(level, "input_ids: %s", " ".join(map(str, feature.input_ids)))
    tf1.logging.log(level, "input_mask: %s", " ".join(map(str, feature.input_mask)))
    tf1.logging.log(level, "input_type_ids: %s", " ".join(map(str, feature.input_type_ids)))


def _feature_columns(features: Sequence[InputFeatures]) -> dict[str, np.ndarray]:
    return {
        "unique_ids": np.array([f.unique_id for f in features], np.int32),
        "input_ids": np.array([f.input_ids for f in features], np.int32),
        "input_mask": np.array([f.input_mask for f in features], np.int32),
        "input_type_ids": np.array([f.input_type_ids for f in features], np.int32),
    }


def input_fn_builder(features: Sequence[InputFeatures], seq_length: int, use_tpu: bool = False):
    """An `input_fn(params)` over `features` in order, batched by `params["batch_size"]`.

    On TPU the features are constants of the graph (TPUs cannot run Python generators),
    which caps the input at about 2 GB of ids; elsewhere they are streamed from Python,
    which has no such limit.
    """
    signature = {
        "unique_ids": tf.TensorSpec([], tf.int32),
        **{
            name: tf.TensorSpec([seq_length], tf.int32)
            for name in ("input_ids", "input_mask", "input_type_ids")
        },
    }

    def generate() -> Iterator[dict]:
        for feature in features:
            yield {
                "unique_ids": feature.unique_id,
                "input_ids": feature.input_ids,
                "input_mask": feature.input_mask,
                "input_type_ids": feature.input_type_ids,
            }

    def input_fn(params):
        if use_tpu:
            dataset = tf.data.Dataset.from_tensor_slices(_feature_columns(features))
        else:
            dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.batch(params["batch_size"], drop_remainder=False)

    return input_fn


# --------------------------------------------------------------------------------- the model


def parse_layer_indexes(layers: str, num_hidden_layers: int) -> list[int]:
    """`--layers` ("-1,-2") as integers, each checked to name an encoder layer."""
    indexes = []
    for part in layers.split(","):
        try:
            index = int(part)
        except ValueError:
            raise ValueError(
                f"--layers={layers!r}: {part.strip()!r} is not an integer layer index"
            ) from None
        if not -num_hidden_layers <= index < num_hidden_layers:
            raise ValueError(
                f"--layers={layers!r}: layer {index} does not exist; the model has "
                f"{num_hidden_layers} layers (indexes {-num_hidden_layers} to "
                f"{num_hidden_layers - 1})"
            )
        indexes.append(index)
    return indexes


def pool_tokens(sequence: tf.Tensor, input_mask: tf.Tensor, pooling: str) -> tf.Tensor:
    """One vector per sequence: its first token (`cls`), or the mean over the positions
    where `input_mask` is 1 (`mean`, which includes `[CLS]` and `[SEP]`).

    Args:
      sequence: float `[batch_size, seq_length, hidden_size]`.
      input_mask: int `[batch_size, seq_length]`.

    Returns:
      `[batch_size, hidden_size]`.
    """
    if pooling == "cls":
        return sequence[:, 0, :]
    if pooling != "mean":
        raise ValueError(f"pooling={pooling!r}: expected one of {POOLING_MODES}")
    weights = tf.cast(input_mask, sequence.dtype)[:, :, tf.newaxis]
    total = tf.reduce_sum(sequence * weights, axis=1)
    # An all-padding row (never made by this script) would divide by zero.
    return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)


def _segment_ids(features: dict) -> tf.Tensor:
    """The input_fn's `input_type_ids` (the original's name), or `segment_ids` when the
    features come from a served request (export.py's name)."""
    if "input_type_ids" in features:
        return features["input_type_ids"]
    return features["segment_ids"]


def model_fn_builder(
    bert_config: modeling.BertConfig,
    init_checkpoint: str | None,
    layer_indexes: Sequence[int],
    use_tpu: bool,
    use_one_hot_embeddings: bool,
    pooling: str | None = None,
    write_layers: bool = True,
    compute_type: tf.DType = tf.float32,
    pooling_settings: dict | None = None,
):
    """Returns the model_fn (TPUEstimator style, PREDICT only) of the extractor.

    Its predictions: `unique_id`; `layer_output_<i>` `[batch_size, seq_length, hidden_size]`
    for the i-th of `layer_indexes` when `write_layers`; and `pooled_vector`
    `[batch_size, hidden_size]` of the first of `layer_indexes` when `pooling` is set, else
    `pooling_settings`' vectors (see `pooling.settings_from_flags`) when those are given. Its
    export outputs are `pooled_output`, `sequence_output` and, with `pooling_settings`,
    `encodes`. All float32.
    """

    def model_fn(features, labels, mode, params):
        del labels, params
        if mode != tf.estimator.ModeKeys.PREDICT:
            raise ValueError(f"Only PREDICT modes are supported: {mode}")
        model = modeling.BertModel(
            config=bert_config,
            is_training=False,
            input_ids=features["input_ids"],
            input_mask=features["input_mask"],
            token_type_ids=_segment_ids(features),
            use_one_hot_embeddings=use_one_hot_embeddings,
            compute_type=compute_type,
        )
        scaffold_fn = estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu)
        all_layers = [tf.cast(layer, tf.float32) for layer in model.get_all_encoder_layers()]
        predictions = {}
        if "unique_ids" in features:
            predictions["unique_id"] = features["unique_ids"]
        if write_layers:
            for i, layer_index in enumerate(layer_indexes):
                predictions[f"layer_output_{i}"] = all_layers[layer_index]
        encodes = None
        if pooling_settings is not None:
            encodes = pooling_lib.pool_encoder_layers(
                all_layers, features["input_mask"], _segment_ids(features), pooling_settings
            )
        if pooling:
            predictions["pooled_vector"] = pool_tokens(
                all_layers[layer_indexes[0]], features["input_mask"], pooling
            )
        elif encodes is not None:
            predictions["pooled_vector"] = encodes
        encoder_outputs = {
            "pooled_output": tf.cast(model.get_pooled_output(), tf.float32),
            "sequence_output": all_layers[-1],
        }
        if encodes is not None:
            encoder_outputs[pooling_lib.OUTPUT_KEY] = encodes
        return tf1.estimator.tpu.TPUEstimatorSpec(
            mode=mode,
            predictions=predictions,
            export_outputs={"serving_default": tf.estimator.export.PredictOutput(encoder_outputs)},
            scaffold_fn=scaffold_fn,
        )

    return model_fn


# ------------------------------------------------------------------------------- the outputs


def json_line(unique_id: int, tokens: Sequence[str], layers: dict[int, np.ndarray]) -> str:
    """One line of --output_file, in the original's key order and rounding.

    `layers` maps each layer index of --layers, in order, to its `[seq_length, hidden_size]`
    values; only the rows of `tokens` (the real tokens) are written.
    """
    rows = {index: values[: len(tokens)].tolist() for index, values in layers.items()}
    token_entries = []
    for position, token in enumerate(tokens):
        layer_entries = [
            {"index": index, "values": [round(x, 6) for x in rows[index][position]]}
            for index in layers
        ]
        token_entries.append({"token": token, "layers": layer_entries})
    return json.dumps({"linex_index": unique_id, "features": token_entries})


def _pooled_array(temporary: str, num_rows: int, row_shape: Sequence[int]) -> np.ndarray:
    """A `[num_rows, *row_shape]` float32 array to fill: mapped onto the local .npy file
    itself (no memory held for large inputs), or in memory for remote file systems."""
    shape = (num_rows, *row_shape)
    if "://" in temporary:
        return np.zeros(shape, np.float32)
    return np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32, shape=shape)


def _finish_pooled_array(array: np.ndarray, temporary: str) -> None:
    if isinstance(array, np.memmap):
        array.flush()
        return
    with tf.io.gfile.GFile(temporary, "wb") as writer:
        np.save(writer, array)


def write_outputs(
    results: Iterable[dict],
    features: Sequence[InputFeatures],
    layer_indexes: Sequence[int],
    pooled_shape: Sequence[int],
) -> None:
    """Streams the predictions into --output_file and/or --pooled_output_file (whose rows
    have `pooled_shape`)."""
    with contextlib.ExitStack() as stack:
        json_writer = None
        if FLAGS.output_file:
            temporary = stack.enter_context(atomic_files.writing(FLAGS.output_file))
            json_writer = stack.enter_context(tf.io.gfile.GFile(temporary, "w"))
            # GFile creates the file only on the first write, and the rename needs it.
            json_writer.write("")
        pooled = pooled_temporary = None
        if FLAGS.pooled_output_file:
            pooled_temporary = stack.enter_context(atomic_files.writing(FLAGS.pooled_output_file))
            pooled = _pooled_array(pooled_temporary, len(features), pooled_shape)
        seen = 0
        for result in results:
            unique_id = int(result["unique_id"])
            if json_writer is not None:
                layers = {
                    index: result[f"layer_output_{i}"] for i, index in enumerate(layer_indexes)
                }
                json_writer.write(json_line(unique_id, features[unique_id].tokens, layers) + "\n")
            if pooled is not None:
                pooled[unique_id] = result["pooled_vector"]
            seen += 1
        if seen != len(features):
            raise RuntimeError(f"Got {seen} predictions for {len(features)} input lines")
        if pooled is not None:
            _finish_pooled_array(pooled, pooled_temporary)
            del pooled  # Unmap before the rename.


def pooled_row_shape(
    hidden_size: int, max_seq_length: int, pooling: str | None, settings: dict | None
) -> list[int]:
    """The shape of one row of --pooled_output_file: `[hidden_size]` for --pooling, else
    the width of `settings`' vectors (`[max_seq_length, width]` for NONE)."""
    if pooling or settings is None:
        return [hidden_size]
    width = hidden_size * len(settings["layers"])
    if settings["strategy"] == pooling_lib.REDUCE_MEAN_MAX:
        width *= 2
    if settings["strategy"] == pooling_lib.NONE:
        return [max_seq_length, width]
    return [width]


# ---------------------------------------------------------------------------------- the run


def check_output_flags() -> None:
    """Fails before any work when no output is asked for, or the asked ones are incomplete."""
    if FLAGS.pooling and not FLAGS.pooled_output_file:
        raise ValueError("--pooling and --pooled_output_file must be given together")
    if not (FLAGS.output_file or FLAGS.pooled_output_file or FLAGS.export_dir):
        raise ValueError(
            "Nothing to write: set --output_file (per-token JSON), --pooled_output_file with "
            "--pooling (sentence vectors) and/or --export_dir (a SavedModel)."
        )
    if (FLAGS.output_file or FLAGS.pooled_output_file) and not FLAGS.input_file:
        raise ValueError("--input_file is required to write --output_file/--pooled_output_file")


def main(_) -> None:
    bert_logging.configure()
    check_output_flags()
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    # ALBERT gives one output per attention+FFN block, inner_group_num of them per layer.
    num_outputs = bert_config.num_hidden_layers * bert_config.inner_groups
    layer_indexes = parse_layer_indexes(FLAGS.layers, num_outputs)
    # Checked only where used, so --output_file alone works on a one-layer model.
    pooling_settings = None
    if FLAGS.export_dir or (FLAGS.pooled_output_file and not FLAGS.pooling):
        pooling_settings = pooling_lib.settings_from_flags(num_outputs)
    tokenizer = None
    if FLAGS.vocab_file or FLAGS.spm_model_file:
        tokenizer = tokenization.create_tokenizer(
            FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.spm_model_file
        )
    estimator_builder.check_model_flags(bert_config, tokenizer)
    run_options = estimator_builder.run_options_from_flags()
    writes_features = bool(FLAGS.output_file or FLAGS.pooled_output_file)
    if writes_features:
        if tokenizer is None:
            raise ValueError(
                "--output_file and --pooled_output_file need --vocab_file (or --spm_model_file)"
            )
        # Read before any work, so that a bad input file stops the run at once.
        encoding = input_files.check_encoding(FLAGS.input_encoding)
        features = convert_examples_to_features(
            read_examples(FLAGS.input_file, encoding), FLAGS.max_seq_length, tokenizer
        )

    if FLAGS.export_dir:
        export_model_fn = model_fn_builder(
            bert_config,
            FLAGS.init_checkpoint,
            layer_indexes,
            use_tpu=False,
            use_one_hot_embeddings=FLAGS.use_one_hot_embeddings,
            pooling_settings=pooling_settings,
        )
        export.export_initialized_model(
            export_model_fn,
            FLAGS.export_dir,
            FLAGS.max_seq_length,
            assets_extra=export.tokenizer_assets(FLAGS.vocab_file, FLAGS.spm_model_file),
            metadata={
                "task": "encoder",
                "do_lower_case": FLAGS.do_lower_case,
                "pooling": pooling_settings,
            },
        )
    if not writes_features:
        return
    model_fn = model_fn_builder(
        bert_config,
        FLAGS.init_checkpoint,
        layer_indexes,
        use_tpu=FLAGS.use_tpu,
        use_one_hot_embeddings=FLAGS.use_one_hot_embeddings,
        pooling=FLAGS.pooling,
        write_layers=bool(FLAGS.output_file),
        compute_type=run_options.compute_type,
        pooling_settings=None if FLAGS.pooling else pooling_settings,
    )
    # Prediction writes no checkpoint; the Estimator's working directory is thrown away.
    with tempfile.TemporaryDirectory() as model_dir:
        estimator = estimator_builder.BertEstimator(
            model_fn,
            model_dir,
            train_batch_size=FLAGS.batch_size,
            predict_batch_size=FLAGS.batch_size,
            hardware=estimator_builder.HardwareSettings.from_flags(FLAGS),
        )
        input_fn = input_fn_builder(features, FLAGS.max_seq_length, FLAGS.use_tpu)
        results = estimator.predict(input_fn)
        write_outputs(
            results,
            features,
            layer_indexes,
            pooled_row_shape(
                bert_config.hidden_size, FLAGS.max_seq_length, FLAGS.pooling, pooling_settings
            ),
        )


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("bert_config_file", "init_checkpoint"))
    app.run(main)
