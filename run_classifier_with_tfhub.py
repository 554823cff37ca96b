r"""Fine-tunes a BERT encoder from TensorFlow Hub for sentence (pair) classification.

The encoder, its weights and its tokenizer all come from `--bert_hub_module_handle`: a
TF1 Hub module (the format of the original release, used through `hub.Module`) or a TF2
SavedModel (the format of current encoders, used through `hub.KerasLayer`); the format is
detected. Every run_classifier.py task and data flag works here too (the GLUE tasks,
`--task_name=generic` files, `--processor`), except the ones that describe a local model
(--bert_config_file, --init_checkpoint, --vocab_file, --spm_model_file), which the handle
replaces.

  python run_classifier_with_tfhub.py --task_name=MRPC --do_train --do_eval \
      --data_dir=glue/MRPC --bert_hub_module_handle=/path/to/bert_hub_model \
      --output_dir=/tmp/mrpc
"""

from __future__ import annotations

import bert_logging

import tensorflow as tf
from absl import app, flags

import classifier_data
import classifier_task
import estimator_builder
import flag_help
import heads
import tfhub
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

CLASSIFICATION = classifier_data.CLASSIFICATION
REGRESSION = classifier_data.REGRESSION
MULTI_LABEL = classifier_data.MULTI_LABEL

# The original applies this dropout to the pooled output; a Hub model carries no config
# to take it from.
POOLED_DROPOUT_PROB = 0.1

# Users of the original call this by its name from this script.
create_tokenizer_from_hub_module = tfhub.create_tokenizer_from_hub_module


def define_flags() -> None:
    classifier_task.define_flags()
    flags.DEFINE_string(
        "bert_hub_module_handle",
        None,
        "Handle for the BERT TF-Hub module: a local directory or a tfhub.dev URL, holding a "
        "TF1 Hub module or a TF2 SavedModel encoder.",
    )


# ---------------------------------------------------------------------------- the model


def create_model(
    is_training: bool,
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    segment_ids: tf.Tensor,
    labels: tf.Tensor,
    num_labels: int,
    bert_hub_module_handle: str,
    task_kind: str = CLASSIFICATION,
):
    """The Hub encoder with the classifier head on its pooled output.

    Args:
      input_ids, input_mask, segment_ids: int32 `[batch_size, seq_length]`.

    Returns:
      what `classifier_head` returns.
    """
    outputs = tfhub.encoder_outputs(
        bert_hub_module_handle, is_training, input_ids, input_mask, segment_ids
    )
    pooled_output = tf.cast(outputs["pooled_output"], tf.float32)
    return heads.classifier_head(
        pooled_output, labels, num_labels, is_training, POOLED_DROPOUT_PROB, task_kind
    )


def model_fn_builder(
    num_labels: int,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    bert_hub_module_handle: str,
    task_kind: str = CLASSIFICATION,
    run_options: estimator_builder.RunOptions = estimator_builder.DEFAULT_RUN_OPTIONS,
):
    """Returns the model_fn (TPUEstimator style) of the classifier over a Hub encoder."""

    def model_fn(features, labels, mode, params):
        del labels, params
        label_ids, is_real_example = heads.labels_of(features, num_labels, task_kind)
        head_outputs = create_model(
            mode == tf.estimator.ModeKeys.TRAIN,
            features["input_ids"],
            features["input_mask"],
            features["segment_ids"],
            label_ids,
            num_labels,
            bert_hub_module_handle,
            task_kind,
        )
        # No init_checkpoint: the Hub model brings its own weights. This logs the variables.
        estimator_builder.restore_from_checkpoint(None, use_tpu)

        def train_op_fn(loss):
            return run_options.create_train_op(
                loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu
            )

        return heads.classifier_spec(
            mode, head_outputs, label_ids, is_real_example, task_kind, train_op_fn
        )

    return model_fn


# ----------------------------------------------------------------------------- the run


def use_hub_tokenizer_settings(handle: str) -> tokenization.Tokenizer:
    """Returns the Hub model's tokenizer, and points --vocab_file (or, for a SentencePiece
    model, --spm_model_file) and --do_lower_case at its settings, on which classifier_task's
    cache of TFRecords is keyed."""
    tokenizer_file, do_lower_case = tfhub.tokenization_info(handle)
    for name in ("bert_config_file", "init_checkpoint", "vocab_file", "spm_model_file"):
        if FLAGS[name].present:
            tf1.logging.warning("--%s is ignored: the Hub model %s replaces it", name, handle)
    sentencepiece = tfhub.is_sentencepiece_model(tokenizer_file)
    FLAGS.vocab_file = None if sentencepiece else tokenizer_file
    FLAGS.spm_model_file = tokenizer_file if sentencepiece else None
    FLAGS.do_lower_case = do_lower_case
    # The Hub model has no bert_config.json for the run's directory to carry.
    FLAGS.bert_config_file = None
    return tokenization.create_tokenizer(FLAGS.vocab_file, do_lower_case, FLAGS.spm_model_file)


def check_flags() -> estimator_builder.RunOptions:
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
        raise ValueError("At least one of --do_train, --do_eval or --do_predict must be True.")
    if FLAGS.precision != "float32":
        raise ValueError(
            f"--precision={FLAGS.precision}: a Hub encoder computes in the dtype it was "
            "saved with; only float32 is supported here"
        )
    return estimator_builder.run_options_from_flags()


def main(_) -> None:
    bert_logging.configure()
    run_options = check_flags()
    handle = FLAGS.bert_hub_module_handle
    tf1.logging.info("Hub model %s is a %s", handle, tfhub.module_format(handle))
    tokenizer = use_hub_tokenizer_settings(handle)

    def make_model_fn(num_labels, task_kind, num_train_steps, num_warmup_steps):
        return model_fn_builder(
            num_labels=num_labels,
            learning_rate=FLAGS.learning_rate,
            num_train_steps=num_train_steps,
            num_warmup_steps=num_warmup_steps,
            use_tpu=FLAGS.use_tpu,
            bert_hub_module_handle=handle,
            task_kind=task_kind,
            run_options=run_options,
        )

    classifier_task.run(
        classifier_task.ClassifierSettings.from_flags(FLAGS),
        classifier_task.processor_from_flags(FLAGS),
        tokenizer,
        make_model_fn,
    )


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("data_dir", "bert_hub_module_handle", "output_dir"))
    app.run(main)
