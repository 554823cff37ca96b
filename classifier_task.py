"""Sentence (pair) classification, regression and multi-label tagging as a task of the shared
fine-tuning loop: its flags, data, cached features, model, metrics, outputs and export.

run_classifier.py (the BERT encoder from a checkpoint) and run_classifier_with_tfhub.py (an
encoder from TF Hub) are this task with two encoders: each passes its own
`make_model_fn(num_labels, task_kind, num_train_steps, num_warmup_steps)` to `run`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from absl import flags

import atomic_files
import classifier_data
import classifier_metrics
import estimator_builder
import export
import finetuning
import heads
import input_files
import modeling
import tfrecord_io
import tokenization

tf1 = tf.compat.v1

CLASSIFICATION = classifier_data.CLASSIFICATION
REGRESSION = classifier_data.REGRESSION
MULTI_LABEL = classifier_data.MULTI_LABEL

# `make_model_fn(num_labels, task_kind, num_train_steps, num_warmup_steps)`.
ClassifierModelFnFactory = Callable[[int, str, int, int], estimator_builder.ModelFn]


def define_flags() -> None:
    """run_classifier.py's flags (the original's, then ours); the Hub script shares them."""
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
    finetuning.define_evaluation_flags(best_metric="the task's metric")
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
        "After everything else, or alone with --export_dir only (vocab, labels and settings "
        "come from the export): classify lines read from stdin (text_a, or "
        "text_a<TAB>text_b; a '> ' prompt when stdin is a terminal) with the newest model "
        "in --export_dir, printing label<TAB>probability<TAB>the input line, per line.",
    )
    _define_generic_data_flags()


def _define_generic_data_flags() -> None:
    """The generic processor: the user's own files, described by flags."""
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
    flags.DEFINE_string(
        "id_column",
        None,
        "Generic data: column or key of the test file holding each example's own id, written "
        "as the first column of test_predictions.tsv.",
    )
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


def processor_from_flags(flag_values) -> classifier_data.DataProcessor:
    """The processor chosen by the flags, reading its files in --input_encoding."""
    processor = _chosen_processor(flag_values)
    processor.input_encoding = input_files.check_encoding(flag_values.input_encoding)
    return processor


def _chosen_processor(flag_values) -> classifier_data.DataProcessor:
    """The processor of --processor, --task_name=generic or a built-in --task_name."""
    if flag_values.processor:
        return classifier_data.load_processor(flag_values.processor, flag_name="processor")
    if not flag_values.task_name:
        raise ValueError("Set --task_name (or --processor=module:Class).")
    task = flag_values.task_name.lower()
    if task == "generic":
        return _generic_processor(flag_values)
    if task == "xnli":
        return classifier_data.XnliProcessor(language=flag_values.xnli_language)
    return classifier_data.processor_for_task(task)


def _generic_processor(flag_values) -> classifier_data.GenericProcessor:
    if flag_values.multi_label and flag_values.regression:
        raise ValueError("--multi_label and --regression cannot both be set")
    kind = CLASSIFICATION
    if flag_values.multi_label:
        kind = MULTI_LABEL
    elif flag_values.regression:
        kind = REGRESSION
    return classifier_data.GenericProcessor(
        data_dir=flag_values.data_dir,
        file_format=flag_values.file_format,
        train_file=flag_values.train_file,
        dev_file=flag_values.dev_file,
        test_file=flag_values.test_file,
        text_a_column=classifier_data.parse_column(flag_values.text_a_column),
        text_b_column=classifier_data.parse_column(flag_values.text_b_column),
        label_column=classifier_data.parse_column(flag_values.label_column),
        has_header=flag_values.has_header,
        delimiter=flag_values.delimiter,
        labels=flag_values.labels,
        task_kind=kind,
        label_separator=flag_values.label_separator,
        id_column=classifier_data.parse_column(flag_values.id_column),
    )


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
    """What a classifier run does, beside the loop's own settings."""

    loop: finetuning.LoopSettings
    data_dir: str | None
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    export_dir: str | None = None
    export_raw_text: bool = False
    vocab_file: str | None = None
    spm_model_file: str | None = None
    do_lower_case: bool = True
    multi_label_threshold: float = 0.5
    label_separator: str = "|"
    bert_config_file: str | None = None

    @classmethod
    def from_flags(cls, flag_values) -> ClassifierSettings:
        return cls(
            loop=finetuning.LoopSettings.from_flags(flag_values),
            data_dir=flag_values.data_dir,
            do_train=flag_values.do_train,
            do_eval=flag_values.do_eval,
            do_predict=flag_values.do_predict,
            export_dir=flag_values.export_dir,
            export_raw_text=flag_values.export_raw_text,
            vocab_file=flag_values.vocab_file,
            spm_model_file=flag_values.spm_model_file,
            do_lower_case=flag_values.do_lower_case,
            multi_label_threshold=flag_values.multi_label_threshold,
            label_separator=flag_values.label_separator,
            bert_config_file=flag_values.bert_config_file,
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
    """BERT with `heads.classifier_head` on its pooled output.

    Args:
      input_ids, input_mask, segment_ids: int32 `[batch_size, seq_length]`.
      labels, num_labels, task_kind: as `heads.classifier_head` takes them.

    Returns:
      What `heads.classifier_head` returns.
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
    return heads.classifier_head(
        pooled, labels, num_labels, is_training, bert_config.hidden_dropout_prob, task_kind
    )


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
    """Returns the model_fn (TPUEstimator style) of the classifier on BERT."""

    def model_fn(features, labels, mode, params):
        del labels, params
        label_ids, is_real_example = heads.labels_of(features, num_labels, task_kind)
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

        return heads.classifier_spec(
            mode, head_outputs, label_ids, is_real_example, task_kind, train_op_fn, scaffold_fn
        )

    return model_fn


# ------------------------------------------------------------------------------ the data


def _file_fingerprint(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as reader:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def features_fingerprint(
    split: str, examples, label_list, task_kind: str, settings: ClassifierSettings
) -> str:
    """What the cached TFRecords of a split depend on: the examples themselves, the labels,
    the tokenizer's files and settings, and the sequence length."""
    digest = hashlib.sha256()
    description = {
        "split": split,
        "labels": list(label_list),
        "task_kind": task_kind,
        "max_seq_length": settings.loop.max_seq_length,
        "do_lower_case": settings.do_lower_case,
        "vocab": _file_fingerprint(settings.vocab_file) if settings.vocab_file else None,
        "spm": _file_fingerprint(settings.spm_model_file) if settings.spm_model_file else None,
        "format": 1,
    }
    digest.update(json.dumps(description, sort_keys=True).encode())
    for example in examples:
        if isinstance(example, classifier_data.PaddingInputExample):
            digest.update(b"\x00padding")
        else:
            fields = [example.guid, example.text_a, example.text_b, example.label]
            digest.update(json.dumps(fields).encode())
    return digest.hexdigest()


def write_or_reuse_records(
    split: str,
    examples,
    label_list,
    tokenizer: tokenization.Tokenizer,
    task_kind: str,
    settings: ClassifierSettings,
) -> str:
    """Writes `<output_dir>/<split>.tf_record`, or keeps it when a previous run wrote it
    from the same examples, vocab and settings (checked by a fingerprint beside it)."""
    record_file = os.path.join(settings.loop.output_dir, f"{split}.tf_record")
    fingerprint_file = record_file + ".fingerprint"
    fingerprint = features_fingerprint(split, examples, label_list, task_kind, settings)
    if tf.io.gfile.exists(record_file) and tf.io.gfile.exists(fingerprint_file):
        with tf.io.gfile.GFile(fingerprint_file) as reader:
            if reader.read().strip() == fingerprint:
                tf1.logging.info("Reusing %s (same data, vocab and settings)", record_file)
                return record_file
    classifier_data.file_based_convert_examples_to_features(
        examples, label_list, settings.loop.max_seq_length, tokenizer, record_file, task_kind
    )
    atomic_files.write_text(fingerprint_file, fingerprint + "\n")
    return record_file


def padded(examples, batch_size: int) -> list:
    """Pads with fake examples (is_real_example = 0) so that every batch is full."""
    return finetuning.padded_to_batches(examples, batch_size, classifier_data.PaddingInputExample)


# ------------------------------------------------------------------------------ outputs


def probabilities_and_labels(predictions: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """`(probabilities [examples, outputs], label_ids)` stacked from per-example dicts."""
    return (
        np.array([prediction["probabilities"] for prediction in predictions]),
        np.array([prediction["label_ids"] for prediction in predictions]),
    )


def score_fn_for(
    metric_name: str, task_kind: str, label_list, threshold: float
) -> finetuning.ScoreFn | None:
    """The task's metrics from the dev set's predictions; None for plain accuracy, which
    the Estimator's own metrics give."""
    if metric_name == classifier_metrics.ACCURACY:
        return None

    def score(predictions: Sequence[dict]) -> dict:
        scores, labels = probabilities_and_labels(predictions)
        return classifier_metrics.task_metrics(
            metric_name,
            labels,
            scores[:, 0] if task_kind == REGRESSION else scores,
            label_list,
            threshold=threshold,
        )

    return score


def write_test_results(path: str, probabilities: np.ndarray) -> None:
    """The original's test_results.tsv: one tab-separated row of outputs per example."""
    rows = ["\t".join(str(value) for value in row) + "\n" for row in probabilities]
    atomic_files.write_text(path, "".join(rows))


def predicted_labels(
    probabilities: np.ndarray,
    label_list,
    task_kind: str,
    threshold: float = 0.5,
    label_separator: str = "|",
) -> list[str]:
    """Readable predictions: the label name, the value (regression), or the labels at or
    above `threshold` joined by `label_separator` (multi-label)."""
    if task_kind == REGRESSION:
        return [f"{row[0]:.6g}" for row in probabilities]
    if task_kind == MULTI_LABEL:
        return [
            label_separator.join(
                label for label, p in zip(label_list, row, strict=True) if p >= threshold
            )
            for row in probabilities
        ]
    return [label_list[index] for index in np.argmax(probabilities, axis=-1)]


def write_readable_predictions(
    path: str, examples, predictions: list[str], id_name: str | None = None
) -> None:
    """test_predictions.tsv, with a header: guid, predicted label and the input text, after
    the test file's own id column (headed `id_name`: GLUE's `index`, --id_column) when it
    has one."""
    header = ["guid", "prediction", "text_a", "text_b"]
    if id_name:
        header.insert(0, id_name)
    lines = ["\t".join(header) + "\n"]
    for example, prediction in zip(examples, predictions, strict=True):
        texts = [example.text_a or "", example.text_b or ""]
        fields = [str(example.guid), prediction, *(" ".join(text.split()) for text in texts)]
        if id_name:
            # A tab or line break inside the id would shift the columns.
            fields.insert(0, " ".join((example.example_id or "").split()))
        lines.append("\t".join(fields) + "\n")
    atomic_files.write_text(path, "".join(lines))


# ----------------------------------------------------------------------------- the run


def run(
    settings: ClassifierSettings,
    processor: classifier_data.DataProcessor,
    tokenizer: tokenization.Tokenizer,
    make_model_fn: ClassifierModelFnFactory,
) -> None:
    """Reads the task's data, then trains, evaluates, exports and predicts as asked."""
    loop_settings = settings.loop
    task_kind = processor.task_kind
    # Read and check every split the run needs before any training starts.
    train_examples = processor.get_train_examples(settings.data_dir) if settings.do_train else []
    label_list = processor.get_labels()
    num_labels = 1 if task_kind == REGRESSION else len(label_list)
    if num_labels < 1:
        raise ValueError("The task has no labels; give --labels or a labelled training file.")
    eval_examples = processor.get_dev_examples(settings.data_dir) if settings.do_eval else []
    predict_examples = (
        processor.get_test_examples(settings.data_dir) if settings.do_predict else []
    )
    for examples in (train_examples, eval_examples):
        classifier_data.check_labels(examples, label_list, task_kind)

    loop = finetuning.FineTuning(
        loop_settings,
        lambda steps, warmup: make_model_fn(num_labels, task_kind, steps, warmup),
        num_train_examples=len(train_examples) if settings.do_train else None,
        description=model_description(settings, label_list, task_kind),
    )
    spec = classifier_data.feature_spec(loop_settings.max_seq_length, task_kind, num_labels)

    def input_fn_for(split, examples, is_training):
        record_file = write_or_reuse_records(
            split, examples, label_list, tokenizer, task_kind, settings
        )
        return tfrecord_io.input_fn_builder(
            [record_file], spec, is_training=is_training, drop_remainder=True
        )

    if settings.do_eval:
        loop.set_dev_set(
            input_fn_for(
                "eval", padded(eval_examples, loop_settings.eval_batch_size), is_training=False
            ),
            num_real=len(eval_examples),
            main_metric=classifier_metrics.main_metric_key(processor.metric_name),
            score_fn=score_fn_for(
                processor.metric_name, task_kind, label_list, settings.multi_label_threshold
            ),
        )
    if settings.do_train:
        loop.train(input_fn_for("train", train_examples, is_training=True))
    if settings.do_eval:
        loop.evaluate()
    if settings.export_dir:
        export_classifier(loop, settings)
    if settings.do_predict:
        predict_input_fn = input_fn_for(
            "predict",
            padded(predict_examples, loop_settings.predict_batch_size),
            is_training=False,
        )
        probabilities, _ = probabilities_and_labels(
            loop.predict(predict_input_fn, len(predict_examples))
        )
        output_dir = loop_settings.output_dir
        results_path = os.path.join(output_dir, "test_results.tsv")
        readable_path = os.path.join(output_dir, "test_predictions.tsv")
        write_test_results(results_path, probabilities)
        write_readable_predictions(
            readable_path,
            predict_examples,
            predicted_labels(
                probabilities,
                label_list,
                task_kind,
                settings.multi_label_threshold,
                settings.label_separator,
            ),
            id_name=processor.test_id_name,
        )
        tf1.logging.info(
            "Predictions of %d examples written to %s and %s",
            len(predict_examples),
            results_path,
            readable_path,
        )


def export_classifier(loop: finetuning.FineTuning, settings: ClassifierSettings) -> str:
    """--export_dir: the best checkpoint kept by --eval_every_steps, else the last, else
    --init_checkpoint (say, a model fine-tuned earlier), as a SavedModel that carries its
    vocab, labels and settings (what predictor.py reads); with --export_raw_text also one
    that takes strings."""
    with loop.checkpoint_to_export() as checkpoint:
        if settings.export_raw_text:
            _export_raw_text(loop.model_fn, checkpoint, settings)
        return export.export_saved_model(
            loop.model_fn,
            checkpoint,
            settings.export_dir,
            settings.loop.max_seq_length,
            description=loop.description,
        )


def model_description(
    settings: ClassifierSettings, label_list, task_kind: str
) -> export.ModelDescription:
    """The run's labels, task kind and tokenizer settings, with its vocab and config: what
    predictor.py reads from an export and convert_checkpoint.py from the run's directory."""
    return export.ModelDescription(
        metadata={
            "labels": list(label_list),
            "task_kind": task_kind,
            "do_lower_case": settings.do_lower_case,
            "multi_label_threshold": settings.multi_label_threshold,
        },
        vocab_file=settings.vocab_file,
        spm_model_file=settings.spm_model_file,
        bert_config_file=settings.bert_config_file,
    )


def _export_raw_text(model_fn, checkpoint: str, settings: ClassifierSettings) -> None:
    import raw_text_export  # needs tensorflow_text, which nothing else here does

    if settings.spm_model_file or not settings.vocab_file:
        raise ValueError("--export_raw_text tokenizes with a WordPiece --vocab_file only")
    raw_text_export.export_raw_text_saved_model(
        model_fn,
        checkpoint,
        settings.export_dir.rstrip("/") + "_raw_text",
        settings.loop.max_seq_length,
        settings.vocab_file,
        settings.do_lower_case,
    )
