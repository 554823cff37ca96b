"""Creates masked-LM and next-sentence-prediction examples for BERT pre-training.

Input: text files with one sentence per line and a blank line between documents.
Output: TFRecord files of `tf.train.Example`s with the features `run_pretraining.py` reads:
`input_ids`, `input_mask`, `segment_ids` ([max_seq_length] int64 each), `masked_lm_positions`,
`masked_lm_ids` ([max_predictions_per_seq] int64), `masked_lm_weights`
([max_predictions_per_seq] float) and `next_sentence_labels` ([1] int64, 1 = random next;
with `--sentence_order_prediction`, 1 = the two segments swapped, as in ALBERT).

Without `--word_segmenter`, `--word_ref_file`, `--sentence_order_prediction` and
`--ngram_masking`, the records are those of the original script; those flags add Chinese
whole-word masking, ALBERT's sentence-order labels and ALBERT's n-gram masking.

With `--num_workers=1` (the default) this is the original google-research/bert algorithm, draw
for draw from one `random.Random(--random_seed)`, so the files are byte-identical to the ones
the original script writes. With `--num_workers=N>1` the input is cut into shards that are
processed independently by N processes (see the flag's help), so memory is bounded by the
shards in flight rather than by the corpus.

The algorithm runs on token ids rather than token strings: every token the tokenizer emits is
in the vocab, so comparing or replacing ids gives the same result as the original's strings
while a sentence costs one shared small int per token instead of one string per token.
"""

import bert_logging

import collections
import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
import random
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

import tensorflow as tf
from absl import app, flags, logging

import flag_help

# Named so here because `input_files` is this script's name for its list of input paths.
import input_files as text_files
import tfrecord_io
import tokenization
import word_boundaries

FLAGS = flags.FLAGS

# Flags whose values would make the algorithm fail or loop: (name, check, message).
_FLAG_CHECKS = (
    ("max_seq_length", lambda value: value >= 5,
     "must be at least 5, room for [CLS] A [SEP] B [SEP]."),
    ("max_predictions_per_seq", lambda value: value >= 1, "must be at least 1."),
    ("dupe_factor", lambda value: value >= 1, "must be at least 1."),
    ("masked_lm_prob", lambda value: 0.0 <= value <= 1.0, "must be between 0 and 1."),
    ("short_seq_prob", lambda value: 0.0 <= value <= 1.0, "must be between 0 and 1."),
    ("num_workers", lambda value: value >= 1, "must be at least 1."),
    ("shard_size_mb", lambda value: value > 0, "must be greater than 0."),
    ("ngram_masking", lambda value: value >= 1, "must be at least 1."),
)


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the script's flags, with the original's names and defaults, on `flag_values`.

    Called when the script runs rather than on import, so that other scripts' flags of the
    same names (run_pretraining.py's --input_file, ...) can live in the same process.
    """
    on = dict(flag_values=flag_values)
    flags.DEFINE_string(
        "input_file", None,
        "Input raw text file, or comma-separated list of files or glob patterns. One sentence "
        "per line, blank line between documents. With --num_workers=1 a glob's matches are "
        "read in the order the file system lists them, as the original does; with "
        "--num_workers>1 they are sorted.", **on)
    flags.DEFINE_string(
        "output_file", None,
        "Output TFRecord file, or comma-separated list of files; instances are written to them "
        "in turn. Each file is written under a temporary name and appears only once complete.",
        **on)
    flags.DEFINE_string(
        "vocab_file", None, "The vocabulary file that the BERT model was trained on.", **on)
    flags.DEFINE_string(
        "spm_model_file", None,
        "SentencePiece model file; when set, SentencePiece tokenization is used and "
        "--vocab_file is ignored.", **on)
    flags.DEFINE_bool(
        "do_lower_case", True,
        "Whether to lower case the input text. Should be True for uncased models and False for "
        "cased models.", **on)
    flags.DEFINE_bool(
        "do_whole_word_mask", False,
        "Whether to use whole word masking rather than per-WordPiece masking. Words are "
        "a token and its '##' pieces; for Chinese, where every character is a token of its "
        "own, add --word_segmenter or --word_ref_file.", **on)
    flags.DEFINE_enum(
        "word_segmenter", None, list(word_boundaries.WORD_SEGMENTERS),
        "With --do_whole_word_mask: segment Chinese text into words with this segmenter "
        "(jieba: its accurate mode and the dictionary it ships). The characters of a word are "
        "masked, replaced or kept together and count as one candidate; ids and labels stay "
        "plain character ids. Needs a WordPiece --vocab_file.", **on)
    flags.DEFINE_string(
        "word_ref_file", None,
        "With --do_whole_word_mask: the Chinese word boundaries from a file in the format of "
        "transformers' run_chinese_ref.py (--train_ref_file): one JSON list per non-blank "
        "input line, across the input files in the order they are read, of the positions in "
        "the line's tokens ([CLS] = 0) that continue a word. Otherwise as --word_segmenter.",
        **on)
    flags.DEFINE_bool(
        "sentence_order_prediction", False,
        "ALBERT's sentence-order labels instead of next-sentence ones: segment B is always "
        "the text that follows segment A, and in half of the pairs the two are swapped "
        "(next_sentence_labels = 1). A chunk of one sentence is split at a random word start "
        "(a one-word chunk makes no pair), rather than given another document's text as "
        "ALBERT's script does.", **on)
    flags.DEFINE_integer(
        "ngram_masking", 1,
        "Mask spans of up to N consecutive words (whole words with --do_whole_word_mask, "
        "else tokens), of length n drawn with probability proportional to 1/n, as ALBERT "
        "does (its --ngram=3). A span does not cross [SEP]; one that does not fit the rest "
        "of the budget is shortened. 1 (default): no spans, the original masking.", **on)
    flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.", **on)
    flags.DEFINE_integer(
        "max_predictions_per_seq", 20,
        "Maximum number of masked LM predictions per sequence.", **on)
    flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.", **on)
    flags.DEFINE_integer(
        "dupe_factor", 10,
        "Number of times to duplicate the input data (with different masks).", **on)
    flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.", **on)
    flags.DEFINE_float(
        "short_seq_prob", 0.1,
        "Probability of creating sequences which are shorter than the maximum length.", **on)
    flags.DEFINE_integer(
        "num_workers", 1,
        "1 (default): the original algorithm in one process, byte-identical output, the whole "
        "corpus and all its instances in memory. N > 1: the documents, read in order, are cut "
        "into shards of about --shard_size_mb of text at document boundaries; each shard is "
        "processed as the original would process that shard alone (documents shuffled, "
        "random-next sentences drawn from the same shard, instances shuffled within the "
        "shard), seeded with 64 bits of SHA-256 of '<random_seed>:<shard index>'; N worker "
        "processes run the shards and their instances are written in shard order. The output "
        "is therefore the same on every run and for every N > 1, but differs from N = 1; "
        "memory is bounded by the shards in flight, not by the corpus.", **on)
    flags.DEFINE_float(
        "shard_size_mb", 8.0,
        "With --num_workers > 1: megabytes of input text per shard. Larger shards draw "
        "random-next sentences from more documents and shuffle over more instances, but each "
        "worker holds a whole shard's serialized instances in memory: about 3.5 times the "
        "shard's text per --dupe_factor at --max_seq_length=128.", **on)
    text_files.define_input_encoding_flag(flag_values)
    for name, check, message in _FLAG_CHECKS:
        flags.register_validator(name, check, message=message, **on)


# How many of the first written examples are logged in full, as the original does.
NUM_LOGGED_EXAMPLES = 20
# The features of every example, in the order the original adds (and logs) them.
FEATURE_NAMES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)


@dataclasses.dataclass(frozen=True)
class InstanceOptions:
    """The flags that shape the instances made from each document."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    do_whole_word_mask: bool = False
    # Word boundaries are flagged on the token ids (word_boundaries.CONTINUES_WORD) rather
    # than found from `##` pieces; each word then gets one mask/keep/replace decision.
    segmented_words: bool = False
    sentence_order_prediction: bool = False
    ngram_masking: int = 1


@dataclasses.dataclass(frozen=True)
class VocabIds:
    """The token ids the instance builder needs, taken from a tokenizer's vocab."""

    cls_id: int
    sep_id: int
    mask_id: int
    # Ids of `list(vocab.keys())`, the list the original draws random replacement tokens from.
    word_ids: tuple[int, ...]
    # Ids of `##` pieces, the continuations of a word for whole-word masking.
    subword_ids: frozenset[int]
    # `word_ids` without the `##` pieces: random replacements with segmented words, so that
    # no `##` form of a character, which that data never holds, is put in.
    whole_word_ids: tuple[int, ...] = ()

    @classmethod
    def from_vocab(cls, vocab: Mapping[str, int]) -> "VocabIds":
        missing = [token for token in ("[CLS]", "[SEP]", "[MASK]") if token not in vocab]
        if missing:
            raise ValueError(f"The vocab lacks the special token(s) {', '.join(missing)}.")
        return cls(
            cls_id=vocab["[CLS]"],
            sep_id=vocab["[SEP]"],
            mask_id=vocab["[MASK]"],
            word_ids=tuple(vocab.values()),
            subword_ids=frozenset(i for token, i in vocab.items() if token.startswith("##")),
            whole_word_ids=tuple(
                i for token, i in vocab.items() if not token.startswith("##")),
        )


class TrainingInstance(NamedTuple):
    """One sentence pair `[CLS] A [SEP] B [SEP]` after masking, as token ids."""

    token_ids: list[int]
    segment_ids: list[int]
    masked_lm_positions: list[int]
    masked_lm_ids: list[int]
    is_random_next: bool


class RawDocument(NamedTuple):
    """A document's non-blank lines, before tokenization."""

    lines: list[str]
    # "path:line" of the first line, for error messages.
    source: str
    # Input bytes since the end of the previous document (blank lines included), for
    # progress and shard sizes.
    num_bytes: int
    # With --word_ref_file: the reference of each line.
    word_refs: list[word_boundaries.WordRef] | None = None


# A document after tokenization: one list of token ids per sentence (none of them empty).
Document = list[list[int]]


# ---------------------------------------------------------------------------------------------
# Reading the corpus


def expand_input_patterns(input_file: str, sort: bool = False) -> list[str]:
    """Files matched by the comma-separated globs of `--input_file`, in pattern order.

    Directories are skipped (the original reads them as empty files). Raises
    FileNotFoundError naming a pattern that matches no file.
    """
    input_files = []
    for pattern in input_file.split(","):
        matches = []
        for path in tf.io.gfile.glob(pattern) if pattern else []:
            if tf.io.gfile.isdir(path):
                logging.warning("--input_file: skipping the directory %s", path)
            else:
                matches.append(path)
        if not matches:
            raise FileNotFoundError(f"--input_file: no file matches {pattern!r}.")
        input_files.extend(sorted(matches) if sort else matches)
    return input_files


def total_size(paths: Iterable[str]) -> int:
    """Sum of the sizes of `paths` in bytes."""
    return sum(tf.io.gfile.stat(path).length for path in paths)


def _iter_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) pairs of a file, read as the original's `GFile.readline` does.

    GFile also drops every carriage return, even one inside a line, which matters for
    byte-identical output.
    """
    with tf.io.gfile.GFile(path, "rb") as reader:
        line_number = 0
        while raw_line := reader.readline():
            line_number += 1
            yield line_number, raw_line


def iter_raw_documents(
    input_files: Sequence[str], encoding: str = text_files.DEFAULT_ENCODING
) -> Iterator[RawDocument]:
    """Yields the documents of `input_files`, read in order, one blank line ending each.

    As in the original, a file that does not end with a blank line lets its last document run
    on into the next file. Unlike the original, which silently dropped bytes that were not
    UTF-8 (all the text of a GBK file), a line that does not decode in `encoding` stops the
    run with an `input_files.InputFileError` naming the file and line.
    """
    lines: list[str] = []
    source = ""
    num_bytes = 0
    for path in input_files:
        for line_number, raw_line in _iter_lines(path):
            num_bytes += len(raw_line)
            if line_number == 1 and text_files.is_lfs_pointer(raw_line):
                raise text_files.InputFileError(
                    text_files.lfs_pointer_message(path, "input file"))
            line = text_files.decode(raw_line, path, encoding, first_line=line_number).strip()
            if line:
                if not lines:
                    source = f"{path}:{line_number}"
                lines.append(line)
            elif lines:
                yield RawDocument(lines, source, num_bytes)
                lines, num_bytes = [], 0
    if lines:
        yield RawDocument(lines, source, num_bytes)


def attach_word_refs(
    documents: Iterable[RawDocument], refs: Iterator[word_boundaries.WordRef], ref_file: str
) -> Iterator[RawDocument]:
    """`documents` with the reference of each of their lines, taken from `refs` in order.

    Raises WordRefError when the reference file has fewer or more entries than the input has
    non-blank lines.
    """
    for document in documents:
        document_refs = []
        for line_index in range(len(document.lines)):
            ref = next(refs, None)
            if ref is None:
                raise word_boundaries.WordRefError(
                    f"--word_ref_file={ref_file} ends before the input does: it has no entry "
                    f"for line {line_index + 1} of the document starting at {document.source}.")
            document_refs.append(ref)
        yield document._replace(word_refs=document_refs)
    extra = next(refs, None)
    if extra is not None:
        raise word_boundaries.WordRefError(
            f"{extra.source}: --word_ref_file has more entries than the input has non-blank "
            "lines.")


def tokenize_document(
    document: RawDocument,
    tokenizer: tokenization.Tokenizer,
    boundaries: word_boundaries.WordBoundaries | None = None,
) -> Document:
    """Token ids of each line of `document`; lines that yield no tokens are dropped.

    With `boundaries`, ids that continue a word carry `word_boundaries.CONTINUES_WORD`.
    """
    sentences = []
    for line_index, line in enumerate(document.lines):
        if boundaries is None:
            tokens = tokenizer.tokenize(line)
        else:
            ref = document.word_refs[line_index] if document.word_refs is not None else None
            tokens, continues = boundaries.tokens_and_continuations(
                line, ref, where=f"{document.source} (+{line_index} non-blank lines)")
        if not tokens:
            continue
        try:
            token_ids = tokenizer.convert_tokens_to_ids(tokens)
        except KeyError as error:
            raise ValueError(
                f"{document.source}: a line of the document starting here gives the token "
                f"{error.args[0]!r}, which the vocab lacks.") from None
        if boundaries is not None:
            token_ids = word_boundaries.flag_continuations(token_ids, continues)
        sentences.append(token_ids)
    return sentences


# ---------------------------------------------------------------------------------------------
# Making instances: the original algorithm, with the same random draws in the same order


def create_serialized_examples(
    documents: list[Document],
    options: InstanceOptions,
    vocab_ids: VocabIds,
    rng: random.Random,
    on_pass_done: Callable[[int, int], None] | None = None,
) -> list[bytes]:
    """All instances of `documents`, `dupe_factor` passes over them, shuffled, serialized.

    Shuffles `documents` in place first, as the original does. `on_pass_done(pass, instances)`
    is called after each pass.
    """
    rng.shuffle(documents)
    examples = []
    for pass_index in range(options.dupe_factor):
        for document_index in range(len(documents)):
            for instance in create_instances_from_document(
                    documents, document_index, options, vocab_ids, rng):
                examples.append(instance_to_example(instance, options).SerializeToString())
        if on_pass_done is not None:
            on_pass_done(pass_index + 1, len(examples))
    # The original shuffles its instance objects; a shuffle's draws depend only on the length,
    # so shuffling the (smaller) serialized examples gives the same order.
    rng.shuffle(examples)
    return examples


def create_instances_from_document(
    documents: list[Document],
    document_index: int,
    options: InstanceOptions,
    vocab_ids: VocabIds,
    rng: random.Random,
) -> list[TrainingInstance]:
    """Packs the sentences of one document into sentence pairs, then masks them.

    Segment A is the first 1..n-1 sentences of a chunk of about `target_seq_length` tokens;
    segment B is the rest of the chunk or, half of the time (always for a one-sentence chunk),
    text from a random other document, in which case the chunk's unused sentences are put back.
    With `sentence_order_prediction`, B is always the rest of the chunk (see
    `_sentence_order_pair`) and the label says whether the two were swapped.
    """
    document = documents[document_index]
    max_num_tokens = options.max_seq_length - 3  # room for [CLS], [SEP], [SEP]
    # Mostly fill the sequence, but sometimes make shorter ones so that pre-training also sees
    # the short sequences of fine-tuning tasks.
    target_seq_length = max_num_tokens
    if rng.random() < options.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    chunk: list[list[int]] = []
    chunk_length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if (i == len(document) - 1 or chunk_length >= target_seq_length) and (
                options.sentence_order_prediction):
            pair = _sentence_order_pair(chunk, vocab_ids, rng)
            if pair is not None:
                tokens_a, tokens_b, is_swapped = pair
                truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                instances.append(
                    _masked_instance(tokens_a, tokens_b, is_swapped, options, vocab_ids, rng))
            chunk, chunk_length = [], 0
        elif i == len(document) - 1 or chunk_length >= target_seq_length:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [token for sentence in chunk[:a_end] for token in sentence]
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                tokens_b = _random_next_tokens(
                    documents, document_index, target_seq_length - len(tokens_a), rng)
                i -= len(chunk) - a_end  # put the unused sentences back for the next chunk
            else:
                is_random_next = False
                tokens_b = [token for sentence in chunk[a_end:] for token in sentence]
            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            instances.append(
                _masked_instance(tokens_a, tokens_b, is_random_next, options, vocab_ids, rng))
            chunk, chunk_length = [], 0
        i += 1
    return instances


def _sentence_order_pair(
    chunk: list[list[int]], vocab_ids: VocabIds, rng: random.Random
) -> tuple[list[int], list[int], bool] | None:
    """ALBERT's sentence-order pair from a chunk: (A, B, swapped), or None for one word.

    A is the first 1..n-1 sentences and B the rest; a one-sentence chunk is cut at a random
    word start instead, so that B always follows A in the text (ALBERT's script takes B from
    another document there, which mixes next-sentence negatives into the order labels). Then
    A and B are swapped half of the time.
    """
    if len(chunk) >= 2:
        a_end = rng.randint(1, len(chunk) - 1)
        tokens_a = [token for sentence in chunk[:a_end] for token in sentence]
        tokens_b = [token for sentence in chunk[a_end:] for token in sentence]
    else:
        sentence = chunk[0]
        word_starts = [
            index for index in range(1, len(sentence)) if _starts_word(sentence[index], vocab_ids)]
        if not word_starts:
            return None
        cut = word_starts[rng.randint(0, len(word_starts) - 1)]
        tokens_a, tokens_b = sentence[:cut], sentence[cut:]
    if rng.random() < 0.5:
        return tokens_b, tokens_a, True
    return tokens_a, tokens_b, False


def _starts_word(token_id: int, vocab_ids: VocabIds) -> bool:
    return not word_boundaries.continues_word(token_id) and token_id not in vocab_ids.subword_ids


def _random_next_tokens(
    documents: list[Document], document_index: int, target_length: int, rng: random.Random
) -> list[int]:
    """Sentences from a random point of a random other document, about `target_length` tokens.

    Like the original, gives up after 10 draws of the same document (a one-document corpus).
    """
    for _ in range(10):
        random_document_index = rng.randint(0, len(documents) - 1)
        if random_document_index != document_index:
            break
    random_document = documents[random_document_index]
    random_start = rng.randint(0, len(random_document) - 1)
    tokens = []
    for sentence in random_document[random_start:]:
        tokens.extend(sentence)
        if len(tokens) >= target_length:
            break
    return tokens


def truncate_seq_pair(
    tokens_a: list[int], tokens_b: list[int], max_num_tokens: int, rng: random.Random
) -> None:
    """Shortens the longer of the two lists, one token at a time, until both fit together.

    A random end is cut each time, so that neither the start nor the end of a text is favoured.
    """
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _masked_instance(
    tokens_a: list[int],
    tokens_b: list[int],
    is_random_next: bool,
    options: InstanceOptions,
    vocab_ids: VocabIds,
    rng: random.Random,
) -> TrainingInstance:
    """Builds `[CLS] A [SEP] B [SEP]` with its segment ids, then masks it."""
    token_ids = [vocab_ids.cls_id, *tokens_a, vocab_ids.sep_id, *tokens_b, vocab_ids.sep_id]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    masked_ids, positions, labels = create_masked_lm_predictions(
        token_ids, options, vocab_ids, rng)
    return TrainingInstance(masked_ids, segment_ids, positions, labels, is_random_next)


def create_masked_lm_predictions(
    token_ids: list[int], options: InstanceOptions, vocab_ids: VocabIds, rng: random.Random
) -> tuple[list[int], list[int], list[int]]:
    """Masks about `masked_lm_prob` of `token_ids` ([seq_length], `[CLS] A [SEP] B [SEP]`).

    At least one and at most `max_predictions_per_seq` tokens are chosen, visiting the
    candidates in random order; [CLS] and [SEP] never are. Each chosen token becomes [MASK]
    80% of the time, a random vocab token 10% of the time and stays itself 10% of the time.
    With whole-word masking a word and its `##` pieces form one candidate, skipped when it
    would exceed the budget. With segmented words (`word_boundaries`) a word is one candidate
    too, and takes one of the three choices for all its tokens, a random replacement never
    being a `##` piece. With `ngram_masking` > 1 the candidates are spans of words
    (`choose_masked_spans`).

    Returns the plain masked token ids [seq_length], the sorted masked positions [num_masked]
    and the plain original ids at those positions [num_masked].
    """
    words, word_segments = _candidate_words(token_ids, options, vocab_ids)
    if options.segmented_words:
        token_ids = [word_boundaries.plain_id(token_id) for token_id in token_ids]
    num_to_predict = min(
        options.max_predictions_per_seq,
        max(1, int(round(len(token_ids) * options.masked_lm_prob))))
    masked_ids = list(token_ids)
    positions: list[int] = []
    # The generator draws its choices from `rng` between the replacement draws below, in the
    # order the original makes them.
    for span in choose_masked_spans(
            words, word_segments, num_to_predict, options.ngram_masking, rng):
        for word in span:
            if options.segmented_words:
                _replace_word(word, token_ids, masked_ids, vocab_ids, rng)
            else:
                for index in word:
                    masked_ids[index] = _replacement_id(token_ids[index], vocab_ids, rng)
            positions.extend(word)
    positions.sort()
    return masked_ids, positions, [token_ids[index] for index in positions]


def _candidate_words(
    token_ids: list[int], options: InstanceOptions, vocab_ids: VocabIds
) -> tuple[list[list[int]], list[int]]:
    """The maskable words as lists of positions, and the segment (0 = A, 1 = B) of each.

    A word is one token unless `do_whole_word_mask`. As in the original, a `##` piece joins
    the word before it even across [SEP]; a flagged continuation of segmented words never
    joins across [CLS] or [SEP] (the start of a segment is a word start).
    """
    specials = (vocab_ids.cls_id, vocab_ids.sep_id)
    words: list[list[int]] = []
    word_segments: list[int] = []
    segment = 0
    after_special = True
    for index, token_id in enumerate(token_ids):
        if token_id in specials:
            segment += token_id == vocab_ids.sep_id
            after_special = True
            continue
        if options.segmented_words:
            joins = word_boundaries.continues_word(token_id) and not after_special
        else:
            joins = token_id in vocab_ids.subword_ids
        if options.do_whole_word_mask and words and joins:
            words[-1].append(index)
        else:
            words.append([index])
            word_segments.append(segment)
        after_special = False
    return words, word_segments


def choose_masked_spans(
    words: list[list[int]],
    word_segments: list[int],
    num_to_predict: int,
    max_ngram: int,
    rng: random.Random,
) -> Iterator[list[list[int]]]:
    """Yields the spans of words to mask, in the order chosen, `num_to_predict` tokens at most.

    `max_ngram` = 1: the original's choice; the words are shuffled and each is taken unless it
    would exceed the budget. `max_ngram` > 1: ALBERT's n-gram choice; the start words are
    shuffled, and from each an n is drawn with P(n) proportional to 1/n (n = 1..max_ngram);
    the span is the n words from the start, cut at the end of its segment, shortened while it
    would exceed the budget and skipped when it still does or overlaps a chosen span.
    """
    chosen = 0
    if max_ngram == 1:
        rng.shuffle(words)
        for word in words:
            if chosen >= num_to_predict:
                return
            if chosen + len(word) > num_to_predict:
                continue
            chosen += len(word)
            yield [word]
        return
    starts = list(range(len(words)))
    rng.shuffle(starts)
    covered: set[int] = set()
    for start in starts:
        if chosen >= num_to_predict:
            return
        n = _ngram_length(max_ngram, rng)
        end = start
        while end < min(start + n, len(words)) and word_segments[end] == word_segments[start]:
            end += 1
        while end > start + 1 and chosen + _num_tokens(words[start:end]) > num_to_predict:
            end -= 1
        size = _num_tokens(words[start:end])
        if chosen + size > num_to_predict or not covered.isdisjoint(range(start, end)):
            continue
        covered.update(range(start, end))
        chosen += size
        yield words[start:end]


def _num_tokens(words: list[list[int]]) -> int:
    return sum(len(word) for word in words)


def _ngram_length(max_ngram: int, rng: random.Random) -> int:
    """n in 1..max_ngram with probability proportional to 1/n (one draw from `rng`)."""
    weights = [1.0 / n for n in range(1, max_ngram + 1)]
    threshold = rng.random() * sum(weights)
    for n, weight in enumerate(weights, start=1):
        threshold -= weight
        if threshold < 0:
            return n
    return max_ngram


def _replace_word(
    word: list[int], token_ids: list[int], masked_ids: list[int], vocab_ids: VocabIds,
    rng: random.Random,
) -> None:
    """Masks (80%), keeps (10%) or replaces by random non-`##` tokens (10%) a whole word."""
    if rng.random() < 0.8:
        for index in word:
            masked_ids[index] = vocab_ids.mask_id
    elif rng.random() < 0.5:
        for index in word:
            masked_ids[index] = token_ids[index]
    else:
        replacements = vocab_ids.whole_word_ids
        for index in word:
            masked_ids[index] = replacements[rng.randint(0, len(replacements) - 1)]


def _replacement_id(token_id: int, vocab_ids: VocabIds, rng: random.Random) -> int:
    if rng.random() < 0.8:
        return vocab_ids.mask_id
    if rng.random() < 0.5:
        return token_id
    return vocab_ids.word_ids[rng.randint(0, len(vocab_ids.word_ids) - 1)]


def instance_to_example(instance: TrainingInstance, options: InstanceOptions) -> tf.train.Example:
    """The instance as an Example of fixed-length features, zero-padded.

    `input_ids`, `input_mask`, `segment_ids`: [max_seq_length];
    `masked_lm_positions`, `masked_lm_ids`, `masked_lm_weights`: [max_predictions_per_seq];
    `next_sentence_labels`: [1].
    """
    seq_padding = [0] * (options.max_seq_length - len(instance.token_ids))
    num_masked = len(instance.masked_lm_positions)
    lm_padding = [0] * (options.max_predictions_per_seq - num_masked)
    features = {
        "input_ids": tfrecord_io.create_int_feature(instance.token_ids + seq_padding),
        "input_mask": tfrecord_io.create_int_feature(
            [1] * len(instance.token_ids) + seq_padding),
        "segment_ids": tfrecord_io.create_int_feature(instance.segment_ids + seq_padding),
        "masked_lm_positions": tfrecord_io.create_int_feature(
            instance.masked_lm_positions + lm_padding),
        "masked_lm_ids": tfrecord_io.create_int_feature(instance.masked_lm_ids + lm_padding),
        "masked_lm_weights": tfrecord_io.create_float_feature(
            [1.0] * num_masked + [0.0] * len(lm_padding)),
        "next_sentence_labels": tfrecord_io.create_int_feature([int(instance.is_random_next)]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


# ---------------------------------------------------------------------------------------------
# Writing and progress


def log_example(serialized: bytes, inv_vocab: Mapping[int, str]) -> None:
    """Logs an example's tokens and features the way the original logs its first examples."""
    feature = tf.train.Example.FromString(serialized).features.feature
    length = sum(feature["input_mask"].int64_list.value)
    tokens = [inv_vocab[i] for i in feature["input_ids"].int64_list.value[:length]]
    # The first example is shown; the original's next 19 need --verbosity=1.
    emit = logging.info if bert_logging.is_first_time("pretraining example") else logging.debug
    emit("*** Example ***")
    emit("tokens: %s", " ".join(tokenization.printable_text(t) for t in tokens))
    for name in FEATURE_NAMES:
        values = feature[name].int64_list.value or feature[name].float_list.value
        emit("%s: %s", name, " ".join(str(value) for value in values))


def write_examples(
    examples: Iterable[bytes],
    writer: tfrecord_io.RoundRobinRecordWriter,
    inv_vocab: Mapping[int, str],
) -> None:
    """Writes serialized examples, logging the first `NUM_LOGGED_EXAMPLES` of the output."""
    for serialized in examples:
        writer.write(serialized)
        if writer.num_written <= NUM_LOGGED_EXAMPLES:
            log_example(serialized, inv_vocab)


def _format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class ProgressLog:
    """Logs, at most every `interval_seconds`, documents and instances done, instances per
    second and the ETA of the current stage, estimated from the fraction of it done."""

    def __init__(self, interval_seconds: float = 10.0) -> None:
        self._interval = interval_seconds
        self._stage_start = time.monotonic()
        self._last_logged = float("-inf")

    def start_stage(self) -> None:
        self._stage_start = time.monotonic()

    def update(
        self, stage: str, fraction_done: float, documents: int, instances: int,
        force: bool = False,
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last_logged < self._interval:
            return
        self._last_logged = now
        elapsed = max(now - self._stage_start, 1e-9)
        eta = "?"
        if fraction_done > 0:
            eta = _format_duration(elapsed * (1 - fraction_done) / fraction_done)
        logging.info(
            "%s: %d documents, %d instances, %.0f instances/s, %.1f%% done, ETA %s",
            stage, documents, instances, instances / elapsed, 100 * fraction_done, eta)


class EmptyCorpusError(ValueError):
    """The input files hold no text to make instances from."""


def _empty_corpus_error(input_files: Sequence[str]) -> EmptyCorpusError:
    return EmptyCorpusError(f"--input_file: no text to make instances from in {input_files}.")


# ---------------------------------------------------------------------------------------------
# --num_workers=1: the original, whole corpus at once


def _raw_documents(
    input_files: Sequence[str], word_ref_file: str | None, encoding: str
) -> Iterator[RawDocument]:
    documents = iter_raw_documents(input_files, encoding)
    if word_ref_file:
        documents = attach_word_refs(
            documents, word_boundaries.read_word_refs(word_ref_file), word_ref_file)
    return documents


def make_word_boundaries(
    tokenizer: tokenization.Tokenizer, options: InstanceOptions, word_segmenter: str | None
) -> word_boundaries.WordBoundaries | None:
    """The WordBoundaries that segmented words need (None without them)."""
    if not options.segmented_words:
        return None
    segmenter = word_boundaries.JiebaSegmenter() if word_segmenter == "jieba" else None
    return word_boundaries.WordBoundaries(tokenizer, segmenter)


def run_single_process(
    input_files: Sequence[str],
    tokenizer: tokenization.Tokenizer,
    options: InstanceOptions,
    random_seed: int,
    writer: tfrecord_io.RoundRobinRecordWriter,
    encoding: str = text_files.DEFAULT_ENCODING,
    word_segmenter: str | None = None,
    word_ref_file: str | None = None,
) -> None:
    """Reads every document, makes every instance, shuffles them all, then writes them."""
    progress = ProgressLog()
    input_bytes = max(total_size(input_files), 1)
    boundaries = make_word_boundaries(tokenizer, options, word_segmenter)
    documents: list[Document] = []
    bytes_read = 0
    for raw_document in _raw_documents(input_files, word_ref_file, encoding):
        sentences = tokenize_document(raw_document, tokenizer, boundaries)
        if sentences:
            documents.append(sentences)
        bytes_read += raw_document.num_bytes
        progress.update("Reading", bytes_read / input_bytes, len(documents), 0)
    if not documents:
        raise _empty_corpus_error(input_files)
    num_documents = len(documents)
    logging.info("Read %d documents.", num_documents)

    progress.start_stage()

    def log_pass(pass_number: int, num_instances: int) -> None:
        progress.update(
            f"Pass {pass_number}/{options.dupe_factor}", pass_number / options.dupe_factor,
            num_documents, num_instances, force=True)

    examples = create_serialized_examples(
        documents, options, VocabIds.from_vocab(tokenizer.vocab), random.Random(random_seed),
        on_pass_done=log_pass)
    del documents
    _log_output_files(writer.output_files)
    write_examples(examples, writer, tokenizer.inv_vocab)


def _log_output_files(output_files: Sequence[str]) -> None:
    logging.info("*** Writing to output files ***")
    for output_file in output_files:
        logging.info("  %s", output_file)


# ---------------------------------------------------------------------------------------------
# --num_workers>1: independent shards in worker processes, written in shard order


def iter_shards(
    documents: Iterable[RawDocument], shard_size_bytes: int
) -> Iterator[list[RawDocument]]:
    """Groups consecutive documents into shards of at least `shard_size_bytes` (but the last)."""
    shard: list[RawDocument] = []
    size = 0
    for document in documents:
        shard.append(document)
        size += document.num_bytes
        if size >= shard_size_bytes:
            yield shard
            shard, size = [], 0
    if shard:
        yield shard


def shard_seed(random_seed: int, shard_index: int) -> int:
    """The seed of one shard: 64 bits of SHA-256 of "random_seed:shard_index"."""
    digest = hashlib.sha256(f"{random_seed}:{shard_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class ShardResult(NamedTuple):
    shard_index: int
    num_documents: int
    num_instances: int
    # Where the worker left the shard's serialized examples (see `write_spill`).
    spill_path: str


def write_spill(path: str, records: Iterable[bytes]) -> None:
    """Stores records as (4-byte little-endian length, bytes) pairs: a worker's hand-off."""
    with open(path, "wb") as spill:
        for record in records:
            spill.write(struct.pack("<I", len(record)))
            spill.write(record)


def read_spill(path: str) -> Iterator[bytes]:
    """The records stored by `write_spill`, in order."""
    with open(path, "rb") as spill:
        while header := spill.read(4):
            (length,) = struct.unpack("<I", header)
            yield spill.read(length)


# Set in each worker process by `_init_worker`: the tokenizer and settings every shard uses.
_worker_state: dict = {}


def _init_worker(
    tokenizer_config: dict, options: InstanceOptions, random_seed: int, spill_dir: str,
    word_segmenter: str | None,
) -> None:
    tokenizer = tokenization.create_tokenizer(**tokenizer_config)
    _worker_state.update(
        tokenizer=tokenizer,
        boundaries=make_word_boundaries(tokenizer, options, word_segmenter),
        vocab_ids=VocabIds.from_vocab(tokenizer.vocab),
        options=options,
        random_seed=random_seed,
        spill_dir=spill_dir,
    )


def _process_shard(shard_index: int, raw_documents: list[RawDocument]) -> ShardResult:
    """Runs the original algorithm on one shard alone and spills its shuffled examples."""
    state = _worker_state
    documents = []
    for raw_document in raw_documents:
        sentences = tokenize_document(raw_document, state["tokenizer"], state["boundaries"])
        if sentences:
            documents.append(sentences)
    examples = []
    if documents:
        rng = random.Random(shard_seed(state["random_seed"], shard_index))
        examples = create_serialized_examples(
            documents, state["options"], state["vocab_ids"], rng)
    spill_path = os.path.join(state["spill_dir"], f"shard-{shard_index:08d}.records")
    write_spill(spill_path, examples)
    return ShardResult(shard_index, len(documents), len(examples), spill_path)


def _spill_location(output_file: str) -> dict:
    """Keyword arguments of `tempfile.TemporaryDirectory` for the workers' hand-off files.

    Next to a local output, whose disk must hold that much data anyway (the system temp
    directory may be a small RAM disk); in the system temp directory for gs:// and the like.
    """
    if "://" in output_file:
        return dict(prefix="create_pretraining_data-")
    return dict(prefix=".create_pretraining_data-", dir=os.path.dirname(output_file) or ".")


def _results_in_shard_order(
    executor: concurrent.futures.Executor,
    shards: Iterable[list[RawDocument]],
    max_in_flight: int,
) -> Iterator[tuple[ShardResult, int]]:
    """Submits each shard to `executor` and yields (result, shard bytes) in shard order.

    At most `max_in_flight` shards are submitted and not yet yielded: a few more than there
    are workers, so that none waits for the reader, while the raw text queued stays small.
    """
    in_flight: collections.deque = collections.deque()
    for shard_index, shard in enumerate(shards):
        shard_bytes = sum(document.num_bytes for document in shard)
        in_flight.append((executor.submit(_process_shard, shard_index, shard), shard_bytes))
        if len(in_flight) >= max_in_flight:
            future, shard_bytes = in_flight.popleft()
            yield future.result(), shard_bytes
    while in_flight:
        future, shard_bytes = in_flight.popleft()
        yield future.result(), shard_bytes


def run_sharded(
    input_files: Sequence[str],
    tokenizer_config: dict,
    inv_vocab: Mapping[int, str],
    options: InstanceOptions,
    random_seed: int,
    num_workers: int,
    shard_size_bytes: int,
    writer: tfrecord_io.RoundRobinRecordWriter,
    encoding: str = text_files.DEFAULT_ENCODING,
    word_segmenter: str | None = None,
    word_ref_file: str | None = None,
) -> None:
    """Streams shards to `num_workers` processes and writes their examples in shard order."""
    _log_output_files(writer.output_files)
    progress = ProgressLog()
    input_bytes = max(total_size(input_files), 1)
    bytes_done = num_documents = 0
    shards = iter_shards(_raw_documents(input_files, word_ref_file, encoding), shard_size_bytes)
    with tempfile.TemporaryDirectory(**_spill_location(writer.output_files[0])) as spill_dir:
        # Spawned rather than forked workers: forking a process that already runs TensorFlow's
        # thread pools can deadlock the children. Unlike multiprocessing.Pool, the executor
        # reports a worker that dies (say, killed for lack of memory) instead of hanging.
        executor = concurrent.futures.ProcessPoolExecutor(
            num_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(tokenizer_config, options, random_seed, spill_dir, word_segmenter))
        try:
            for result, shard_bytes in _results_in_shard_order(
                    executor, shards, 2 * num_workers):
                write_examples(read_spill(result.spill_path), writer, inv_vocab)
                os.remove(result.spill_path)
                bytes_done += shard_bytes
                num_documents += result.num_documents
                progress.update(
                    f"Shard {result.shard_index}", bytes_done / input_bytes, num_documents,
                    writer.num_written)
        except concurrent.futures.process.BrokenProcessPool as error:
            raise RuntimeError(
                "A worker process died, perhaps killed for lack of memory; a smaller "
                "--shard_size_mb or --num_workers needs less.") from error
        finally:
            # After an error, drop the queued shards rather than computing them.
            executor.shutdown(wait=True, cancel_futures=True)
    if writer.num_written == 0:
        raise _empty_corpus_error(input_files)
    logging.info("Read %d documents.", num_documents)


# ---------------------------------------------------------------------------------------------


def _require_flags(flag_values: flags.FlagValues, *names: str) -> None:
    for name in names:
        if not flag_values[name].value:
            raise app.UsageError(f"--{name} is required.")


def _output_files(output_file: str) -> list[str]:
    output_files = output_file.split(",")
    if not all(output_files):
        raise app.UsageError(f"--output_file={output_file!r} has an empty file name.")
    return output_files


def _check_word_flags(config: flags.FlagValues) -> bool:
    """Checks --word_segmenter / --word_ref_file; returns whether words are segmented."""
    if config.word_segmenter and config.word_ref_file:
        raise app.UsageError("--word_segmenter and --word_ref_file exclude each other.")
    segmented = bool(config.word_segmenter or config.word_ref_file)
    if not segmented:
        return False
    flag = "--word_segmenter" if config.word_segmenter else "--word_ref_file"
    if not config.do_whole_word_mask:
        raise app.UsageError(f"{flag} needs --do_whole_word_mask.")
    if config.spm_model_file:
        raise app.UsageError(
            f"{flag} needs a WordPiece --vocab_file: SentencePiece pieces are not characters.")
    if config.word_ref_file and not os.path.isfile(config.word_ref_file):
        raise app.UsageError(f"--word_ref_file={config.word_ref_file}: no such file.")
    return True


def main(argv: Sequence[str], flag_values: flags.FlagValues = FLAGS) -> None:
    """Runs the script with the parsed `flag_values` (those of `define_flags`)."""
    del argv
    if not FLAGS["verbosity"].present:  # the original's INFO; --verbosity keeps its meaning
        logging.set_verbosity(logging.INFO)
    bert_logging.configure()
    config = flag_values
    _require_flags(config, "input_file", "output_file")
    if not config.vocab_file and not config.spm_model_file:
        raise app.UsageError("--vocab_file (or --spm_model_file) is required.")
    tokenizer_config = dict(
        vocab_file=config.vocab_file, do_lower_case=config.do_lower_case,
        spm_model_file=config.spm_model_file)
    segmented_words = _check_word_flags(config)
    tokenizer = tokenization.create_tokenizer(**tokenizer_config)
    tokenization.require_tokens(
        tokenizer, tokenization.PRETRAINING_TOKENS, "masked-LM training data")
    if (config.do_whole_word_mask and not segmented_words
            and not VocabIds.from_vocab(tokenizer.vocab).subword_ids):
        logging.warning(
            "--do_whole_word_mask finds words by their '##' pieces, and this vocab has none: "
            "every token is masked on its own.")
    options = InstanceOptions(
        max_seq_length=config.max_seq_length,
        max_predictions_per_seq=config.max_predictions_per_seq,
        masked_lm_prob=config.masked_lm_prob,
        short_seq_prob=config.short_seq_prob,
        dupe_factor=config.dupe_factor,
        do_whole_word_mask=config.do_whole_word_mask,
        segmented_words=segmented_words,
        sentence_order_prediction=config.sentence_order_prediction,
        ngram_masking=config.ngram_masking,
    )
    word_flags = dict(
        encoding=text_files.check_encoding(config.input_encoding),
        word_segmenter=config.word_segmenter,
        word_ref_file=config.word_ref_file,
    )
    input_files = expand_input_patterns(config.input_file, sort=config.num_workers > 1)
    output_files = _output_files(config.output_file)
    logging.info("*** Reading from input files ***")
    for input_file in input_files:
        logging.info("  %s", input_file)

    with tfrecord_io.RoundRobinRecordWriter(output_files) as writer:
        if config.num_workers == 1:
            run_single_process(
                input_files, tokenizer, options, config.random_seed, writer, **word_flags)
        else:
            run_sharded(
                input_files, tokenizer_config, tokenizer.inv_vocab, options, config.random_seed,
                config.num_workers, int(config.shard_size_mb * 1024 * 1024), writer,
                **word_flags)
    logging.info("Wrote %d total instances", writer.num_written)


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(own=("random_seed",), required=("input_file", "output_file"))
    app.run(main)
