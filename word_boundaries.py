"""Word boundaries for whole-word masking of Chinese text, where WordPiece has no `##` marks.

BERT's WordPiece splits Chinese into one token per character, so the original
`--do_whole_word_mask` (which groups a word's `##` pieces) masks every character alone. Here
the words come from a segmenter (jieba) or from a reference file in the format of
transformers' `run_chinese_ref.py`, and are recorded on the token ids themselves: an id with
`CONTINUES_WORD` set continues the word of the token before it. The tokens stay the plain
characters; only the grouping changes. Within such text, English and other words still group
their `##` pieces, which are marked the same way.
"""

import json
import logging
from collections.abc import Iterator
from typing import NamedTuple

import tokenization

# Set on a token id that continues the word of the previous token. Vocab ids are far below
# it, and a flagged id never leaves create_pretraining_data (`plain_id` strips it).
CONTINUES_WORD = 1 << 40

WORD_SEGMENTERS = ("jieba",)


def plain_id(token_id: int) -> int:
    """The vocab id without the word-continuation flag."""
    return token_id & ~CONTINUES_WORD


def continues_word(token_id: int) -> bool:
    return bool(token_id & CONTINUES_WORD)


def flag_continuations(token_ids: list[int], continues: list[bool]) -> list[int]:
    """`token_ids` with `CONTINUES_WORD` set where `continues` is true."""
    return [
        token_id | CONTINUES_WORD if flag else token_id
        for token_id, flag in zip(token_ids, continues, strict=True)
    ]


class JiebaSegmenter:
    """jieba's accurate mode (HMM on) with the dictionary jieba ships, so the words depend
    only on the installed jieba version. Its loading messages are silenced."""

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        # A Tokenizer of our own, not jieba's shared default one, which a user dictionary
        # loaded elsewhere in the process would change.
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()

    def words(self, line: str) -> list[str]:
        return self._tokenizer.lcut(line, cut_all=False, HMM=True)

    def cjk_continuations(self, line: str) -> list[bool]:
        """For each CJK character of `line`, in order: whether it continues a word.

        As in run_chinese_ref.py, only words of two or more characters that are all CJK are
        grouped; a CJK character inside a mixed word ("T恤") stands alone.
        """
        flags = []
        for word in self.words(line):
            chars = [char for char in word if tokenization.is_chinese_character(char)]
            grouped = len(word) > 1 and len(chars) == len(word)
            flags.extend(grouped and index > 0 for index in range(len(chars)))
        return flags


class WordRef(NamedTuple):
    """One line of a reference file: token positions (1 = the line's first token, as after
    [CLS]) that continue a word."""

    positions: list[int]
    # "path:line", for error messages.
    source: str


class WordRefError(ValueError):
    """A reference file that does not fit the input."""


def read_word_refs(path: str) -> Iterator[WordRef]:
    """The JSON lists of `path`, one per non-blank line (run_chinese_ref.py writes one for
    each non-blank line of its input, blank lines dropped)."""
    with open(path, encoding="utf-8") as reader:
        for line_number, line in enumerate(reader, start=1):
            if not line.strip():
                continue
            source = f"{path}:{line_number}"
            try:
                positions = json.loads(line)
            except json.JSONDecodeError as error:
                raise WordRefError(f"{source}: not a JSON list ({error.msg}).") from None
            if not isinstance(positions, list) or not all(
                    isinstance(p, int) and not isinstance(p, bool) for p in positions):
                raise WordRefError(f"{source}: expected a JSON list of token positions.")
            yield WordRef(positions, source)


class WordBoundaries:
    """WordPiece tokens of a line and, for each, whether it continues the previous token's
    word: `##` pieces always, CJK characters as the segmenter or the reference file says."""

    def __init__(
        self, tokenizer: tokenization.FullTokenizer, segmenter: JiebaSegmenter | None = None
    ) -> None:
        self._tokenizer = tokenizer
        self._segmenter = segmenter

    def tokens_and_continuations(
        self, line: str, ref: WordRef | None = None, where: str = ""
    ) -> tuple[list[str], list[bool]]:
        """The line's tokens (exactly `tokenizer.tokenize(line)`) and their continuation flags.

        With a segmenter, `ref` is ignored; without one, `ref` gives the positions. `where`
        names the line in errors.
        """
        tokens: list[str] = []
        continues: list[bool] = []
        cjk_token_indices = []
        # BasicTokenizer puts every CJK character in a word of its own, which WordPiece leaves
        # as one token (the character or [UNK]): those tokens match the line's CJK characters
        # one to one, in order.
        for word in self._tokenizer.basic_tokenizer.tokenize(line):
            pieces = self._tokenizer.wordpiece_tokenizer.tokenize(word)
            if len(word) == 1 and tokenization.is_chinese_character(word):
                cjk_token_indices.append(len(tokens))
            tokens.extend(pieces)
            continues.extend(index > 0 for index in range(len(pieces)))
        if self._segmenter is not None:
            cjk_flags = self._segmenter.cjk_continuations(line)
            if len(cjk_flags) != len(cjk_token_indices):
                raise ValueError(
                    f"{where}: jieba found {len(cjk_flags)} CJK characters where the tokenizer "
                    f"found {len(cjk_token_indices)}.")
            for index, flag in zip(cjk_token_indices, cjk_flags, strict=True):
                continues[index] = flag
        elif ref is not None:
            for position in ref.positions:
                if not 1 <= position <= len(tokens):
                    raise WordRefError(
                        f"{ref.source}: position {position} is outside the {len(tokens)} "
                        f"tokens of the input line {where} (positions count [CLS] as 0); "
                        "was the reference file made from this input and vocab?")
                continues[position - 1] = True
        if continues:
            continues[0] = False  # a word never runs on from the previous line
        return tokens, continues
