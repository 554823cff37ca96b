r"""Fine-tunes BERT for extractive question answering on SQuAD 1.1 or 2.0.

  python run_squad.py --vocab_file=$BERT/vocab.txt --bert_config_file=$BERT/bert_config.json \
      --init_checkpoint=$BERT/bert_model.ckpt --do_train --train_file=train-v1.1.json \
      --do_predict --predict_file=dev-v1.1.json --do_eval --output_dir=/tmp/squad

Writes predictions.json, nbest_predictions.json (and null_odds.json for 2.0) like the
original; `--do_eval` also scores the predictions against `--predict_file` by the official
SQuAD rules of the version --version_2_with_negative names (1.1: exact_match and f1, as
evaluate-v1.1.py; 2.0: exact, f1, the HasAns/NoAns split and best thresholds, as
evaluate-v2.0.py).
"""

from __future__ import annotations

import bert_logging

import os
import random

import tensorflow as tf
from absl import app, flags

import estimator_builder
import export
import finetuning
import flag_help
import input_files
import modeling
import squad_evaluate
import squad_lib
import tfrecord_io

tf1 = tf.compat.v1
FLAGS = flags.FLAGS


def define_flags() -> None:
    estimator_builder.define_fine_tuning_flags(max_seq_length=384)
    input_files.define_input_encoding_flag()
    flags.DEFINE_string("train_file", None, "SQuAD json for training. E.g., train-v1.1.json")
    flags.DEFINE_string(
        "predict_file", None, "SQuAD json for predictions. E.g., dev-v1.1.json or test-v1.1.json"
    )
    flags.DEFINE_integer(
        "doc_stride",
        128,
        "When splitting up a long document into chunks, how much stride to take between chunks.",
    )
    flags.DEFINE_integer(
        "max_query_length",
        64,
        "The maximum number of tokens for the question; longer questions are truncated.",
    )
    flags.DEFINE_integer(
        "n_best_size",
        20,
        "The total number of n-best predictions to generate in the "
        "nbest_predictions.json output file.",
    )
    flags.DEFINE_integer(
        "max_answer_length", 30, "The maximum length of an answer that can be generated."
    )
    flags.DEFINE_bool(
        "verbose_logging",
        False,
        "If true, all of the warnings related to data processing will be printed.",
    )
    flags.DEFINE_bool(
        "version_2_with_negative",
        False,
        "If true, the SQuAD examples contain some that do not have an answer.",
    )
    flags.DEFINE_float(
        "null_score_diff_threshold",
        0.0,
        "If null_score - best_non_null is greater than the threshold predict null.",
    )
    flags.DEFINE_bool(
        "do_eval",
        False,
        "With --do_predict: score the predictions against --predict_file "
        "(exact match and F1) and write eval_results.txt.",
    )
    export.define_export_flag()


# ---------------------------------------------------------------------------- the model


def create_model(
    bert_config: modeling.BertConfig,
    is_training: bool,
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    segment_ids: tf.Tensor,
    use_one_hot_embeddings: bool,
    compute_type: tf.DType = tf.float32,
) -> tuple[tf.Tensor, tf.Tensor]:
    """BERT with a span head (`cls/squad/output_weights`, `cls/squad/output_bias`).

    Args:
      input_ids, input_mask, segment_ids: int32 `[batch_size, seq_length]`.

    Returns:
      `(start_logits, end_logits)`, each float32 `[batch_size, seq_length]`.
    """
    model = modeling.BertModel(
        config=bert_config,
        is_training=is_training,
        input_ids=input_ids,
        input_mask=input_mask,
        token_type_ids=segment_ids,
        use_one_hot_embeddings=use_one_hot_embeddings,
        compute_type=compute_type,
    )
    sequence = tf.cast(model.get_sequence_output(), tf.float32)
    batch_size, seq_length, hidden_size = modeling.get_shape_list(sequence, expected_rank=3)
    output_weights = tf1.get_variable(
        "cls/squad/output_weights",
        [2, hidden_size],
        initializer=tf1.truncated_normal_initializer(stddev=0.02),
    )
    output_bias = tf1.get_variable(
        "cls/squad/output_bias", [2], initializer=tf1.zeros_initializer()
    )
    flat = tf.reshape(sequence, [batch_size * seq_length, hidden_size])
    logits = tf.nn.bias_add(tf.matmul(flat, output_weights, transpose_b=True), output_bias)
    logits = tf.transpose(tf.reshape(logits, [batch_size, seq_length, 2]), [2, 0, 1])
    return logits[0], logits[1]


def span_loss(logits: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy of `[batch_size, seq_length]` logits against `[batch_size]`
    gold positions."""
    seq_length = modeling.get_shape_list(logits)[1]
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    one_hot = tf.one_hot(positions, depth=seq_length, dtype=tf.float32)
    return -tf.reduce_mean(tf.reduce_sum(one_hot * log_probs, axis=-1))


def model_fn_builder(
    bert_config: modeling.BertConfig,
    init_checkpoint: str | None,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    use_one_hot_embeddings: bool,
    run_options: estimator_builder.RunOptions = estimator_builder.DEFAULT_RUN_OPTIONS,
):
    """Returns the model_fn (TPUEstimator style) for SQuAD."""

    def model_fn(features, labels, mode, params):
        del labels, params
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        start_logits, end_logits = create_model(
            bert_config,
            is_training,
            features["input_ids"],
            features["input_mask"],
            features["segment_ids"],
            use_one_hot_embeddings,
            run_options.compute_type,
        )
        scaffold_fn = estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu)
        Spec = tf1.estimator.tpu.TPUEstimatorSpec
        if mode == tf.estimator.ModeKeys.TRAIN:
            total_loss = (
                span_loss(start_logits, features["start_positions"])
                + span_loss(end_logits, features["end_positions"])
            ) / 2.0
            train_op = run_options.create_train_op(
                total_loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu
            )
            return Spec(mode=mode, loss=total_loss, train_op=train_op, scaffold_fn=scaffold_fn)
        if mode == tf.estimator.ModeKeys.PREDICT:
            logits = {"start_logits": start_logits, "end_logits": end_logits}
            # A served model gets no unique ids; the client keeps track of its windows.
            unique_ids = features.get("unique_ids")
            if unique_ids is None:
                unique_ids = tf.zeros_like(features["input_ids"][:, 0])
            return Spec(
                mode=mode,
                predictions=dict(logits, unique_ids=unique_ids),
                export_outputs={"serving_default": tf.estimator.export.PredictOutput(logits)},
                scaffold_fn=scaffold_fn,
            )
        raise ValueError(f"Only TRAIN and PREDICT modes are supported: {mode}")

    return model_fn


# ------------------------------------------------------------------------------ the data


def feature_spec(max_seq_length: int, is_training: bool) -> dict:
    """How the TFRecords written by `write_features` are parsed back: `[max_seq_length]`
    ids, mask and segments, plus gold positions (training) or the unique id (prediction)."""
    ints = tfrecord_io.int_feature_spec
    spec = {
        "input_ids": ints(max_seq_length),
        "input_mask": ints(max_seq_length),
        "segment_ids": ints(max_seq_length),
    }
    scalar = tf.io.FixedLenFeature([], tf.int64)
    if is_training:
        spec.update(start_positions=scalar, end_positions=scalar)
    else:
        spec["unique_ids"] = scalar
    return spec


def serialize_feature(feature: squad_lib.InputFeatures, is_training: bool) -> bytes:
    """A `tf.train.Example` with the original's feature names."""
    ints = tfrecord_io.create_int_feature
    values = {
        "unique_ids": ints([feature.unique_id]),
        "input_ids": ints(feature.input_ids),
        "input_mask": ints(feature.input_mask),
        "segment_ids": ints(feature.segment_ids),
    }
    if is_training:
        values["start_positions"] = ints([feature.start_position])
        values["end_positions"] = ints([feature.end_position])
        values["is_impossible"] = ints([int(bool(feature.is_impossible))])
    example = tf.train.Example(features=tf.train.Features(feature=values))
    return example.SerializeToString()


def write_features(examples, tokenizer, is_training: bool, output_file: str, keep=None) -> int:
    """Featurizes `examples` straight into `output_file`; `keep(feature)` also receives each
    feature (prediction needs them for post-processing). Returns the feature count."""
    with tfrecord_io.RoundRobinRecordWriter([output_file]) as writer:

        def output_fn(feature):
            writer.write(serialize_feature(feature, is_training))
            if keep is not None:
                keep(feature)

        num_features = squad_lib.convert_examples_to_features(
            examples,
            tokenizer,
            FLAGS.max_seq_length,
            FLAGS.doc_stride,
            FLAGS.max_query_length,
            is_training,
            output_fn,
        )
    tf1.logging.info(
        "Features: %d of %d examples written to %s", num_features, len(examples), output_file
    )
    return num_features


def model_description() -> export.ModelDescription:
    """The windowing and tokenizer settings with the vocab and config: what
    predictor.SquadPredictor reads from an export and convert_checkpoint.py from the run's
    directory."""
    return export.ModelDescription(
        metadata={
            "task": "squad",
            "do_lower_case": FLAGS.do_lower_case,
            "doc_stride": FLAGS.doc_stride,
            "max_query_length": FLAGS.max_query_length,
        },
        vocab_file=FLAGS.vocab_file,
        spm_model_file=FLAGS.spm_model_file,
        bert_config_file=FLAGS.bert_config_file,
    )


def export_squad_model(loop: finetuning.FineTuning) -> str:
    """--export_dir: a SavedModel (outputs start_logits and end_logits) of the last
    checkpoint in --output_dir, else of --init_checkpoint, with the tokenizer and the
    windowing settings a predictor needs."""
    with loop.checkpoint_to_export() as checkpoint:
        return export.export_saved_model(
            loop.model_fn,
            checkpoint,
            FLAGS.export_dir,
            FLAGS.max_seq_length,
            description=loop.description,
        )


def check_flags() -> None:
    if not (FLAGS.do_train or FLAGS.do_predict or FLAGS.export_dir):
        raise ValueError("At least one of --do_train, --do_predict or --export_dir must be set.")
    if FLAGS.do_train and not FLAGS.train_file:
        raise ValueError("--do_train needs --train_file.")
    if FLAGS.do_predict and not FLAGS.predict_file:
        raise ValueError("--do_predict needs --predict_file.")
    if FLAGS.do_eval and not FLAGS.do_predict:
        raise ValueError("--do_eval scores the predictions of --do_predict; set both.")
    if FLAGS.max_seq_length <= FLAGS.max_query_length + 3:
        raise ValueError(
            f"--max_seq_length={FLAGS.max_seq_length} leaves no room for the context after "
            f"--max_query_length={FLAGS.max_query_length} and [CLS]/[SEP] tokens"
        )


def main(_) -> None:
    bert_logging.configure()
    check_flags()
    bert_config, tokenizer = estimator_builder.model_and_tokenizer_from_flags()
    input_encoding = input_files.check_encoding(FLAGS.input_encoding)
    tf.io.gfile.makedirs(FLAGS.output_dir)

    train_examples = []
    if FLAGS.do_train:
        train_examples = squad_lib.read_squad_examples(
            FLAGS.train_file,
            is_training=True,
            version_2_with_negative=FLAGS.version_2_with_negative,
            encoding=input_encoding,
        )
        # Shuffled once with a fixed seed, as the original, so the written records mix
        # questions about different paragraphs.
        random.Random(12345).shuffle(train_examples)
    predict_examples = []
    if FLAGS.do_predict:
        predict_examples = squad_lib.read_squad_examples(
            FLAGS.predict_file,
            is_training=False,
            version_2_with_negative=FLAGS.version_2_with_negative,
            encoding=input_encoding,
        )

    run_options = estimator_builder.run_options_from_flags()

    def make_model_fn(num_train_steps, num_warmup_steps):
        return model_fn_builder(
            bert_config=bert_config,
            init_checkpoint=FLAGS.init_checkpoint,
            learning_rate=FLAGS.learning_rate,
            num_train_steps=num_train_steps,
            num_warmup_steps=num_warmup_steps,
            use_tpu=FLAGS.use_tpu,
            use_one_hot_embeddings=FLAGS.use_tpu,
            run_options=run_options,
        )

    # The original counts steps in questions, not in the (more) windows they make.
    loop = finetuning.FineTuning(
        finetuning.LoopSettings.from_flags(FLAGS),
        make_model_fn,
        num_train_examples=len(train_examples) if FLAGS.do_train else None,
        description=model_description(),
    )

    if FLAGS.do_train:
        train_record = os.path.join(FLAGS.output_dir, "train.tf_record")
        num_features = write_features(train_examples, tokenizer, True, train_record)
        tf1.logging.info("  Num orig examples = %d", len(train_examples))
        tf1.logging.info("  Num split examples = %d", num_features)
        del train_examples
        loop.train(
            tfrecord_io.input_fn_builder(
                [train_record],
                feature_spec(FLAGS.max_seq_length, is_training=True),
                is_training=True,
                drop_remainder=True,
            )
        )

    if FLAGS.export_dir:
        export_squad_model(loop)

    if FLAGS.do_predict:
        predict_record = os.path.join(FLAGS.output_dir, "eval.tf_record")
        features = []
        num_features = write_features(
            predict_examples, tokenizer, False, predict_record, keep=features.append
        )
        tf1.logging.info("***** Running predictions *****")
        tf1.logging.info("  Num orig examples = %d", len(predict_examples))
        tf1.logging.info("  Num split examples = %d", num_features)
        tf1.logging.info("  Batch size = %d", FLAGS.predict_batch_size)
        predict_input_fn = tfrecord_io.input_fn_builder(
            [predict_record],
            feature_spec(FLAGS.max_seq_length, is_training=False),
            is_training=False,
            drop_remainder=False,
            # Full-length logits: the n-best search runs over every position, padding
            # included, as the original's does, so shorter rows could change the lists.
            sequence_features=(),
        )
        # A generator: post-processing keeps only each feature's n-best logits.
        results = (
            squad_lib.RawResult(
                unique_id=int(result["unique_ids"]),
                start_logits=[float(x) for x in result["start_logits"].flat],
                end_logits=[float(x) for x in result["end_logits"].flat],
            )
            for result in bert_logging.counted(
                loop.estimator.predict(predict_input_fn), "Predictions", num_features
            )
        )
        predictions, _, null_odds = squad_lib.write_predictions(
            predict_examples,
            features,
            results,
            FLAGS.n_best_size,
            FLAGS.max_answer_length,
            FLAGS.do_lower_case,
            os.path.join(FLAGS.output_dir, "predictions.json"),
            os.path.join(FLAGS.output_dir, "nbest_predictions.json"),
            os.path.join(FLAGS.output_dir, "null_odds.json"),
            version_2_with_negative=FLAGS.version_2_with_negative,
            null_score_diff_threshold=FLAGS.null_score_diff_threshold,
            verbose_logging=FLAGS.verbose_logging,
        )
        tf1.logging.info(
            "Predictions of %d questions written to %s",
            len(predict_examples),
            ", ".join(
                os.path.join(FLAGS.output_dir, name)
                for name in ["predictions.json", "nbest_predictions.json"]
                + (["null_odds.json"] if FLAGS.version_2_with_negative else [])
            ),
        )
        if FLAGS.do_eval:
            dataset = squad_lib.read_squad_json(FLAGS.predict_file, input_encoding)
            scores = squad_evaluate.evaluate(
                dataset,
                predictions,
                na_probs=null_odds or None,
                squad_version="2.0" if FLAGS.version_2_with_negative else "1.1",
            )
            estimator_builder.write_eval_results(
                scores, os.path.join(FLAGS.output_dir, "eval_results.txt")
            )


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("bert_config_file", "output_dir"))
    app.run(main)
