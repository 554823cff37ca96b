r"""BERT on TensorFlow Hub: exporting a checkpoint as a Hub model, and using one.

Two formats are in use for BERT encoders, and both are written and read here:

- the TF1 Hub module (`hub.Module`), the format of the original release: a signature
  "tokens" taking int32 `input_ids`, `input_mask`, `segment_ids` `[batch_size, seq_length]`
  and giving `pooled_output` `[batch_size, hidden_size]` and `sequence_output`
  `[batch_size, seq_length, hidden_size]`; a signature "tokenization_info" giving the
  `vocab_file` (a module asset) and `do_lower_case`; a graph tagged {"train"} with dropout
  and one with no tags without it;
- the TF2 SavedModel of current encoders (TF Model Garden's layout): called on a dict of int32
  `input_word_ids`, `input_mask`, `input_type_ids` (with `training=True/False`), it returns a
  dict with `pooled_output`, `sequence_output` and `encoder_outputs` (every layer); its
  `vocab_file` (an asset) and `do_lower_case` (a variable) are attributes of the loaded object.
  Its encoder variables are trainable through `hub.KerasLayer(handle, trainable=True)`.

Export from the command line:

  python tfhub.py --format=tf2 --bert_config_file=$BERT/bert_config.json \
      --init_checkpoint=$BERT/bert_model.ckpt --vocab_file=$BERT/vocab.txt \
      --do_lower_case=true --output_dir=/tmp/bert_hub

An ALBERT (or any SentencePiece) model gives --spm_model_file instead of --vocab_file; its
`*.model` is exported where the vocab goes, as google-research/albert's Hub modules do, and
`create_tokenizer_from_hub_module` reads such a module back with SentencePiece.
"""

from __future__ import annotations

import bert_logging

import os

import tensorflow as tf
import tensorflow_hub as hub
from absl import app, flags

import estimator_builder
import flag_help
import modeling
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

TF1_MODULE = "tf1"
TF2_SAVED_MODEL = "tf2"
FORMATS = (TF1_MODULE, TF2_SAVED_MODEL)

# Input names of each format, in the order input_ids, input_mask, segment_ids.
TF1_INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
TF2_INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")

_ENCODER_SCOPE = "bert"


# ------------------------------------------------------------------------------ reading


def module_format(handle: str) -> str:
    """Whether `handle` (a local directory, or a URL that hub resolves and caches) holds a
    TF1 Hub module (`tfhub_module.pb` beside `saved_model.pb`) or a TF2 SavedModel."""
    path = hub.resolve(handle)
    if tf.io.gfile.exists(os.path.join(path, "tfhub_module.pb")):
        return TF1_MODULE
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return TF2_SAVED_MODEL
    raise ValueError(
        f"--bert_hub_module_handle={handle}: {path} holds neither a TF1 Hub module "
        "(tfhub_module.pb) nor a TF2 SavedModel (saved_model.pb)"
    )


def encoder_outputs(
    handle: str,
    is_training: bool,
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    segment_ids: tf.Tensor,
) -> dict[str, tf.Tensor]:
    """Runs the Hub encoder at `handle` inside the current (graph-mode) model_fn, with its
    variables trainable.

    Args:
      input_ids, input_mask, segment_ids: int32 `[batch_size, seq_length]`.

    Returns:
      `pooled_output` float `[batch_size, hidden_size]` and `sequence_output` float
      `[batch_size, seq_length, hidden_size]`.
    """
    inputs = (input_ids, input_mask, segment_ids)
    if module_format(handle) == TF1_MODULE:
        module = hub.Module(handle, tags={"train"} if is_training else set(), trainable=True)
        outputs = module(
            inputs=dict(zip(TF1_INPUT_NAMES, inputs, strict=True)),
            signature="tokens",
            as_dict=True,
        )
    else:
        layer = hub.KerasLayer(handle, trainable=True)
        outputs = layer(dict(zip(TF2_INPUT_NAMES, inputs, strict=True)), training=is_training)
        # A Keras layer keeps its weights to itself; the TF1 optimizers and the Estimator's
        # logging find trainable variables through the graph collection.
        known = {id(var) for var in tf1.trainable_variables()}
        for var in layer.trainable_weights:
            if id(var) not in known:
                tf1.add_to_collection(tf1.GraphKeys.TRAINABLE_VARIABLES, var)
    return {name: outputs[name] for name in ("pooled_output", "sequence_output")}


def tokenization_info(handle: str) -> tuple[str, bool]:
    """The `(vocab_file, do_lower_case)` the Hub model at `handle` was trained with."""
    if module_format(handle) == TF1_MODULE:
        with tf.Graph().as_default():
            info = hub.Module(handle)(signature="tokenization_info", as_dict=True)
            with tf1.Session() as session:
                vocab_file, do_lower_case = session.run([info["vocab_file"], info["do_lower_case"]])
    else:
        model = hub.load(handle)
        missing = [name for name in ("vocab_file", "do_lower_case") if not hasattr(model, name)]
        if missing:
            raise ValueError(
                f"--bert_hub_module_handle={handle}: the SavedModel has no "
                f"{' or '.join(missing)} attribute, so its tokenizer is unknown"
            )
        vocab_file = model.vocab_file.asset_path.numpy()
        do_lower_case = model.do_lower_case.numpy()
    return vocab_file.decode("utf-8"), bool(do_lower_case)


def is_sentencepiece_model(tokenizer_file: str) -> bool:
    """Whether a Hub model's `vocab_file` is a SentencePiece model: ALBERT's Hub modules
    (and ours exported with --spm_model_file) put `*.model` there, BERT's a `vocab.txt`."""
    return tokenizer_file.endswith(".model")


def create_tokenizer_from_hub_module(handle: str) -> tokenization.Tokenizer:
    """The tokenizer of the Hub model at `handle`: WordPiece on its vocab, or SentencePiece
    when its `vocab_file` is a SentencePiece model (ALBERT), with its casing."""
    tokenizer_file, do_lower_case = tokenization_info(handle)
    if is_sentencepiece_model(tokenizer_file):
        return tokenization.create_tokenizer(None, do_lower_case, tokenizer_file)
    return tokenization.create_tokenizer(tokenizer_file, do_lower_case)


# ---------------------------------------------------------------------------- exporting


def _check_output_dir(output_dir: str) -> None:
    if tf.io.gfile.exists(output_dir) and tf.io.gfile.listdir(output_dir):
        raise ValueError(f"--output_dir={output_dir} is not empty; give a new directory")


def _check_sources(bert_config: modeling.BertConfig, init_checkpoint: str, vocab_file: str) -> None:
    if not tf.io.gfile.exists(vocab_file):
        flag = "--spm_model_file" if is_sentencepiece_model(vocab_file) else "--vocab_file"
        raise FileNotFoundError(f"{flag}={vocab_file} does not exist")
    modeling.check_checkpoint_fits(bert_config, init_checkpoint)


def export_tf1_module(
    bert_config: modeling.BertConfig,
    init_checkpoint: str,
    vocab_file: str,
    do_lower_case: bool,
    output_dir: str,
) -> str:
    """Writes the checkpoint as a TF1 Hub module (for `hub.Module`) to `output_dir`."""
    _check_sources(bert_config, init_checkpoint, vocab_file)
    _check_output_dir(output_dir)
    vocab_path = os.path.abspath(vocab_file)

    def module_fn(is_training: bool) -> None:
        inputs = [tf1.placeholder(tf.int32, [None, None], name) for name in TF1_INPUT_NAMES]
        model = modeling.BertModel(bert_config, is_training, *inputs, scope=_ENCODER_SCOPE)
        hub.add_signature(
            "tokens",
            inputs=dict(zip(TF1_INPUT_NAMES, inputs, strict=True)),
            outputs={
                "pooled_output": model.get_pooled_output(),
                "sequence_output": model.get_sequence_output(),
            },
        )
        # A string constant in ASSET_FILEPATHS is copied into the module's assets and
        # rewritten to point there when the module is loaded.
        vocab = tf.constant(vocab_path, name="vocab_file")
        tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, vocab)
        hub.add_signature(
            "tokenization_info",
            inputs={},
            outputs={"vocab_file": vocab, "do_lower_case": tf.constant(do_lower_case)},
        )

    tags_and_args = [({"train"}, {"is_training": True}), (set(), {"is_training": False})]
    with tf.Graph().as_default():
        spec = hub.create_module_spec(module_fn, tags_and_args=tags_and_args)
        spec.export(output_dir, checkpoint_path=init_checkpoint)
    tf1.logging.info("Exported %s as a TF1 Hub module to %s", init_checkpoint, output_dir)
    return output_dir


class _TrackedLists(tf.Module):
    """A tf.Module whose `variables` and `trainable_variables` are saved attributes (not
    the computed properties of tf.Module), as the Reusable SavedModel API that
    `hub.KerasLayer` follows expects to find them."""

    variables = None
    trainable_variables = None


def _wrapped_encoder(bert_config: modeling.BertConfig) -> tf.types.experimental.ConcreteFunction:
    """modeling.BertModel as a TF1 function of int32 `[batch_size, seq_length]` ids, mask
    and segment ids, built twice (without and with dropout) over one set of variables.
    Its structured outputs are `{False: outputs, True: outputs}` keyed by is_training."""

    def both_modes(input_ids, input_mask, segment_ids):
        outputs = {}
        for is_training in (False, True):
            with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
                model = modeling.BertModel(
                    bert_config,
                    is_training,
                    input_ids,
                    input_mask,
                    segment_ids,
                    scope=_ENCODER_SCOPE,
                )
            outputs[is_training] = {
                "pooled_output": model.get_pooled_output(),
                "sequence_output": model.get_sequence_output(),
                "encoder_outputs": model.get_all_encoder_layers(),
            }
        return outputs

    spec = tf.TensorSpec([None, None], tf.int32)
    return tf1.wrap_function(both_modes, [spec, spec, spec])


def _restore_variables(variables, init_checkpoint: str) -> None:
    reader = tf.train.load_checkpoint(init_checkpoint)
    for var in variables:
        var.assign(reader.get_tensor(var.name.split(":")[0]))


def export_tf2_saved_model(
    bert_config: modeling.BertConfig,
    init_checkpoint: str,
    vocab_file: str,
    do_lower_case: bool,
    output_dir: str,
) -> str:
    """Writes the checkpoint as a TF2 SavedModel encoder (for `hub.KerasLayer` or
    `hub.load`) to `output_dir`. Needs eager execution (TensorFlow 2's default)."""
    if not tf.executing_eagerly():
        raise RuntimeError("export_tf2_saved_model needs eager execution")
    _check_sources(bert_config, init_checkpoint, vocab_file)
    _check_output_dir(output_dir)
    wrapped = _wrapped_encoder(bert_config)
    variables = sorted(wrapped.variables, key=lambda var: var.name)
    _restore_variables(variables, init_checkpoint)
    by_mode = {
        is_training: wrapped.prune(wrapped.inputs, wrapped.structured_outputs[is_training])
        for is_training in (False, True)
    }

    encoder = _TrackedLists()
    encoder.variables = variables
    encoder.trainable_variables = [var for var in variables if var.trainable]
    encoder.vocab_file = tf.saved_model.Asset(os.path.abspath(vocab_file))
    encoder.do_lower_case = tf.Variable(do_lower_case, trainable=False, name="do_lower_case")

    @tf.function
    def call(inputs, training=False):
        args = [inputs[name] for name in TF2_INPUT_NAMES]
        return by_mode[bool(training)](*args)

    input_spec = {name: tf.TensorSpec([None, None], tf.int32, name) for name in TF2_INPUT_NAMES}
    for training in (False, True):
        call.get_concrete_function(input_spec, training=training)
    encoder.__call__ = call

    @tf.function(input_signature=[input_spec])
    def serve(inputs):
        outputs = by_mode[False](*[inputs[name] for name in TF2_INPUT_NAMES])
        return {name: outputs[name] for name in ("pooled_output", "sequence_output")}

    tf.saved_model.save(encoder, output_dir, signatures={"serving_default": serve})
    tf1.logging.info("Exported %s as a TF2 SavedModel to %s", init_checkpoint, output_dir)
    return output_dir


EXPORTERS = {TF1_MODULE: export_tf1_module, TF2_SAVED_MODEL: export_tf2_saved_model}


# ---------------------------------------------------------------------------------- CLI


def define_flags() -> None:
    flags.DEFINE_enum(
        "format",
        TF2_SAVED_MODEL,
        list(FORMATS),
        "tf1: a Hub module for hub.Module (the original's format); tf2: a SavedModel for "
        "hub.KerasLayer / hub.load (the format of current encoders).",
    )
    flags.DEFINE_string("bert_config_file", None, "The config json file of the BERT model.")
    flags.DEFINE_string("init_checkpoint", None, "The checkpoint to export.")
    flags.DEFINE_string("vocab_file", None, "The vocabulary the model was trained on.")
    flags.DEFINE_string(
        "spm_model_file",
        None,
        "The SentencePiece model (*.model) of an ALBERT-style model, exported where the "
        "vocab file goes (tokenization_info's vocab_file), as ALBERT's Hub modules do.",
    )
    flags.DEFINE_bool("do_lower_case", True, "Whether the model expects lower-cased text.")
    flags.DEFINE_string("output_dir", None, "Where to write the Hub model (new or empty).")


def main(_) -> None:
    bert_logging.configure()
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    if bool(FLAGS.vocab_file) == bool(FLAGS.spm_model_file):
        raise app.UsageError("Give exactly one of --vocab_file and --spm_model_file.")
    if FLAGS.spm_model_file and not is_sentencepiece_model(FLAGS.spm_model_file):
        raise app.UsageError(
            f"--spm_model_file={FLAGS.spm_model_file}: a SentencePiece model's name ends in "
            ".model, which is how readers of the Hub model tell it from a vocab.txt"
        )
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    tokenizer = tokenization.create_tokenizer(
        FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.spm_model_file
    )
    estimator_builder.check_vocab_fits_config(tokenizer, bert_config, FLAGS.bert_config_file)
    EXPORTERS[FLAGS.format](
        bert_config,
        FLAGS.init_checkpoint,
        FLAGS.spm_model_file or FLAGS.vocab_file,
        FLAGS.do_lower_case,
        FLAGS.output_dir,
    )


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("bert_config_file", "init_checkpoint", "output_dir"))
    app.run(main)
