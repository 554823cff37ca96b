"""The data side of `run_classifier.py`: reading data sets and turning them into features.

Three stages, each usable on its own:

1. A `DataProcessor` reads one data set into `InputExample`s. `PROCESSORS` holds one for each
   GLUE task and XNLI (file layouts as the GLUE / XNLI downloads have them), `GenericProcessor`
   reads the user's own CSV / TSV / JSON Lines files, and `load_processor("module:Class")`
   plugs in a user's `DataProcessor` subclass.
2. `convert_single_example` turns an example into `InputFeatures`:
   `[CLS] a [SEP] b [SEP]`, truncated longest-first, zero-padded to `max_seq_length`.
3. `file_based_convert_examples_to_features` writes them as a TFRecord file with the original
   BERT feature names; `feature_spec` parses them back.

Each processor says what kind of task it is (`task_kind`: `CLASSIFICATION`, `REGRESSION` or
`MULTI_LABEL`) and which `classifier_metrics` family judges it (`metric_name`). The label of an
example is a string for classification, a float for regression and a list of strings for
multi-label data; an unlabelled (test) example may carry `None`.

Bad data fails while it is read or converted, before any training, with a `DataFormatError`
naming the file and the 1-based line at fault (`path/to/train.tsv:17: ...`). Blank lines are
skipped everywhere; an empty text field is allowed.
"""

from __future__ import annotations

import bert_logging

import csv
import dataclasses
import importlib
import importlib.util
import io
import json
import os
import re
import sys
import types
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import tensorflow.compat.v1 as tf

import classifier_metrics
import encoder_inputs
import input_files
import tfrecord_io
import tokenization

CLASSIFICATION = "classification"
REGRESSION = "regression"
MULTI_LABEL = "multi_label"
TASK_KINDS = (CLASSIFICATION, REGRESSION, MULTI_LABEL)

# The original logs the full featurization of this many examples, so a user can eyeball it.
_NUM_EXAMPLES_TO_LOG = 5
# At most this many skipped-row warnings are logged one by one (QQP); the rest are counted.
_MAX_SKIP_WARNINGS = 10

Label = str | float | list[str] | None
Column = int | str


class DataFormatError(ValueError):
    """Bad input data; the message starts with `file:line` (or the file alone)."""


def _location(path: str, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else path


# ---------------------------------------------------------------------------------------------
# Examples and features
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class InputExample:
    """One example for sequence (pair) classification.

    Attributes:
      guid: unique id, e.g. "train-12".
      text_a: the untokenized first sequence.
      text_b: the untokenized second sequence, or None for single-sequence tasks.
      label: a string (classification), a float (regression), a list of strings (multi-label)
        or None when unlabelled.
      source: where the example was read, "path:line", quoted in error messages.
      example_id: the id the data file itself gives the example (GLUE's `index` column of a
        test file, a generic file's `id_column`), written back beside its prediction; None
        when the file has none.
    """

    guid: str
    text_a: str
    text_b: str | None = None
    label: Label = None
    source: str | None = dataclasses.field(default=None, compare=False, repr=False)
    example_id: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def location(self) -> str:
        """Where the example came from, for error messages."""
        return self.source or f"example {self.guid!r}"


class PaddingInputExample:
    """A stand-in example that pads eval/predict sets to a whole number of batches.

    TPUs need every batch to be full; dropping the last partial batch would lose predictions.
    Padding examples become all-zero features with `is_real_example=False`, which get weight 0
    in the metrics and are left out of the written predictions. A class of its own (not None)
    so that padding can never be mistaken for a missing value.
    """


@dataclasses.dataclass
class InputFeatures:
    """The model inputs of one example.

    Attributes:
      input_ids: `[max_seq_length]` token ids, zero-padded.
      input_mask: `[max_seq_length]` 1 for real tokens, 0 for padding.
      segment_ids: `[max_seq_length]` 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`, 0 for padding.
      label_id: the class index (classification), the target value (regression), or a
        `[num_labels]` multi-hot list (multi-label).
      is_real_example: False for `PaddingInputExample`s.
    """

    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    label_id: int | float | list[int]
    is_real_example: bool = True


def pad_examples_to_batch_multiple(examples: Sequence[Any], batch_size: int) -> list[Any]:
    """Returns `examples` followed by as many `PaddingInputExample`s as make the length a
    multiple of `batch_size` (the input list is left unchanged)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num_padding = -len(examples) % batch_size
    return list(examples) + [PaddingInputExample() for _ in range(num_padding)]


# ---------------------------------------------------------------------------------------------
# Reading delimited text files
# ---------------------------------------------------------------------------------------------


def _read_text(path: str, encoding: str) -> str:
    """The whole file as text (a UTF-8 byte-order mark dropped); gs:// works too."""
    return input_files.read_text(path, encoding, what="Data file", error_type=DataFormatError)


def read_delimited_rows(
    path: str,
    delimiter: str = "\t",
    quotechar: str | None = None,
    encoding: str = input_files.DEFAULT_ENCODING,
) -> list[tuple[int, list[str]]]:
    """Every row of a delimited text file, with the 1-based line on which it starts.

    `quotechar=None` turns quoting off, as the original BERT reads GLUE's TSV files (they hold
    unbalanced quotes in their sentences). A blank line is a row with no fields.
    """
    reader = csv.reader(
        io.StringIO(_read_text(path, encoding), newline=""),
        delimiter=delimiter,
        quotechar=quotechar,
        quoting=csv.QUOTE_MINIMAL if quotechar else csv.QUOTE_NONE,
    )
    rows = []
    lines_consumed = 0
    try:
        for fields in reader:
            rows.append((lines_consumed + 1, fields))
            # A quoted field may span lines, so the next row starts after all of them.
            lines_consumed = reader.line_num
    except csv.Error as error:
        raise DataFormatError(f"{_location(path, reader.line_num)}: {error}") from None
    return rows


def _wrong_width_error(path: str, line: int, fields: list[str], width: int, what: str) -> str:
    return (
        f"{_location(path, line)}: expected {width} fields ({what}), found {len(fields)}; "
        "is a tab or a delimiter missing or inside a text?"
    )


# ---------------------------------------------------------------------------------------------
# Processors
# ---------------------------------------------------------------------------------------------


class _class_or_instance_method:  # noqa: N801 (used like @classmethod)
    """Binds a method to the instance it is called on, or to the class when called on one.

    The original's `DataProcessor._read_tsv` is a classmethod, and users' processors call
    it either way; bound to an instance it sees that processor's `input_encoding`.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.__doc__ = function.__doc__

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        return types.MethodType(self.function, owner if instance is None else instance)


class DataProcessor:
    """Base class of the readers of sequence classification data sets.

    Subclasses implement `get_*_examples` and `get_labels`, and override `task_kind` and
    `metric_name` when the task is not single-label classification judged by accuracy.
    """

    task_kind: str = CLASSIFICATION
    metric_name: str = classifier_metrics.ACCURACY
    # The header of the test file's own id column (the `example_id` of its examples), None
    # when its examples have none.
    test_id_name: str | None = None
    # The encoding of the data files (scripts set it from --input_encoding).
    input_encoding: str = input_files.DEFAULT_ENCODING

    def get_train_examples(self, data_dir: str) -> list[InputExample]:
        """The `InputExample`s of the training set."""
        raise NotImplementedError(f"{type(self).__name__} has no training set")

    def get_dev_examples(self, data_dir: str) -> list[InputExample]:
        """The `InputExample`s of the dev (evaluation) set."""
        raise NotImplementedError(f"{type(self).__name__} has no dev set")

    def get_test_examples(self, data_dir: str) -> list[InputExample]:
        """The `InputExample`s to predict; their labels are dummies or None."""
        raise NotImplementedError(f"{type(self).__name__} has no test set")

    def get_labels(self) -> list[str]:
        """The class names; index i is class id i. Empty for regression."""
        raise NotImplementedError(f"{type(self).__name__} does not define its labels")

    @_class_or_instance_method
    def _read_tsv(self, input_file: str, quotechar: str | None = None) -> list[list[str]]:
        """The rows of a tab-separated file as lists of fields (blank lines as [])."""
        rows = read_delimited_rows(input_file, "\t", quotechar, self.input_encoding)
        return [fields for _, fields in rows]


@dataclasses.dataclass(frozen=True)
class TsvLayout:
    """Where one split of a GLUE-style TSV file keeps its fields (indexes; -1 is the last).

    Attributes:
      file_name: the file inside `data_dir`.
      guid_prefix: first part of the guid, e.g. "dev_matched".
      text_a: column of the first text.
      text_b: column of the second text, None for single-sentence tasks.
      label: column of the label; None for unlabelled test files.
      guid: column whose value ends the guid; None to use the row's 0-based position in the
        file (header included), as the original does for MRPC and CoLA.
      has_header: whether line 1 names the columns (and sets how many each row must have).
      num_columns: fields per row for files without a header.
      id_column: column of the file's own example id (GLUE test files' `index`), kept as the
        examples' `example_id`; None when there is none.
      id_name: that column's header.
    """

    file_name: str
    guid_prefix: str
    text_a: int
    text_b: int | None = None
    label: int | None = None
    guid: int | None = None
    has_header: bool = True
    num_columns: int | None = None
    id_column: int | None = None
    id_name: str = "index"


class TsvTaskProcessor(DataProcessor):
    """A task whose three splits are TSV files described by `TsvLayout`s.

    Test files carry no labels; their examples get the first label as a dummy, as the
    original does, or None for regression.
    """

    labels: tuple[str, ...] = ()
    train_layout: TsvLayout
    dev_layout: TsvLayout
    test_layout: TsvLayout
    # Rows with the wrong number of fields in a labelled split are skipped with a warning
    # instead of stopping the run; only for official files known to contain a few such rows.
    skips_malformed_rows = False

    def get_train_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_split(data_dir, self.train_layout)

    def get_dev_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_split(data_dir, self.dev_layout)

    def get_test_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_split(data_dir, self.test_layout)

    def get_labels(self) -> list[str]:
        return list(self.labels)

    @property
    def test_id_name(self) -> str | None:
        layout = self.test_layout
        return layout.id_name if layout.id_column is not None else None

    def _dummy_label(self) -> Label:
        return self.labels[0] if self.labels else None

    def _read_split(self, data_dir: str, layout: TsvLayout) -> list[InputExample]:
        path = os.path.join(data_dir, layout.file_name)
        rows = read_delimited_rows(path, encoding=self.input_encoding)
        if layout.has_header:
            width = len(rows[0][1]) if rows else 0
            width_source = "as many as the header"
        else:
            width, width_source = layout.num_columns, f"as every {type(self).__name__} row"
        examples = []
        skipped_lines = []
        for position, (line, fields) in enumerate(rows):
            if (layout.has_header and position == 0) or not fields:
                continue
            if len(fields) == width:
                examples.append(self._example_from_row(fields, position, layout, path, line))
                continue
            message = _wrong_width_error(path, line, fields, width, width_source)
            if not (self.skips_malformed_rows and layout.label is not None):
                raise DataFormatError(message)
            skipped_lines.append(line)
            if len(skipped_lines) <= _MAX_SKIP_WARNINGS:
                tf.logging.warning("Skipping a malformed row: %s", message)
        if skipped_lines:
            tf.logging.warning(
                "Skipped %d malformed rows of %s in all (lines %s)",
                len(skipped_lines),
                path,
                ", ".join(map(str, skipped_lines)),
            )
        if not examples:
            raise DataFormatError(f"{path}: contains no examples")
        return examples

    def _example_from_row(
        self, fields: list[str], position: int, layout: TsvLayout, path: str, line: int
    ) -> InputExample:
        guid_suffix = fields[layout.guid] if layout.guid is not None else position
        if layout.label is None:
            label = self._dummy_label()
        elif self.task_kind == REGRESSION:
            label = _number(fields[layout.label], _location(path, line))
        else:
            label = fields[layout.label]
        return InputExample(
            guid=f"{layout.guid_prefix}-{guid_suffix}",
            text_a=fields[layout.text_a],
            text_b=fields[layout.text_b] if layout.text_b is not None else None,
            label=label,
            source=_location(path, line),
            example_id=fields[layout.id_column] if layout.id_column is not None else None,
        )


class ColaProcessor(TsvTaskProcessor):
    """CoLA: source, label, original label, sentence; only the test file has a header."""

    labels = ("0", "1")
    metric_name = classifier_metrics.MCC
    train_layout = TsvLayout(
        "train.tsv", "train", text_a=3, label=1, has_header=False, num_columns=4
    )
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=3, label=1, has_header=False, num_columns=4)
    test_layout = TsvLayout("test.tsv", "test", text_a=1, id_column=0)


class MnliProcessor(TsvTaskProcessor):
    """MultiNLI, matched dev and test sets: sentence1 and sentence2 in columns 8 and 9, the
    gold label last."""

    labels = ("contradiction", "entailment", "neutral")
    train_layout = TsvLayout("train.tsv", "train", text_a=8, text_b=9, label=-1, guid=0)
    dev_layout = TsvLayout("dev_matched.tsv", "dev_matched", text_a=8, text_b=9, label=-1, guid=0)
    test_layout = TsvLayout(
        "test_matched.tsv", "test", text_a=8, text_b=9, guid=0, id_column=0
    )


class MnliMismatchedProcessor(MnliProcessor):
    """MultiNLI with the mismatched (other genres) dev and test sets."""

    dev_layout = TsvLayout(
        "dev_mismatched.tsv", "dev_mismatched", text_a=8, text_b=9, label=-1, guid=0
    )
    test_layout = TsvLayout(
        "test_mismatched.tsv", "test_mismatched", text_a=8, text_b=9, guid=0, id_column=0
    )


class MrpcProcessor(TsvTaskProcessor):
    """MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String."""

    labels = ("0", "1")
    metric_name = classifier_metrics.ACCURACY_AND_F1
    train_layout = TsvLayout("train.tsv", "train", text_a=3, text_b=4, label=0)
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=3, text_b=4, label=0)
    test_layout = TsvLayout("test.tsv", "test", text_a=3, text_b=4, id_column=0)


class Sst2Processor(TsvTaskProcessor):
    """SST-2: sentence, label; the test file is index, sentence."""

    labels = ("0", "1")
    train_layout = TsvLayout("train.tsv", "train", text_a=0, label=1)
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=0, label=1)
    test_layout = TsvLayout("test.tsv", "test", text_a=1, guid=0, id_column=0)


class QnliProcessor(TsvTaskProcessor):
    """QNLI: index, question, sentence, label."""

    labels = ("entailment", "not_entailment")
    train_layout = TsvLayout("train.tsv", "train", text_a=1, text_b=2, label=3, guid=0)
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=1, text_b=2, label=3, guid=0)
    test_layout = TsvLayout("test.tsv", "test", text_a=1, text_b=2, guid=0, id_column=0)


class QqpProcessor(TsvTaskProcessor):
    """QQP: id, qid1, qid2, question1, question2, is_duplicate; test: id, question1, question2.

    The official train and dev files hold a few rows whose questions contain a stray tab or
    line break, which leaves them with the wrong number of fields. Every common reader skips
    them, so this one does too, logging each skipped line. The test file is never skipped:
    its predictions must line up with its ids.
    """

    labels = ("0", "1")
    metric_name = classifier_metrics.ACCURACY_AND_F1
    skips_malformed_rows = True
    train_layout = TsvLayout("train.tsv", "train", text_a=3, text_b=4, label=5, guid=0)
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=3, text_b=4, label=5, guid=0)
    test_layout = TsvLayout(
        "test.tsv", "test", text_a=1, text_b=2, guid=0, id_column=0, id_name="id"
    )


class RteProcessor(TsvTaskProcessor):
    """RTE: index, sentence1, sentence2, label."""

    labels = ("entailment", "not_entailment")
    train_layout = TsvLayout("train.tsv", "train", text_a=1, text_b=2, label=3, guid=0)
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=1, text_b=2, label=3, guid=0)
    test_layout = TsvLayout("test.tsv", "test", text_a=1, text_b=2, guid=0, id_column=0)


class WnliProcessor(RteProcessor):
    """WNLI: index, sentence1, sentence2, label (0 or 1)."""

    labels = ("0", "1")


class StsbProcessor(TsvTaskProcessor):
    """STS-B (regression): sentence1, sentence2 and score in columns 7, 8 and 9."""

    labels = ()
    task_kind = REGRESSION
    metric_name = classifier_metrics.PEARSON_AND_SPEARMAN
    train_layout = TsvLayout("train.tsv", "train", text_a=7, text_b=8, label=9, guid=0)
    dev_layout = TsvLayout("dev.tsv", "dev", text_a=7, text_b=8, label=9, guid=0)
    test_layout = TsvLayout("test.tsv", "test", text_a=7, text_b=8, guid=0, id_column=0)


class XnliProcessor(DataProcessor):
    """XNLI in one language: trains on the machine-translated MultiNLI training set of that
    language, evaluates on the XNLI dev (and test) rows of that language.

    Files, inside `data_dir`: `multinli/multinli.train.<language>.tsv` (premise, hypo, label,
    with "contradictory" meaning "contradiction"), and `xnli.dev.tsv` / `xnli.test.tsv`
    (language in column 0, gold label in 1, sentence1 and sentence2 in 6 and 7).
    """

    def __init__(self, language: str = "zh") -> None:
        self.language = language

    def get_labels(self) -> list[str]:
        return ["contradiction", "entailment", "neutral"]

    def get_train_examples(self, data_dir: str) -> list[InputExample]:
        path = os.path.join(data_dir, "multinli", f"multinli.train.{self.language}.tsv")
        examples = []
        for position, line, fields in _data_rows_after_header(path, self.input_encoding):
            label = "contradiction" if fields[2] == "contradictory" else fields[2]
            examples.append(
                InputExample(
                    f"train-{position}", fields[0], fields[1], label, _location(path, line)
                )
            )
        if not examples:
            raise DataFormatError(f"{path}: contains no examples")
        return examples

    def get_dev_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_xnli_file(os.path.join(data_dir, "xnli.dev.tsv"), "dev")

    def get_test_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_xnli_file(os.path.join(data_dir, "xnli.test.tsv"), "test")

    def _read_xnli_file(self, path: str, guid_prefix: str) -> list[InputExample]:
        examples = [
            InputExample(
                f"{guid_prefix}-{position}", fields[6], fields[7], fields[1], _location(path, line)
            )
            for position, line, fields in _data_rows_after_header(path, self.input_encoding)
            if fields[0] == self.language
        ]
        if not examples:
            raise DataFormatError(f"{path}: contains no examples in language {self.language!r}")
        return examples


def _data_rows_after_header(path: str, encoding: str) -> list[tuple[int, int, list[str]]]:
    """(position in file, line, fields) of the non-blank rows after a header, each checked to
    have as many fields as the header."""
    rows = read_delimited_rows(path, encoding=encoding)
    if not rows:
        raise DataFormatError(f"{path}: is empty")
    width = len(rows[0][1])
    result = []
    for position, (line, fields) in enumerate(rows[1:], start=1):
        if not fields:
            continue
        if len(fields) != width:
            raise DataFormatError(
                _wrong_width_error(path, line, fields, width, "as many as the header")
            )
        result.append((position, line, fields))
    return result


PROCESSORS: dict[str, type[DataProcessor]] = {
    "cola": ColaProcessor,
    "mnli": MnliProcessor,
    "mnli-mm": MnliMismatchedProcessor,
    "mrpc": MrpcProcessor,
    "xnli": XnliProcessor,
    "sst-2": Sst2Processor,
    "qnli": QnliProcessor,
    "qqp": QqpProcessor,
    "rte": RteProcessor,
    "wnli": WnliProcessor,
    "sts-b": StsbProcessor,
}


def processor_for_task(task_name: str) -> DataProcessor:
    """A new processor for a `PROCESSORS` task name (any case)."""
    processor_class = PROCESSORS.get(task_name.lower())
    if processor_class is None:
        raise ValueError(f"Task not found: {task_name} (known tasks: {', '.join(PROCESSORS)})")
    return processor_class()


# ---------------------------------------------------------------------------------------------
# The generic processor: the user's own CSV, TSV or JSON Lines files
# ---------------------------------------------------------------------------------------------

FILE_FORMATS = ("csv", "tsv", "jsonl")
_DEFAULT_DELIMITERS = {"csv": ",", "tsv": "\t"}
# CSV follows RFC 4180 quoting; TSV is read without quoting, as GLUE's files are.
_QUOTE_CHARS = {"csv": '"', "tsv": None}
_DEFAULT_METRICS = {
    CLASSIFICATION: classifier_metrics.PER_CLASS,
    REGRESSION: classifier_metrics.PEARSON_AND_SPEARMAN,
    MULTI_LABEL: classifier_metrics.MULTI_LABEL,
}


_INTEGER = re.compile(r"-?[0-9]+")


def parse_column(text: str | None) -> Column | None:
    """A column given on the command line: digits are a 0-based index, anything else a name
    (or JSON key); None or "" is no column."""
    if not text:
        return None
    return int(text) if re.fullmatch(r"[0-9]+", text) else text


def sorted_labels(labels: set[str]) -> list[str]:
    """Labels in a stable order: numerically when all are integers ("2" before "10"),
    otherwise as strings."""
    if labels and all(_INTEGER.fullmatch(label) for label in labels):
        # The string breaks ties between spellings of one number ("01", "1").
        return sorted(labels, key=lambda label: (int(label), label))
    return sorted(labels)


@dataclasses.dataclass
class _Record:
    """One row or JSON object of a data file, with the columns resolved for that file."""

    line: int
    values: Any  # list[str] for tables, dict for JSON Lines


class GenericProcessor(DataProcessor):
    """Reads the user's own data: CSV, TSV or JSON Lines, one example per row or line.

    Args:
      data_dir: directory of the data; needed by `get_labels` only when the labels are
        inferred from the training file.
      file_format: "csv", "tsv" or "jsonl"; None to infer it from each file's extension.
      train_file, dev_file, test_file: file names inside the data directory (or absolute
        paths); default `train.<ext>`, `dev.<ext>`, `test.<ext>`, where without a
        `file_format` the one of .tsv / .csv / .jsonl that exists is taken.
      text_a_column, text_b_column, label_column: 0-based column index or header name (a key
        for JSON Lines). `text_b_column=None` makes a single-sequence task. Test examples are
        unlabelled: the test file may lack the label column, and any label there is ignored.
      has_header: whether the first line of a CSV/TSV file names the columns; None means
        "yes if any column is given by name".
      delimiter: field separator; default "," for CSV and tab for TSV.
      labels: the label list; None to infer it from the training file (sorted: numerically
        if every label is an integer, else as strings).
      task_kind: CLASSIFICATION, REGRESSION (the label is a number) or MULTI_LABEL (the label
        field holds several labels joined by `label_separator`, or a JSON list).
      label_separator: separator of multi-label fields, e.g. "sports|politics".
      metric_name: a `classifier_metrics` family; default by task kind (`per_class`,
        `pearson_and_spearman`, `multi_label`).
      id_column: column (or key) of the test file holding each example's own id, kept as
        its `example_id` (and written first in test_predictions.tsv); None for none. Only
        the test file is read for it.

    Labels are stripped of surrounding spaces. A non-string JSON label (1, true) becomes its
    JSON text ("1", "true").
    """

    def __init__(
        self,
        data_dir: str | None = None,
        file_format: str | None = None,
        train_file: str | None = None,
        dev_file: str | None = None,
        test_file: str | None = None,
        text_a_column: Column = "text",
        text_b_column: Column | None = None,
        label_column: Column = "label",
        has_header: bool | None = None,
        delimiter: str | None = None,
        labels: Sequence[str] | None = None,
        task_kind: str = CLASSIFICATION,
        label_separator: str = "|",
        metric_name: str | None = None,
        id_column: Column | None = None,
    ) -> None:
        if file_format is not None and file_format not in FILE_FORMATS:
            raise ValueError(f"file_format={file_format!r}: expected one of {FILE_FORMATS}")
        if task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind={task_kind!r}: expected one of {TASK_KINDS}")
        if metric_name is not None and metric_name not in classifier_metrics.METRIC_NAMES:
            raise ValueError(
                f"metric_name={metric_name!r}: expected one of {classifier_metrics.METRIC_NAMES}"
            )
        if labels is not None and len(set(labels)) != len(labels):
            raise ValueError(f"labels={list(labels)} lists a label more than once")
        if task_kind == MULTI_LABEL and not label_separator:
            raise ValueError("label_separator must not be empty for multi-label data")
        named_columns = [
            column
            for column in (text_a_column, text_b_column, label_column, id_column)
            if isinstance(column, str)
        ]
        if has_header is None:
            has_header = bool(named_columns)
        elif named_columns and not has_header:
            raise ValueError(
                f"Columns {named_columns} are given by name, which needs has_header=True"
            )
        self.data_dir = data_dir
        self.file_format = file_format
        self.file_names = {"train": train_file, "dev": dev_file, "test": test_file}
        self.columns = {
            "text_a": text_a_column,
            "text_b": text_b_column,
            "label": label_column,
            "id": id_column,
        }
        self.has_header = has_header
        self.delimiter = delimiter
        self.task_kind = task_kind
        self.label_separator = label_separator
        self.metric_name = metric_name or _DEFAULT_METRICS[task_kind]
        self._given_labels = list(labels) if labels is not None else None
        self._inferred_labels: dict[str, list[str]] = {}

    def get_train_examples(self, data_dir: str) -> list[InputExample]:
        examples = self._read_split(data_dir, "train")
        self._inferred_labels[os.path.abspath(data_dir)] = self._labels_of(examples)
        return examples

    def get_dev_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_split(data_dir, "dev")

    def get_test_examples(self, data_dir: str) -> list[InputExample]:
        return self._read_split(data_dir, "test")

    @property
    def test_id_name(self) -> str | None:
        """The header of test_predictions.tsv's id column: the id column's name, or `id`
        for one given by index."""
        column = self.columns["id"]
        if column is None:
            return None
        return column if isinstance(column, str) else "id"

    def get_labels(self) -> list[str]:
        """The given labels, or those of the training file (read once), [] for regression."""
        if self._given_labels is not None:
            return list(self._given_labels)
        if self.task_kind == REGRESSION:
            return []
        if self.data_dir is not None:
            key = os.path.abspath(self.data_dir)
            if key not in self._inferred_labels:
                self.get_train_examples(self.data_dir)
            return list(self._inferred_labels[key])
        if len(self._inferred_labels) == 1:
            return list(next(iter(self._inferred_labels.values())))
        raise ValueError(
            "GenericProcessor cannot infer its labels: give `labels`, or `data_dir` so that "
            "they can be read from the training file"
        )

    def _labels_of(self, examples: list[InputExample]) -> list[str]:
        if self.task_kind == REGRESSION:
            return []
        seen: set[str] = set()
        for example in examples:
            if self.task_kind == MULTI_LABEL:
                seen.update(example.label)
            else:
                seen.add(example.label)
        return sorted_labels(seen)

    # --- locating files ----------------------------------------------------------------------

    def _locate(self, data_dir: str, split: str) -> tuple[str, str]:
        """The path of a split's file and its format."""
        file_name = self.file_names[split]
        if file_name:
            path = os.path.join(data_dir, file_name)
            return path, self.file_format or _format_from_extension(path)
        if self.file_format:
            return os.path.join(data_dir, f"{split}.{self.file_format}"), self.file_format
        candidates = [os.path.join(data_dir, f"{split}.{ext}") for ext in FILE_FORMATS]
        existing = [path for path in candidates if tf.io.gfile.exists(path)]
        if len(existing) != 1:
            problem = "none of" if not existing else "more than one of"
            raise FileNotFoundError(
                f"Cannot find the {split} file: {problem} {', '.join(candidates)} exists; "
                f"name it with {split}_file or pick one with file_format"
            )
        return existing[0], _format_from_extension(existing[0])

    # --- reading records ---------------------------------------------------------------------

    def _read_split(self, data_dir: str, split: str) -> list[InputExample]:
        """The examples of one split; test examples are unlabelled (label None)."""
        path, file_format = self._locate(data_dir, split)
        wanted = dict(self.columns)
        if split == "test":
            wanted["label"] = None
        else:
            wanted["id"] = None
        if file_format == "jsonl":
            records = _read_json_lines(path, self.input_encoding)
            columns = _json_keys(path, wanted)
        else:
            records, columns = self._read_table(path, file_format, wanted)
        examples = [
            self._example(record, columns, f"{split}-{index}", path)
            for index, record in enumerate(records)
        ]
        if not examples:
            raise DataFormatError(f"{path}: contains no examples")
        return examples

    def _read_table(
        self, path: str, file_format: str, wanted: dict[str, Column | None]
    ) -> tuple[list[_Record], dict[str, int | None]]:
        """The data rows of a CSV/TSV file, and the `wanted` columns as indexes into them."""
        delimiter = self.delimiter or _DEFAULT_DELIMITERS[file_format]
        rows = [
            _Record(line, fields)
            for line, fields in read_delimited_rows(
                path, delimiter, _QUOTE_CHARS[file_format], self.input_encoding
            )
            if fields
        ]
        if not rows:
            raise DataFormatError(f"{path}: contains no examples")
        if self.has_header:
            header, rows = rows[0], rows[1:]
            width, width_source = len(header.values), "as many as the header"
            columns = {
                name: _index_in_header(path, header, name, column)
                for name, column in wanted.items()
            }
        else:
            width, width_source = len(rows[0].values), f"as many as line {rows[0].line}"
            columns = dict(wanted)
        for name, column in columns.items():
            if column is not None and column >= width:
                raise DataFormatError(
                    f"{path}: {name}_column={column} does not exist; rows have {width} fields "
                    "(columns count from 0)"
                )
        for record in rows:
            if len(record.values) != width:
                raise DataFormatError(
                    _wrong_width_error(path, record.line, record.values, width, width_source)
                )
        return rows, columns

    # --- building examples -------------------------------------------------------------------

    def _example(
        self, record: _Record, columns: dict[str, Column | None], guid: str, path: str
    ) -> InputExample:
        where = _location(path, record.line)
        text_b = None
        if columns["text_b"] is not None:
            text_b = _text_field(record, columns["text_b"], "text_b", where, allow_null=True)
        label = None
        if columns["label"] is not None:
            label = self._parse_label(_field(record, columns["label"], "label", where), where)
        example_id = None
        if columns["id"] is not None:
            example_id = _id_text(_field(record, columns["id"], "id", where), where)
        return InputExample(
            guid=guid,
            text_a=_text_field(record, columns["text_a"], "text_a", where, allow_null=False),
            text_b=text_b,
            label=label,
            source=where,
            example_id=example_id,
        )

    def _parse_label(self, value: Any, where: str) -> Label:
        if self.task_kind == MULTI_LABEL:
            return _multi_label(value, self.label_separator, where)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataFormatError(f"{where}: the label is empty")
        if self.task_kind == REGRESSION:
            return _number(value, where)
        if isinstance(value, (list, dict)):
            raise DataFormatError(
                f"{where}: the label {json.dumps(value)} is not a single label; multi-label "
                "data needs task_kind=multi_label"
            )
        return _label_text(value)


def _format_from_extension(path: str) -> str:
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in FILE_FORMATS:
        raise ValueError(
            f"Cannot tell the format of {path} from its extension; set file_format to one of "
            f"{FILE_FORMATS}"
        )
    return extension


def _read_json_lines(path: str, encoding: str) -> list[_Record]:
    """One record per non-blank line, each a JSON object."""
    records = []
    for line, text in enumerate(_read_text(path, encoding).split("\n"), start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{_location(path, line)}: invalid JSON: {error}") from None
        if not isinstance(value, dict):
            raise DataFormatError(
                f"{_location(path, line)}: expected a JSON object, found {type(value).__name__}"
            )
        records.append(_Record(line, value))
    return records


def _json_keys(path: str, wanted: dict[str, Column | None]) -> dict[str, Column | None]:
    for name, column in wanted.items():
        if isinstance(column, int):
            raise DataFormatError(
                f"{path}: {name}_column={column} is an index; JSON Lines needs a key name"
            )
    return wanted


def _index_in_header(path: str, header: _Record, name: str, column: Column | None) -> int | None:
    if not isinstance(column, str):
        return column
    if column not in header.values:
        raise DataFormatError(
            f"{_location(path, header.line)}: no column named {column!r} ({name}_column); "
            f"the header has {header.values}"
        )
    return header.values.index(column)


def _field(record: _Record, column: Column, name: str, where: str) -> Any:
    if isinstance(record.values, dict):
        if column not in record.values:
            raise DataFormatError(f"{where}: no key {column!r} ({name}_column)")
        return record.values[column]
    return record.values[column]


def _text_field(
    record: _Record, column: Column, name: str, where: str, allow_null: bool
) -> str | None:
    value = _field(record, column, name, where)
    if value is None and allow_null:
        return None
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: {name} must be a string, found {json.dumps(value)}")
    return value


def _id_text(value: Any, where: str) -> str:
    """An example id as text: a string as it is, a JSON number as its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise DataFormatError(
        f"{where}: the id must be a string or a number, found {json.dumps(value)}"
    )


def _label_text(value: Any) -> str:
    """A label as text: strings stripped, other JSON scalars as their JSON text (1, true)."""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _number(value: Any, where: str) -> float:
    """A regression target from a number or numeric text (JSON true/false are not numbers)."""
    try:
        if isinstance(value, bool):
            raise TypeError("a boolean is not a score")
        return float(value)
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: the label {value!r} is not a number") from None


def _multi_label(value: Any, separator: str, where: str) -> list[str]:
    if value is None:
        raise DataFormatError(f'{where}: the label is null; use "" or [] for no labels')
    if isinstance(value, str):
        pieces = value.split(separator)
    elif isinstance(value, list):
        pieces = value
    else:
        raise DataFormatError(
            f"{where}: expected labels joined by {separator!r} or a JSON list, found "
            f"{json.dumps(value)}"
        )
    labels = [_label_text(piece) for piece in pieces]
    return [label for label in labels if label]


# ---------------------------------------------------------------------------------------------
# Plugging in a user's processor
# ---------------------------------------------------------------------------------------------


def load_processor(spec: str, flag_name: str = "processor") -> DataProcessor:
    """Imports and instantiates a `DataProcessor` subclass named `module:Class`.

    `module` is a module importable from `sys.path` (`my_tasks`, `pkg.tasks`) or a path to a
    `.py` file (`path/to/my_tasks.py`); for a file, its directory is put on `sys.path` so
    that it can import its neighbours. The class is called without arguments.
    """
    module_name, colon, class_name = spec.rpartition(":")
    if not colon or not module_name or not class_name.isidentifier():
        raise ValueError(
            f"--{flag_name}={spec!r}: expected 'module:Class' or 'path/to/file.py:Class'"
        )
    module = _import_user_module(module_name, f"--{flag_name}={spec}")
    processor_class = getattr(module, class_name, None)
    if processor_class is None:
        available = sorted(
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, DataProcessor)
        )
        raise ImportError(
            f"--{flag_name}={spec}: module {module_name!r} has no {class_name!r}; its "
            f"DataProcessor subclasses: {', '.join(available) or 'none'}"
        )
    if not (isinstance(processor_class, type) and issubclass(processor_class, DataProcessor)):
        raise TypeError(
            f"--{flag_name}={spec}: {class_name} is not a subclass of DataProcessor (derive it "
            "from classifier_data.DataProcessor, also importable from run_classifier)"
        )
    return processor_class()


def _import_user_module(module_name: str, what: str) -> types.ModuleType:
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        return _import_file(module_name, what)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only a failure to find the named module itself is ours to explain; an import that
        # fails inside the user's module is re-raised unchanged.
        if error.name is None or not (
            module_name == error.name or module_name.startswith(error.name + ".")
        ):
            raise
        raise ImportError(
            f"{what}: cannot import module {module_name!r}; put its directory on PYTHONPATH "
            "or give the path to its .py file"
        ) from None


def _import_file(path: str, what: str) -> types.ModuleType:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: no such file {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{what}: cannot load {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


# ---------------------------------------------------------------------------------------------
# Examples to features
# ---------------------------------------------------------------------------------------------


def _label_id(
    example: InputExample, label_map: dict[str, int], task_kind: str
) -> int | float | list[int]:
    """The label as the model sees it: class index, float target, or multi-hot list."""
    label = example.label
    if task_kind == REGRESSION:
        return 0.0 if label is None else _number(label, example.location())
    if task_kind == MULTI_LABEL:
        multi_hot = [0] * len(label_map)
        if isinstance(label, str):
            raise DataFormatError(
                f"{example.location()}: a multi-label example needs a list of labels, got the "
                f"string {label!r}"
            )
        for name in label or []:
            multi_hot[_class_index(name, label_map, example)] = 1
        return multi_hot
    return 0 if label is None else _class_index(label, label_map, example)


def _class_index(label: Any, label_map: dict[str, int], example: InputExample) -> int:
    if not isinstance(label, Hashable) or label not in label_map:
        raise DataFormatError(
            f"{example.location()}: label {label!r} is not in the label list {list(label_map)}"
        )
    return label_map[label]


def _padding_features(max_seq_length: int, num_labels: int, task_kind: str) -> InputFeatures:
    label_id: int | float | list[int] = 0
    if task_kind == REGRESSION:
        label_id = 0.0
    elif task_kind == MULTI_LABEL:
        label_id = [0] * num_labels
    return InputFeatures(
        input_ids=[0] * max_seq_length,
        input_mask=[0] * max_seq_length,
        segment_ids=[0] * max_seq_length,
        label_id=label_id,
        is_real_example=False,
    )


def convert_single_example(
    ex_index: int,
    example: InputExample | PaddingInputExample,
    label_list: Sequence[str],
    max_seq_length: int,
    tokenizer: tokenization.Tokenizer,
    task_kind: str = CLASSIFICATION,
) -> InputFeatures:
    """Tokenizes one example into `[max_seq_length]` ids, mask and segment ids.

    The pair is truncated longest-first to `max_seq_length - 3` tokens, a single sequence to
    `max_seq_length - 2`. An empty `text_b` (or one with no tokens) makes a single sequence.
    The first five examples (`ex_index < 5`) are logged in full.
    """
    encoder_inputs.check_max_seq_length(max_seq_length)
    if task_kind not in TASK_KINDS:
        raise ValueError(f"task_kind={task_kind!r}: expected one of {TASK_KINDS}")
    if isinstance(example, PaddingInputExample):
        return _padding_features(max_seq_length, len(label_list), task_kind)

    tokenization.require_tokens(tokenizer, tokenization.FEATURE_TOKENS, "the classifier's inputs")
    inputs = encoder_inputs.text_inputs(example.text_a, example.text_b, max_seq_length, tokenizer)
    tokens, input_ids = inputs.tokens, inputs.input_ids
    input_mask, segment_ids = inputs.input_mask, inputs.segment_ids

    label_map = {label: index for index, label in enumerate(label_list)}
    label_id = _label_id(example, label_map, task_kind)
    if ex_index < _NUM_EXAMPLES_TO_LOG:
        _log_example(example, tokens, input_ids, input_mask, segment_ids, label_id)
    return InputFeatures(input_ids, input_mask, segment_ids, label_id, is_real_example=True)


def _log_example(
    example: InputExample,
    tokens: list[str],
    input_ids: list[int],
    input_mask: list[int],
    segment_ids: list[int],
    label_id: int | float | list[int],
) -> None:
    # The original logs five examples of every split; the first of the run is shown, the
    # others need --verbosity=1.
    level = bert_logging.first_time_level("classifier example")
    tf.logging.log(level, "*** Example ***")
    tf.logging.log(level, "guid: %s", example.guid)
    tf.logging.log(level, "tokens: %s", " ".join(tokens))
    tf.logging.log(level, "input_ids: %s", " ".join(map(str, input_ids)))
    tf.logging.log(level, "input_mask: %s", " ".join(map(str, input_mask)))
    tf.logging.log(level, "segment_ids: %s", " ".join(map(str, segment_ids)))
    tf.logging.log(level, "label: %s (id = %s)", example.label, label_id)


def check_labels(
    examples: Sequence[InputExample | PaddingInputExample],
    label_list: Sequence[str],
    task_kind: str = CLASSIFICATION,
) -> None:
    """Raises `DataFormatError` (naming file and line) at the first label the model cannot
    take; cheap, so that every split can be checked before training starts."""
    label_map = {label: index for index, label in enumerate(label_list)}
    for example in examples:
        if not isinstance(example, PaddingInputExample):
            _label_id(example, label_map, task_kind)


def convert_examples_to_features(
    examples: Sequence[InputExample | PaddingInputExample],
    label_list: Sequence[str],
    max_seq_length: int,
    tokenizer: tokenization.Tokenizer,
    task_kind: str = CLASSIFICATION,
) -> list[InputFeatures]:
    """`convert_single_example` over a list, in order."""
    features = []
    for ex_index, example in enumerate(examples):
        features.append(
            convert_single_example(
                ex_index, example, label_list, max_seq_length, tokenizer, task_kind
            )
        )
    return features


def features_to_tf_example(
    features: InputFeatures, task_kind: str = CLASSIFICATION
) -> tf.train.Example:
    """A `tf.train.Example` with the original's feature names: `input_ids`, `input_mask`,
    `segment_ids`, `label_ids` (one int, one float for regression, a multi-hot int list for
    multi-label) and `is_real_example`."""
    if task_kind == REGRESSION:
        label_feature = tfrecord_io.create_float_feature([features.label_id])
    elif task_kind == MULTI_LABEL:
        label_feature = tfrecord_io.create_int_feature(features.label_id)
    else:
        label_feature = tfrecord_io.create_int_feature([features.label_id])
    feature_map = {
        "input_ids": tfrecord_io.create_int_feature(features.input_ids),
        "input_mask": tfrecord_io.create_int_feature(features.input_mask),
        "segment_ids": tfrecord_io.create_int_feature(features.segment_ids),
        "label_ids": label_feature,
        "is_real_example": tfrecord_io.create_int_feature([int(features.is_real_example)]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature_map))


def file_based_convert_examples_to_features(
    examples: Sequence[InputExample | PaddingInputExample],
    label_list: Sequence[str],
    max_seq_length: int,
    tokenizer: tokenization.Tokenizer,
    output_file: str,
    task_kind: str = CLASSIFICATION,
) -> int:
    """Converts `examples` and writes them, in order, to the TFRecord file `output_file`.

    The file appears only once it is complete (written under a temporary name, then renamed),
    so a run that fails on a bad example leaves no half-written cache behind. Returns the
    number of records written.
    """
    tf_examples = (
        features_to_tf_example(
            convert_single_example(
                ex_index, example, label_list, max_seq_length, tokenizer, task_kind
            ),
            task_kind,
        )
        for ex_index, example in enumerate(examples)
    )
    return tfrecord_io.write_tf_examples(
        bert_logging.counted(tf_examples, "Examples featurized", len(examples)), [output_file]
    )


def feature_spec(
    max_seq_length: int, task_kind: str = CLASSIFICATION, num_labels: int | None = None
) -> dict[str, tf.io.FixedLenFeature]:
    """How to parse the records `file_based_convert_examples_to_features` writes.

    Shapes: `input_ids`, `input_mask`, `segment_ids` `[max_seq_length]` int64; `label_ids`
    `[]` int64 (classification), `[]` float32 (regression) or `[num_labels]` int64
    (multi-label, where `num_labels` is required); `is_real_example` `[]` int64.
    """
    if task_kind == REGRESSION:
        label_spec = tf.io.FixedLenFeature([], tf.float32)
    elif task_kind == MULTI_LABEL:
        if not num_labels:
            raise ValueError("Multi-label features need num_labels (the length of label_ids)")
        label_spec = tf.io.FixedLenFeature([num_labels], tf.int64)
    elif task_kind == CLASSIFICATION:
        label_spec = tf.io.FixedLenFeature([], tf.int64)
    else:
        raise ValueError(f"task_kind={task_kind!r}: expected one of {TASK_KINDS}")
    return {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "label_ids": label_spec,
        "is_real_example": tf.io.FixedLenFeature([], tf.int64),
    }
