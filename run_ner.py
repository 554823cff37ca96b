r"""Fine-tunes BERT for named-entity recognition (token classification), English or Chinese.

Data: `train` / `dev` / `test` files in `--data_dir`, CoNLL-2003 style (the word in the first
column, its tag in the last, a blank line between sentences, `-DOCSTART-` between documents;
Chinese one character per line reads the same way) or JSON lines
(`{"tokens": [...], "tags": [...]}`), in the BIO, IOB1, IOBES or BMES scheme.

  python run_ner.py --do_train --do_eval --do_predict --data_dir=conll2003 \
      --vocab_file=$BERT/vocab.txt --bert_config_file=$BERT/bert_config.json \
      --init_checkpoint=$BERT/bert_model.ckpt --do_lower_case=false --output_dir=/tmp/ner

Each word's tag sits on its first WordPiece; the other pieces, [CLS], [SEP] and padding carry
no loss. Sentences longer than `--max_seq_length` are cut into overlapping windows and each
word is predicted from the window that gives it the most context. Entity-level precision,
recall and F1 (conlleval's rules) go to eval_results.txt and pick the best checkpoint with
`--eval_every_steps`. `--do_predict` writes `test_predictions.txt` (the test file with a
predicted-tag column) and `test_entities.jsonl` (entities with word and character offsets).
"""

from __future__ import annotations

import bert_logging

import dataclasses
import json
import os
from collections.abc import Sequence

import tensorflow as tf
from absl import app, flags

import atomic_files
import estimator_builder
import export
import finetuning
import flag_help
import heads
import input_files
import modeling
import ner_data
import ner_metrics
import ner_tags
import tfrecord_io
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

MAIN_METRIC = "entity_f1"


def define_flags() -> None:
    estimator_builder.define_fine_tuning_flags(max_seq_length=128)
    input_files.define_input_encoding_flag()
    flags.DEFINE_string("data_dir", None, "The directory holding the train, dev and test files.")
    flags.DEFINE_string("train_file", "train.txt", "Training file in --data_dir.")
    flags.DEFINE_string("dev_file", "dev.txt", "Dev file in --data_dir.")
    flags.DEFINE_string("test_file", "test.txt", "Test file in --data_dir (tags optional).")
    flags.DEFINE_enum(
        "file_format",
        None,
        ["conll", "jsonl"],
        "Format of the data files (default: jsonl for .jsonl/.json names, else conll).",
    )
    flags.DEFINE_enum(
        "tag_scheme",
        "BIO",
        list(ner_tags.SCHEMES) + ["IOB2", "BIOES"],
        "Tag scheme of the data: BIO (= IOB2), IOB1 (the original CoNLL-2003 files), IOBES "
        "(= BIOES) or BMES (Chinese NER sets).",
    )
    flags.DEFINE_list(
        "labels", None, "The tag list (default: every tag of the types in the training file)."
    )
    flags.DEFINE_enum(
        "invalid_tag_sequence",
        ner_data.REPAIR,
        [ner_data.REPAIR, ner_data.ERROR],
        "Training data whose tags break the scheme (an I-X after O in BIO): 'repair' re-encodes "
        "the sentence as conlleval reads it and warns with file and line; 'error' stops.",
    )
    flags.DEFINE_integer(
        "doc_stride",
        64,
        "A sentence longer than --max_seq_length is cut into windows that start this many "
        "WordPieces apart.",
    )
    flags.DEFINE_bool(
        "use_document_context",
        False,
        "Fill each window with the neighbouring sentences of its document (the BERT paper's "
        "CoNLL setting); only the centre sentence's words are labelled.",
    )
    flags.DEFINE_bool("use_crf", False, "A linear-chain CRF on top of the per-token scores.")
    flags.DEFINE_bool(
        "tag_constraints",
        True,
        "Decode only valid tag sequences (no I-X after O in BIO), with or without --use_crf.",
    )
    finetuning.define_evaluation_flags(best_metric="entity F1")
    export.define_export_flag()


@dataclasses.dataclass(frozen=True)
class NerSettings:
    """The task's settings, read from the flags once in `main`."""

    scheme: str
    max_seq_length: int
    doc_stride: int
    use_document_context: bool
    use_crf: bool
    tag_constraints: bool
    encoding: str = "utf-8"
    invalid_tag_sequence: str = ner_data.REPAIR


# ---------------------------------------------------------------------------- the model


def model_fn_builder(
    bert_config: modeling.BertConfig,
    label_list: Sequence[str],
    settings: NerSettings,
    init_checkpoint: str | None,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    run_options: estimator_builder.RunOptions = estimator_builder.DEFAULT_RUN_OPTIONS,
):
    """Returns the model_fn (TPUEstimator style) of the tagger: `heads.token_classifier_head`
    on BERT's `sequence_output`."""
    num_labels = len(label_list)
    constraints = (
        ner_tags.tag_constraints(label_list, settings.scheme) if settings.tag_constraints else None
    )

    def model_fn(features, labels, mode, params):
        del labels, params
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        model = modeling.BertModel.from_features(
            bert_config, features, is_training, use_tpu, run_options.compute_type
        )
        label_mask = features["label_mask"]
        label_ids = features.get("label_ids", tf.zeros_like(label_mask))
        outputs = heads.token_classifier_head(
            tf.cast(model.get_sequence_output(), tf.float32),
            label_ids,
            label_mask,
            num_labels,
            is_training,
            bert_config.hidden_dropout_prob,
            use_crf=settings.use_crf,
            constraints=constraints,
        )
        def train_op_fn(loss):
            return run_options.create_train_op(
                loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu
            )

        def eval_metrics_fn():
            # The entity scores and token accuracy need whole sentences: score_fn_for
            # computes them from a predict pass.
            is_real = tf.cast(features["is_real_example"], tf.float32)
            return loss_metric, [outputs.per_example_loss, is_real]

        return heads.task_spec(
            mode,
            outputs.loss,
            train_op_fn,
            eval_metrics_fn,
            {"tag_ids": outputs.tag_ids, "probabilities": outputs.probabilities},
            estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu),
        )

    return model_fn


def loss_metric(per_example_loss, is_real_example):
    """eval_loss over the real windows."""
    return {"eval_loss": tf1.metrics.mean(values=per_example_loss, weights=is_real_example)}


# ------------------------------------------------------------------------------ the data


def data_path(data_dir: str, name: str, flag_name: str) -> str:
    path = os.path.join(data_dir, name)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"--{flag_name}: {path} does not exist")
    return path


def read_split(path: str, settings: NerSettings, labelled: bool, file_format: str | None):
    """The sentences of one file, in the format the flag or the file name says."""
    reader = ner_data.read_sentences
    if file_format == "conll":
        reader = ner_data.read_conll
    elif file_format == "jsonl":
        reader = ner_data.read_json_lines
    return reader(
        path,
        settings.scheme,
        encoding=settings.encoding,
        labelled=labelled,
        invalid_sequence=settings.invalid_tag_sequence,
    )


def convert(sentences, label_list, tokenizer, settings: NerSettings):
    return ner_data.convert_sentences_to_features(
        sentences,
        label_list,
        settings.scheme,
        tokenizer,
        settings.max_seq_length,
        settings.doc_stride,
        use_document_context=settings.use_document_context,
    )


def write_records(features, output_dir: str, split: str) -> str:
    path = os.path.join(output_dir, f"{split}.tf_record")
    ner_data.write_features(features, [path])
    return path


# ------------------------------------------------------------------------------ scoring


def predicted_tags(features, predictions: Sequence[dict], sentences, label_list) -> list:
    """One predicted tag per word of every sentence, from the real windows' predictions."""
    real = [window for window in features if window.is_real_example]
    return ner_data.word_predictions(
        real, [prediction["tag_ids"] for prediction in predictions], sentences, label_list
    )


def entity_metrics(gold, predicted, scheme: str) -> dict:
    """Micro entity precision/recall/F1, token accuracy and per-type scores, with the
    names eval_results.txt and TensorBoard show (`entity_f1`, `PER_f1`, ...)."""
    scores = ner_metrics.entity_scores(gold, predicted, scheme)
    renamed = {}
    for key, value in scores.items():
        if key in ("precision", "recall", "f1"):
            renamed[f"entity_{key}"] = value
        elif "/" in key:
            entity_type, metric = key.rsplit("/", 1)
            renamed[f"{entity_type}_{metric}"] = value
        else:
            renamed[key] = value
    return renamed


def score_fn_for(features, sentences, label_list, scheme: str) -> finetuning.ScoreFn:
    gold = [sentence.tags for sentence in sentences]

    def score(predictions: Sequence[dict]) -> dict:
        predicted = predicted_tags(features, predictions, sentences, label_list)
        return entity_metrics(gold, predicted, scheme)

    return score


# ------------------------------------------------------------------------------ outputs


def write_conll_predictions(path: str, sentences, tags, encoding: str) -> None:
    """The test file back, line for line, with the predicted tag as a last column (JSON
    lines input: `word [gold] predicted` lines, a blank line between sentences)."""
    if sentences and sentences[0].path.lower().endswith((".jsonl", ".json")):
        lines = []
        for sentence, sentence_tags in zip(sentences, tags, strict=True):
            gold = sentence.tags or [None] * len(sentence.words)
            for word, gold_tag, tag in zip(sentence.words, gold, sentence_tags, strict=True):
                lines.append(" ".join(x for x in (word, gold_tag, tag) if x is not None))
            lines.append("")
        atomic_files.write_text(path, "\n".join(lines) + "\n")
        return
    original = input_files.read_text(sentences[0].path, encoding).split("\n")
    if original and original[-1] == "":
        original.pop()
    predicted_at = {}
    for sentence, sentence_tags in zip(sentences, tags, strict=True):
        for line, tag in zip(sentence.lines, sentence_tags, strict=True):
            predicted_at[line] = tag
    out = []
    for number, line in enumerate(original, start=1):
        line = line.rstrip("\r\n")
        if number in predicted_at:
            separator = "\t" if "\t" in line else " "
            line = line.rstrip(" \t") + separator + predicted_at[number]
        out.append(line)
    atomic_files.write_text(path, "\n".join(out) + "\n")


def write_entities(path: str, sentences, tags, scheme: str) -> None:
    """test_entities.jsonl: per sentence its text (words joined as `ner_data.join_words`
    does) and its entities with type, text, word span and character offsets in that text."""
    lines = []
    for index, (sentence, sentence_tags) in enumerate(zip(sentences, tags, strict=True)):
        text, offsets = ner_data.join_words(sentence.words)
        entities = ner_data.entities_of(text, offsets, sentence_tags, scheme)
        record = {"sentence": index, "text": text, "entities": entities}
        lines.append(json.dumps(record, ensure_ascii=False))
    atomic_files.write_text(path, "\n".join(lines) + ("\n" if lines else ""))


# ----------------------------------------------------------------------------- the run


def main(_) -> None:
    bert_logging.configure()
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.export_dir):
        raise ValueError(
            "At least one of --do_train, --do_eval, --do_predict or --export_dir must be set."
        )
    bert_config, tokenizer = estimator_builder.model_and_tokenizer_from_flags()
    tokenization.require_tokens(tokenizer, tokenization.FEATURE_TOKENS, "the tagger's inputs")
    settings = NerSettings(
        scheme=ner_tags.canonical_scheme(FLAGS.tag_scheme),
        max_seq_length=FLAGS.max_seq_length,
        doc_stride=FLAGS.doc_stride,
        use_document_context=FLAGS.use_document_context,
        use_crf=FLAGS.use_crf,
        tag_constraints=FLAGS.tag_constraints,
        encoding=input_files.check_encoding(FLAGS.input_encoding),
        invalid_tag_sequence=FLAGS.invalid_tag_sequence,
    )
    loop_settings = finetuning.LoopSettings.from_flags(FLAGS)

    # Read and check every split the run needs before any training starts.
    def split(name, flag_name, labelled):
        path = data_path(FLAGS.data_dir, name, flag_name)
        return read_split(path, settings, labelled, FLAGS.file_format)

    train = split(FLAGS.train_file, "train_file", True) if FLAGS.do_train else []
    dev = split(FLAGS.dev_file, "dev_file", True) if FLAGS.do_eval else []
    test = split(FLAGS.test_file, "test_file", False) if FLAGS.do_predict else []
    label_list = FLAGS.labels or ner_data.label_list_from(train + dev, settings.scheme)
    ner_tags.check_label_list(label_list, settings.scheme)
    if len(label_list) < 2:
        raise ValueError("No entity tags: give --labels or a tagged --train_file")
    ner_data.check_labels(train + dev, label_list)
    train_features = convert(train, label_list, tokenizer, settings)
    run_options = estimator_builder.run_options_from_flags()

    def make_model_fn(num_train_steps, num_warmup_steps):
        return model_fn_builder(
            bert_config,
            label_list,
            settings,
            FLAGS.init_checkpoint,
            FLAGS.learning_rate,
            num_train_steps,
            num_warmup_steps,
            FLAGS.use_tpu,
            run_options,
        )

    loop = finetuning.FineTuning(
        loop_settings,
        make_model_fn,
        num_train_examples=len(train_features) if FLAGS.do_train else None,
        description=model_description(label_list, settings),
    )
    spec = ner_data.feature_spec(settings.max_seq_length)

    def input_fn(features, split_name, is_training):
        record_file = write_records(features, loop_settings.output_dir, split_name)
        return tfrecord_io.input_fn_builder(
            [record_file],
            spec,
            is_training=is_training,
            drop_remainder=True,
            sequence_features=ner_data.FEATURE_NAMES,
        )

    def padded(features, batch_size):
        return finetuning.padded_to_batches(
            features, batch_size, lambda: ner_data.padding_features(settings.max_seq_length)
        )

    if FLAGS.do_eval:
        dev_features = convert(dev, label_list, tokenizer, settings)
        loop.set_dev_set(
            input_fn(padded(dev_features, loop_settings.eval_batch_size), "eval", False),
            num_real=len(dev_features),
            main_metric=MAIN_METRIC,
            score_fn=score_fn_for(dev_features, dev, label_list, settings.scheme),
        )
    if FLAGS.do_train:
        loop.train(input_fn(train_features, "train", True))
    if FLAGS.do_eval:
        loop.evaluate()
    if FLAGS.export_dir:
        export_tagger(loop, settings)
    if FLAGS.do_predict:
        test_features = convert(test, label_list, tokenizer, settings)
        predictions = loop.predict(
            input_fn(padded(test_features, loop_settings.predict_batch_size), "predict", False),
            len(test_features),
        )
        tags = predicted_tags(test_features, predictions, test, label_list)
        output_dir = loop_settings.output_dir
        write_conll_predictions(
            os.path.join(output_dir, "test_predictions.txt"), test, tags, settings.encoding
        )
        write_entities(os.path.join(output_dir, "test_entities.jsonl"), test, tags, settings.scheme)
        tf1.logging.info(
            "Predictions of %d sentences written to %s and %s",
            len(test),
            os.path.join(output_dir, "test_predictions.txt"),
            os.path.join(output_dir, "test_entities.jsonl"),
        )


def model_description(label_list, settings: NerSettings) -> export.ModelDescription:
    """The tags, scheme and tokenizer settings with the vocab and config: what
    predictor.NerPredictor reads from an export and convert_checkpoint.py from the run's
    directory."""
    return export.ModelDescription(
        metadata={
            "task": "ner",
            "labels": list(label_list),
            "tag_scheme": settings.scheme,
            "do_lower_case": FLAGS.do_lower_case,
            "doc_stride": settings.doc_stride,
        },
        vocab_file=FLAGS.vocab_file,
        spm_model_file=FLAGS.spm_model_file,
        bert_config_file=FLAGS.bert_config_file,
    )


def export_tagger(loop: finetuning.FineTuning, settings: NerSettings) -> str:
    """--export_dir: a SavedModel whose inputs add `label_mask` (1 at the first piece of
    each word) to the usual three, with per-position `tag_ids` and `probabilities`, and the
    label list and tokenizer in assets.extra (what predictor.NerPredictor reads)."""
    with loop.checkpoint_to_export(ner_data.SERVING_INPUT_NAMES) as checkpoint:
        return export.export_saved_model(
            loop.model_fn,
            checkpoint,
            FLAGS.export_dir,
            settings.max_seq_length,
            description=loop.description,
            input_names=ner_data.SERVING_INPUT_NAMES,
        )


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("data_dir", "bert_config_file", "output_dir"))
    app.run(main)
