r"""Pre-trains BERT with the masked-LM and next-sentence objectives.

Reads the TFRecords written by create_pretraining_data.py. Starting from scratch or from a
released checkpoint (`--init_checkpoint`), whose `cls/` heads are restored too, so continued
pre-training on a domain corpus picks up exactly where Google's training stopped.

An ALBERT config (`albert_config.json`) trains ALBERT with its heads, under
google-research/albert's names: the masked-LM transform projects to `embedding_size`, and the
sentence-order head is this next-sentence head (`cls/seq_relationship`), fed by the
`next_sentence_labels` feature, the name ALBERT's records keep for the order label. The
metrics keep the names `next_sentence_accuracy` / `next_sentence_loss`.

  python run_pretraining.py --input_file=out/*.tfrecord --output_dir=out/model \
      --bert_config_file=bert_config.json --do_train --num_train_steps=10000
"""

from __future__ import annotations

import bert_logging

import os

import tensorflow as tf
from absl import app, flags

import estimator_builder
import export
import finetuning
import flag_help
import modeling
import pooling
import tfrecord_io
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string(
        "bert_config_file",
        None,
        "The config json file of the pre-trained BERT model; it sets the architecture.",
    )
    flags.DEFINE_string(
        "input_file", None, "Input TF example files (can be a glob or comma separated)."
    )
    flags.DEFINE_string(
        "eval_input_file",
        None,
        "Input TF example files of --do_eval (globs, comma separated, as --input_file), "
        "say held-out records; default: the --input_file files, as the original evaluates.",
    )
    flags.DEFINE_string(
        "output_dir", None, "The output directory where the model checkpoints will be written."
    )
    flags.DEFINE_string(
        "init_checkpoint", None, "Initial checkpoint (usually from a pre-trained BERT model)."
    )
    flags.DEFINE_integer(
        "max_seq_length",
        128,
        "Total sequence length after WordPiece tokenization. Must match data generation.",
    )
    flags.DEFINE_integer(
        "max_predictions_per_seq",
        20,
        "Maximum number of masked LM predictions per sequence. Must match data generation.",
    )
    flags.DEFINE_bool("do_train", False, "Whether to run training.")
    flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
    flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
    flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
    flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
    flags.DEFINE_integer("num_train_steps", 100000, "Number of training steps.")
    flags.DEFINE_integer("num_warmup_steps", 10000, "Number of warmup steps.")
    flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.")
    # Not read by training (the records hold token ids): the encoder export ships the
    # tokenizer so that a client of it tokenizes as the records were made.
    flags.DEFINE_string(
        "vocab_file",
        None,
        "Optional: the WordPiece vocab the records were made with; --export_dir ships it in "
        "the export's assets.extra/ (as run_classifier.py's exports do).",
    )
    flags.DEFINE_string(
        "spm_model_file",
        None,
        "Optional: the SentencePiece model the records were made with (instead of "
        "--vocab_file), shipped the same way.",
    )
    flags.DEFINE_bool(
        "do_lower_case",
        True,
        "With --vocab_file: whether the records were made from lower-cased text; recorded in "
        "the export for its predictor.",
    )
    estimator_builder.define_hardware_flags()
    estimator_builder.define_gpu_flags()
    estimator_builder.define_run_output_flags()
    export.define_export_flag()
    pooling.define_flags()


# ---------------------------------------------------------------------------------- heads


def gather_indexes(sequence_tensor: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Picks the vectors at `positions` of each sequence.

    Args:
      sequence_tensor: `[batch_size, seq_length, width]`.
      positions: int32 `[batch_size, num_positions]`.

    Returns:
      `[batch_size * num_positions, width]`.
    """
    batch_size, seq_length, width = modeling.get_shape_list(sequence_tensor, expected_rank=3)
    row_starts = tf.reshape(tf.range(batch_size, dtype=tf.int32) * seq_length, [-1, 1])
    flat_positions = tf.reshape(positions + row_starts, [-1])
    flat_sequence = tf.reshape(sequence_tensor, [batch_size * seq_length, width])
    return tf.gather(flat_sequence, flat_positions)


def get_masked_lm_output(
    bert_config: modeling.BertConfig,
    input_tensor: tf.Tensor,
    output_weights: tf.Tensor,
    positions: tf.Tensor,
    label_ids: tf.Tensor,
    label_weights: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The masked-LM head, its output layer tied to the word-embedding table.

    The transform projects to the embedding width: `hidden_size` for BERT, ALBERT's
    `embedding_size` (`cls/predictions/transform/dense/kernel` `[hidden_size,
    embedding_size]`, as google-research/albert names and shapes it).

    Args:
      input_tensor: the encoder's `[batch_size, seq_length, hidden_size]` output.
      output_weights: the `[vocab_size, embedding_width]` embedding table.
      positions, label_ids: int32 `[batch_size, max_predictions_per_seq]`.
      label_weights: float `[batch_size, max_predictions_per_seq]`, 0 for padding slots.

    Returns:
      `(loss, per_example_loss [batch * max_predictions], log_probs [batch *
      max_predictions, vocab_size])`; the loss is the weight-averaged cross-entropy.
    """
    hidden = gather_indexes(input_tensor, positions)
    with tf1.variable_scope("cls/predictions"):
        with tf1.variable_scope("transform"):
            hidden = modeling.dense_layer(
                hidden,
                bert_config.embedding_width,
                activation=modeling.get_activation(bert_config.hidden_act),
                initializer_range=bert_config.initializer_range,
            )
            hidden = modeling.layer_norm(hidden)
        output_bias = tf1.get_variable(
            "output_bias", [bert_config.vocab_size], initializer=tf1.zeros_initializer()
        )
        logits = tf.matmul(hidden, tf.cast(output_weights, hidden.dtype), transpose_b=True)
        logits = tf.nn.bias_add(tf.cast(logits, tf.float32), output_bias)
        log_probs = tf.nn.log_softmax(logits, axis=-1)

        label_ids = tf.reshape(label_ids, [-1])
        label_weights = tf.reshape(label_weights, [-1])
        per_example_loss = -tf.reduce_sum(
            log_probs * tf.one_hot(label_ids, depth=bert_config.vocab_size), axis=-1
        )
        # The epsilon keeps a batch without any masked position from dividing by zero.
        loss = tf.reduce_sum(label_weights * per_example_loss) / (
            mean_over_replicas(tf.reduce_sum(label_weights)) + 1e-5
        )
    return loss, per_example_loss, log_probs


def mean_over_replicas(value: tf.Tensor) -> tf.Tensor:
    """The mean of a scalar over the replicas of a `tf.distribute` strategy; the value
    itself without one (and on TPU, as the original).

    Replicas hold different numbers of masked positions. Normalizing each replica's loss
    by the mean count, not its own, makes the summed gradients equal to one device's on the
    whole batch.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(value))
    return total / context.num_replicas_in_sync


def get_next_sentence_output(
    bert_config: modeling.BertConfig, input_tensor: tf.Tensor, labels: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The next-sentence head: a 2-way classifier on the pooled output. ALBERT's
    sentence-order head is the same layer (`cls/seq_relationship/output_weights`
    `[2, hidden_size]`), trained on order labels.

    Args:
      input_tensor: the pooled `[batch_size, hidden_size]` output.
      labels: int32 `[batch_size, 1]`, 0 = "B follows A", 1 = "B is random" (for
        sentence-order data, 1 = "A and B swapped").

    Returns:
      `(mean loss, per_example_loss [batch_size], log_probs [batch_size, 2])`.
    """
    with tf1.variable_scope("cls/seq_relationship"):
        output_weights = tf1.get_variable(
            "output_weights",
            [2, bert_config.hidden_size],
            initializer=modeling.create_initializer(bert_config.initializer_range),
        )
        output_bias = tf1.get_variable("output_bias", [2], initializer=tf1.zeros_initializer())
        logits = tf.matmul(tf.cast(input_tensor, tf.float32), output_weights, transpose_b=True)
        log_probs = tf.nn.log_softmax(tf.nn.bias_add(logits, output_bias), axis=-1)
        one_hot = tf.one_hot(tf.reshape(labels, [-1]), depth=2)
        per_example_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)
        return tf.reduce_mean(per_example_loss), per_example_loss, log_probs


def pretraining_metrics(
    masked_lm_example_loss,
    masked_lm_log_probs,
    masked_lm_ids,
    masked_lm_weights,
    next_sentence_example_loss,
    next_sentence_log_probs,
    next_sentence_labels,
) -> dict:
    """Eval metrics: accuracy and mean loss of both objectives (padding slots weighted 0)."""
    masked_lm_weights = tf.reshape(masked_lm_weights, [-1])
    masked_lm_predictions = tf.argmax(masked_lm_log_probs, axis=-1, output_type=tf.int32)
    next_sentence_predictions = tf.argmax(next_sentence_log_probs, axis=-1, output_type=tf.int32)
    return {
        "masked_lm_accuracy": tf1.metrics.accuracy(
            labels=tf.reshape(masked_lm_ids, [-1]),
            predictions=masked_lm_predictions,
            weights=masked_lm_weights,
        ),
        "masked_lm_loss": tf1.metrics.mean(
            values=tf.reshape(masked_lm_example_loss, [-1]), weights=masked_lm_weights
        ),
        "next_sentence_accuracy": tf1.metrics.accuracy(
            labels=tf.reshape(next_sentence_labels, [-1]),
            predictions=next_sentence_predictions,
        ),
        "next_sentence_loss": tf1.metrics.mean(values=next_sentence_example_loss),
    }


def model_fn_builder(
    bert_config: modeling.BertConfig,
    init_checkpoint: str | None,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    use_one_hot_embeddings: bool,
    run_options: estimator_builder.RunOptions = estimator_builder.DEFAULT_RUN_OPTIONS,
    pooling_settings: dict | None = None,
):
    """Returns the model_fn (TPUEstimator style) for pre-training; PREDICT mode is the
    encoder export (see `encoder_spec`)."""

    def model_fn(features, labels, mode, params):
        del labels, params
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        model = modeling.BertModel.from_features(
            bert_config, features, is_training, use_one_hot_embeddings, run_options.compute_type
        )
        if mode == tf.estimator.ModeKeys.PREDICT:
            return encoder_spec(
                model,
                init_checkpoint,
                use_tpu,
                pooling_settings,
                features["input_mask"],
                features["segment_ids"],
            )
        masked_lm_loss, masked_lm_example_loss, masked_lm_log_probs = get_masked_lm_output(
            bert_config,
            model.get_sequence_output(),
            model.get_embedding_table(),
            features["masked_lm_positions"],
            features["masked_lm_ids"],
            features["masked_lm_weights"],
        )
        next_sentence_loss, next_sentence_example_loss, next_sentence_log_probs = (
            get_next_sentence_output(
                bert_config, model.get_pooled_output(), features["next_sentence_labels"]
            )
        )
        total_loss = masked_lm_loss + next_sentence_loss
        scaffold_fn = estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu)

        if mode == tf.estimator.ModeKeys.TRAIN:
            if not use_tpu:
                tf1.summary.scalar("masked_lm_loss", masked_lm_loss)
                tf1.summary.scalar("next_sentence_loss", next_sentence_loss)
            train_op = run_options.create_train_op(
                total_loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu
            )
            return tf1.estimator.tpu.TPUEstimatorSpec(
                mode=mode, loss=total_loss, train_op=train_op, scaffold_fn=scaffold_fn
            )
        if mode == tf.estimator.ModeKeys.EVAL:
            metric_inputs = [
                masked_lm_example_loss,
                masked_lm_log_probs,
                features["masked_lm_ids"],
                features["masked_lm_weights"],
                next_sentence_example_loss,
                next_sentence_log_probs,
                features["next_sentence_labels"],
            ]
            return tf1.estimator.tpu.TPUEstimatorSpec(
                mode=mode,
                loss=total_loss,
                eval_metrics=(pretraining_metrics, metric_inputs),
                scaffold_fn=scaffold_fn,
            )
        raise ValueError(f"Only TRAIN and EVAL modes are supported: {mode}")

    return model_fn


def encoder_spec(
    model: modeling.BertModel,
    init_checkpoint: str | None,
    use_tpu: bool,
    pooling_settings: dict | None = None,
    input_mask: tf.Tensor | None = None,
    segment_ids: tf.Tensor | None = None,
):
    """PREDICT mode serves the encoder alone: `pooled_output` `[batch_size, hidden_size]`
    and `sequence_output` `[batch_size, seq_length, hidden_size]`, float32, and with
    `pooling_settings` (`pooling.settings_from_flags`) the sentence vectors `encodes`."""
    outputs = {
        "pooled_output": tf.cast(model.get_pooled_output(), tf.float32),
        "sequence_output": tf.cast(model.get_sequence_output(), tf.float32),
    }
    if pooling_settings is not None:
        outputs[pooling.OUTPUT_KEY] = pooling.pool_encoder_layers(
            model.get_all_encoder_layers(), input_mask, segment_ids, pooling_settings
        )
    return tf1.estimator.tpu.TPUEstimatorSpec(
        mode=tf.estimator.ModeKeys.PREDICT,
        predictions=outputs,
        export_outputs={"serving_default": tf.estimator.export.PredictOutput(outputs)},
        scaffold_fn=estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu),
    )


def export_encoder(model_fn, pooling_settings: dict) -> str:
    """--export_dir: a SavedModel of the encoder from the last checkpoint in --output_dir,
    or from --init_checkpoint when there is none (say, a checkpoint from Google), with the
    tokenizer of --vocab_file / --spm_model_file in its assets.extra/ when one is given."""
    with finetuning.checkpoint_to_export(
        model_fn, FLAGS.output_dir, FLAGS.init_checkpoint, FLAGS.max_seq_length
    ) as checkpoint:
        return export.export_saved_model(
            model_fn,
            checkpoint,
            FLAGS.export_dir,
            FLAGS.max_seq_length,
            assets_extra=export.tokenizer_assets(FLAGS.vocab_file, FLAGS.spm_model_file),
            metadata={
                "task": "encoder",
                "do_lower_case": FLAGS.do_lower_case,
                "pooling": pooling_settings,
            },
        )


def pretraining_features(max_seq_length: int, max_predictions_per_seq: int) -> dict:
    """The feature spec of create_pretraining_data.py's records."""
    ints, floats = tfrecord_io.int_feature_spec, tfrecord_io.float_feature_spec
    return {
        "input_ids": ints(max_seq_length),
        "input_mask": ints(max_seq_length),
        "segment_ids": ints(max_seq_length),
        "masked_lm_positions": ints(max_predictions_per_seq),
        "masked_lm_ids": ints(max_predictions_per_seq),
        "masked_lm_weights": floats(max_predictions_per_seq),
        "next_sentence_labels": ints(1),
    }


def checked_record_files(patterns: str, flag_name: str, features: dict) -> list[str]:
    """The files of --<flag_name> (comma-separated globs), each checked to hold records of
    `features` before any work starts."""
    files = tfrecord_io.glob_input_files(patterns, flag_name)
    tfrecord_io.check_record_files(
        files,
        features,
        flag_hint="check --max_seq_length and --max_predictions_per_seq against the values "
        "used by create_pretraining_data.py",
    )
    tf1.logging.info("*** Input Files (--%s) ***", flag_name)
    for input_file in files:
        tf1.logging.info("  %s", input_file)
    return files


def main(_) -> None:
    bert_logging.configure()
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.export_dir):
        raise ValueError("At least one of --do_train, --do_eval or --export_dir must be set.")
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    pooling_settings = (
        pooling.settings_from_flags(bert_config.num_hidden_layers) if FLAGS.export_dir else None
    )
    tokenizer = None
    if FLAGS.vocab_file or FLAGS.spm_model_file:
        tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
        tokenizer = tokenization.create_tokenizer(
            FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.spm_model_file
        )
    estimator_builder.check_model_flags(bert_config, tokenizer)
    features = pretraining_features(FLAGS.max_seq_length, FLAGS.max_predictions_per_seq)
    train_files, eval_files = [], []
    if FLAGS.do_train:
        if not FLAGS.input_file:
            raise ValueError("--do_train reads --input_file, which is not set")
        if FLAGS.num_train_steps < 1:
            raise ValueError(f"--num_train_steps={FLAGS.num_train_steps}: must be at least 1")
        train_files = checked_record_files(FLAGS.input_file, "input_file", features)
    if FLAGS.do_eval:
        eval_flag = "eval_input_file" if FLAGS.eval_input_file else "input_file"
        if not FLAGS[eval_flag].value:
            raise ValueError("--do_eval reads --eval_input_file (or --input_file): neither is set")
        eval_files = checked_record_files(FLAGS[eval_flag].value, eval_flag, features)
    tf.io.gfile.makedirs(FLAGS.output_dir)

    model_fn = model_fn_builder(
        bert_config=bert_config,
        init_checkpoint=FLAGS.init_checkpoint,
        learning_rate=FLAGS.learning_rate,
        num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps,
        use_tpu=FLAGS.use_tpu,
        use_one_hot_embeddings=FLAGS.use_tpu,
        run_options=estimator_builder.run_options_from_flags(),
        pooling_settings=pooling_settings,
    )
    if FLAGS.overwrite_output_dir:
        estimator_builder.clear_previous_run(
            FLAGS.output_dir,
            keep=[*train_files, *eval_files, FLAGS.init_checkpoint],
            training=FLAGS.do_train,
            distribution_strategy=FLAGS.distribution_strategy,
        )
    estimator = estimator_builder.BertEstimator(
        model_fn,
        FLAGS.output_dir,
        train_batch_size=FLAGS.train_batch_size,
        eval_batch_size=FLAGS.eval_batch_size,
        hardware=estimator_builder.HardwareSettings.from_flags(FLAGS),
        log_every_steps=FLAGS.log_every_steps
        or estimator_builder.default_log_every_steps(FLAGS.num_train_steps),
    )
    if FLAGS.do_train:
        tf1.logging.info("***** Running training *****")
        tf1.logging.info("  Batch size = %d", FLAGS.train_batch_size)
        estimator_builder.report_training_start(FLAGS.output_dir, FLAGS.num_train_steps)
        train_input_fn = tfrecord_io.input_fn_builder(
            train_files, features, is_training=True, drop_remainder=True
        )
        estimator.train(train_input_fn, max_steps=FLAGS.num_train_steps)
    if FLAGS.do_eval:
        tf1.logging.info("***** Running evaluation *****")
        tf1.logging.info("  Batch size = %d", FLAGS.eval_batch_size)
        eval_input_fn = tfrecord_io.input_fn_builder(
            eval_files, features, is_training=False, drop_remainder=True, repeat=True
        )
        result = estimator.evaluate(eval_input_fn, steps=FLAGS.max_eval_steps)
        estimator_builder.write_eval_results(
            result, os.path.join(FLAGS.output_dir, "eval_results.txt")
        )
    if FLAGS.export_dir:
        export_encoder(model_fn, pooling_settings)


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("bert_config_file", "output_dir"))
    app.run(main)
