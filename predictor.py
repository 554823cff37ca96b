"""Fast predictions from an exported model: load once, then answer in milliseconds.

`Estimator.predict` builds the graph and restores the checkpoint on every call, which makes
one sentence cost seconds. A `ClassifierPredictor` loads a SavedModel written by
`run_classifier.py --export_dir` once, with the tokenizer and settings exported beside it
(`assets.extra/`), and then turns raw texts into labels and probabilities:

  predictor = ClassifierPredictor("/tmp/exported")      # the newest export under it
  result = predictor.predict(["what a wonderful day", ("text a", "text b")])
  result.labels, result.probabilities                    # ["happy", ...], [n, num_labels]

From a shell, one text per line (`text_a<TAB>text_b` for pairs) in, one prediction out
(a `> ` prompt when stdin is a terminal):

  python predictor.py --export_dir=/tmp/exported < texts.txt
  positive<TAB>0.988146<TAB>What a lovely day

Each output line is tab-separated: the label and its probability (regression: the value;
multi-label: label and probability of each label found), then the input line as given
(`--print_text=false` leaves it out). A `run_ner.py` export prints one JSON line of
entities per text instead.

A `SquadPredictor` does the same for a `run_squad.py --export_dir` model: (question,
passage) pairs in, answers out, with run_squad's windowing and post-processing, its vocab
and its windowing settings read from the export. A `NerPredictor` tags
texts with a `run_ner.py` export, a `MultipleChoicePredictor` picks among the choices of
`(context, question, choices)` with a `run_multiple_choice.py` export.
"""

from __future__ import annotations

import bert_logging  # noqa: F401  (imports TensorFlow without its start-up noise)

import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

import numpy as np
import tensorflow as tf

import classifier_data
import encoder_inputs
import export
import multiple_choice_data
import ner_data
import pooling
import squad_lib
import tokenization

# convert_single_example logs the examples whose index is below a small number; the texts a
# predictor sees are a user's queries, not a dataset to inspect, so they get indices above it.
_UNLOGGED_INDEX = 1 << 30

TextOrPair = str | tuple[str, str]


class Predictor:
    """One exported SavedModel and its tokenizer, loaded once.

    `export_dir` is an export (`.../<timestamp>`) or the `--export_dir` holding them, in
    which case the newest is used. The tokenizer and its casing come from the export's
    `assets.extra/` when it ships them; `vocab_file` / `spm_model_file` and `do_lower_case`
    give (or override) them for an export that does not.
    """

    def __init__(
        self,
        export_dir: str,
        signature: str = "serving_default",
        vocab_file: str | None = None,
        spm_model_file: str | None = None,
        do_lower_case: bool | None = None,
    ):
        if not tf.executing_eagerly():
            raise RuntimeError("Predictor needs eager execution (TensorFlow 2's default)")
        self.export_path = export.resolve_saved_model_dir(export_dir)
        has_tokenizer = bool(vocab_file or spm_model_file)
        self.metadata = _metadata_of_export(self.export_path, required=not has_tokenizer)
        if do_lower_case is None:
            do_lower_case = self.metadata.get("do_lower_case")
        if do_lower_case is None:
            raise ValueError(f"{self.export_path} does not record do_lower_case: pass it")
        self.do_lower_case = bool(do_lower_case)
        if has_tokenizer:
            self.tokenizer = tokenization.create_tokenizer(
                vocab_file, self.do_lower_case, spm_model_file
            )
        else:
            self.tokenizer = _tokenizer_of_export(self.export_path, self.do_lower_case)
        tokenization.require_tokens(
            self.tokenizer, tokenization.FEATURE_TOKENS, "the model's inputs"
        )
        # The loaded object owns the variables the signature functions read: keep it alive.
        self._model = tf.saved_model.load(self.export_path)
        if signature not in self._model.signatures:
            raise ValueError(
                f"{self.export_path} has no signature {signature!r}; it has "
                f"{sorted(self._model.signatures)}"
            )
        self._signature = self._model.signatures[signature]
        # The last axis: `[batch, seq]` for most tasks, `[batch, choices, seq]` for
        # multiple choice; None for an export that takes any length.
        input_length = signature_sequence_length(self._signature)
        # A dynamic-length export takes any length; the length it was trained at, to which
        # texts are truncated, is in its metadata.
        self.dynamic_length = input_length is None
        if self.dynamic_length and "max_seq_length" not in self.metadata:
            raise ValueError(
                f"{self.export_path} takes inputs of any length but does not record its "
                f"max_seq_length in {export.EXTRA_ASSETS_DIR}/{export.METADATA_FILE}"
            )
        self.max_seq_length = int(
            self.metadata["max_seq_length"] if self.dynamic_length else input_length
        )
        # Outputs of one value (or row) per example stay the same when a batch is cut to its
        # longest member; per-position outputs (SQuAD's logits) would change length.
        self._cut_batches = self.dynamic_length and all(
            spec.shape.rank is not None and (spec.shape.rank < 2 or spec.shape[1] is not None)
            for spec in self._signature.structured_outputs.values()
        )

    @property
    def signature(self):
        """The loaded signature function (what `run` calls)."""
        return self._signature

    def run(self, features: dict[str, np.ndarray], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Runs the model on int `[num_examples, max_seq_length]` `input_ids`, `input_mask`
        and `segment_ids`, `batch_size` examples at a time; returns every output of the
        signature, concatenated over the batches (`[num_examples, ...]`).

        On a dynamic-length export whose outputs are per example, each batch is cut to its
        longest member first: the padding after it is inert (masked out) and costs time.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        num_examples = len(features["input_ids"])
        batches = []
        for start in range(0, num_examples, batch_size):
            batch = {name: values[start : start + batch_size] for name, values in features.items()}
            if self._cut_batches:
                batch = cut_to_longest(batch)
            inputs = {name: tf.constant(values, tf.int32) for name, values in batch.items()}
            batches.append({key: value.numpy() for key, value in self._signature(**inputs).items()})
        if not batches:
            return {}
        return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}


def cut_to_longest(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`[batch_size, seq_length]` features cut after the last position any row's
    `input_mask` marks as real (at least one position)."""
    real = np.asarray(batch["input_mask"]) != 0
    columns = np.flatnonzero(real.any(axis=0))
    length = int(columns[-1]) + 1 if len(columns) else 1
    return {name: np.asarray(values)[:, :length] for name, values in batch.items()}


@dataclasses.dataclass
class ClassifierPredictions:
    """What `ClassifierPredictor.predict` returns for n texts.

    Attributes:
      labels: per text, the label name (classification), the predicted value (regression)
        or the list of labels at or above the threshold (multi-label).
      probabilities: `[n, num_labels]` (`[n, 1]` holding the value for regression).
    """

    labels: list
    probabilities: np.ndarray


class ClassifierPredictor(Predictor):
    """A SavedModel of `run_classifier.py` (`--export_dir`), ready for raw texts."""

    def __init__(self, export_dir: str):
        super().__init__(export_dir)
        if "labels" not in self.metadata:
            raise ValueError(
                f"{self.export_path}: its {export.METADATA_FILE} has no label list; is it a "
                "run_classifier.py export?"
            )
        self.label_list = list(self.metadata["labels"])
        self.task_kind = self.metadata.get("task_kind", classifier_data.CLASSIFICATION)
        self.threshold = float(self.metadata.get("multi_label_threshold", 0.5))

    def featurize(self, texts: Sequence[TextOrPair]) -> dict[str, np.ndarray]:
        """int32 `[len(texts), max_seq_length]` model inputs, made exactly as run_classifier
        makes them for training (same tokenizer, truncation and padding)."""
        rows = []
        for index, text in enumerate(_checked_texts(texts)):
            text_a, text_b = (text, None) if isinstance(text, str) else text
            example = classifier_data.InputExample(
                guid=f"input-{index}", text_a=text_a, text_b=text_b
            )
            rows.append(
                classifier_data.convert_single_example(
                    _UNLOGGED_INDEX,
                    example,
                    self.label_list,
                    self.max_seq_length,
                    self.tokenizer,
                    self.task_kind,
                )
            )
        shape = (len(rows), self.max_seq_length)
        return {
            name: np.array([getattr(row, name) for row in rows], np.int32).reshape(shape)
            for name in export.INPUT_NAMES
        }

    def predict(self, texts: Sequence[TextOrPair], batch_size: int = 32) -> ClassifierPredictions:
        """Labels and `[len(texts), num_labels]` probabilities of texts or (text_a, text_b)
        pairs."""
        probabilities = self.run(self.featurize(texts), batch_size).get("probabilities")
        if probabilities is None:
            probabilities = np.zeros([0, max(len(self.label_list), 1)], np.float32)
        return ClassifierPredictions(self._labels_of(probabilities), probabilities)

    def _labels_of(self, probabilities: np.ndarray) -> list:
        if self.task_kind == classifier_data.REGRESSION:
            return [float(row[0]) for row in probabilities]
        if self.task_kind == classifier_data.MULTI_LABEL:
            return [
                [
                    label
                    for label, p in zip(self.label_list, row, strict=True)
                    if p >= self.threshold
                ]
                for row in probabilities
            ]
        return [self.label_list[index] for index in np.argmax(probabilities, axis=-1)]

    def describe(self, label, probabilities: np.ndarray) -> str:
        """One prediction as a line: `label<TAB>probability` (classification), the value
        (regression), or `label<TAB>probability` pairs of the labels found (multi-label)."""
        if self.task_kind == classifier_data.REGRESSION:
            return f"{label:.6g}"
        if self.task_kind == classifier_data.MULTI_LABEL:
            by_label = dict(zip(self.label_list, probabilities, strict=True))
            return "\t".join(f"{name}\t{by_label[name]:.6f}" for name in label)
        return f"{label}\t{probabilities[self.label_list.index(label)]:.6f}"


@dataclasses.dataclass
class SquadAnswer:
    """The answer to one question: its text ("" when SQuAD 2.0's null answer wins), the
    n-best list as run_squad.py writes it in nbest_predictions.json, and (SQuAD 2.0) null
    score - best non-null score."""

    text: str
    nbest: list[dict]
    null_score_diff: float | None


class SquadPredictor(Predictor):
    """A SavedModel of `run_squad.py` (`--export_dir`, outputs `start_logits` and
    `end_logits`) answering questions over passages with run_squad's own windowing and
    post-processing. `doc_stride` and `max_query_length` default to the values the export
    recorded (run_squad.py's flags when it was exported); the post-processing settings to
    run_squad.py's defaults."""

    def __init__(
        self,
        export_dir: str,
        vocab_file: str | None = None,
        spm_model_file: str | None = None,
        do_lower_case: bool | None = None,
        doc_stride: int | None = None,
        max_query_length: int | None = None,
        n_best_size: int = 20,
        max_answer_length: int = 30,
        version_2_with_negative: bool = False,
        null_score_diff_threshold: float = 0.0,
    ):
        super().__init__(
            export_dir,
            vocab_file=vocab_file,
            spm_model_file=spm_model_file,
            do_lower_case=do_lower_case,
        )
        # Unset: the values run_squad.py recorded in the export (its flags' defaults for an
        # export that records none).
        self.doc_stride = int(doc_stride or self.metadata.get("doc_stride", 128))
        self.max_query_length = int(max_query_length or self.metadata.get("max_query_length", 64))
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        self.version_2_with_negative = version_2_with_negative
        self.null_score_diff_threshold = null_score_diff_threshold

    def answer(
        self, questions_and_passages: Sequence[tuple[str, str]], batch_size: int = 32
    ) -> list[SquadAnswer]:
        """One answer per `(question, passage)`; a long passage is read in overlapping
        windows, as run_squad.py reads it."""
        examples = [
            squad_lib.SquadExample(
                qas_id=str(index),
                question_text=question,
                doc_tokens=squad_lib.split_context(passage)[0],
            )
            for index, (question, passage) in enumerate(questions_and_passages)
        ]
        features = list(
            squad_lib.iter_features(
                examples,
                self.tokenizer,
                self.max_seq_length,
                self.doc_stride,
                self.max_query_length,
                is_training=False,
            )
        )
        inputs = {
            name: np.array([getattr(f, name) for f in features], np.int32).reshape(
                len(features), self.max_seq_length
            )
            for name in export.INPUT_NAMES
        }
        logits = self.run(inputs, batch_size)
        results = [
            squad_lib.RawResult(f.unique_id, logits["start_logits"][i], logits["end_logits"][i])
            for i, f in enumerate(features)
        ]
        answers, nbest, null_diffs = squad_lib.compute_predictions(
            examples,
            features,
            results,
            n_best_size=self.n_best_size,
            max_answer_length=self.max_answer_length,
            do_lower_case=self.do_lower_case,
            version_2_with_negative=self.version_2_with_negative,
            null_score_diff_threshold=self.null_score_diff_threshold,
        )
        return [
            SquadAnswer(answers[e.qas_id], nbest[e.qas_id], null_diffs.get(e.qas_id))
            for e in examples
        ]


class NerPredictor(Predictor):
    """A SavedModel of `run_ner.py` (`--export_dir`) finding the entities of raw texts.

    A text is split into words by BERT's basic rules (whitespace, punctuation, and every
    Chinese character a word of its own), each word tokenized as run_ner.py tokenizes its
    data, long texts read in windows, and the tags read back into entities:

      NerPredictor("/tmp/ner_export").predict(["Jim Henson was a puppeteer", "张三在北京工作"])
      # [[{"type": "PER", "text": "Jim Henson", "start": 0, "end": 10, ...}], [...]]
    """

    def __init__(self, export_dir: str):
        super().__init__(export_dir)
        if self.metadata.get("task") != "ner":
            raise ValueError(
                f"{self.export_path}: its {export.METADATA_FILE} does not describe a run_ner.py "
                "export"
            )
        self.label_list = list(self.metadata["labels"])
        self.scheme = self.metadata["tag_scheme"]
        self.doc_stride = int(self.metadata["doc_stride"])

    def tag(self, texts: Sequence[str], batch_size: int = 32) -> list[list[tuple[str, str]]]:
        """Per text, its `(word, tag)` pairs."""
        words_of = [self._words(text) for text in _checked_strings(texts)]
        tags_of = self._tags([[word for word, _, _ in words] for words in words_of], batch_size)
        return [
            [(word, tag) for (word, _, _), tag in zip(words, tags, strict=True)]
            for words, tags in zip(words_of, tags_of, strict=True)
        ]

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[list[dict]]:
        """Per text, its entities: `type`, `text`, `start` / `end` (character offsets in the
        text, end exclusive) and `start_word` / `end_word` (word span)."""
        words_of = [self._words(text) for text in _checked_strings(texts)]
        tags_of = self._tags([[word for word, _, _ in words] for words in words_of], batch_size)
        return [
            ner_data.entities_of(text, [(start, end) for _, start, end in words], tags, self.scheme)
            for text, words, tags in zip(texts, words_of, tags_of, strict=True)
        ]

    @staticmethod
    def _words(text: str) -> list[tuple[str, int, int]]:
        return tokenization.words_with_offsets(text)

    def _tags(self, words_of: Sequence[list[str]], batch_size: int) -> list[list[str]]:
        """The predicted tag of every word of each text (no tags for a text of no words)."""
        sentences = [
            ner_data.NerSentence(words, None, index, "<input>", [1] * len(words))
            for index, words in enumerate(words_of)
            if words
        ]
        tags_of: list[list[str]] = [[] for _ in words_of]
        if not sentences:
            return tags_of
        features = ner_data.convert_sentences_to_features(
            sentences,
            self.label_list,
            self.scheme,
            self.tokenizer,
            self.max_seq_length,
            self.doc_stride,
            log=False,
        )
        inputs = {
            name: np.array([getattr(f, name) for f in features], np.int32)
            for name in ner_data.SERVING_INPUT_NAMES
        }
        tag_ids = self.run(inputs, batch_size)["tag_ids"]
        for sentence, tags in zip(
            sentences,
            ner_data.word_predictions(features, tag_ids, sentences, self.label_list),
            strict=True,
        ):
            tags_of[sentence.document] = tags
        return tags_of


class EncoderPredictor(Predictor):
    """An encoder export (`extract_features.py --export_dir` or `run_pretraining.py
    --export_dir`) turning texts into sentence vectors: the export's own in-graph pooling
    (output `encodes`, settings in its metadata under `pooling`), so these are the vectors a
    TF Serving client of the same export gets.

      EncoderPredictor("/tmp/encoder").encode(["hello world", ("text a", "text b")])
      # float32 [2, width] (or [2, seq_length, width] for the NONE strategy)
    """

    def __init__(
        self,
        export_dir: str,
        vocab_file: str | None = None,
        spm_model_file: str | None = None,
        do_lower_case: bool | None = None,
    ):
        super().__init__(
            export_dir,
            vocab_file=vocab_file,
            spm_model_file=spm_model_file,
            do_lower_case=do_lower_case,
        )
        if pooling.OUTPUT_KEY not in self._signature.structured_outputs:
            raise ValueError(
                f"{self.export_path} has no {pooling.OUTPUT_KEY!r} output; export the encoder "
                "again with extract_features.py --export_dir (and the --pooling_* flags)"
            )
        self.pooling = dict(self.metadata.get("pooling") or {})

    def featurize(self, texts: Sequence[TextOrPair]) -> dict[str, np.ndarray]:
        """int32 `[len(texts), max_seq_length]` inputs: `[CLS] a [SEP] (b [SEP])`, truncated
        as extract_features.py truncates."""
        rows = []
        for text in _checked_texts(texts):
            text_a, text_b = (text, None) if isinstance(text, str) else text
            rows.append(
                encoder_inputs.text_inputs(text_a, text_b, self.max_seq_length, self.tokenizer)
            )
        shape = (len(rows), self.max_seq_length)
        return {
            name: np.array([getattr(row, name) for row in rows], np.int32).reshape(shape)
            for name in export.INPUT_NAMES
        }

    def encode(self, texts: Sequence[TextOrPair], batch_size: int = 32) -> np.ndarray:
        """float32 `[len(texts), width]` sentence vectors (`[len(texts), seq_length, width]`
        for NONE) of texts or (text_a, text_b) pairs."""
        if not texts:
            return np.zeros([0, 0], np.float32)
        return self.run(self.featurize(texts), batch_size)[pooling.OUTPUT_KEY]


def signature_sequence_length(signature) -> int | None:
    """The sequence length a signature's `input_ids` takes (its last axis: `[batch, seq]`,
    or `[batch, choices, seq]`): an int for an export of fixed length, None for one that
    takes any length."""
    return signature.structured_input_signature[1]["input_ids"].shape[-1]


ChoiceQuestion = tuple[str, str, Sequence[str]]


class MultipleChoicePredictor(Predictor):
    """A SavedModel of `run_multiple_choice.py` (`--export_dir`) picking among choices:

      MultipleChoicePredictor("/tmp/mc_export").predict(
          [("小明去了北京。", "小明去了哪里？", ["上海", "北京", "广州"])]
      )
      # [{"prediction": 1, "choice": "北京", "probabilities": [0.01, 0.98, 0.01]}]

    Each `(context, question, choices)` is laid out as run_multiple_choice.py lays out its
    data (a `_` in the question is a blank the option fills); an example may have fewer
    choices than the export's `num_choices` (the rest are masked), not more.
    """

    def __init__(self, export_dir: str):
        super().__init__(export_dir)
        if self.metadata.get("task") != "multiple_choice":
            raise ValueError(
                f"{self.export_path}: its {export.METADATA_FILE} does not describe a "
                "run_multiple_choice.py export"
            )
        self.num_choices = int(self.metadata["num_choices"])
        self.max_qa_length = int(self.metadata["max_qa_length"])

    def featurize(self, questions: Sequence[ChoiceQuestion]) -> tuple[list, dict[str, np.ndarray]]:
        """The checked examples of `(context, question, choices)` and their int32 inputs:
        `input_ids`, `input_mask`, `segment_ids` `[len(questions), num_choices,
        max_seq_length]` and `choice_mask` `[len(questions), num_choices]`."""
        examples = [
            multiple_choice_data.checked_example(
                multiple_choice_data.MultipleChoiceExample(
                    str(index), context, question or "", list(choices), None, "predict"
                ),
                labelled=False,
            )
            for index, (context, question, choices) in enumerate(questions)
        ]
        multiple_choice_data.num_choices_of(examples, self.num_choices)
        features = multiple_choice_data.convert_examples(
            examples, self.num_choices, self.max_seq_length, self.max_qa_length, self.tokenizer
        )
        inputs = {
            name: np.array([getattr(f, name) for f in features], np.int32).reshape(
                [len(features), *shape]
            )
            for name, shape in multiple_choice_data.input_shapes(
                self.num_choices, self.max_seq_length
            ).items()
        }
        return examples, inputs

    def predict(self, questions: Sequence[ChoiceQuestion], batch_size: int = 32) -> list[dict]:
        """Per question, the index (`prediction`) and text (`choice`) of the most probable
        choice and the `probabilities` of its choices, as test_predictions.jsonl has them."""
        examples, inputs = self.featurize(questions)
        probabilities = self.run(inputs, batch_size).get("probabilities", [])
        return [
            multiple_choice_data.prediction_record(example, row)
            for example, row in zip(examples, probabilities, strict=True)
        ]


def _checked_strings(texts: Sequence[str]) -> Sequence[str]:
    if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
        raise TypeError("predict takes a list of str")
    return texts


def _checked_texts(texts: Sequence[TextOrPair]) -> Sequence[TextOrPair]:
    if isinstance(texts, str):
        raise TypeError("predict takes a list of texts (or of (text_a, text_b) pairs), not a str")
    for index, text in enumerate(texts):
        is_pair = isinstance(text, tuple | list) and len(text) == 2
        if not (isinstance(text, str) or (is_pair and all(isinstance(t, str) for t in text))):
            raise TypeError(
                f"texts[{index}] is {text!r}: expected a str or a (text_a, text_b) pair of str"
            )
    return texts


def _metadata_of_export(export_path: str, required: bool) -> dict:
    path = os.path.join(export_path, export.EXTRA_ASSETS_DIR, export.METADATA_FILE)
    if required or tf.io.gfile.exists(path):
        return export.read_export_metadata(export_path)
    return {}


def _tokenizer_of_export(export_path: str, do_lower_case: bool) -> tokenization.Tokenizer:
    """The tokenizer shipped in the export's `assets.extra/`."""
    extra = os.path.join(export_path, export.EXTRA_ASSETS_DIR)
    spm_model = os.path.join(extra, export.SPM_MODEL_ASSET)
    vocab = os.path.join(extra, export.VOCAB_ASSET)
    if tf.io.gfile.exists(spm_model):
        return tokenization.create_tokenizer(None, do_lower_case, spm_model)
    if tf.io.gfile.exists(vocab):
        return tokenization.create_tokenizer(vocab, do_lower_case)
    raise FileNotFoundError(
        f"{extra} holds neither {export.VOCAB_ASSET} nor {export.SPM_MODEL_ASSET}: pass the "
        "export's vocab_file (or spm_model_file)"
    )


def parse_line(line: str) -> TextOrPair:
    """A line of input: `text_a`, or `text_a<TAB>text_b` for a pair."""
    text_a, tab, text_b = line.rstrip("\r\n").partition("\t")
    return (text_a, text_b) if tab else text_a


PROMPT = "> "


def prompted_lines(
    stream: TextIO, prompt: str = PROMPT, prompt_to: TextIO | None = None
) -> Iterator[str]:
    """The lines of `stream` as they are read; when `stream` is a terminal, each is asked
    for with `prompt`, written to `prompt_to` (stderr, as Python's own prompt, so that
    redirected output holds the predictions only). Piped input gets no prompt."""
    prompt_to = prompt_to or sys.stderr
    at_terminal = stream.isatty()
    while True:
        if at_terminal:
            prompt_to.write(prompt)
            prompt_to.flush()
        line = stream.readline()
        if not line:
            if at_terminal:  # end the prompt's line after Ctrl-D
                prompt_to.write("\n")
            return
        yield line


def classify_lines(
    predictor: ClassifierPredictor, lines: Iterable[str], out=None, print_text: bool = True
) -> int:
    """Classifies each non-blank line as it arrives (so it works at a terminal) and prints
    one prediction per line, `describe`'s fields followed, with `print_text`, by a tab and
    the line itself (`positive<TAB>0.988146<TAB>What a lovely day`); returns how many were
    printed."""
    out = out or sys.stdout
    count = 0
    for line in lines:
        if not line.strip():
            continue
        result = predictor.predict([parse_line(line)], batch_size=1)
        prediction = predictor.describe(result.labels[0], result.probabilities[0])
        if print_text:
            prediction += "\t" + line.rstrip("\r\n")
        print(prediction, file=out, flush=True)
        count += 1
    return count


def tag_lines(predictor: NerPredictor, lines: Iterable[str], out=None) -> int:
    """Prints, for each non-blank line, one JSON line of its entities; returns the count."""
    out = out or sys.stdout
    count = 0
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        entities = predictor.predict([text], batch_size=1)[0]
        record = {"text": text, "entities": entities}
        print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
        count += 1
    return count


def main(argv: list[str]) -> None:
    from absl import flags

    del argv
    export_dir = flags.FLAGS.export_dir
    metadata = export.read_export_metadata(export.resolve_saved_model_dir(export_dir))
    if metadata.get("task") == "ner":
        tag_lines(NerPredictor(export_dir), prompted_lines(sys.stdin))
    else:
        classify_lines(
            ClassifierPredictor(export_dir),
            prompted_lines(sys.stdin),
            print_text=flags.FLAGS.print_text,
        )


if __name__ == "__main__":
    from absl import app, flags

    import flag_help

    flags.DEFINE_string(
        "export_dir",
        None,
        "A run_classifier.py or run_ner.py export, or the --export_dir holding them.",
    )
    flags.DEFINE_bool(
        "print_text",
        True,
        "Classifier exports: end each output line with a tab and the input line, as in "
        "'positive<TAB>0.988146<TAB>What a lovely day'; false prints the prediction alone "
        "('positive<TAB>0.988146').",
    )
    flag_help.use_grouped_help(required=("export_dir",))
    app.run(main)
