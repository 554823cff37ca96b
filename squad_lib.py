"""SQuAD 1.1 / 2.0 data logic: reading the JSON, windowed features, and post-processing.

Everything here is plain Python on top of `tokenization`; `run_squad.py` adds the flags, the
model and the Estimator. The three stages are:

1. `read_squad_examples`: SQuAD JSON -> `SquadExample`s (whitespace-split contexts).
2. `iter_features` / `convert_examples_to_features`: examples -> `InputFeatures`, one per
   window (`DocSpan`) of the WordPiece-tokenized context, streamed one at a time.
3. `write_predictions`: features + model logits (`RawResult`) -> `predictions.json`,
   `nbest_predictions.json` and, for SQuAD 2.0, `null_odds.json`.

Memory during post-processing: the logits are consumed as a stream. For every feature only the
`n_best_size` best start and end (index, logit) pairs and the two null logits (position 0) are
kept (`TopLogits`), so the full `[num_features, seq_length]` logit arrays never need to be held
at once. The features themselves are grouped per example; post-processing only reads their
`unique_id`, `example_index`, `tokens`, `token_to_orig_map` and `token_is_max_context`, so a
caller may pass slimmer objects that carry just those attributes.
"""

from __future__ import annotations

import bert_logging

import collections
import dataclasses
import heapq
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import Any, NamedTuple

import tensorflow.compat.v1 as tf

import atomic_files
import input_files
import tokenization

FIRST_UNIQUE_ID = 1000000000

# Logged in full for the first few examples, as the original does, to let users eyeball the
# featurization of a new data set.
_NUM_EXAMPLES_TO_LOG = 20

# The original's stand-in answer when no span at all survives post-processing.
_NONCE_TEXT = "empty"


# ---------------------------------------------------------------------------------------------
# Reading SQuAD JSON
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SquadExample:
    """One question with its whitespace-split context.

    `start_position` / `end_position` index `doc_tokens` (inclusive); they are set for training
    only, and are -1 (with `orig_answer_text` "") for an unanswerable SQuAD 2.0 question.
    """

    qas_id: str
    question_text: str
    doc_tokens: list[str]
    orig_answer_text: str | None = None
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False

    def __repr__(self) -> str:
        parts = [
            f"qas_id: {self.qas_id}",
            f"question_text: {self.question_text}",
            f"doc_tokens: [{' '.join(self.doc_tokens)}]",
        ]
        if self.start_position is not None:
            parts.append(f"start_position: {self.start_position}")
            parts.append(f"end_position: {self.end_position}")
            parts.append(f"is_impossible: {self.is_impossible!r}")
        return ", ".join(parts)


class SquadFormatError(ValueError):
    """The input file is not SQuAD JSON; the message names the file and the offending item."""


def is_whitespace(char: str) -> bool:
    """Whether `char` separates context words (U+202F, narrow no-break space, included)."""
    return char in (" ", "\t", "\r", "\n") or ord(char) == 0x202F


def split_context(text: str) -> tuple[list[str], list[int]]:
    """Splits `text` on whitespace, keeping a map from characters to word indexes.

    Returns:
      (doc_tokens, char_to_word_offset): `char_to_word_offset[i]` is the index in `doc_tokens`
      of the word holding character i; a whitespace character maps to the word before it (-1
      before the first word).
    """
    doc_tokens: list[str] = []
    char_to_word_offset: list[int] = []
    prev_is_whitespace = True
    for char in text:
        if is_whitespace(char):
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                doc_tokens.append(char)
            else:
                doc_tokens[-1] += char
            prev_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


def read_squad_json(
    input_file: str, encoding: str = input_files.DEFAULT_ENCODING
) -> list[dict[str, Any]]:
    """Loads a SQuAD JSON file and returns its "data" list (the articles).

    Raises:
      SquadFormatError: the file is not text in `encoding`, not JSON, or has no "data" list
        of articles.
    """
    text = input_files.read_text(
        input_file, encoding, what="SQuAD file", error_type=SquadFormatError
    )
    try:
        input_json = json.loads(text)
    except json.JSONDecodeError as error:
        raise SquadFormatError(f"{input_file}: not valid JSON ({error})") from error
    if not isinstance(input_json, dict) or not isinstance(input_json.get("data"), list):
        raise SquadFormatError(
            f"{input_file}: not SQuAD JSON: expected an object with a \"data\" list of articles"
        )
    return input_json["data"]


def _require(condition: bool, input_file: str, where: str, problem: str) -> None:
    if not condition:
        raise SquadFormatError(f"{input_file}: {where}: {problem}")


def _paragraphs(input_file: str, data: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields (location, paragraph) after checking the article / paragraph structure."""
    for article_index, article in enumerate(data):
        where = f"data[{article_index}]"
        _require(isinstance(article, dict), input_file, where, "an article must be an object")
        paragraphs = article.get("paragraphs")
        _require(isinstance(paragraphs, list), input_file, where, "no \"paragraphs\" list")
        for paragraph_index, paragraph in enumerate(paragraphs):
            location = f"{where}.paragraphs[{paragraph_index}]"
            _require(
                isinstance(paragraph, dict), input_file, location, "a paragraph must be an object"
            )
            qas = paragraph.get("qas")
            _require(isinstance(qas, list), input_file, location, "no \"qas\" list")
            if not isinstance(paragraph.get("context"), str):
                question_ids = [qa.get("id") for qa in qas if isinstance(qa, dict)]
                raise SquadFormatError(
                    f"{input_file}: {location} (questions {question_ids}): "
                    "no \"context\" string"
                )
            yield location, paragraph


def _training_answer(
    input_file: str,
    qa: dict[str, Any],
    context: str,
    doc_tokens: list[str],
    char_to_word_offset: list[int],
) -> tuple[str, int, int] | None:
    """The answer text and its inclusive word span, or None (logged) if it cannot be used."""
    qas_id = qa["id"]
    answers = qa.get("answers")
    _require(
        isinstance(answers, list) and len(answers) == 1,
        input_file,
        f"question {qas_id!r}",
        "for training, each answerable question should have exactly 1 answer",
    )
    answer = answers[0]
    _require(
        isinstance(answer, dict)
        and isinstance(answer.get("text"), str)
        and isinstance(answer.get("answer_start"), int),
        input_file,
        f"question {qas_id!r}",
        "an answer needs a \"text\" string and an integer \"answer_start\"",
    )
    answer_text = answer["text"]
    answer_offset = answer["answer_start"]
    answer_end = answer_offset + len(answer_text) - 1
    if not answer_text or answer_offset < 0 or answer_end >= len(context):
        tf.logging.warning(
            "Skipping question %r in %s: answer %r at offset %d lies outside its context "
            "(%d characters)",
            qas_id, input_file, answer_text, answer_offset, len(context),
        )
        return None
    start_position = char_to_word_offset[answer_offset]
    end_position = char_to_word_offset[answer_end]
    # Only keep answers that can be recovered from the document; a mismatch almost always
    # comes from odd Unicode in the annotation, so the question is dropped, not fixed.
    actual_text = " ".join(doc_tokens[max(start_position, 0) : end_position + 1])
    cleaned_answer_text = " ".join(tokenization.whitespace_tokenize(answer_text))
    if start_position < 0 or actual_text.find(cleaned_answer_text) == -1:
        tf.logging.warning(
            "Skipping question %r in %s: could not find answer: '%s' vs. '%s'",
            qas_id, input_file, actual_text, cleaned_answer_text,
        )
        return None
    return answer_text, start_position, end_position


def iter_squad_examples(
    input_file: str,
    is_training: bool,
    version_2_with_negative: bool = False,
    encoding: str = input_files.DEFAULT_ENCODING,
) -> Iterator[SquadExample]:
    """Yields the `SquadExample`s of a SQuAD 1.1 / 2.0 JSON file, in file order.

    For training, questions whose answer cannot be located in the context are logged and
    skipped, so not every question is guaranteed to be kept.

    Raises:
      SquadFormatError: the file is not SQuAD JSON; the message names the file and the
        article / paragraph / question at fault.
    """
    data = read_squad_json(input_file, encoding)
    for location, paragraph in _paragraphs(input_file, data):
        context = paragraph["context"]
        doc_tokens, char_to_word_offset = split_context(context)
        for qa_index, qa in enumerate(paragraph["qas"]):
            where = f"{location}.qas[{qa_index}]"
            _require(isinstance(qa, dict), input_file, where, "a question must be an object")
            _require("id" in qa, input_file, where, "no \"id\"")
            qas_id = qa["id"]
            _require(
                isinstance(qa.get("question"), str),
                input_file,
                f"question {qas_id!r}",
                "no \"question\" string",
            )
            example = SquadExample(
                qas_id=qas_id, question_text=qa["question"], doc_tokens=doc_tokens
            )
            if is_training:
                if version_2_with_negative:
                    is_impossible = qa.get("is_impossible", False)
                    _require(
                        isinstance(is_impossible, bool),
                        input_file,
                        f"question {qas_id!r}",
                        "\"is_impossible\" must be true or false",
                    )
                    example.is_impossible = is_impossible
                elif qa.get("is_impossible") is True:
                    raise SquadFormatError(
                        f"{input_file}: question {qas_id!r} is marked \"is_impossible\": this "
                        "is SQuAD 2.0 training data; pass --version_2_with_negative to train "
                        "on it"
                    )
                if example.is_impossible:
                    example.orig_answer_text = ""
                    example.start_position = -1
                    example.end_position = -1
                else:
                    answer = _training_answer(
                        input_file, qa, context, doc_tokens, char_to_word_offset
                    )
                    if answer is None:
                        continue
                    (example.orig_answer_text, example.start_position,
                     example.end_position) = answer
            yield example


def read_squad_examples(
    input_file: str,
    is_training: bool,
    version_2_with_negative: bool = False,
    encoding: str = input_files.DEFAULT_ENCODING,
) -> list[SquadExample]:
    """Reads a SQuAD JSON file into a list of `SquadExample` (see `iter_squad_examples`)."""
    return list(
        iter_squad_examples(input_file, is_training, version_2_with_negative, encoding)
    )


# ---------------------------------------------------------------------------------------------
# Features: [CLS] query [SEP] context window [SEP]
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class InputFeatures:
    """One model input: a question with one window of its context.

    All sequences have length `max_seq_length`. `token_to_orig_map` and `token_is_max_context`
    are keyed by positions in `tokens` and cover the context tokens only. `start_position` /
    `end_position` index `tokens` (0, 0 when the answer is outside this window or the question
    is impossible) and are set for training only.
    """

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: list[str]
    token_to_orig_map: dict[int, int]
    token_is_max_context: dict[int, bool]
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool | None = None


class DocSpan(NamedTuple):
    """A window of the WordPiece-tokenized context: `length` tokens from `start`."""

    start: int
    length: int


def compute_doc_spans(
    num_doc_tokens: int, max_tokens_for_doc: int, doc_stride: int
) -> list[DocSpan]:
    """Cuts `num_doc_tokens` tokens into windows of at most `max_tokens_for_doc` tokens.

    Each window starts `doc_stride` tokens after the previous one (or right after it ends, if it
    is shorter than the stride); the last window reaches the end of the document.
    """
    doc_spans = []
    start_offset = 0
    while start_offset < num_doc_tokens:
        length = min(num_doc_tokens - start_offset, max_tokens_for_doc)
        doc_spans.append(DocSpan(start=start_offset, length=length))
        if start_offset + length == num_doc_tokens:
            break
        start_offset += min(length, doc_stride)
    return doc_spans


def max_context_span(doc_spans: Sequence[DocSpan], position: int) -> int | None:
    """The index of the window that gives token `position` its most balanced context.

    A token seen by several overlapping windows is scored in each as
    min(tokens to its left, tokens to its right) + 0.01 * window length; the first window with
    the highest score owns the token, so every token is predicted from exactly one window.
    None if no window holds the token.
    """
    best_score = None
    best_span_index = None
    for span_index, doc_span in enumerate(doc_spans):
        end = doc_span.start + doc_span.length - 1
        if not doc_span.start <= position <= end:
            continue
        num_left_context = position - doc_span.start
        num_right_context = end - position
        score = min(num_left_context, num_right_context) + 0.01 * doc_span.length
        if best_score is None or score > best_score:
            best_score = score
            best_span_index = span_index
    return best_span_index


def _check_is_max_context(doc_spans: Sequence[DocSpan], cur_span_index: int, position: int) -> bool:
    """Whether window `cur_span_index` owns token `position` (see `max_context_span`)."""
    return cur_span_index == max_context_span(doc_spans, position)


def _improve_answer_span(
    doc_tokens: Sequence[str],
    input_start: int,
    input_end: int,
    tokenizer: tokenization.Tokenizer,
    orig_answer_text: str,
) -> tuple[int, int]:
    """Narrows a word-level answer span to the sub-tokens that spell the annotated answer.

    Annotations are character spans, first widened to whole whitespace words: the answer "1895"
    in "(1895-1943)." becomes that whole word. After WordPiece splitting ("( 1895 - 1943 ) .")
    the exact answer can often be found; when it cannot (e.g. "Japan" inside the single token
    "japanese"), the input span is returned unchanged.
    """
    tok_answer_text = " ".join(tokenizer.tokenize(orig_answer_text))
    for new_start in range(input_start, input_end + 1):
        for new_end in range(input_end, new_start - 1, -1):
            if " ".join(doc_tokens[new_start : new_end + 1]) == tok_answer_text:
                return new_start, new_end
    return input_start, input_end


class TokenizedDocument(NamedTuple):
    """The WordPiece tokens of a context and the maps to and from its whitespace words."""

    tokens: list[str]
    tok_to_orig_index: list[int]
    orig_to_tok_index: list[int]


def tokenize_document(
    doc_tokens: Sequence[str], tokenizer: tokenization.Tokenizer
) -> TokenizedDocument:
    """WordPiece-tokenizes each whitespace word of a context, recording the alignment."""
    tokens: list[str] = []
    tok_to_orig_index: list[int] = []
    orig_to_tok_index: list[int] = []
    for orig_index, word in enumerate(doc_tokens):
        orig_to_tok_index.append(len(tokens))
        for sub_token in tokenizer.tokenize(word):
            tok_to_orig_index.append(orig_index)
            tokens.append(sub_token)
    return TokenizedDocument(tokens, tok_to_orig_index, orig_to_tok_index)


def _answer_token_span(
    example: SquadExample, document: TokenizedDocument, tokenizer: tokenization.Tokenizer
) -> tuple[int, int]:
    """The inclusive answer span in WordPiece tokens of a training example ((-1, -1) if none)."""
    if example.is_impossible:
        return -1, -1
    if example.start_position is None or example.end_position is None:
        raise ValueError(
            f"question {example.qas_id!r} has no answer position: read training data with "
            "is_training=True"
        )
    tok_start = document.orig_to_tok_index[example.start_position]
    if example.end_position < len(example.doc_tokens) - 1:
        tok_end = document.orig_to_tok_index[example.end_position + 1] - 1
    else:
        tok_end = len(document.tokens) - 1
    return _improve_answer_span(
        document.tokens, tok_start, tok_end, tokenizer, example.orig_answer_text or ""
    )


def _window_answer_positions(
    tok_start: int, tok_end: int, doc_span: DocSpan, doc_offset: int
) -> tuple[int, int]:
    """Answer positions inside one window's `tokens`, or (0, 0) (the [CLS]) if not all in it."""
    doc_end = doc_span.start + doc_span.length - 1
    if tok_start < doc_span.start or tok_end > doc_end:
        return 0, 0
    return tok_start - doc_span.start + doc_offset, tok_end - doc_span.start + doc_offset


def _pad(values: list[int], length: int) -> list[int]:
    return values + [0] * (length - len(values))


def _build_window(
    query_tokens: Sequence[str],
    document: TokenizedDocument,
    doc_spans: Sequence[DocSpan],
    doc_span_index: int,
    tokenizer: tokenization.Tokenizer,
    max_seq_length: int,
) -> tuple[list[str], dict[int, int], dict[int, bool], list[int], list[int], list[int]]:
    """Lays out `[CLS] query [SEP] window [SEP]` and its padded ids, mask and segments."""
    doc_span = doc_spans[doc_span_index]
    tokens = ["[CLS]", *query_tokens, "[SEP]"]
    segment_ids = [0] * len(tokens)
    token_to_orig_map = {}
    token_is_max_context = {}
    for split_token_index in range(doc_span.start, doc_span.start + doc_span.length):
        token_to_orig_map[len(tokens)] = document.tok_to_orig_index[split_token_index]
        token_is_max_context[len(tokens)] = _check_is_max_context(
            doc_spans, doc_span_index, split_token_index
        )
        tokens.append(document.tokens[split_token_index])
    tokens.append("[SEP]")
    segment_ids += [1] * (len(tokens) - len(segment_ids))
    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    input_mask = [1] * len(input_ids)
    return (
        tokens,
        token_to_orig_map,
        token_is_max_context,
        _pad(list(input_ids), max_seq_length),
        _pad(input_mask, max_seq_length),
        _pad(segment_ids, max_seq_length),
    )


def _log_feature(feature: InputFeatures, is_training: bool) -> None:
    # The first feature of the run is shown; the original's next 19 need --verbosity=1.
    level = bert_logging.first_time_level("squad feature")
    tf.logging.log(level, "*** Example ***")
    tf.logging.log(level, "unique_id: %s", feature.unique_id)
    tf.logging.log(level, "example_index: %s", feature.example_index)
    tf.logging.log(level, "doc_span_index: %s", feature.doc_span_index)
    tf.logging.log(level, "tokens: %s", " ".join(feature.tokens))
    tf.logging.log(level,
        "token_to_orig_map: %s",
        " ".join(f"{k}:{v}" for k, v in feature.token_to_orig_map.items()),
    )
    tf.logging.log(level,
        "token_is_max_context: %s",
        " ".join(f"{k}:{v}" for k, v in feature.token_is_max_context.items()),
    )
    tf.logging.log(level, "input_ids: %s", " ".join(str(x) for x in feature.input_ids))
    tf.logging.log(level, "input_mask: %s", " ".join(str(x) for x in feature.input_mask))
    tf.logging.log(level, "segment_ids: %s", " ".join(str(x) for x in feature.segment_ids))
    if is_training and feature.is_impossible:
        tf.logging.log(level, "impossible example")
    elif is_training:
        answer = " ".join(feature.tokens[feature.start_position : feature.end_position + 1])
        tf.logging.log(level, "start_position: %d", feature.start_position)
        tf.logging.log(level, "end_position: %d", feature.end_position)
        tf.logging.log(level, "answer: %s", answer)


def iter_features(
    examples: Iterable[SquadExample],
    tokenizer: tokenization.Tokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
) -> Iterator[InputFeatures]:
    """Yields one `InputFeatures` per context window of each example, in order.

    The question is cut to `max_query_length` WordPiece tokens; the context is cut into windows
    of up to `max_seq_length - len(query_tokens) - 3` tokens, `doc_stride` tokens apart.
    `unique_id`s count up from 1000000000. An example with an empty context yields nothing.

    Raises:
      ValueError: `max_seq_length` leaves no room for the context after a full-length query
        plus [CLS] and two [SEP], or `doc_stride` is not positive.
    """
    if max_seq_length <= max_query_length + 3:
        raise ValueError(
            f"max_seq_length ({max_seq_length}) must be greater than max_query_length "
            f"({max_query_length}) + 3"
        )
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be positive, got {doc_stride}")
    tokenization.require_tokens(tokenizer, tokenization.FEATURE_TOKENS, "SQuAD's inputs")
    unique_id = FIRST_UNIQUE_ID
    for example_index, example in enumerate(examples):
        query_tokens = tokenizer.tokenize(example.question_text)[:max_query_length]
        document = tokenize_document(example.doc_tokens, tokenizer)
        if is_training:
            tok_start, tok_end = _answer_token_span(example, document, tokenizer)
        max_tokens_for_doc = max_seq_length - len(query_tokens) - 3
        doc_spans = compute_doc_spans(len(document.tokens), max_tokens_for_doc, doc_stride)
        if not doc_spans:
            tf.logging.warning("Question %r has an empty context: no features", example.qas_id)
        for doc_span_index, doc_span in enumerate(doc_spans):
            (tokens, token_to_orig_map, token_is_max_context, input_ids, input_mask,
             segment_ids) = _build_window(
                query_tokens, document, doc_spans, doc_span_index, tokenizer, max_seq_length
            )
            start_position = end_position = None
            if is_training and example.is_impossible:
                start_position = end_position = 0
            elif is_training:
                start_position, end_position = _window_answer_positions(
                    tok_start, tok_end, doc_span, doc_offset=len(query_tokens) + 2
                )
            feature = InputFeatures(
                unique_id=unique_id,
                example_index=example_index,
                doc_span_index=doc_span_index,
                tokens=tokens,
                token_to_orig_map=token_to_orig_map,
                token_is_max_context=token_is_max_context,
                input_ids=input_ids,
                input_mask=input_mask,
                segment_ids=segment_ids,
                start_position=start_position,
                end_position=end_position,
                is_impossible=example.is_impossible,
            )
            if example_index < _NUM_EXAMPLES_TO_LOG:
                _log_feature(feature, is_training)
            yield feature
            unique_id += 1


def convert_examples_to_features(
    examples: Iterable[SquadExample],
    tokenizer: tokenization.Tokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
    output_fn: Callable[[InputFeatures], Any],
) -> int:
    """Streams the features of `examples` (see `iter_features`) to `output_fn`, one at a time.

    Returns:
      The number of features produced.
    """
    num_features = 0
    total = len(examples) if isinstance(examples, Sized) else None
    progress = bert_logging.Progress("Examples featurized", total)
    for feature in iter_features(
        examples, tokenizer, max_seq_length, doc_stride, max_query_length, is_training
    ):
        output_fn(feature)
        num_features += 1
        progress.update(feature.example_index + 1 - progress.count)
    progress.done()
    return num_features


# ---------------------------------------------------------------------------------------------
# Post-processing: logits -> answer text
# ---------------------------------------------------------------------------------------------


RawResult = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])
RawResult.__doc__ = "Model output for one feature; `start_logits`, `end_logits`: `[seq_length]`."


class TopLogits(NamedTuple):
    """What post-processing keeps of one feature's logits.

    `start` / `end` hold the `n_best_size` best (index, logit) pairs, best first (ties in the
    order of the index); the null logits are those of position 0 ([CLS]).
    """

    start: list[tuple[int, float]]
    end: list[tuple[int, float]]
    null_start_logit: float
    null_end_logit: float


class _PrelimPrediction(NamedTuple):
    feature_index: int
    start_index: int
    end_index: int
    start_logit: float
    end_logit: float


class _NbestPrediction(NamedTuple):
    text: str
    start_logit: float
    end_logit: float


class ExamplePrediction(NamedTuple):
    """The answer to one question, its n-best list (as JSON objects) and, for 2.0, its null odds.

    `null_score_diff` is null score - best non-null score (None for SQuAD 1.1).
    """

    answer: str
    nbest: list[collections.OrderedDict]
    null_score_diff: float | None


def _top_n(logits: Sequence[float], n_best_size: int) -> list[tuple[int, float]]:
    # heapq.nlargest breaks ties like a stable descending sort: lower index first.
    return heapq.nlargest(n_best_size, enumerate(logits), key=lambda pair: pair[1])


def _get_best_indexes(logits: Sequence[float], n_best_size: int) -> list[int]:
    """Indexes of the `n_best_size` largest of `logits` ([seq_length]), largest first."""
    return [index for index, _ in _top_n(logits, n_best_size)]


def summarize_result(result: RawResult, n_best_size: int) -> TopLogits:
    """Keeps the `n_best_size` best start / end logits and the null logits of one result."""
    start = [(int(i), float(v)) for i, v in _top_n(result.start_logits, n_best_size)]
    end = [(int(i), float(v)) for i, v in _top_n(result.end_logits, n_best_size)]
    return TopLogits(start, end, float(result.start_logits[0]), float(result.end_logits[0]))


def _compute_softmax(scores: Sequence[float]) -> list[float]:
    """Softmax of `scores`, shifted by their maximum so large logits do not overflow."""
    if not scores:
        return []
    max_score = max(scores)
    exp_scores = [math.exp(score - max_score) for score in scores]
    total = sum(exp_scores)
    return [value / total for value in exp_scores]


def _strip_spaces(text: str) -> tuple[str, dict[int, int]]:
    """`text` without spaces, and a map from its character positions back into `text`."""
    kept_chars = []
    stripped_to_orig = {}
    for index, char in enumerate(text):
        if char == " ":
            continue
        stripped_to_orig[len(kept_chars)] = index
        kept_chars.append(char)
    return "".join(kept_chars), stripped_to_orig


def get_final_text(
    pred_text: str, orig_text: str, do_lower_case: bool, verbose_logging: bool = False
) -> str:
    """Maps a predicted, normalized answer back onto the original document text.

    `pred_text` is de-tokenized WordPiece text ("steve smith"), already lower-cased and stripped
    of accents; `orig_text` is the whole words it came from ("Steve Smith's"). The original is
    re-tokenized with `BasicTokenizer`; if, once spaces are removed, it has as many characters as
    the original, the two are aligned character by character and the prediction's characters are
    cut out of the original ("Steve Smith"), restoring case, accents and spacing. When the
    alignment fails, `orig_text` is returned as is.
    """
    tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    tok_text = " ".join(tokenizer.tokenize(orig_text))

    def fail(message: str, *args: Any) -> str:
        if verbose_logging:
            tf.logging.info(message, *args)
        return orig_text

    start_position = tok_text.find(pred_text)
    if start_position == -1:
        return fail("Unable to find text: '%s' in '%s'", pred_text, orig_text)
    end_position = start_position + len(pred_text) - 1

    orig_ns_text, orig_ns_to_s_map = _strip_spaces(orig_text)
    tok_ns_text, tok_ns_to_s_map = _strip_spaces(tok_text)
    if len(orig_ns_text) != len(tok_ns_text):
        return fail(
            "Length not equal after stripping spaces: '%s' vs '%s'", orig_ns_text, tok_ns_text
        )
    tok_s_to_ns_map = {tok_index: ns_index for ns_index, tok_index in tok_ns_to_s_map.items()}

    def to_orig(tok_position: int) -> int | None:
        ns_position = tok_s_to_ns_map.get(tok_position)
        return None if ns_position is None else orig_ns_to_s_map.get(ns_position)

    orig_start_position = to_orig(start_position)
    if orig_start_position is None:
        return fail("Couldn't map start position")
    orig_end_position = to_orig(end_position)
    if orig_end_position is None:
        return fail("Couldn't map end position")
    return orig_text[orig_start_position : orig_end_position + 1]


def _is_valid_span(feature: Any, start_index: int, end_index: int, max_answer_length: int) -> bool:
    """Whether a (start, end) pair of `feature.tokens` positions can be an answer."""
    num_tokens = len(feature.tokens)
    return (
        start_index < num_tokens
        and end_index < num_tokens
        and start_index in feature.token_to_orig_map
        and end_index in feature.token_to_orig_map
        and feature.token_is_max_context.get(start_index, False)
        and start_index <= end_index
        and end_index - start_index + 1 <= max_answer_length
    )


def _prelim_predictions(
    features: Sequence[Any], top_logits: Sequence[TopLogits], max_answer_length: int
) -> list[_PrelimPrediction]:
    """All valid spans among the top start x top end positions of every window of a question."""
    prelims = []
    for feature_index, (feature, top) in enumerate(zip(features, top_logits, strict=True)):
        for start_index, start_logit in top.start:
            for end_index, end_logit in top.end:
                if _is_valid_span(feature, start_index, end_index, max_answer_length):
                    prelims.append(
                        _PrelimPrediction(
                            feature_index, start_index, end_index, start_logit, end_logit
                        )
                    )
    return prelims


def _null_prediction(top_logits: Sequence[TopLogits]) -> _PrelimPrediction:
    """The "no answer" candidate: [CLS] of the window with the lowest null score."""
    null = _PrelimPrediction(0, 0, 0, 0.0, 0.0)
    score_null = None
    for feature_index, top in enumerate(top_logits):
        feature_null_score = top.null_start_logit + top.null_end_logit
        if score_null is None or feature_null_score < score_null:
            score_null = feature_null_score
            null = _PrelimPrediction(
                feature_index, 0, 0, top.null_start_logit, top.null_end_logit
            )
    return null


def _span_text(
    example: SquadExample,
    feature: Any,
    prelim: _PrelimPrediction,
    do_lower_case: bool,
    verbose_logging: bool,
) -> str:
    """The original document text of a predicted span (see `get_final_text`)."""
    tok_tokens = feature.tokens[prelim.start_index : prelim.end_index + 1]
    orig_doc_start = feature.token_to_orig_map[prelim.start_index]
    orig_doc_end = feature.token_to_orig_map[prelim.end_index]
    orig_text = " ".join(example.doc_tokens[orig_doc_start : orig_doc_end + 1])
    # Glue WordPiece continuations back onto their words.
    tok_text = " ".join(tok_tokens).replace(" ##", "").replace("##", "")
    tok_text = " ".join(tok_text.split())
    return get_final_text(tok_text, orig_text, do_lower_case, verbose_logging)


def _distinct_nbest(
    example: SquadExample,
    features: Sequence[Any],
    ranked: Sequence[_PrelimPrediction],
    n_best_size: int,
    do_lower_case: bool,
    verbose_logging: bool,
) -> list[_NbestPrediction]:
    """The first `n_best_size` ranked candidates with distinct texts ("" for the null)."""
    seen_texts = set()
    nbest = []
    for prelim in ranked:
        if len(nbest) >= n_best_size:
            break
        if prelim.start_index > 0:
            text = _span_text(
                example, features[prelim.feature_index], prelim, do_lower_case, verbose_logging
            )
            if text in seen_texts:
                continue
        else:
            text = ""
        seen_texts.add(text)
        nbest.append(_NbestPrediction(text, prelim.start_logit, prelim.end_logit))
    return nbest


def _nbest_json(nbest: Sequence[_NbestPrediction]) -> list[collections.OrderedDict]:
    """The n-best list as written to nbest_predictions.json, with softmax probabilities."""
    probs = _compute_softmax([entry.start_logit + entry.end_logit for entry in nbest])
    return [
        collections.OrderedDict(
            [
                ("text", entry.text),
                ("probability", prob),
                ("start_logit", entry.start_logit),
                ("end_logit", entry.end_logit),
            ]
        )
        for entry, prob in zip(nbest, probs, strict=True)
    ]


def predict_example(
    example: SquadExample,
    features: Sequence[Any],
    top_logits: Sequence[TopLogits],
    n_best_size: int,
    max_answer_length: int,
    do_lower_case: bool,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
    verbose_logging: bool = False,
) -> ExamplePrediction:
    """Picks the answer of one question from the summarized logits of its windows.

    Candidates are ranked by start_logit + end_logit (ties keep window, start, end order); the
    n-best list keeps the first `n_best_size` distinct texts. For SQuAD 2.0 the null candidate
    "" (lowest [CLS] score over the windows) is always in the list, and the answer is "" when
    null score - best non-null score > `null_score_diff_threshold`. If no span is valid, the
    best non-null score is the 0.0 of the original's "empty" stand-in answer (which SQuAD 1.1
    answers).
    """
    ranked = _prelim_predictions(features, top_logits, max_answer_length)
    null = _null_prediction(top_logits)
    if version_2_with_negative:
        ranked.append(null)
    ranked.sort(key=lambda p: p.start_logit + p.end_logit, reverse=True)

    nbest = _distinct_nbest(
        example, features, ranked, n_best_size, do_lower_case, verbose_logging
    )
    if version_2_with_negative and not any(entry.text == "" for entry in nbest):
        nbest.append(_NbestPrediction("", null.start_logit, null.end_logit))
    if not nbest:
        nbest.append(_NbestPrediction(_NONCE_TEXT, 0.0, 0.0))
    if not version_2_with_negative:
        return ExamplePrediction(nbest[0].text, _nbest_json(nbest), None)

    best_non_null = next((entry for entry in nbest if entry.text), None)
    if best_non_null is None:
        tf.logging.warning(
            "Question %r has no valid answer span; predicting no answer", example.qas_id
        )
        best_non_null = _NbestPrediction("", 0.0, 0.0)
    score_null = null.start_logit + null.end_logit
    # Same operation order as the original so null_odds.json matches it bit for bit.
    score_diff = score_null - best_non_null.start_logit - best_non_null.end_logit
    answer = "" if score_diff > null_score_diff_threshold else best_non_null.text
    return ExamplePrediction(answer, _nbest_json(nbest), score_diff)


def _group_features(
    all_features: Iterable[Any], num_examples: int
) -> dict[int, list[Any]]:
    """Features grouped by example index, each group in feature order."""
    grouped = collections.defaultdict(list)
    for feature in all_features:
        if not 0 <= feature.example_index < num_examples:
            raise ValueError(
                f"feature {feature.unique_id} refers to example {feature.example_index}, but "
                f"there are only {num_examples} examples"
            )
        grouped[feature.example_index].append(feature)
    return grouped


def _summarize_results(
    all_results: Iterable[RawResult], known_unique_ids: set[int], n_best_size: int
) -> dict[int, TopLogits]:
    """Consumes the results one by one, keeping only `TopLogits` for known features."""
    summaries = {}
    unknown_ids = []
    for result in all_results:
        unique_id = int(result.unique_id)
        if unique_id not in known_unique_ids:
            unknown_ids.append(unique_id)
            continue
        summaries[unique_id] = summarize_result(result, n_best_size)
    if unknown_ids:
        tf.logging.warning(
            "Ignoring %d results whose unique_id matches no feature (e.g. %d)",
            len(unknown_ids), unknown_ids[0],
        )
    return summaries


def compute_predictions(
    all_examples: Sequence[SquadExample],
    all_features: Iterable[Any],
    all_results: Iterable[RawResult],
    n_best_size: int,
    max_answer_length: int,
    do_lower_case: bool,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
    verbose_logging: bool = False,
) -> tuple[collections.OrderedDict, collections.OrderedDict, collections.OrderedDict]:
    """Answers every example from its features' logits (see `predict_example`).

    `all_results` is consumed as a stream (see the module docstring for what is kept). Results
    for unknown unique_ids are ignored, and windows without a result are left out, both with a
    warning; a question left with no window gets the no-window answer of `predict_example`.

    Returns:
      (all_predictions, all_nbest_json, scores_diff_json), keyed by qas_id in example order;
      scores_diff_json is empty for SQuAD 1.1.
    """
    features_by_example = _group_features(all_features, len(all_examples))
    known_unique_ids = {
        feature.unique_id for group in features_by_example.values() for feature in group
    }
    summaries = _summarize_results(all_results, known_unique_ids, n_best_size)
    missing_ids = sorted(known_unique_ids - summaries.keys())
    if missing_ids:
        tf.logging.warning(
            "%d features have no result (e.g. unique_id %d); their windows are ignored",
            len(missing_ids), missing_ids[0],
        )

    all_predictions = collections.OrderedDict()
    all_nbest_json = collections.OrderedDict()
    scores_diff_json = collections.OrderedDict()
    for example_index, example in enumerate(all_examples):
        features = [
            feature
            for feature in features_by_example.get(example_index, [])
            if feature.unique_id in summaries
        ]
        if not features:
            tf.logging.warning("Question %r has no scored window", example.qas_id)
        prediction = predict_example(
            example,
            features,
            [summaries[feature.unique_id] for feature in features],
            n_best_size=n_best_size,
            max_answer_length=max_answer_length,
            do_lower_case=do_lower_case,
            version_2_with_negative=version_2_with_negative,
            null_score_diff_threshold=null_score_diff_threshold,
            verbose_logging=verbose_logging,
        )
        all_predictions[example.qas_id] = prediction.answer
        all_nbest_json[example.qas_id] = prediction.nbest
        if version_2_with_negative:
            scores_diff_json[example.qas_id] = prediction.null_score_diff
    return all_predictions, all_nbest_json, scores_diff_json


def write_json_atomically(path: str, value: Any) -> None:
    """Writes `json.dumps(value, indent=4)` to `path` via a temporary file and a rename.

    A reader never sees a half-written file, and an interrupted run leaves the old one intact.
    """
    atomic_files.write_text(path, json.dumps(value, indent=4) + "\n")


def write_predictions(
    all_examples: Sequence[SquadExample],
    all_features: Iterable[Any],
    all_results: Iterable[RawResult],
    n_best_size: int,
    max_answer_length: int,
    do_lower_case: bool,
    output_prediction_file: str,
    output_nbest_file: str,
    output_null_log_odds_file: str | None,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
    verbose_logging: bool = False,
) -> tuple[collections.OrderedDict, collections.OrderedDict, collections.OrderedDict]:
    """Computes the predictions (see `compute_predictions`) and writes them as JSON.

    Writes `output_prediction_file` ({qas_id: answer}), `output_nbest_file`
    ({qas_id: [{text, probability, start_logit, end_logit}, ...]}) and, for SQuAD 2.0,
    `output_null_log_odds_file` ({qas_id: null score - best non-null score}).

    Returns:
      (all_predictions, all_nbest_json, scores_diff_json), e.g. to evaluate without re-reading.
    """
    tf.logging.info("Writing predictions to: %s", output_prediction_file)
    tf.logging.info("Writing nbest to: %s", output_nbest_file)
    all_predictions, all_nbest_json, scores_diff_json = compute_predictions(
        all_examples,
        all_features,
        all_results,
        n_best_size=n_best_size,
        max_answer_length=max_answer_length,
        do_lower_case=do_lower_case,
        version_2_with_negative=version_2_with_negative,
        null_score_diff_threshold=null_score_diff_threshold,
        verbose_logging=verbose_logging,
    )
    write_json_atomically(output_prediction_file, all_predictions)
    write_json_atomically(output_nbest_file, all_nbest_json)
    if version_2_with_negative:
        if not output_null_log_odds_file:
            raise ValueError("version_2_with_negative needs an output_null_log_odds_file")
        write_json_atomically(output_null_log_odds_file, scores_diff_json)
    return all_predictions, all_nbest_json, scores_diff_json
