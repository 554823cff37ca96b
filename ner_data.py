"""The data side of token classification (NER): reading tagged sentences, building features.

Three stages, as for the classifier:

1. Readers turn a file into `NerSentence`s (words, tags, document, where each word was read):
   `read_conll` for CoNLL-2003 style files (the word in the first column, the tag in the last,
   space or tab separated, a blank line between sentences, `-DOCSTART-` lines between
   documents), which also reads Chinese one-character-per-line files (`字 B-PER`), and
   `read_json_lines` for `{"tokens": [...], "tags": [...], "document": ...}` lines.
   Tags are checked against the scheme (`ner_tags`) as they are read; a sequence that breaks
   a strict scheme (an I-X after O under BIO) is repaired to the valid sequence with the same
   chunks (conlleval's reading) with a warning naming file and line, or with
   `invalid_sequence="error"` rejected.
2. `convert_sentences_to_features` tokenizes each word on its own, labels its first WordPiece
   and cuts sentences longer than `max_seq_length` into overlapping windows (`doc_stride`
   pieces apart, as run_squad.py does); optionally it fills each window with the neighbouring
   sentences of the document.
3. `write_features` stores them as TFRecords with the names of `feature_spec`;
   `word_predictions` maps the model's per-position predictions back to one tag per word.

Bad data fails while it is read, with `classifier_data.DataFormatError` naming file and line.

The masks of a window, all `[max_seq_length]`:
- `label_mask`: 1 at the first piece of every word of the window's own sentence that the window
  holds (context sentences, other pieces, [CLS], [SEP] and padding: 0). The loss and the CRF's
  chain use exactly these positions.
- `prediction_mask`: 1 at the first pieces of the words this window *owns*: of the windows that
  hold a word's first piece, the one giving it the most context on its shorter side
  (squad_lib's max-context rule). Every word of every sentence is owned by exactly one window,
  so reporting the `prediction_mask` positions predicts each word once.
- `label_ids`: the tag ids at `label_mask` positions, 0 elsewhere. They are the window's own
  words' tags re-encoded as a valid sequence on their own (`ner_tags.repair`): a window that
  starts inside an entity gets B-X for its first word rather than I-X, so that a CRF with tag
  constraints never meets an impossible gold path.
"""

from __future__ import annotations

import bert_logging

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence

import tensorflow.compat.v1 as tf

import input_files
import ner_tags
import squad_lib
import tfrecord_io
import tokenization
from classifier_data import DataFormatError

DOCSTART = "-DOCSTART-"
REPAIR = "repair"
ERROR = "error"
# Given to a word that tokenizes to nothing (a control character, a lone space), so that no
# word is dropped.
UNKNOWN_TOKEN = "[UNK]"
# The first windows are logged in full, so that a user can eyeball the featurization.
_NUM_WINDOWS_TO_LOG = 5
# At most this many repaired sentences are logged one by one; the rest are counted.
_MAX_REPAIR_WARNINGS = 10
# Only ASCII space and tab separate columns: a Chinese file may hold U+3000 as a character.
_COLUMN_SEPARATOR = re.compile(r"[ \t]+")

FEATURE_NAMES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "label_ids",
    "label_mask",
    "prediction_mask",
)


@dataclasses.dataclass
class NerSentence:
    """One sentence of words with their tags.

    Attributes:
      words: the words (tokens of the file), never empty.
      tags: one tag per word, or None for unlabelled data.
      document: the index of its document in the file (0, 1, ...).
      path: the file it was read from.
      lines: the 1-based line of each word (JSON lines: the sentence's line for all).
    """

    words: list[str]
    tags: list[str] | None
    document: int
    path: str
    lines: list[int]

    def location(self, word_index: int = 0) -> str:
        return f"{self.path}:{self.lines[word_index]}"


# ---------------------------------------------------------------------------------------------
# Reading


def _read_lines(path: str, encoding: str = "utf-8") -> list[str]:
    """The lines of a data file (gs:// works too); undecodable bytes stop with file:line."""
    text = input_files.read_text(path, encoding, what="Data file", error_type=DataFormatError)
    # Split on newlines alone: str.splitlines() would also break at U+2028, U+0085 and other
    # characters that may be words of the data.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


class _TagChecker:
    """Checks the tags of the sentences of one file and repairs (or rejects) invalid ones."""

    def __init__(self, path: str, scheme: str, invalid_sequence: str) -> None:
        if invalid_sequence not in (REPAIR, ERROR):
            raise ValueError(f"invalid_sequence={invalid_sequence!r}: expected 'repair' or 'error'")
        self.path = path
        self.scheme = ner_tags.canonical_scheme(scheme)
        self.invalid_sequence = invalid_sequence
        self.num_repaired = 0

    def check_tag(self, tag: str, line: int) -> None:
        try:
            ner_tags.parse_tag(tag, self.scheme)
        except ner_tags.TagError as error:
            raise DataFormatError(f"{self.path}:{line}: {error}") from None

    def valid_tags(self, sentence: NerSentence) -> list[str] | None:
        if sentence.tags is None:
            return None
        repaired = ner_tags.repair(sentence.tags, self.scheme)
        changed = [
            i for i, (a, b) in enumerate(zip(sentence.tags, repaired, strict=True)) if a != b
        ]
        if not changed:
            return sentence.tags
        first = changed[0]
        around = slice(max(first - 1, 0), first + 2)
        problem = (
            f"{sentence.location(first)}: {' '.join(sentence.tags[around])!r} breaks the "
            f"{self.scheme} scheme at {sentence.tags[first]!r}"
        )
        if self.invalid_sequence == ERROR:
            raise DataFormatError(problem + self._hint())
        self.num_repaired += 1
        if self.num_repaired <= _MAX_REPAIR_WARNINGS:
            tf.logging.warning(
                "%s; read as %r (the same entities; %d tag(s) of the sentence changed)",
                problem,
                " ".join(repaired[around]),
                len(changed),
            )
        return repaired

    def finish(self, sentences: list[NerSentence]) -> list[NerSentence]:
        if not sentences:
            raise DataFormatError(f"{self.path}: holds no sentences")
        if self.num_repaired:
            tf.logging.warning(
                "%s: %d sentence(s) broke the %s scheme and were repaired%s",
                self.path,
                self.num_repaired,
                self.scheme,
                self._hint(),
            )
        return sentences

    def _hint(self) -> str:
        if self.scheme != ner_tags.BIO:
            return ""
        # The original CoNLL-2003 files start entities with I-, which only IOB1 allows.
        return " (if the file is IOB1, as the original CoNLL-2003 files are, read it as IOB1)"


def read_conll_lines(
    lines: Iterable[str],
    path: str,
    scheme: str,
    labelled: bool = True,
    invalid_sequence: str = REPAIR,
) -> list[NerSentence]:
    """Reads CoNLL-style lines (see `read_conll`); `path` names them in messages."""
    checker = _TagChecker(path, scheme, invalid_sequence)
    sentences: list[NerSentence] = []
    words: list[str] = []
    tags: list[str] = []
    word_lines: list[int] = []
    document = 0
    seen_document_start = False

    def end_sentence() -> None:
        if words:
            sentence = NerSentence(
                list(words), list(tags) if labelled else None, document, path, list(word_lines)
            )
            sentence.tags = checker.valid_tags(sentence)
            sentences.append(sentence)
        words.clear()
        tags.clear()
        word_lines.clear()

    for line_number, line in enumerate(lines, start=1):
        stripped = line.strip(" \t\r\n")
        if not stripped:
            end_sentence()
            continue
        fields = _COLUMN_SEPARATOR.split(stripped)
        if fields[0] == DOCSTART:
            end_sentence()
            # The first -DOCSTART- opens document 0; each later one opens the next document.
            if seen_document_start or sentences:
                document += 1
            seen_document_start = True
            continue
        if labelled:
            if len(fields) < 2:
                raise DataFormatError(
                    f"{path}:{line_number}: the word {fields[0]!r} has no tag; expected the "
                    "word, then the tag last, separated by spaces or a tab"
                )
            checker.check_tag(fields[-1], line_number)
            tags.append(fields[-1])
        words.append(fields[0])
        word_lines.append(line_number)
    end_sentence()
    return checker.finish(sentences)


def read_conll(
    path: str,
    scheme: str,
    encoding: str = "utf-8",
    labelled: bool = True,
    invalid_sequence: str = REPAIR,
) -> list[NerSentence]:
    """Reads a CoNLL-2003 style file: one word per line, its tag in the last column.

    Columns are separated by spaces or tabs; a blank line ends a sentence and a `-DOCSTART-`
    line ends a document (a file without one is a single document). With `labelled=False` the
    first column is read alone (prediction input). Chinese data with one character per line
    (`字 B-PER`) reads the same way.

    Raises:
      DataFormatError: naming file and line, for a word without a tag, a tag that is not one of
        `scheme`'s, an invalid sequence when `invalid_sequence="error"`, bytes that are not
        `encoding`, or a file without sentences.
    """
    return read_conll_lines(_read_lines(path, encoding), path, scheme, labelled, invalid_sequence)


def _json_strings(value, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataFormatError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return value


def read_json_lines_from(
    lines: Iterable[str],
    path: str,
    scheme: str,
    labelled: bool = True,
    invalid_sequence: str = REPAIR,
) -> list[NerSentence]:
    """Reads JSON lines (see `read_json_lines`); `path` names them in messages."""
    checker = _TagChecker(path, scheme, invalid_sequence)
    sentences: list[NerSentence] = []
    document = -1
    previous_key: object = None
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or "tokens" not in record:
            raise DataFormatError(f'{where}: expected an object with "tokens" (and "tags")')
        words = _json_strings(record["tokens"], "tokens", where)
        if not words:
            raise DataFormatError(f"{where}: the sentence has no tokens")
        tags = None
        if labelled:
            if "tags" not in record:
                raise DataFormatError(f'{where}: the sentence has no "tags"')
            tags = _json_strings(record["tags"], "tags", where)
            if len(tags) != len(words):
                raise DataFormatError(f"{where}: {len(words)} tokens but {len(tags)} tags")
            for tag in tags:
                checker.check_tag(tag, line_number)
        # Consecutive lines with the same "document" form one; a line without one stands alone.
        key = record.get("document")
        if key is None or key != previous_key:
            document += 1
        previous_key = key
        sentence = NerSentence(words, tags, document, path, [line_number] * len(words))
        sentence.tags = checker.valid_tags(sentence)
        sentences.append(sentence)
    return checker.finish(sentences)


def read_json_lines(
    path: str,
    scheme: str,
    encoding: str = "utf-8",
    labelled: bool = True,
    invalid_sequence: str = REPAIR,
) -> list[NerSentence]:
    """Reads one sentence per line: `{"tokens": [...], "tags": [...], "document": ...}`.

    `tags` may be left out with `labelled=False`. Consecutive lines with equal `document`
    values form a document (for `use_document_context`); a line without one is a document of
    its own. Errors as `read_conll`.
    """
    return read_json_lines_from(
        _read_lines(path, encoding), path, scheme, labelled, invalid_sequence
    )


def read_sentences(
    path: str,
    scheme: str,
    encoding: str = "utf-8",
    labelled: bool = True,
    invalid_sequence: str = REPAIR,
) -> list[NerSentence]:
    """`read_json_lines` for a `.jsonl` / `.json` file, `read_conll` for any other."""
    reader = read_json_lines if path.lower().endswith((".jsonl", ".json")) else read_conll
    return reader(path, scheme, encoding, labelled, invalid_sequence)


# ---------------------------------------------------------------------------------------------
# Labels


def label_list_from(sentences: Sequence[NerSentence], scheme: str) -> list[str]:
    """`O` then every tag of `scheme` for each entity type in the sentences, sorted.

    Every prefix of a seen type is listed, even one the data lacks (an S-X that never
    occurs), so that re-encoded windows and any decoded path can be written.
    """
    types = {
        ner_tags.parse_tag(tag, scheme)[1] for sentence in sentences for tag in sentence.tags or []
    }
    return ner_tags.labels_for_types(sorted(types - {""}), scheme)


def check_labels(sentences: Sequence[NerSentence], label_list: Sequence[str]) -> None:
    """Raises DataFormatError (file:line) at the first tag outside `label_list`."""
    known = set(label_list)
    for sentence in sentences:
        for index, tag in enumerate(sentence.tags or []):
            if tag not in known:
                raise DataFormatError(
                    f"{sentence.location(index)}: tag {tag!r} is not in the label list "
                    f"{list(label_list)}"
                )


# ---------------------------------------------------------------------------------------------
# Features


@dataclasses.dataclass
class NerFeatures:
    """The model inputs of one window (see the module docstring for the masks).

    Attributes:
      input_ids, input_mask, segment_ids (all 0), label_ids, label_mask, prediction_mask:
        `[max_seq_length]` ints.
      is_real_example: False for padding windows.
      sentence_index: the index of the window's sentence in the converted list (-1: padding).
      word_indices: `[max_seq_length]`, the index in that sentence of the word each position
        is a piece of, -1 for [CLS], [SEP], context sentences and padding.
      tokens: the window's pieces, [CLS] and [SEP] included (for logging).
    """

    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    label_ids: list[int]
    label_mask: list[int]
    prediction_mask: list[int]
    is_real_example: bool = True
    sentence_index: int = -1
    word_indices: list[int] = dataclasses.field(default_factory=list)
    tokens: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _TokenizedSentence:
    pieces: list[str]
    piece_words: list[int]  # the word of each piece
    first_pieces: list[int]  # the first piece of each word


def _tokenize_sentence(
    words: Sequence[str], tokenizer: tokenization.Tokenizer
) -> _TokenizedSentence:
    pieces: list[str] = []
    piece_words: list[int] = []
    first_pieces: list[int] = []
    for word_index, word in enumerate(words):
        word_pieces = tokenizer.tokenize(word) or [UNKNOWN_TOKEN]
        first_pieces.append(len(pieces))
        pieces.extend(word_pieces)
        piece_words.extend([word_index] * len(word_pieces))
    return _TokenizedSentence(pieces, piece_words, first_pieces)


def padding_features(max_seq_length: int) -> NerFeatures:
    """An all-zero window with `is_real_example=False` (fills the last batch)."""
    lists = {name: [0] * max_seq_length for name in FEATURE_NAMES}
    return NerFeatures(
        **lists, is_real_example=False, sentence_index=-1, word_indices=[-1] * max_seq_length
    )


def pad_features_to_batch_multiple(
    features: Sequence[NerFeatures], batch_size: int, max_seq_length: int
) -> list[NerFeatures]:
    """`features` followed by padding windows up to a multiple of `batch_size`."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num_padding = -len(features) % batch_size
    return list(features) + [padding_features(max_seq_length) for _ in range(num_padding)]


class _DocumentContext:
    """The pieces of the sentences around a sentence, within its document."""

    def __init__(self, sentences: Sequence[NerSentence], tokenized: list[_TokenizedSentence]):
        self.tokenized = tokenized
        documents: dict[tuple[str, int], list[int]] = {}
        for index, sentence in enumerate(sentences):
            documents.setdefault((sentence.path, sentence.document), []).append(index)
        # The sentences of each sentence's document, in order, and its place among them.
        self.members: list[list[int]] = [[] for _ in sentences]
        self.position = [0] * len(sentences)
        for members in documents.values():
            for position, index in enumerate(members):
                self.members[index] = members
                self.position[index] = position

    def before(self, index: int, count: int) -> list[str]:
        """The last `count` (or fewer) pieces of the sentences before sentence `index`."""
        pieces: list[str] = []
        members, position = self.members[index], self.position[index]
        for other in reversed(members[:position]):
            if len(pieces) >= count:
                break
            pieces = self.tokenized[other].pieces + pieces
        return pieces[max(len(pieces) - count, 0) :] if count else []

    def after(self, index: int, count: int) -> list[str]:
        """The first `count` (or fewer) pieces of the sentences after sentence `index`."""
        pieces: list[str] = []
        members, position = self.members[index], self.position[index]
        for other in members[position + 1 :]:
            if len(pieces) >= count:
                break
            pieces += self.tokenized[other].pieces
        return pieces[:count]


def _context_sizes(budget: int, left_available: int, right_available: int) -> tuple[int, int]:
    """Splits `budget` pieces of context evenly, one side taking what the other cannot use."""
    left = min(left_available, budget // 2)
    right = min(right_available, budget - left)
    left = min(left_available, budget - right)
    return left, right


def _pad(values: list[int], length: int, value: int = 0) -> list[int]:
    return values + [value] * (length - len(values))


def _window_features(
    sentence: NerSentence,
    sentence_index: int,
    tokenized: _TokenizedSentence,
    span: squad_lib.DocSpan,
    owned_words: set[int],
    context: tuple[list[str], list[str]],
    label_map: dict[str, int],
    scheme: str,
    tokenizer: tokenization.Tokenizer,
    max_seq_length: int,
) -> NerFeatures:
    left, right = context
    span_positions = range(span.start, span.start + span.length)
    labelled_words = [
        word for word, first in enumerate(tokenized.first_pieces) if first in span_positions
    ]
    window_tags: dict[int, str] = {}
    if sentence.tags is not None:
        tags = ner_tags.repair([sentence.tags[w] for w in labelled_words], scheme)
        window_tags = dict(zip(labelled_words, tags, strict=True))

    tokens = ["[CLS]", *left]
    word_indices = [-1] * len(tokens)
    label_ids = [0] * len(tokens)
    label_mask = [0] * len(tokens)
    prediction_mask = [0] * len(tokens)
    for position in span_positions:
        word = tokenized.piece_words[position]
        is_first = tokenized.first_pieces[word] == position
        tokens.append(tokenized.pieces[position])
        word_indices.append(word)
        label_mask.append(int(is_first))
        prediction_mask.append(int(is_first and word in owned_words))
        label_ids.append(label_map[window_tags[word]] if is_first and window_tags else 0)
    tokens += [*right, "[SEP]"]
    tail = len(right) + 1
    word_indices += [-1] * tail
    for values in (label_ids, label_mask, prediction_mask):
        values += [0] * tail

    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    return NerFeatures(
        input_ids=_pad(list(input_ids), max_seq_length),
        input_mask=_pad([1] * len(tokens), max_seq_length),
        segment_ids=[0] * max_seq_length,
        label_ids=_pad(label_ids, max_seq_length),
        label_mask=_pad(label_mask, max_seq_length),
        prediction_mask=_pad(prediction_mask, max_seq_length),
        is_real_example=True,
        sentence_index=sentence_index,
        word_indices=_pad(word_indices, max_seq_length, -1),
        tokens=tokens,
    )


def convert_sentences_to_features(
    sentences: Sequence[NerSentence],
    label_list: Sequence[str],
    scheme: str,
    tokenizer: tokenization.Tokenizer,
    max_seq_length: int,
    doc_stride: int,
    use_document_context: bool = False,
    log: bool = True,
) -> list[NerFeatures]:
    """Turns sentences into windows of `max_seq_length` positions: `[CLS] pieces [SEP]`.

    Each word is tokenized on its own (a word without pieces becomes [UNK]). A sentence of more
    than `max_seq_length - 2` pieces is cut into windows of that many pieces, each starting
    `doc_stride` pieces after the previous one (squad_lib.compute_doc_spans). With
    `use_document_context`, a window that holds the start (end) of its sentence is filled up
    with the pieces of the sentences before (after) it in the same document, half on each side
    when both have enough; those pieces carry no labels. Windows come in sentence order. With
    `log` the first windows are logged in full (a predictor's queries are not).

    Raises:
      ValueError: `max_seq_length` < 3, `doc_stride` < 1, or a bad `label_list`.
      DataFormatError: a tag outside `label_list` (file:line).
    """
    if max_seq_length < 3:
        raise ValueError(
            f"max_seq_length must be at least 3 ([CLS] word [SEP]), got {max_seq_length}"
        )
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be positive, got {doc_stride}")
    scheme = ner_tags.canonical_scheme(scheme)
    ner_tags.check_label_list(label_list, scheme)
    check_labels(sentences, label_list)
    label_map = {label: index for index, label in enumerate(label_list)}
    max_pieces = max_seq_length - 2
    tokenized = [_tokenize_sentence(sentence.words, tokenizer) for sentence in sentences]
    context = _DocumentContext(sentences, tokenized) if use_document_context else None

    features = []
    for index, (sentence, pieces) in enumerate(zip(sentences, tokenized, strict=True)):
        spans = squad_lib.compute_doc_spans(len(pieces.pieces), max_pieces, doc_stride)
        owners = [squad_lib.max_context_span(spans, first) for first in pieces.first_pieces]
        for span_index, span in enumerate(spans):
            owned = {word for word, owner in enumerate(owners) if owner == span_index}
            left: list[str] = []
            right: list[str] = []
            if context is not None:
                starts = span.start == 0
                ends = span.start + span.length == len(pieces.pieces)
                left_size, right_size = _context_sizes(
                    max_pieces - span.length,
                    len(context.before(index, max_pieces)) if starts else 0,
                    len(context.after(index, max_pieces)) if ends else 0,
                )
                left = context.before(index, left_size)
                right = context.after(index, right_size)
            window = _window_features(
                sentence,
                index,
                pieces,
                span,
                owned,
                (left, right),
                label_map,
                scheme,
                tokenizer,
                max_seq_length,
            )
            if log and len(features) < _NUM_WINDOWS_TO_LOG:
                _log_window(window, sentence)
            features.append(window)
    return features


def _log_window(window: NerFeatures, sentence: NerSentence) -> None:
    # The first window of the run is shown; the next ones need --verbosity=1.
    level = bert_logging.first_time_level("ner window")
    tf.logging.log(level, "*** Window ***")
    tf.logging.log(level, "sentence: %s (%s)", window.sentence_index, sentence.location())
    tf.logging.log(level, "tokens: %s", " ".join(window.tokens))
    for name in FEATURE_NAMES:
        tf.logging.log(level, "%s: %s", name, " ".join(map(str, getattr(window, name))))


# ---------------------------------------------------------------------------------------------
# TFRecords


def features_to_tf_example(features: NerFeatures) -> tf.train.Example:
    """A `tf.train.Example` of the `FEATURE_NAMES` lists and `is_real_example` (one int)."""
    feature_map = {
        name: tfrecord_io.create_int_feature(getattr(features, name)) for name in FEATURE_NAMES
    }
    feature_map["is_real_example"] = tfrecord_io.create_int_feature([int(features.is_real_example)])
    return tf.train.Example(features=tf.train.Features(feature=feature_map))


def write_features(features: Iterable[NerFeatures], output_files: Sequence[str]) -> int:
    """Writes the windows, in turn over `output_files`, each file appearing only once
    complete. Returns the number of records written."""
    return tfrecord_io.write_tf_examples(
        (features_to_tf_example(window) for window in features), output_files, "windows"
    )


def feature_spec(max_seq_length: int) -> dict[str, tf.io.FixedLenFeature]:
    """How to parse `write_features`' records: each of `FEATURE_NAMES` `[max_seq_length]`
    int64 and `is_real_example` `[]` int64."""
    spec = {name: tfrecord_io.int_feature_spec(max_seq_length) for name in FEATURE_NAMES}
    spec["is_real_example"] = tf.io.FixedLenFeature([], tf.int64)
    return spec


# ---------------------------------------------------------------------------------------------
# Predictions back to words


def word_predictions(
    features: Sequence[NerFeatures],
    predicted_ids: Iterable[Sequence[int]],
    sentences: Sequence[NerSentence],
    label_list: Sequence[str],
) -> list[list[str]]:
    """One predicted tag per word of every sentence, from per-window predictions.

    `predicted_ids` holds one `[max_seq_length]` id sequence per window of `features`, in the
    same order (padding windows included or not, as in `features`); each word's tag is read at
    the `prediction_mask` position of the window that owns it.

    Raises ValueError if a word is predicted twice or not at all (features not made from
    `sentences`).
    """
    result: list[list[str | None]] = [[None] * len(sentence.words) for sentence in sentences]
    for window, ids in zip(features, predicted_ids, strict=True):
        if not window.is_real_example:
            continue
        tags = result[window.sentence_index]
        for position, owned in enumerate(window.prediction_mask):
            if not owned:
                continue
            word = window.word_indices[position]
            if tags[word] is not None:
                raise ValueError(f"sentence {window.sentence_index}: word {word} predicted twice")
            tags[word] = label_list[int(ids[position])]
    for index, tags in enumerate(result):
        if None in tags:
            raise ValueError(f"sentence {index}: word {tags.index(None)} has no prediction")
    return result  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Serving and entities with their offsets

# The inputs of an exported tagger: the encoder's three and `label_mask`, the first piece of
# each word, which the CRF chains and the decoder tags.
SERVING_INPUT_NAMES = ("input_ids", "input_mask", "segment_ids", "label_mask")


def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """A readable text of a sentence's words and each word's `(start, end)` in it: words
    joined by a space, except between two CJK characters (Chinese data, one character per
    word, gives back its sentence)."""
    parts: list[str] = []
    offsets = []
    position = 0
    previous_cjk = False
    for word in words:
        is_cjk = len(word) == 1 and tokenization.is_chinese_character(word)
        if parts and not (is_cjk and previous_cjk):
            parts.append(" ")
            position += 1
        offsets.append((position, position + len(word)))
        parts.append(word)
        position += len(word)
        previous_cjk = is_cjk
    return "".join(parts), offsets


def entities_of(
    text: str, offsets: Sequence[tuple[int, int]], tags: Sequence[str], scheme: str
) -> list[dict]:
    """The entities of one sentence's tags, read by the conlleval rules.

    Args:
      text: the sentence as the user sees it; `offsets[i]` is word i's `(start, end)` in it.

    Returns:
      Per entity: `type`, `text` (its characters in `text`), `start_word` and `end_word`
      (word span, end exclusive) and `start` / `end` (character span, end exclusive).
    """
    entities = []
    for chunk in ner_tags.get_chunks(tags, scheme):
        start, end = offsets[chunk.start][0], offsets[chunk.end][1]
        entities.append(
            {
                "type": chunk.type,
                "text": text[start:end],
                "start_word": chunk.start,
                "end_word": chunk.end + 1,
                "start": start,
                "end": end,
            }
        )
    return entities
