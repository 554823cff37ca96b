"""Fine-tunes a BERT encoder from TensorFlow Hub for sentence (pair) classification.

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

import os

import tensorflow as tf
from absl import app, flags

import classifier_data
import estimator_builder
import export
import modeling
import optimization
import run_classifier
import tfhub
import tfrecord_io
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
    run_classifier.define_flags()
    flags.DEFINE_string(
        "bert_hub_module_handle",
        None,
        "Handle for the BERT TF-Hub module: a local directory or a tfhub.dev URL, holding a "
        "TF1 Hub module or a TF2 SavedModel encoder.",
    )


# ---------------------------------------------------------------------------- the model


def classifier_head(
    pooled_output: tf.Tensor,
    labels: tf.Tensor,
    num_labels: int,
    is_training: bool,
    dropout_prob: float,
    task_kind: str = CLASSIFICATION,
):
    """One dense layer (`output_weights`, `output_bias`) and the task's loss.

    Args:
      pooled_output: float `[batch_size, hidden_size]`.
      labels: `[batch_size]` int class ids, `[batch_size]` floats for regression, or
        `[batch_size, num_labels]` multi-hot ints for multi-label.

    Returns:
      `(loss, per_example_loss [batch_size], logits [batch_size, num_labels],
      probabilities [batch_size, num_labels])`; for regression "probabilities" holds the
      predicted value.
    """
    hidden_size = pooled_output.shape[-1]
    output_weights = tf1.get_variable(
        "output_weights",
        [num_labels, hidden_size],
        initializer=tf1.truncated_normal_initializer(stddev=0.02),
    )
    output_bias = tf1.get_variable("output_bias", [num_labels], initializer=tf1.zeros_initializer())
    with tf1.variable_scope("loss"):
        if is_training:
            pooled_output = modeling.dropout(pooled_output, dropout_prob)
        logits = tf.nn.bias_add(
            tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias
        )
        if task_kind == REGRESSION:
            probabilities = logits
            per_example_loss = tf.square(logits[:, 0] - tf.cast(labels, tf.float32))
        elif task_kind == MULTI_LABEL:
            probabilities = tf.sigmoid(logits)
            per_example_loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(
                    labels=tf.cast(labels, tf.float32), logits=logits
                ),
                axis=-1,
            )
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
            one_hot = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
            per_example_loss = -tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), axis=-1)
        loss = tf.reduce_mean(per_example_loss)
    return loss, per_example_loss, logits, probabilities


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
    return classifier_head(
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
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        label_ids = features.get("label_ids")
        if label_ids is None:
            label_ids = run_classifier.placeholder_labels(
                features["input_ids"], num_labels, task_kind
            )
        is_real_example = tf.cast(features.get("is_real_example", 1), tf.float32)
        total_loss, per_example_loss, logits, probabilities = create_model(
            is_training,
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
        Spec = tf1.estimator.tpu.TPUEstimatorSpec
        if mode == tf.estimator.ModeKeys.TRAIN:
            train_op = optimization.create_optimizer(
                total_loss,
                learning_rate,
                num_train_steps,
                num_warmup_steps,
                use_tpu,
                **run_options.optimizer_kwargs(),
            )
            return Spec(mode=mode, loss=total_loss, train_op=train_op)
        if mode == tf.estimator.ModeKeys.EVAL:
            metric_fn = (
                run_classifier.classification_metrics
                if task_kind == CLASSIFICATION
                else run_classifier.loss_only_metrics
            )
            metric_inputs = [per_example_loss, label_ids, logits, is_real_example]
            return Spec(mode=mode, loss=total_loss, eval_metrics=(metric_fn, metric_inputs))
        outputs = {"probabilities": probabilities, "logits": logits}
        return Spec(
            mode=mode,
            predictions=dict(outputs, label_ids=label_ids),
            export_outputs={"serving_default": tf.estimator.export.PredictOutput(outputs)},
        )

    return model_fn


# ----------------------------------------------------------------------------- the run


def use_hub_tokenizer_settings(handle: str) -> tokenization.FullTokenizer:
    """Returns the Hub model's tokenizer, and points --vocab_file and --do_lower_case at its
    settings, on which run_classifier's cache of TFRecords is keyed."""
    vocab_file, do_lower_case = tfhub.tokenization_info(handle)
    for name in ("bert_config_file", "init_checkpoint", "vocab_file", "spm_model_file"):
        if FLAGS[name].present:
            tf1.logging.warning("--%s is ignored: the Hub model %s replaces it", name, handle)
    FLAGS.vocab_file = vocab_file
    FLAGS.do_lower_case = do_lower_case
    FLAGS.spm_model_file = None
    return tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=do_lower_case)


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
    tf1.logging.set_verbosity(tf1.logging.INFO)
    run_options = check_flags()
    handle = FLAGS.bert_hub_module_handle
    tf1.logging.info("Hub model %s is a %s", handle, tfhub.module_format(handle))
    tokenizer = use_hub_tokenizer_settings(handle)
    tf.io.gfile.makedirs(FLAGS.output_dir)

    processor = run_classifier.make_processor()
    task_kind = processor.task_kind
    # Read and check every split the run needs before any training starts.
    train_examples = processor.get_train_examples(FLAGS.data_dir) if FLAGS.do_train else []
    label_list = processor.get_labels()
    num_labels = 1 if task_kind == REGRESSION else len(label_list)
    if num_labels < 1:
        raise ValueError("The task has no labels; give --labels or a labelled training file.")
    eval_examples = processor.get_dev_examples(FLAGS.data_dir) if FLAGS.do_eval else []
    predict_examples = processor.get_test_examples(FLAGS.data_dir) if FLAGS.do_predict else []
    for examples in (train_examples, eval_examples):
        classifier_data.check_labels(examples, label_list, task_kind)

    num_train_steps = int(len(train_examples) / FLAGS.train_batch_size * FLAGS.num_train_epochs)
    if FLAGS.do_train and num_train_steps < 1:
        raise ValueError(
            f"{len(train_examples)} training examples at --train_batch_size="
            f"{FLAGS.train_batch_size} and --num_train_epochs={FLAGS.num_train_epochs} make "
            "no training step"
        )
    model_fn = model_fn_builder(
        num_labels=num_labels,
        learning_rate=FLAGS.learning_rate,
        num_train_steps=max(num_train_steps, 1),
        num_warmup_steps=int(num_train_steps * FLAGS.warmup_proportion),
        use_tpu=FLAGS.use_tpu,
        bert_hub_module_handle=handle,
        task_kind=task_kind,
        run_options=run_options,
    )
    estimator = estimator_builder.BertEstimator(
        model_fn,
        FLAGS.output_dir,
        train_batch_size=FLAGS.train_batch_size,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size,
    )
    spec = classifier_data.feature_spec(FLAGS.max_seq_length, task_kind, num_labels)

    def input_fn_for(split, examples, is_training):
        record_file = run_classifier.write_or_reuse_records(
            split, examples, label_list, tokenizer, task_kind
        )
        return tfrecord_io.input_fn_builder(
            [record_file], spec, is_training=is_training, drop_remainder=True
        )

    evaluator = None
    if FLAGS.do_eval:
        eval_input_fn = input_fn_for(
            "eval", run_classifier.padded(eval_examples, FLAGS.eval_batch_size), False
        )
        evaluator = run_classifier.Evaluator(
            estimator, eval_input_fn, len(eval_examples), processor, label_list
        )

    result = None
    if FLAGS.do_train:
        tf1.logging.info("***** Running training: %d steps *****", num_train_steps)
        train_input_fn = input_fn_for("train", train_examples, is_training=True)
        if evaluator is not None and FLAGS.eval_every_steps > 0:
            result = run_classifier.train_with_periodic_eval(
                estimator, train_input_fn, num_train_steps, evaluator
            )
        else:
            estimator.train(train_input_fn, max_steps=num_train_steps)

    if evaluator is not None:
        result = result or evaluator.evaluate()
        estimator_builder.write_eval_results(
            result, os.path.join(FLAGS.output_dir, "eval_results.txt")
        )

    if FLAGS.export_dir:
        best = evaluator and tf.train.latest_checkpoint(evaluator.best_dir)
        checkpoint = best or tf.train.latest_checkpoint(FLAGS.output_dir)
        if not checkpoint:
            raise ValueError(f"--export_dir: no trained checkpoint in {FLAGS.output_dir}")
        export.export_saved_model(model_fn, checkpoint, FLAGS.export_dir, FLAGS.max_seq_length)

    if FLAGS.do_predict:
        predict_input_fn = input_fn_for(
            "predict", run_classifier.padded(predict_examples, FLAGS.predict_batch_size), False
        )
        probabilities, _ = run_classifier.gather_predictions(
            estimator, predict_input_fn, len(predict_examples)
        )
        run_classifier.write_test_results(
            os.path.join(FLAGS.output_dir, "test_results.tsv"), probabilities
        )
        run_classifier.write_readable_predictions(
            os.path.join(FLAGS.output_dir, "test_predictions.tsv"),
            predict_examples,
            run_classifier.predicted_labels(probabilities, label_list, task_kind),
        )


if __name__ == "__main__":
    define_flags()
    for name in ("data_dir", "bert_hub_module_handle", "output_dir"):
        flags.mark_flag_as_required(name)
    app.run(main)
