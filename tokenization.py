"""WordPiece and SentencePiece tokenizers for BERT, and vocabulary loading.

`FullTokenizer` gives, on any text, exactly the tokens of the original BERT tokenizer:

1. clean the text: drop NUL, U+FFFD and control characters (Cc/Cf except tab, newline and
   carriage return), and turn whitespace (those three, space and category Zs) into spaces;
2. put spaces around CJK ideographs;
3. split on whitespace as Python's `str.split()` does;
4. per chunk, when lower-casing: `str.lower()`, then NFD and drop nonspacing marks (Mn);
5. split every punctuation character (the non-alphanumeric printable ASCII and every Unicode
   `P*` character) off into a token of its own;
6. WordPiece: greedy longest-match-first against the vocab, `##` marking a word's later pieces,
   and `[UNK]` for a word that cannot be covered or is longer than 200 characters.

Steps 4-6 depend on one whitespace-free chunk alone, and natural text repeats the same chunks
over and over, so their result is cached per chunk in a bounded dict. Steps 1-2 are one
`str.translate` through a table filled lazily per code point, so that each Unicode lookup is
done once per process.

`SentencePieceTokenizer` offers the same interface for SentencePiece models (ALBERT,
multilingual models); `create_tokenizer` picks one of the two from the scripts' flags.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Protocol

import input_files

# The special tokens each use of a vocab needs. A vocab is accepted without them, as the
# original accepts it; the scripts check for the ones they need before any work.
CLS_TOKEN, SEP_TOKEN, MASK_TOKEN, UNK_TOKEN = "[CLS]", "[SEP]", "[MASK]", "[UNK]"
FEATURE_TOKENS = (CLS_TOKEN, SEP_TOKEN)  # model inputs: `[CLS] a [SEP] b [SEP]`
PRETRAINING_TOKENS = (CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)  # masked-LM training data
# SentencePiece marks the start of a word with this character (U+2581).
SPIECE_UNDERLINE = "\u2581"

# Entries per tokenizer cache. Large enough to hold the working set of words of a large
# corpus (natural text has a Zipfian word distribution), small enough to stay a few tens of MB.
_CACHE_SIZE = 100_000

_LOWER_CASED_MODELS = (
    "uncased_L-24_H-1024_A-16",
    "uncased_L-12_H-768_A-12",
    "multilingual_L-12_H-768_A-12",
    "chinese_L-12_H-768_A-12",
)
_CASED_MODELS = (
    "cased_L-12_H-768_A-12",
    "cased_L-24_H-1024_A-16",
    "multi_cased_L-12_H-768_A-12",
)


class InvalidVocabError(ValueError):
    """A vocab or SentencePiece model file that cannot be used; the message names the file."""


class Tokenizer(Protocol):
    """What every script needs from a tokenizer, WordPiece or SentencePiece."""

    vocab: Mapping[str, int]
    inv_vocab: Mapping[int, str]
    source_file: str  # the vocab or SentencePiece model file, for error messages

    def tokenize(self, text: str | bytes) -> list[str]: ...

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]: ...

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]: ...


def validate_case_matches_checkpoint(do_lower_case: bool, init_checkpoint: str | None) -> None:
    """Raises ValueError when `do_lower_case` contradicts a released checkpoint's name.

    Casing is not stored in `bert_config.json`, so the name of the released checkpoint's
    directory (e.g. `uncased_L-12_H-768_A-12/bert_model.ckpt`) is the only hint there is.
    """
    if not init_checkpoint:
        return
    match = re.match("^.*?([A-Za-z0-9_-]+)/bert_model.ckpt", init_checkpoint)
    if match is None:
        return
    model_name = match.group(1)
    if model_name in _LOWER_CASED_MODELS and not do_lower_case:
        given_flag, case_name, wanted_flag = "False", "lowercased", "True"
    elif model_name in _CASED_MODELS and do_lower_case:
        given_flag, case_name, wanted_flag = "True", "cased", "False"
    else:
        return
    raise ValueError(
        f"You passed in `--do_lower_case={given_flag}` with `--init_checkpoint="
        f"{init_checkpoint}`. However, `{model_name}` seems to be a {case_name} model, so you "
        f"should pass in `--do_lower_case={wanted_flag}` so that the fine-tuning matches how "
        "the model was pre-training. If this error is wrong, please just comment out this check."
    )


def convert_to_unicode(text: str | bytes) -> str:
    """Returns `text` as `str`; bytes are read as UTF-8 and undecodable bytes are dropped."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError(f"Unsupported string type: {type(text)}")


def printable_text(text: str | bytes) -> str:
    """Returns `text` as a `str` fit for printing or logging (the same as on Python 3)."""
    return convert_to_unicode(text)


_VOCAB_ENCODING_HINT = "vocab files are UTF-8, whatever --input_encoding says"


def _vocab_lines(data: bytes, vocab_file: str) -> list[str]:
    """Splits a vocab file into lines the way the original's `GFile.readline` loop saw them."""
    if input_files.is_lfs_pointer(data):
        raise InvalidVocabError(input_files.lfs_pointer_message(vocab_file, "vocab file"))
    # GFile's readline drops every carriage return, even one in the middle of a line.
    data = data.replace(b"\r", b"")
    text = input_files.decode(
        data, vocab_file, hint=_VOCAB_ENCODING_HINT, error_type=InvalidVocabError
    )
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    return lines


def load_vocab(vocab_file: str | os.PathLike) -> collections.OrderedDict[str, int]:
    """Reads a vocab file (one token a line) into an ordered `{token: line index}` dict.

    A token listed twice keeps the index of its last line, as in the original.
    """
    vocab_file = os.fspath(vocab_file)
    lines = _vocab_lines(input_files.read_bytes(vocab_file, "Vocab file"), vocab_file)
    if not lines:
        raise InvalidVocabError(f"Vocab file {vocab_file} is empty")
    vocab = collections.OrderedDict()
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    return vocab


class MissingTokenError(InvalidVocabError, KeyError):
    """A special token the vocab lacks where it is needed. Also a KeyError, which is what the
    original raised when converting such a token."""

    def __str__(self) -> str:
        return str(self.args[0])  # not KeyError's quoted repr


def require_tokens(tokenizer: Tokenizer, tokens: Iterable[str], needed_for: str) -> None:
    """Raises `MissingTokenError`, naming the vocab (or SentencePiece model) file and the
    tokens, when `tokenizer`'s vocab lacks any of `tokens` (needed for `needed_for`)."""
    missing = [token for token in tokens if token not in tokenizer.vocab]
    if missing:
        raise MissingTokenError(
            f"{tokenizer.source_file} has no {', '.join(missing)} token, needed for "
            f"{needed_for}; is it the vocab of a BERT model?"
        )


def convert_by_vocab(vocab: Mapping[Any, Any], items: Iterable[Any]) -> list[Any]:
    """Maps every item through `vocab` (tokens to ids or ids to tokens); KeyError if absent."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab: Mapping[str, int], tokens: Iterable[str]) -> list[int]:
    """Ids of `tokens` in `vocab`; KeyError for a token the vocab lacks."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab: Mapping[int, str], ids: Iterable[int]) -> list[str]:
    """Tokens of `ids` in `inv_vocab`; KeyError for an unknown id."""
    return convert_by_vocab(inv_vocab, ids)


def whitespace_tokenize(text: str) -> list[str]:
    """Splits `text` on runs of whitespace (Python's definition), ignoring both ends."""
    return text.split()


def _is_whitespace(char: str) -> bool:
    """Whether `char` becomes a space when cleaning: space, tab, newline, CR or category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Whether cleaning drops `char`: category Cc or Cf, except tab, newline and CR."""
    if char in "\t\n\r":
        return False  # these count as whitespace instead
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    """Whether `char` is split off as its own token: any Unicode P* or ASCII non-alphanumeric."""
    code_point = ord(char)
    # `^`, `$`, `` ` `` and the like are symbols, not punctuation, in Unicode, but the original
    # splits off every printable ASCII character that is not a letter or digit.
    if 33 <= code_point <= 47 or 58 <= code_point <= 64:
        return True
    if 91 <= code_point <= 96 or 123 <= code_point <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# CJK ideograph blocks (unified, extensions A-E and the compatibility ideographs). Hiragana,
# Katakana and Hangul are not here: those scripts separate words with spaces.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_chinese_char(code_point: int) -> bool:
    """Whether `code_point` is a CJK ideograph, which becomes a word of its own."""
    return any(first <= code_point <= last for first, last in _CJK_RANGES)


def is_chinese_character(char: str) -> bool:
    """Whether the character `char` is a CJK ideograph (a word of its own to BERT)."""
    return _is_chinese_char(ord(char))


class _LazyTable(dict):
    """A dict that computes a missing key's value once, with `compute`, and keeps it."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: Hashable) -> Any:
        value = self[key] = self._compute(key)
        return value


class _BoundedCache(_LazyTable):
    """A `_LazyTable` that forgets everything once it holds `max_size` entries.

    Dropping all entries at once keeps a hit a bare dict lookup (no recency bookkeeping);
    the frequent entries come back within a few lines of text.
    """

    def __init__(self, compute: Callable[[Any], Any], max_size: int) -> None:
        super().__init__(compute)
        self._max_size = max_size

    def __missing__(self, key: Hashable) -> Any:
        if len(self) >= self._max_size:
            self.clear()
        return super().__missing__(key)

    def __reduce__(self) -> tuple:
        # A pickled tokenizer (e.g. sent to a worker process) carries no cached entries.
        return type(self), (self._compute, self._max_size)


def _cleaned_and_spaced(code_point: int) -> str | None:
    """What cleaning and CJK spacing turn one character into (None: drop it)."""
    char = chr(code_point)
    if code_point in (0, 0xFFFD) or _is_control(char):
        return None
    if _is_whitespace(char):
        return " "
    if _is_chinese_char(code_point):
        return f" {char} "
    return char


def _kept_unless_nonspacing_mark(code_point: int) -> str | None:
    char = chr(code_point)
    return None if unicodedata.category(char) == "Mn" else char


# `str.translate` tables, filled one code point at a time as text shows them.
_CLEAN_AND_SPACE_CJK = _LazyTable(_cleaned_and_spaced)
_DROP_NONSPACING_MARKS = _LazyTable(_kept_unless_nonspacing_mark)
_PUNCTUATION = _LazyTable(_is_punctuation)  # keyed by character


def _whitespace_chunks(text: str | bytes) -> list[str]:
    """Steps 1-3: cleans `text`, spaces out CJK ideographs and splits it on whitespace."""
    return convert_to_unicode(text).translate(_CLEAN_AND_SPACE_CJK).split()


def _strip_accents(text: str) -> str:
    """Decomposes `text` (NFD) and drops the nonspacing marks, e.g. "é" -> "e"."""
    return unicodedata.normalize("NFD", text).translate(_DROP_NONSPACING_MARKS)


def _split_on_punctuation(text: str) -> list[str]:
    """Splits `text` into runs of non-punctuation and single punctuation characters."""
    if text.isascii() and text.isalnum():
        return [text]
    pieces = []
    start = 0
    for index, char in enumerate(text):
        if _PUNCTUATION[char]:
            if start < index:
                pieces.append(text[start:index])
            pieces.append(char)
            start = index + 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _flatten(token_groups: Iterable[Iterable[str]]) -> list[str]:
    return list(itertools.chain.from_iterable(token_groups))


class BasicTokenizer:
    """Cleans text, lower-cases it (optionally) and splits it on whitespace and punctuation.

    Results are cached per chunk of text, so `do_lower_case` is fixed at construction.
    """

    def __init__(self, do_lower_case: bool = True) -> None:
        """`do_lower_case`: lower-case the text and strip its accents."""
        self.do_lower_case = do_lower_case
        self._chunk_tokens = _BoundedCache(self._tokenize_chunk, _CACHE_SIZE)

    def tokenize(self, text: str | bytes) -> list[str]:
        """Returns the words and punctuation marks of `text` (str, or UTF-8 bytes)."""
        return _flatten(map(self._chunk_tokens.__getitem__, _whitespace_chunks(text)))

    def _tokenize_chunk(self, chunk: str) -> tuple[str, ...]:
        """Steps 4-5 for one whitespace-free chunk of cleaned text."""
        if self.do_lower_case:
            # The whole chunk is lower-cased before splitting: Greek final sigma depends on
            # the characters around it, punctuation included.
            chunk = chunk.lower()
            if not chunk.isascii():
                chunk = _strip_accents(chunk)
        # The inner split mirrors the original's last whitespace split of its output; it
        # matters only if case mapping or decomposition ever produced whitespace.
        return tuple(token for piece in _split_on_punctuation(chunk) for token in piece.split())


def words_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """The words of raw `text` by BasicTokenizer's rules, each with its span in `text`.

    Whitespace separates words; every punctuation mark and every CJK ideograph is a word of
    its own (so Chinese is split per character). Characters that cleaning drops (control
    characters, NUL, U+FFFD) stay inside the span of the word around them. Returns
    `(word, start, end)` with `text[start:end] == word`, in order; casing is left as it is.
    """
    words = []
    start = None
    for index, char in enumerate(text):
        if _is_whitespace(char):
            alone = False
        elif _is_punctuation(char) or _is_chinese_char(ord(char)):
            alone = True
        else:
            if start is None:
                start = index
            continue
        if start is not None:
            words.append((text[start:index], start, index))
            start = None
        if alone:
            words.append((char, index, index + 1))
    if start is not None:
        words.append((text[start:], start, len(text)))
    return words


class WordpieceTokenizer:
    """Splits words into the vocab's pieces, greedily taking the longest match first.

    For example "unaffable" becomes ["un", "##aff", "##able"] with a vocab holding those.
    Results are cached per word, so the vocab must not change after construction.
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        unk_token: str = "[UNK]",
        max_input_chars_per_word: int = 200,
    ) -> None:
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self._word_pieces = _BoundedCache(self._tokenize_word, _CACHE_SIZE)

    def tokenize(self, text: str | bytes) -> list[str]:
        """Returns the pieces of each whitespace-separated word of `text`, in order.

        `text` should already have been through `BasicTokenizer`.
        """
        words = whitespace_tokenize(convert_to_unicode(text))
        return _flatten(map(self._word_pieces.__getitem__, words))

    def _tokenize_word(self, word: str) -> tuple[str, ...]:
        if len(word) > self.max_input_chars_per_word:
            return (self.unk_token,)
        pieces = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return (self.unk_token,)  # no prefix of the rest of the word is in the vocab
            pieces.append(piece)
            start = end
        return tuple(pieces)


class FullTokenizer:
    """End-to-end WordPiece tokenization: `BasicTokenizer`, then `WordpieceTokenizer`.

    Results are cached per chunk of text: the vocab and casing are fixed at construction.
    """

    def __init__(self, vocab_file: str | os.PathLike, do_lower_case: bool = True) -> None:
        self.source_file = os.fspath(vocab_file)
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self._chunk_pieces = _BoundedCache(self._tokenize_chunk, _CACHE_SIZE)

    def tokenize(self, text: str | bytes) -> list[str]:
        """Returns the WordPiece tokens of `text` (str, or UTF-8 bytes)."""
        return _flatten(map(self._chunk_pieces.__getitem__, _whitespace_chunks(text)))

    def _tokenize_chunk(self, chunk: str) -> tuple[str, ...]:
        words = self.basic_tokenizer._tokenize_chunk(chunk)
        return tuple(_flatten(map(self.wordpiece_tokenizer._tokenize_word, words)))

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Vocab ids of `tokens`; KeyError for a token the vocab lacks (`MissingTokenError`
        for `[UNK]`, which `tokenize` gives a word that has no pieces in the vocab)."""
        try:
            return convert_by_vocab(self.vocab, tokens)
        except KeyError as error:
            if error.args and error.args[0] == self.wordpiece_tokenizer.unk_token:
                require_tokens(self, [UNK_TOKEN], "words that have no pieces in the vocab")
            raise

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of vocab ids; KeyError for an id the vocab lacks."""
        return convert_by_vocab(self.inv_vocab, ids)


class SentencePieceTokenizer:
    """Tokenizes with a SentencePiece model, behind the same interface as `FullTokenizer`.

    Text is prepared as ALBERT prepares it for its models: whitespace runs collapse to one
    space and, with `do_lower_case`, the text is decomposed (NFKD), stripped of combining
    marks and lower-cased. Without `do_lower_case` the text is kept as is (ALBERT strips
    accents even then, but a cased model is usually meant to see them).
    """

    def __init__(self, spm_model_file: str | os.PathLike, do_lower_case: bool = True) -> None:
        # Imported here so that WordPiece users do not need sentencepiece installed.
        import sentencepiece

        spm_model_file = os.fspath(spm_model_file)
        self.source_file = spm_model_file
        self.do_lower_case = do_lower_case
        self.sp_model = sentencepiece.SentencePieceProcessor()
        model_proto = input_files.read_bytes(spm_model_file, "SentencePiece model file")
        if input_files.is_lfs_pointer(model_proto):
            raise InvalidVocabError(
                input_files.lfs_pointer_message(spm_model_file, "SentencePiece model")
            )
        try:
            self.sp_model.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as error:
            raise InvalidVocabError(
                f"{spm_model_file} is not a SentencePiece model: {error}"
            ) from None
        self.vocab = {
            self.sp_model.IdToPiece(index): index for index in range(self.sp_model.GetPieceSize())
        }
        self.inv_vocab = {index: piece for piece, index in self.vocab.items()}

    def tokenize(self, text: str | bytes) -> list[str]:
        """Returns the SentencePiece pieces of `text`; a piece starting a word begins with ▁."""
        pieces = self.sp_model.EncodeAsPieces(self._prepare(convert_to_unicode(text)))
        return self._split_comma_after_digit(pieces)

    def _prepare(self, text: str) -> str:
        text = " ".join(text.split())
        if self.do_lower_case:
            text = unicodedata.normalize("NFKD", text)
            text = "".join(char for char in text if not unicodedata.combining(char))
            text = text.lower()
        return text

    def _split_comma_after_digit(self, pieces: list[str]) -> list[str]:
        """Re-encodes pieces like "▁1," or "0," so the comma after a digit stands alone.

        ALBERT and XLNet built their training data this way, so numbers such as "10,000" get
        the pieces their SentencePiece models learned.
        """
        result = []
        for piece in pieces:
            if len(piece) < 2 or piece[-1] != "," or not piece[-2].isdigit():
                result.append(piece)
                continue
            sub_pieces = self.sp_model.EncodeAsPieces(piece[:-1].replace(SPIECE_UNDERLINE, ""))
            starts_word = piece.startswith(SPIECE_UNDERLINE)
            if not starts_word and sub_pieces and sub_pieces[0].startswith(SPIECE_UNDERLINE):
                # Re-encoding marked a word start that the piece, inside a word, did not have.
                first = sub_pieces[0][1:]
                sub_pieces = ([first] if first else []) + sub_pieces[1:]
            result.extend(sub_pieces)
            result.append(",")
        return result

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens`; a piece the model does not know gets the model's unknown id."""
        return [self.sp_model.PieceToId(token) for token in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Pieces of ids; IndexError for an id outside the model."""
        return [self.sp_model.IdToPiece(index) for index in ids]


def create_tokenizer(
    vocab_file: str | os.PathLike | None = None,
    do_lower_case: bool = True,
    spm_model_file: str | os.PathLike | None = None,
) -> Tokenizer:
    """The tokenizer the flags ask for: SentencePiece when `spm_model_file` is set (any
    `vocab_file` is then ignored, as in ALBERT's scripts), otherwise WordPiece."""
    if spm_model_file:
        return SentencePieceTokenizer(spm_model_file, do_lower_case=do_lower_case)
    if vocab_file:
        return FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    raise ValueError("Set --vocab_file (WordPiece) or --spm_model_file (SentencePiece).")
