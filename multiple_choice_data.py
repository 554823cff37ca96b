"""Multiple-choice data: readers of SWAG, RACE, C3, ChID and JSON lines, and the features of
`run_multiple_choice.py`.

Every reader gives `MultipleChoiceExample`s (a context, a question, the choices and the index
of the right one) and checks them as it reads: an example without choices, a label outside
its choices, a RACE file without answers or with mismatched question / option / answer
counts stop with a `classifier_data.DataFormatError` naming the file and the example.

An example with N choices becomes N sequences `[CLS] context [SEP] question option [SEP]`
(`encoder_inputs.pair_inputs`, context-first truncation); a question holding a blank `_`
gets the option in the blank instead (RACE's cloze questions). Every example of a run has
the same number of choices: shorter ones are padded with dummy choices, all-zero sequences
with `choice_mask` 0, which the head masks out.

Formats (one example per question, or per blank):
- SWAG `train.csv` / `val.csv` / `test.csv`: a header with `sent1` (the context), `sent2` (the
  start of the ending, as the question), `ending0`...`ending3` and `label` (absent in
  test.csv); the id is `fold-ind` when present.
- RACE: a directory (`train/`, `dev/`, `test/`) whose `high/` and `middle/` files each hold
  one JSON object `{"article", "questions": [...], "options": [[...], ...], "answers":
  ["A", ...], "id"}`.
- C3: a JSON list of `[[sentences of the dialogue or passage], [{"question", "choice":
  [...], "answer": "<the right choice's text>"}, ...], id]` (`c3-d-train.json`,
  `c3-m-train.json`, ...).
- ChID (CLUE layout): JSON lines `{"candidates": [idioms], "content": [passages]}` whose
  passages hold blanks `#idiom000001#`, and beside `train.json` a `train_answer.json`
  mapping each blank to the index of its idiom among the candidates. One example per
  blank: the context is the passage around it (`chid_window_chars` characters each side),
  the blank itself a `_`, the other blanks of the passage `…`; the question is empty.
- JSON lines, for one's own data: `{"id"?, "context", "question"?, "choices": [...],
  "label": index or the right choice's text}`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Iterable, Sequence

import tensorflow as tf

import classifier_data
import encoder_inputs
import input_files
import tfrecord_io
import tokenization

DataFormatError = classifier_data.DataFormatError

SWAG, RACE, C3, CHID, JSON_LINES = "swag", "race", "c3", "chid", "jsonl"
TASKS = (SWAG, RACE, C3, CHID, JSON_LINES)
# The files of each split in --data_dir (glob patterns, comma-separated alternatives).
DEFAULT_FILES = {
    SWAG: {"train": "train.csv", "dev": "val.csv", "test": "test.csv"},
    RACE: {"train": "train", "dev": "dev", "test": "test"},
    C3: {"train": "*-train.json", "dev": "*-dev.json", "test": "*-test*.json"},
    CHID: {"train": "train.json", "dev": "dev.json", "test": "test.json"},
    JSON_LINES: {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"},
}
RACE_SUBSETS = ("high", "middle")
CHID_BLANK = re.compile(r"#idiom\d+#")
CHID_TARGET_MARK = "_"
CHID_OTHER_MARK = "…"
DEFAULT_CHID_WINDOW_CHARS = 128

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
SERVING_INPUT_NAMES = (*FEATURE_NAMES, "choice_mask")


@dataclasses.dataclass
class MultipleChoiceExample:
    """One question and its choices.

    Attributes:
      guid: the example's id in its file (SWAG's fold-ind, RACE's `high1.txt-0`, ChID's
        `#idiom000001#`...).
      context: the passage, dialogue or sentence the question is about.
      question: the question ("" when there is none); a `_` in it is a blank the option
        fills.
      choices: the options' texts.
      label: the index of the right choice, None for unlabelled data.
      source: `file` or `file:line`, for messages.
    """

    guid: str
    context: str
    question: str
    choices: list[str]
    label: int | None
    source: str = "<input>"


def read_text(path: str, encoding: str = "utf-8") -> str:
    """A whole file decoded with `encoding`; undecodable bytes stop with file:line."""
    return input_files.read_text(path, encoding, what="Data file", error_type=DataFormatError)


def _error(source: str, guid: str | None, message: str) -> DataFormatError:
    where = f"{source}: example {guid}" if guid is not None else source
    return DataFormatError(f"{where}: {message}")


def checked_example(example: MultipleChoiceExample, labelled: bool) -> MultipleChoiceExample:
    """The example itself once it has choices, all of them strings, and (when `labelled`) a
    label among them."""
    if not example.choices:
        raise _error(example.source, example.guid, "has no choices")
    for index, choice in enumerate(example.choices):
        if not isinstance(choice, str):
            raise _error(example.source, example.guid, f"choice {index} is not a string")
    if labelled and example.label is None:
        raise _error(example.source, example.guid, "has no label")
    if example.label is not None and not 0 <= example.label < len(example.choices):
        raise _error(
            example.source,
            example.guid,
            f"label {example.label} is outside its {len(example.choices)} choices",
        )
    return example


# ------------------------------------------------------------------------------- SWAG


def read_swag(path: str, labelled: bool = True, encoding: str = "utf-8") -> list:
    """SWAG's CSV: context `sent1`, question `sent2`, choices `ending0`... (as many as the
    header has), `label` the right ending's index."""
    rows = csv.reader(io.StringIO(read_text(path, encoding), newline=""))
    header = next(rows, None)
    if header is None:
        raise DataFormatError(f"{path}: empty file, expected a SWAG header")
    column = {name: index for index, name in enumerate(header)}
    endings = sorted(
        (name for name in column if re.fullmatch(r"ending\d+", name)), key=lambda n: int(n[6:])
    )
    missing = [name for name in ("sent1", "sent2") if name not in column]
    if labelled and "label" not in column:
        missing.append("label")
    if missing or not endings:
        raise DataFormatError(
            f"{path}:1: the SWAG header lacks {missing or 'ending0, ending1...'}: {header}"
        )
    examples = []
    for line_number, row in enumerate(rows, start=2):
        if not row:
            continue
        source = f"{path}:{line_number}"
        has_id = "fold-ind" in column and len(row) > column["fold-ind"]
        guid = (row[column["fold-ind"]] if has_id else "") or str(line_number - 1)
        if len(row) != len(header):
            raise _error(source, guid, f"has {len(row)} fields, the header {len(header)}")
        label = None
        if "label" in column and row[column["label"]].strip():
            label = _int_label(row[column["label"]], source, guid)
        examples.append(
            checked_example(
                MultipleChoiceExample(
                    guid=guid,
                    context=row[column["sent1"]],
                    question=row[column["sent2"]],
                    choices=[row[column[name]] for name in endings],
                    label=label,
                    source=source,
                ),
                labelled,
            )
        )
    return examples


def _int_label(value, source: str, guid: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise _error(source, guid, f"label {value!r} is not a choice index") from None


# ------------------------------------------------------------------------------- RACE


def race_files(directory: str) -> list[str]:
    """The question files of a RACE split: those of its `high/` and `middle/`
    subdirectories (or the directory's own files when it has neither), sorted."""
    subsets = [os.path.join(directory, name) for name in RACE_SUBSETS]
    folders = [folder for folder in subsets if tf.io.gfile.isdir(folder)] or [directory]
    files = []
    for folder in folders:
        for name in sorted(tf.io.gfile.listdir(folder)):
            path = os.path.join(folder, name.rstrip("/"))
            if not tf.io.gfile.isdir(path) and not name.startswith("."):
                files.append(path)
    if not files:
        raise FileNotFoundError(f"{directory}: no RACE files (in high/, middle/ or itself)")
    return files


def read_race_file(path: str, labelled: bool = True, encoding: str = "utf-8") -> list:
    """One RACE file: one example per question, the article as context."""
    try:
        record = json.loads(read_text(path, encoding))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(record, dict) or "article" not in record or "questions" not in record:
        raise DataFormatError(f"{path}: a RACE file needs 'article', 'questions' and 'options'")
    questions, options = record["questions"], record.get("options")
    answers = record.get("answers")
    if answers is None and labelled:
        raise DataFormatError(f"{path}: the RACE file has no 'answers'")
    counts = {"questions": len(questions), "options": len(options or [])}
    if answers is not None:
        counts["answers"] = len(answers)
    if len(set(counts.values())) != 1:
        raise DataFormatError(
            f"{path}: mismatched counts of questions, options and answers {counts}"
        )
    file_id = str(record.get("id", os.path.basename(path)))
    examples = []
    for index, (question, choices) in enumerate(zip(questions, options, strict=True)):
        guid = f"{file_id}-{index}"
        label = None
        if answers is not None:
            label = _letter_label(answers[index], path, guid)
        examples.append(
            checked_example(
                MultipleChoiceExample(
                    guid, record["article"], question, list(choices), label, path
                ),
                labelled,
            )
        )
    return examples


def _letter_label(answer, source: str, guid: str) -> int:
    letter = str(answer).strip().upper()
    if len(letter) != 1 or not "A" <= letter <= "Z":
        raise _error(source, guid, f"answer {answer!r} is not a letter A, B, C...")
    return ord(letter) - ord("A")


def read_race(directory: str, labelled: bool = True, encoding: str = "utf-8") -> list:
    return [
        example
        for path in race_files(directory)
        for example in read_race_file(path, labelled, encoding)
    ]


# --------------------------------------------------------------------------------- C3


def read_c3(path: str, labelled: bool = True, encoding: str = "utf-8") -> list:
    """C3: per document its sentences (the context, one per line) and its questions, whose
    answer is the text of the right choice."""
    try:
        documents = json.loads(read_text(path, encoding))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(documents, list):
        raise DataFormatError(f"{path}: a C3 file is a JSON list of [sentences, questions, id]")
    examples = []
    for number, document in enumerate(documents):
        if not (isinstance(document, list) and len(document) >= 2):
            raise _error(path, str(number), "is not [sentences, questions, id]")
        sentences, questions = document[0], document[1]
        doc_id = str(document[2]) if len(document) > 2 else str(number)
        context = "\n".join(sentences) if isinstance(sentences, list) else str(sentences)
        for index, item in enumerate(questions):
            guid = f"{doc_id}-{index}"
            choices = list(item.get("choice") or [])
            label = None
            answer = item.get("answer")
            if answer is not None and choices:
                if answer not in choices:
                    raise _error(path, guid, f"answer {answer!r} is not one of its choices")
                label = choices.index(answer)
            examples.append(
                checked_example(
                    MultipleChoiceExample(
                        guid, context, item.get("question", ""), choices, label, path
                    ),
                    labelled,
                )
            )
    return examples


# ------------------------------------------------------------------------------- ChID


def chid_answer_path(path: str) -> str:
    """`train.json` -> `train_answer.json`: where CLUE's ChID keeps a split's answers."""
    root, extension = os.path.splitext(path)
    return f"{root}_answer{extension or '.json'}"


def read_chid(
    path: str,
    labelled: bool = True,
    encoding: str = "utf-8",
    answer_path: str | None = None,
    window_chars: int = DEFAULT_CHID_WINDOW_CHARS,
) -> list:
    """ChID: one example per `#idiom...#` blank of every passage, the line's candidates as
    choices, the label from the answer file (`chid_answer_path` unless given; optional
    when not `labelled`)."""
    answer_path = answer_path or chid_answer_path(path)
    answers = None
    if tf.io.gfile.exists(answer_path):
        try:
            answers = json.loads(read_text(answer_path, encoding))
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{answer_path}: not valid JSON ({err})") from err
    elif labelled:
        raise DataFormatError(f"{path}: ChID answers {answer_path} do not exist")
    examples = []
    for line_number, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{source}: not valid JSON ({err})") from err
        candidates = list(record.get("candidates") or [])
        content = record.get("content", [])
        passages = [content] if isinstance(content, str) else list(content)
        for passage in passages:
            for blank in CHID_BLANK.finditer(passage):
                tag = blank.group()
                label = None
                if answers is not None:
                    if tag not in answers:
                        if labelled:
                            raise _error(source, tag, f"has no answer in {answer_path}")
                    else:
                        label = _int_label(answers[tag], answer_path, tag)
                context = _chid_context(passage, blank, window_chars)
                examples.append(
                    checked_example(
                        MultipleChoiceExample(tag, context, "", candidates, label, source),
                        labelled,
                    )
                )
    return examples


def _chid_context(passage: str, blank: re.Match, window_chars: int) -> str:
    """The passage around one blank, that blank as `_` and the others as `…`."""
    before = CHID_BLANK.sub(CHID_OTHER_MARK, passage[: blank.start()])
    after = CHID_BLANK.sub(CHID_OTHER_MARK, passage[blank.end() :])
    return before[-window_chars:] + CHID_TARGET_MARK + after[:window_chars]


# ------------------------------------------------------------------------- JSON lines


def read_json_lines(path: str, labelled: bool = True, encoding: str = "utf-8") -> list:
    """`{"id"?, "context", "question"?, "choices", "label"?}` per line; the label is the
    right choice's index or its text."""
    examples = []
    for line_number, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{source}: not valid JSON ({err})") from err
        if not isinstance(record, dict):
            raise DataFormatError(f"{source}: expected a JSON object")
        guid = str(record.get("id", line_number))
        choices = record.get("choices")
        if not isinstance(choices, list):
            raise _error(source, guid, "'choices' must be a list of the options' texts")
        examples.append(
            checked_example(
                MultipleChoiceExample(
                    guid,
                    str(record.get("context", "")),
                    str(record.get("question") or ""),
                    choices,
                    _json_label(record.get("label"), choices, source, guid),
                    source,
                ),
                labelled,
            )
        )
    return examples


def _json_label(label, choices: list, source: str, guid: str) -> int | None:
    if label is None:
        return None
    if isinstance(label, bool):
        raise _error(source, guid, f"label {label!r} is neither an index nor a choice's text")
    if isinstance(label, int):
        return label
    if isinstance(label, str):
        if label in choices:
            return choices.index(label)
        raise _error(source, guid, f"label {label!r} is not one of its choices")
    raise _error(source, guid, f"label {label!r} is neither an index nor a choice's text")


# -------------------------------------------------------------------------- by task


def split_paths(data_dir: str, patterns: str, flag_name: str) -> list[str]:
    """The files (or RACE directories) a split's comma-separated glob patterns name in
    `data_dir`; a pattern matching nothing is an error naming the flag."""
    paths = []
    for pattern in (part.strip() for part in patterns.split(",")):
        if pattern:
            matches = sorted(tf.io.gfile.glob(os.path.join(data_dir, pattern)))
            if not matches:
                raise FileNotFoundError(
                    f"--{flag_name}: nothing matches {os.path.join(data_dir, pattern)}"
                )
            paths.extend(matches)
    return paths


def read_task_files(
    task: str,
    paths: Sequence[str],
    labelled: bool,
    encoding: str = "utf-8",
    chid_window_chars: int = DEFAULT_CHID_WINDOW_CHARS,
) -> list[MultipleChoiceExample]:
    """The examples of one split of `task`, file after file."""
    examples = []
    for path in paths:
        if task == SWAG:
            examples += read_swag(path, labelled, encoding)
        elif task == RACE:
            examples += read_race(path, labelled, encoding)
        elif task == C3:
            examples += read_c3(path, labelled, encoding)
        elif task == CHID:
            examples += read_chid(path, labelled, encoding, window_chars=chid_window_chars)
        elif task == JSON_LINES:
            examples += read_json_lines(path, labelled, encoding)
        else:
            raise ValueError(f"Unknown multiple-choice task {task!r}; one of {TASKS}")
    return examples


def num_choices_of(examples: Iterable[MultipleChoiceExample], num_choices: int | None) -> int:
    """`num_choices` when given (checked against every example), else the most choices of
    any example."""
    examples = list(examples)
    most = max((len(example.choices) for example in examples), default=0)
    if num_choices is None:
        if most == 0:
            raise ValueError("No examples to take the number of choices from: set --num_choices")
        return most
    for example in examples:
        if len(example.choices) > num_choices:
            raise _error(
                example.source,
                example.guid,
                f"has {len(example.choices)} choices, more than --num_choices={num_choices}",
            )
    return num_choices


# --------------------------------------------------------------------------- features


@dataclasses.dataclass
class MultipleChoiceFeatures:
    """The model inputs of one example.

    Attributes:
      input_ids, input_mask, segment_ids: `[num_choices][max_seq_length]`, one sequence
        per choice (all zeros for a dummy choice).
      choice_mask: `[num_choices]`, 1 for a real choice, 0 for a dummy.
      label_id: the right choice's index (0 when unlabelled).
      is_real_example: False for the padding that fills the last batch.
    """

    input_ids: list[list[int]]
    input_mask: list[list[int]]
    segment_ids: list[list[int]]
    choice_mask: list[int]
    label_id: int
    is_real_example: bool = True


def segment_b_text(question: str, option: str) -> str:
    """The question with the option in its blank (`_`, or a run of them), else the
    question followed by the option."""
    if "_" in question:
        return re.sub(r"_+", lambda _: option, question)
    return f"{question} {option}" if question else option


def convert_example(
    example: MultipleChoiceExample,
    num_choices: int,
    max_seq_length: int,
    max_qa_length: int,
    tokenizer: tokenization.Tokenizer,
) -> MultipleChoiceFeatures:
    """`[CLS] context [SEP] question option [SEP]` per choice, padded with dummy choices
    to `num_choices`."""
    if len(example.choices) > num_choices:
        raise _error(example.source, example.guid, f"has more than {num_choices} choices")
    context = tokenizer.tokenize(example.context)
    rows = [
        encoder_inputs.pair_inputs(
            context,
            tokenizer.tokenize(segment_b_text(example.question, choice)),
            max_seq_length,
            tokenizer,
            max_b_length=max_qa_length,
        )
        for choice in example.choices
    ]
    dummies = num_choices - len(rows)
    zeros = [0] * max_seq_length
    return MultipleChoiceFeatures(
        input_ids=[row.input_ids for row in rows] + [zeros] * dummies,
        input_mask=[row.input_mask for row in rows] + [zeros] * dummies,
        segment_ids=[row.segment_ids for row in rows] + [zeros] * dummies,
        choice_mask=[1] * len(rows) + [0] * dummies,
        label_id=example.label or 0,
    )


def check_lengths(max_seq_length: int, max_qa_length: int) -> None:
    encoder_inputs.check_max_seq_length(max_seq_length)
    if not 1 <= max_qa_length <= max_seq_length - 3:
        raise ValueError(
            f"--max_qa_length={max_qa_length} must be between 1 and --max_seq_length - 3 "
            f"({max_seq_length - 3})"
        )


def convert_examples(
    examples: Sequence[MultipleChoiceExample],
    num_choices: int,
    max_seq_length: int,
    max_qa_length: int,
    tokenizer: tokenization.Tokenizer,
) -> list[MultipleChoiceFeatures]:
    check_lengths(max_seq_length, max_qa_length)
    return [
        convert_example(example, num_choices, max_seq_length, max_qa_length, tokenizer)
        for example in examples
    ]


def padding_features(num_choices: int, max_seq_length: int) -> MultipleChoiceFeatures:
    """An all-dummy example with `is_real_example=False` (fills the last batch)."""
    zeros = [[0] * max_seq_length for _ in range(num_choices)]
    return MultipleChoiceFeatures(zeros, zeros, zeros, [0] * num_choices, 0, is_real_example=False)


def features_to_tf_example(features: MultipleChoiceFeatures) -> tf.train.Example:
    values = {
        name: tfrecord_io.create_int_feature(
            value for row in getattr(features, name) for value in row
        )
        for name in FEATURE_NAMES
    }
    values["choice_mask"] = tfrecord_io.create_int_feature(features.choice_mask)
    values["label_ids"] = tfrecord_io.create_int_feature([features.label_id])
    values["is_real_example"] = tfrecord_io.create_int_feature([int(features.is_real_example)])
    return tf.train.Example(features=tf.train.Features(feature=values))


def write_features(features: Iterable[MultipleChoiceFeatures], output_files: Sequence[str]) -> int:
    """Writes the examples' features as TFRecords, each file appearing only once complete."""
    return tfrecord_io.write_tf_examples(
        (features_to_tf_example(example) for example in features), output_files
    )


def input_shapes(num_choices: int, max_seq_length: int) -> dict[str, list[int]]:
    """The shape of one example's value of each of `SERVING_INPUT_NAMES`."""
    shapes = {name: [num_choices, max_seq_length] for name in FEATURE_NAMES}
    shapes["choice_mask"] = [num_choices]
    return shapes


def feature_spec(num_choices: int, max_seq_length: int) -> dict[str, tf.io.FixedLenFeature]:
    """How to parse `write_features`' records: `[num_choices, max_seq_length]` sequences,
    `[num_choices]` choice_mask, scalar label_ids and is_real_example."""
    spec = {
        name: tf.io.FixedLenFeature(shape, tf.int64)
        for name, shape in input_shapes(num_choices, max_seq_length).items()
    }
    spec["label_ids"] = tf.io.FixedLenFeature([], tf.int64)
    spec["is_real_example"] = tf.io.FixedLenFeature([], tf.int64)
    return spec


# ---------------------------------------------------------------------------- outputs


def prediction_record(example: MultipleChoiceExample, probabilities: Sequence[float]) -> dict:
    """One line of test_predictions.jsonl: the example's id, the index and text of the
    predicted choice, and the probability of each of its choices (the dummies left out)."""
    real = [float(p) for p in probabilities[: len(example.choices)]]
    best = max(range(len(real)), key=real.__getitem__)
    return {
        "id": example.guid,
        "prediction": best,
        "choice": example.choices[best],
        "probabilities": real,
    }
