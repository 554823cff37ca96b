"""The encoder's input layout for one text or a pair: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.

Every task that feeds sentences to BERT (classification, feature extraction, the predictor,
multiple choice) builds its inputs here, so the truncation rule and the segment ids are the
same everywhere and the same as the original's.
"""

from __future__ import annotations

import dataclasses

import tokenization


@dataclasses.dataclass
class EncoderInputs:
    """The model inputs of one sequence.

    Attributes:
      tokens: the real tokens, `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, unpadded.
      input_ids: `[max_seq_length]` token ids, zero-padded.
      input_mask: `[max_seq_length]` 1 for real tokens, 0 for padding.
      segment_ids: `[max_seq_length]` 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`, 0 for padding.
    """

    tokens: list[str]
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]


def truncate_seq_pair(tokens_a: list[str], tokens_b: list[str], max_length: int) -> None:
    """Shortens the pair in place to at most `max_length` tokens in total.

    One token at a time comes off the end of the longer sequence (of `tokens_b` on a tie),
    which keeps more of a short sequence than cutting both by the same fraction would: a
    short text tends to carry more information per token.
    """
    while len(tokens_a) + len(tokens_b) > max_length:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        longer.pop()


def truncate_context_first(
    tokens_a: list[str], tokens_b: list[str], max_length: int, max_b_length: int
) -> None:
    """Shortens the pair in place to at most `max_length` tokens, the multiple-choice way.

    `tokens_b` (question and option, the option last) first keeps only its last
    `max_b_length` tokens, so the option survives a long question; then `tokens_a` (the
    context) loses tokens off its end until the pair fits. Only when `tokens_b` alone is
    longer than `max_length` is it cut further, again keeping its end.
    """
    del tokens_b[: max(0, len(tokens_b) - max_b_length)]
    del tokens_a[max(0, max_length - len(tokens_b)) :]
    del tokens_b[: max(0, len(tokens_a) + len(tokens_b) - max_length)]


def check_max_seq_length(max_seq_length: int, flag_name: str = "max_seq_length") -> None:
    """`[CLS] a [SEP]` needs three positions at least."""
    if max_seq_length < 3:
        raise ValueError(
            f"--{flag_name} must be at least 3 ([CLS] a [SEP]), got {max_seq_length}"
        )


def pair_inputs(
    tokens_a: list[str],
    tokens_b: list[str] | None,
    max_seq_length: int,
    tokenizer: tokenization.Tokenizer,
    max_b_length: int | None = None,
) -> EncoderInputs:
    """Truncates, lays out and pads already tokenized text(s) to `[max_seq_length]`.

    A pair is cut to `max_seq_length - 3` tokens, longest-first (`truncate_seq_pair`), or
    with `max_b_length` context-first (`truncate_context_first`, multiple choice); a single
    sequence (or a pair whose `tokens_b` is empty) is cut to `max_seq_length - 2`. The input
    lists are not modified.
    """
    check_max_seq_length(max_seq_length)
    tokens_a = list(tokens_a)
    if tokens_b:
        tokens_b = list(tokens_b)
        if max_b_length is None:
            truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)
        else:
            truncate_context_first(tokens_a, tokens_b, max_seq_length - 3, max_b_length)
    else:
        tokens_a = tokens_a[: max_seq_length - 2]
    tokens = ["[CLS]", *tokens_a, "[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += [*tokens_b, "[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    padding = [0] * (max_seq_length - len(input_ids))
    return EncoderInputs(
        tokens=tokens,
        input_ids=input_ids + padding,
        input_mask=[1] * len(input_ids) + padding,
        segment_ids=segment_ids + padding,
    )


def text_inputs(
    text_a: str,
    text_b: str | None,
    max_seq_length: int,
    tokenizer: tokenization.Tokenizer,
) -> EncoderInputs:
    """`pair_inputs` of raw text: `text_b` empty or None (or without tokens) gives a single
    sequence."""
    tokens_a = tokenizer.tokenize(text_a)
    tokens_b = tokenizer.tokenize(text_b) if text_b else None
    return pair_inputs(tokens_a, tokens_b, max_seq_length, tokenizer)
