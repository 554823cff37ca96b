"""Fine-tunes BERT for sentence (pair) classification, regression or multi-label tagging.

The GLUE tasks and XNLI come built in (`--task_name=MRPC` ...); your own CSV, TSV or JSON Lines
files need no code (`--task_name=generic --text_a_column=... --label_column=...`), and a
`DataProcessor` of your own plugs in with `--processor=my_module:MyProcessor`.

  python run_classifier.py --task_name=MRPC --do_train --do_eval --data_dir=glue/MRPC \
      --vocab_file=$BERT/vocab.txt --bert_config_file=$BERT/bert_config.json \
      --init_checkpoint=$BERT/bert_model.ckpt --output_dir=/tmp/mrpc
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags

import classifier_data
import classifier_metrics
import estimator_builder
import export
import input_files
import modeling
import predictor
import tfrecord_io
import tokenization

# Users of the original import these from run_classifier; they live in classifier_data now.
from classifier_data import (  # noqa: F401
    DataProcessor,
    InputExample,
    InputFeatures,
    PaddingInputExample,
    convert_single_example,
    file_based_convert_examples_to_features,
)

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

CLASSIFICATION = classifier_data.CLASSIFICATION
REGRESSION = classifier_data.REGRESSION
MULTI_LABEL = classifier_data.MULTI_LABEL


def define_flags() -> None:
    estimator_builder.define_fine_tuning_flags(max_seq_length=128)
    input_files.define_input_encoding_flag()
    flags.DEFINE_string(
        "data_dir", None, "The input data dir, holding the .tsv (or other) files of the task."
    )
    flags.DEFINE_string(
        "task_name",
        None,
        "The task to train: one of "
        + ", ".join(sorted(classifier_data.PROCESSORS))
        + ", or 'generic' for your own files (see the --text_a_column family of flags).",
    )
    flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
    flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
    flags.DEFINE_integer(
        "eval_every_steps",
        0,
        "With --do_train --do_eval: score the dev set every N training steps and keep the "
        "best checkpoint (by the task's metric) in <output_dir>/best. 0 evaluates only at "
        "the end, as the original did.",
    )
    flags.DEFINE_string(
        "processor",
        None,
        "Your own DataProcessor subclass as 'module:Class' or 'path/to/file.py:Class'.",
    )
    flags.DEFINE_string("xnli_language", "zh", "Language of the XNLI data to use.")
    # SavedModel of the best checkpoint when --eval_every_steps kept one, else of the last.
    export.define_export_flag()
    flags.DEFINE_bool(
        "export_raw_text",
        False,
        "With --export_dir: also write a SavedModel that takes raw strings (text_a, text_b) "
        "and tokenizes them in graph, under <export_dir>_raw_text/ (WordPiece vocabs only).",
    )
    flags.DEFINE_bool(
        "interactive",
        False,
        "After everything else (or alone, without --do_*): classify lines read from stdin "
        "(text_a, or text_a<TAB>text_b) with the newest model in --export_dir, printing "
        "label<TAB>probability per line.",
    )
    # The generic processor: the user's own files, described by flags.
    flags.DEFINE_enum("file_format", None, ["csv", "tsv", "jsonl"], "Format of generic data files.")
    flags.DEFINE_string("train_file", None, "Generic data: training file in --data_dir.")
    flags.DEFINE_string("dev_file", None, "Generic data: dev file in --data_dir.")
    flags.DEFINE_string("test_file", None, "Generic data: test file in --data_dir.")
    flags.DEFINE_string(
        "text_a_column", "text", "Generic data: column index (0-based) or name/key of text_a."
    )
    flags.DEFINE_string(
        "text_b_column", None, "Generic data: column or key of text_b (sentence pairs)."
    )
    flags.DEFINE_string("label_column", "label", "Generic data: column or key of the label.")
    flags.DEFINE_bool(
        "has_header",
        None,
        "Generic data: whether the first row names the columns (default: yes when a "
        "column is given by name).",
    )
    flags.DEFINE_string("delimiter", None, "Generic data: field separator (default , or tab).")
    flags.DEFINE_list(
        "labels", None, "Generic data: the label list (default: read from the training file)."
    )
    flags.DEFINE_bool(
        "multi_label", False, "Generic data: several labels per example (sigmoid outputs)."
    )
    flags.DEFINE_string(
        "label_separator", "|", "Generic multi-label data: separator inside the label field."
    )
    flags.DEFINE_bool(
        "regression", False, "Generic data: the label is a number (mean squared error loss)."
    )
    flags.DEFINE_float(
        "multi_label_threshold",
        0.5,
        "Multi-label: a label is predicted when its probability reaches this value.",
    )


# ---------------------------------------------------------------------------- the model


def create_model(
    bert_config: modeling.BertConfig,
    is_training: bool,
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    segment_ids: tf.Tensor,
    labels: tf.Tensor,
    num_labels: int,
    use_one_hot_embeddings: bool,
    task_kind: str = CLASSIFICATION,
    compute_type: tf.DType = tf.float32,
):
    """BERT with `classifier_head` on its pooled output.

    Args:
      input_ids, input_mask, segment_ids: int32 `[batch_size, seq_length]`.
      labels, num_labels, task_kind: as `classifier_head` takes them.

    Returns:
      What `classifier_head` returns.
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
    pooled = tf.cast(model.get_pooled_output(), tf.float32)
    # The original hard-codes 0.1 here, which is every released config's
    # hidden_dropout_prob; taking it from the config lets a config switch it off.
    return classifier_head(
        pooled, labels, num_labels, is_training, bert_config.hidden_dropout_prob, task_kind
    )


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
      pooled_output: float32 `[batch_size, hidden_size]`.
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
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            one_hot = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
            per_example_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)
        loss = tf.reduce_mean(per_example_loss)
    return loss, per_example_loss, logits, probabilities


def classification_metrics(per_example_loss, label_ids, logits, is_real_example):
    """Streaming eval_accuracy and eval_loss over the real (not padding) examples."""
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return {
        "eval_accuracy": tf1.metrics.accuracy(
            labels=label_ids, predictions=predictions, weights=is_real_example
        ),
        "eval_loss": tf1.metrics.mean(values=per_example_loss, weights=is_real_example),
    }


def loss_only_metrics(per_example_loss, label_ids, logits, is_real_example):
    """eval_loss for regression and multi-label tasks (their other metrics need every
    prediction and are computed from a predict pass)."""
    del label_ids, logits
    return {"eval_loss": tf1.metrics.mean(values=per_example_loss, weights=is_real_example)}


def model_fn_builder(
    bert_config: modeling.BertConfig,
    num_labels: int,
    init_checkpoint: str | None,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    use_one_hot_embeddings: bool,
    task_kind: str = CLASSIFICATION,
    run_options: estimator_builder.RunOptions = estimator_builder.DEFAULT_RUN_OPTIONS,
):
    """Returns the model_fn (TPUEstimator style) of the classifier."""

    def model_fn(features, labels, mode, params):
        del labels, params
        label_ids, is_real_example = labels_of(features, num_labels, task_kind)
        head_outputs = create_model(
            bert_config,
            mode == tf.estimator.ModeKeys.TRAIN,
            features["input_ids"],
            features["input_mask"],
            features["segment_ids"],
            label_ids,
            num_labels,
            use_one_hot_embeddings,
            task_kind,
            run_options.compute_type,
        )
        scaffold_fn = estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu)

        def train_op_fn(loss):
            return run_options.create_train_op(
                loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu
            )

        return classifier_spec(
            mode, head_outputs, label_ids, is_real_example, task_kind, train_op_fn, scaffold_fn
        )

    return model_fn


def labels_of(features: dict, num_labels: int, task_kind: str) -> tuple[tf.Tensor, tf.Tensor]:
    """`(label_ids, is_real_example as float)` of a batch; a served model gets neither, and
    stand-ins keep the graph the same."""
    label_ids = features.get("label_ids")
    if label_ids is None:
        label_ids = placeholder_labels(features["input_ids"], num_labels, task_kind)
    return label_ids, tf.cast(features.get("is_real_example", 1), tf.float32)


def classifier_spec(
    mode, head_outputs, label_ids, is_real_example, task_kind, train_op_fn, scaffold_fn=None
):
    """The TPUEstimatorSpec of each mode from `classifier_head`'s outputs: the train op,
    the eval metrics, or the predictions (and the serving signature's outputs)."""
    total_loss, per_example_loss, logits, probabilities = head_outputs
    Spec = tf1.estimator.tpu.TPUEstimatorSpec
    if mode == tf.estimator.ModeKeys.TRAIN:
        return Spec(
            mode=mode, loss=total_loss, train_op=train_op_fn(total_loss), scaffold_fn=scaffold_fn
        )
    if mode == tf.estimator.ModeKeys.EVAL:
        metric_fn = classification_metrics if task_kind == CLASSIFICATION else loss_only_metrics
        metric_inputs = [per_example_loss, label_ids, logits, is_real_example]
        return Spec(
            mode=mode,
            loss=total_loss,
            eval_metrics=(metric_fn, metric_inputs),
            scaffold_fn=scaffold_fn,
        )
    outputs = {"probabilities": probabilities, "logits": logits}
    return Spec(
        mode=mode,
        predictions=dict(outputs, label_ids=label_ids),
        export_outputs={"serving_default": tf.estimator.export.PredictOutput(outputs)},
        scaffold_fn=scaffold_fn,
    )


def placeholder_labels(input_ids: tf.Tensor, num_labels: int, task_kind: str) -> tf.Tensor:
    """Zero labels of the right dtype and shape for `[batch_size, seq_length]` inputs."""
    batch_size = tf.shape(input_ids)[0]
    if task_kind == REGRESSION:
        return tf.zeros([batch_size], tf.float32)
    if task_kind == MULTI_LABEL:
        return tf.zeros([batch_size, num_labels], tf.int32)
    return tf.zeros([batch_size], tf.int32)


# ------------------------------------------------------------------------------ the data


def make_processor() -> DataProcessor:
    """The processor chosen by the flags, reading its files in --input_encoding."""
    processor = _processor_from_flags()
    processor.input_encoding = input_files.check_encoding(FLAGS.input_encoding)
    return processor


def _processor_from_flags() -> DataProcessor:
    """The processor chosen by --processor, --task_name=generic or a built-in --task_name."""
    if FLAGS.processor:
        return classifier_data.load_processor(FLAGS.processor, flag_name="processor")
    if not FLAGS.task_name:
        raise ValueError("Set --task_name (or --processor=module:Class).")
    task = FLAGS.task_name.lower()
    if task == "generic":
        if FLAGS.multi_label and FLAGS.regression:
            raise ValueError("--multi_label and --regression cannot both be set")
        kind = (
            MULTI_LABEL if FLAGS.multi_label else REGRESSION if FLAGS.regression else CLASSIFICATION
        )
        return classifier_data.GenericProcessor(
            data_dir=FLAGS.data_dir,
            file_format=FLAGS.file_format,
            train_file=FLAGS.train_file,
            dev_file=FLAGS.dev_file,
            test_file=FLAGS.test_file,
            text_a_column=classifier_data.parse_column(FLAGS.text_a_column),
            text_b_column=classifier_data.parse_column(FLAGS.text_b_column),
            label_column=classifier_data.parse_column(FLAGS.label_column),
            has_header=FLAGS.has_header,
            delimiter=FLAGS.delimiter,
            labels=FLAGS.labels,
            task_kind=kind,
            label_separator=FLAGS.label_separator,
        )
    if task == "xnli":
        return classifier_data.XnliProcessor(language=FLAGS.xnli_language)
    return classifier_data.processor_for_task(task)


def _file_fingerprint(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as reader:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def features_fingerprint(split: str, examples, label_list, task_kind: str) -> str:
    """What the cached TFRecords of a split depend on: the examples themselves, the labels,
    the tokenizer's files and settings, and the sequence length."""
    digest = hashlib.sha256()
    settings = {
        "split": split,
        "labels": list(label_list),
        "task_kind": task_kind,
        "max_seq_length": FLAGS.max_seq_length,
        "do_lower_case": FLAGS.do_lower_case,
        "vocab": _file_fingerprint(FLAGS.vocab_file) if FLAGS.vocab_file else None,
        "spm": _file_fingerprint(FLAGS.spm_model_file) if FLAGS.spm_model_file else None,
        "format": 1,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for example in examples:
        if isinstance(example, PaddingInputExample):
            digest.update(b"\x00padding")
        else:
            fields = [example.guid, example.text_a, example.text_b, example.label]
            digest.update(json.dumps(fields).encode())
    return digest.hexdigest()


def write_or_reuse_records(split, examples, label_list, tokenizer, task_kind) -> str:
    """Writes `<output_dir>/<split>.tf_record`, or keeps it when a previous run wrote it
    from the same examples, vocab and settings (checked by a fingerprint beside it)."""
    record_file = os.path.join(FLAGS.output_dir, f"{split}.tf_record")
    fingerprint_file = record_file + ".fingerprint"
    fingerprint = features_fingerprint(split, examples, label_list, task_kind)
    if tf.io.gfile.exists(record_file) and tf.io.gfile.exists(fingerprint_file):
        with tf.io.gfile.GFile(fingerprint_file) as reader:
            if reader.read().strip() == fingerprint:
                tf1.logging.info("Reusing %s (same data, vocab and settings)", record_file)
                return record_file
    classifier_data.file_based_convert_examples_to_features(
        examples, label_list, FLAGS.max_seq_length, tokenizer, record_file, task_kind
    )
    tfrecord_io.write_text_atomically(fingerprint_file, fingerprint + "\n")
    return record_file


def padded(examples, batch_size: int):
    """Pads with fake examples (is_real_example = 0) so that every batch is full."""
    return classifier_data.pad_examples_to_batch_multiple(examples, batch_size)


# ------------------------------------------------------------------------------ outputs


def gather_predictions(estimator, input_fn, num_real: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs prediction; returns `(probabilities [num_real, outputs], labels)` of the real
    examples, in input order (padding comes last, so it is cut off)."""
    probabilities, labels = [], []
    for index, prediction in enumerate(estimator.predict(input_fn)):
        if index >= num_real:
            break
        probabilities.append(prediction["probabilities"])
        labels.append(prediction["label_ids"])
    return np.array(probabilities), np.array(labels)


def write_test_results(path: str, probabilities: np.ndarray) -> None:
    """The original's test_results.tsv: one tab-separated row of outputs per example."""
    rows = ["\t".join(str(value) for value in row) + "\n" for row in probabilities]
    tfrecord_io.write_text_atomically(path, "".join(rows))


def predicted_labels(probabilities: np.ndarray, label_list, task_kind: str) -> list[str]:
    """Readable predictions: the label name, the value (regression), or the labels at or
    above --multi_label_threshold joined by --label_separator (multi-label)."""
    if task_kind == REGRESSION:
        return [f"{row[0]:.6g}" for row in probabilities]
    if task_kind == MULTI_LABEL:
        return [
            FLAGS.label_separator.join(
                label
                for label, p in zip(label_list, row, strict=True)
                if p >= FLAGS.multi_label_threshold
            )
            for row in probabilities
        ]
    return [label_list[index] for index in np.argmax(probabilities, axis=-1)]


def write_readable_predictions(path: str, examples, predictions: list[str]) -> None:
    """test_predictions.tsv: guid, predicted label and the input text, with a header."""
    lines = ["guid\tprediction\ttext_a\ttext_b\n"]
    for example, prediction in zip(examples, predictions, strict=True):
        texts = [example.text_a or "", example.text_b or ""]
        cleaned = [" ".join(text.split()) for text in texts]
        lines.append("\t".join([str(example.guid), prediction, *cleaned]) + "\n")
    tfrecord_io.write_text_atomically(path, "".join(lines))


# ----------------------------------------------------------------------------- the run


class Evaluator:
    """Scores the dev set with the Estimator's metrics plus the task's own (F1, MCC,
    Spearman, per-class...), and keeps a copy of the best checkpoint so far."""

    def __init__(self, estimator, input_fn, num_real, processor, label_list):
        self.estimator = estimator
        self.input_fn = input_fn
        self.num_real = num_real
        self.metric_name = processor.metric_name
        self.task_kind = processor.task_kind
        self.label_list = label_list
        self.main_key = classifier_metrics.main_metric_key(self.metric_name)
        self.best_dir = os.path.join(FLAGS.output_dir, "best")
        self.best_value = self._recorded_best()

    def evaluate(self) -> dict:
        checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir)
        result = self.estimator.evaluate(self.input_fn, checkpoint_path=checkpoint)
        if self.metric_name != classifier_metrics.ACCURACY:
            scores, labels = gather_predictions(self.estimator, self.input_fn, self.num_real)
            result.update(
                classifier_metrics.task_metrics(
                    self.metric_name,
                    labels,
                    scores[:, 0] if self.task_kind == REGRESSION else scores,
                    self.label_list,
                    threshold=FLAGS.multi_label_threshold,
                )
            )
            self._write_summaries(result)
        self._keep_if_best(result, checkpoint)
        return result

    def _write_summaries(self, result: dict) -> None:
        """Puts the task metrics next to the Estimator's own in TensorBoard's eval run."""
        writer = tf1.summary.FileWriterCache.get(os.path.join(FLAGS.output_dir, "eval"))
        summary = tf1.Summary(
            value=[
                tf1.Summary.Value(tag=key, simple_value=float(value))
                for key, value in result.items()
                if key not in ("global_step",)
            ]
        )
        writer.add_summary(summary, int(result["global_step"]))
        writer.flush()

    def _recorded_best(self) -> float | None:
        path = os.path.join(self.best_dir, "eval_results.txt")
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as reader:
            for line in reader:
                key, _, value = line.partition(" = ")
                if key == self.main_key:
                    return float(value)
        return None

    def _keep_if_best(self, result: dict, checkpoint: str) -> None:
        value = float(result[self.main_key])
        if self.best_value is not None and value <= self.best_value:
            return
        self.best_value = value
        tf1.logging.info("New best %s = %.4f at %s", self.main_key, value, checkpoint)
        staging = self.best_dir + ".tmp"
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
        tf.io.gfile.makedirs(staging)
        for path in tf.io.gfile.glob(checkpoint + ".*"):
            tf.io.gfile.copy(path, os.path.join(staging, os.path.basename(path)))
        name = os.path.basename(checkpoint)
        tfrecord_io.write_text_atomically(
            os.path.join(staging, "checkpoint"),
            f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n',
        )
        estimator_builder.write_eval_results(result, os.path.join(staging, "eval_results.txt"))
        if tf.io.gfile.exists(self.best_dir):
            tf.io.gfile.rmtree(self.best_dir)
        tf.io.gfile.rename(staging, self.best_dir)


def train_with_periodic_eval(estimator, train_input_fn, num_train_steps, evaluator) -> dict:
    """Trains in stretches of --eval_every_steps, scoring the dev set after each; returns
    the last result. A restarted run picks up at its last checkpoint."""
    checkpoint = tf.train.latest_checkpoint(FLAGS.output_dir)
    step = int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0
    result = {}
    while step < num_train_steps or not result:
        step = min(step + FLAGS.eval_every_steps, num_train_steps)
        estimator.train(train_input_fn, max_steps=step)
        result = evaluator.evaluate()
        tf1.logging.info("Step %d: %s", step, result)
    return result


def classify_stdin(export_dir: str | None) -> None:
    """--interactive: one prediction per line of stdin, from the newest export."""
    if not export_dir:
        raise ValueError("--interactive reads the model from --export_dir, which is not set")
    predictor.classify_lines(predictor.ClassifierPredictor(export_dir), sys.stdin)


def main(_) -> None:
    tf1.logging.set_verbosity(tf1.logging.INFO)
    if FLAGS.interactive and not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
        classify_stdin(FLAGS.export_dir)
        return
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.export_dir):
        raise ValueError(
            "At least one of --do_train, --do_eval, --do_predict or --export_dir must be set."
        )
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    tokenizer = tokenization.create_tokenizer(
        FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.spm_model_file
    )
    estimator_builder.check_model_flags(bert_config, tokenizer)
    run_options = estimator_builder.run_options_from_flags()

    def make_model_fn(num_labels, task_kind, num_train_steps, num_warmup_steps):
        return model_fn_builder(
            bert_config=bert_config,
            num_labels=num_labels,
            init_checkpoint=FLAGS.init_checkpoint,
            learning_rate=FLAGS.learning_rate,
            num_train_steps=num_train_steps,
            num_warmup_steps=num_warmup_steps,
            use_tpu=FLAGS.use_tpu,
            use_one_hot_embeddings=FLAGS.use_tpu,
            task_kind=task_kind,
            run_options=run_options,
        )

    run_task(tokenizer, make_model_fn)
    if FLAGS.interactive:
        classify_stdin(FLAGS.export_dir)


def run_task(tokenizer: tokenization.Tokenizer, make_model_fn) -> None:
    """Reads the task's data, then trains, evaluates, exports and predicts as the flags say.

    `make_model_fn(num_labels, task_kind, num_train_steps, num_warmup_steps)` returns the
    TPUEstimator-style model_fn; run_classifier_with_tfhub.py passes its own.
    """
    tf.io.gfile.makedirs(FLAGS.output_dir)
    processor = make_processor()
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
    model_fn = make_model_fn(
        num_labels,
        task_kind,
        max(num_train_steps, 1),
        int(num_train_steps * FLAGS.warmup_proportion),
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
        record_file = write_or_reuse_records(split, examples, label_list, tokenizer, task_kind)
        return tfrecord_io.input_fn_builder(
            [record_file], spec, is_training=is_training, drop_remainder=True
        )

    evaluator = None
    if FLAGS.do_eval:
        eval_input_fn = input_fn_for(
            "eval", padded(eval_examples, FLAGS.eval_batch_size), is_training=False
        )
        evaluator = Evaluator(estimator, eval_input_fn, len(eval_examples), processor, label_list)

    result = None
    if FLAGS.do_train:
        tf1.logging.info("***** Running training *****")
        tf1.logging.info("  Num examples = %d", len(train_examples))
        tf1.logging.info("  Batch size = %d", FLAGS.train_batch_size)
        tf1.logging.info("  Num steps = %d", num_train_steps)
        train_input_fn = input_fn_for("train", train_examples, is_training=True)
        if evaluator is not None and FLAGS.eval_every_steps > 0:
            result = train_with_periodic_eval(estimator, train_input_fn, num_train_steps, evaluator)
        else:
            estimator.train(train_input_fn, max_steps=num_train_steps)

    if evaluator is not None:
        if result is None:
            tf1.logging.info("***** Running evaluation *****")
            tf1.logging.info("  Num examples = %d", len(eval_examples))
            result = evaluator.evaluate()
        estimator_builder.write_eval_results(
            result, os.path.join(FLAGS.output_dir, "eval_results.txt")
        )

    if FLAGS.export_dir:
        export_classifier(model_fn, evaluator, label_list, task_kind)

    if FLAGS.do_predict:
        tf1.logging.info("***** Running prediction *****")
        predict_input_fn = input_fn_for(
            "predict", padded(predict_examples, FLAGS.predict_batch_size), is_training=False
        )
        probabilities, _ = gather_predictions(estimator, predict_input_fn, len(predict_examples))
        if len(probabilities) != len(predict_examples):
            raise RuntimeError(
                f"Got {len(probabilities)} predictions for {len(predict_examples)} examples"
            )
        write_test_results(os.path.join(FLAGS.output_dir, "test_results.tsv"), probabilities)
        write_readable_predictions(
            os.path.join(FLAGS.output_dir, "test_predictions.tsv"),
            predict_examples,
            predicted_labels(probabilities, label_list, task_kind),
        )


def export_classifier(model_fn, evaluator, label_list, task_kind: str) -> str:
    """--export_dir: the best checkpoint kept by --eval_every_steps, else the last, else
    --init_checkpoint (say, a model fine-tuned earlier), as a SavedModel that carries its
    vocab, labels and settings (what predictor.py reads)."""
    best = evaluator and tf.train.latest_checkpoint(evaluator.best_dir)
    checkpoint = best or tf.train.latest_checkpoint(FLAGS.output_dir)
    if checkpoint:
        return export_classifier_checkpoint(model_fn, checkpoint, label_list, task_kind)
    if not FLAGS.init_checkpoint:
        raise ValueError(
            f"--export_dir: no checkpoint in {FLAGS.output_dir} and no --init_checkpoint"
        )
    with export.initialized_checkpoint(model_fn, FLAGS.max_seq_length) as initialized:
        return export_classifier_checkpoint(model_fn, initialized, label_list, task_kind)


def export_classifier_checkpoint(model_fn, checkpoint, label_list, task_kind: str) -> str:
    if FLAGS.export_raw_text:
        import raw_text_export  # needs tensorflow_text, which nothing else here does

        if FLAGS.spm_model_file or not FLAGS.vocab_file:
            raise ValueError("--export_raw_text tokenizes with a WordPiece --vocab_file only")
        raw_text_export.export_raw_text_saved_model(
            model_fn,
            checkpoint,
            FLAGS.export_dir.rstrip("/") + "_raw_text",
            FLAGS.max_seq_length,
            FLAGS.vocab_file,
            FLAGS.do_lower_case,
        )
    return export.export_saved_model(
        model_fn,
        checkpoint,
        FLAGS.export_dir,
        FLAGS.max_seq_length,
        assets_extra=export.tokenizer_assets(FLAGS.vocab_file, FLAGS.spm_model_file),
        metadata={
            "labels": list(label_list),
            "task_kind": task_kind,
            "do_lower_case": FLAGS.do_lower_case,
            "multi_label_threshold": FLAGS.multi_label_threshold,
        },
    )


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("data_dir")
    flags.mark_flag_as_required("bert_config_file")
    flags.mark_flag_as_required("output_dir")
    app.run(main)
