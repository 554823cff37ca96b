"""Speed of WordPiece tokenization: ours against a pure-Python and a Rust implementation.

Builds (once, into bench/data/, which git ignores) a deterministic mixed English/Chinese corpus
and a vocab derived from it, then times one `tokenize` call per line for:

  ours          tokenization.FullTokenizer
  transformers  transformers' pure-Python BertTokenizer (the slow one), if importable
  rust          the `tokenizers` library: BertNormalizer + BertPreTokenizer + WordPiece

and counts the lines whose tokens differ from ours. Our tokenizer needs no TensorFlow, so this
runs in any Python 3.11 venv; the competitors are skipped, with a message, when missing:

  python -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install transformers tokenizers
  /tmp/benchvenv/bin/python bench/bench_tokenization.py --corpus_mb 20
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import random
import sys
import time
from collections.abc import Callable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

import tokenization  # noqa: E402  (needs the repository root on the path first)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

COMMON_WORDS = (
    "the of and to in a is was for on that with as by he it at from his an were are which "
    "this be has had not or but their first one its new after who they have her she two been "
    "other when there all during into school time may years more most only over city some "
    "world would where later up such used many can state about national out known university "
    "united then made season also between both under three however film team while year game "
    "being people because around each against since early through river american music area "
    "government several well these before album war north south until main born could series "
    "following including part high called within second public members although number like "
    "played became company history church small local released another family four major "
    "work will what them long march house john best group did him any same off based life "
    "where music old large york won left found city though still days record general former"
).split()
ACCENTED_WORDS = "café naïve résumé façade Zürich São Paulo México Ångström Dvořák Łódź".split()
# Common Chinese characters (all inside the CJK Unified Ideographs block).
CHINESE_CHARACTERS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
    "过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都"
    "两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重"
    "新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想"
)
SYLLABLES = (
    "ka ri to mo na el an ber ston ville ing er ation ous ly ment al ic ist ism pro con dis "
    "tra qu ex or ia os ten sch berg ham ford ley wick dal mar tin ov sk ez ine"
).split()


def make_rare_words(rng: random.Random, count: int) -> list[str]:
    """Invented words (names, jargon) that give the corpus a long tail of rare words."""
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(count)]


def english_sentence(rng: random.Random, words: list[str], cum_weights: list[float]) -> str:
    chosen = rng.choices(words, cum_weights=cum_weights, k=rng.randint(6, 30))
    if rng.random() < 0.3:
        chosen.insert(rng.randrange(len(chosen)), rng.choice(ACCENTED_WORDS))
    if rng.random() < 0.2:
        chosen.insert(rng.randrange(len(chosen)), f"{rng.randint(1, 9999):,}")
    if rng.random() < 0.1:
        chosen.insert(rng.randrange(len(chosen)), f"({rng.choice(words[:500])})")
    if rng.random() < 0.05:
        chosen.insert(rng.randrange(len(chosen)), f"\u201c{rng.choice(words[:500])}\u201d")
    for index in range(len(chosen)):
        if rng.random() < 0.08:
            chosen[index] = chosen[index].capitalize()
        if rng.random() < 0.06:
            chosen[index] += rng.choice(",;:")
    sentence = " ".join(chosen)
    return sentence[0].upper() + sentence[1:] + rng.choice("..........?!")


def chinese_sentence(rng: random.Random) -> str:
    clauses = []
    for _ in range(rng.randint(1, 4)):
        clauses.append("".join(rng.choices(CHINESE_CHARACTERS, k=rng.randint(4, 16))))
    sentence = "，".join(clauses) + rng.choice("。。。！？")
    if rng.random() < 0.2:
        sentence = rng.choice(["「", "《"]) + sentence + rng.choice(["」", "》"])
    return sentence


# Rare but real inputs where BERT tokenizers are known to disagree: literal special tokens,
# format and control characters, unusual spaces, the replacement character, very long words.
ODD_FRAGMENTS = [
    "[CLS]",
    "[SEP] [MASK]",
    "co\u00adop",
    "a\u200db",
    "x\u00a0y",
    "tab\tbed",
    "bad \ufffd byte",
    "\u00bfqu\u00e9?",
    "\u2028line",
    "zero\u200bwidth",
    "ΑΣ.Α",
    "ab" * 80,
    "ab" * 120,
]


def odd_sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(ODD_FRAGMENTS, k=rng.randint(1, 3)))


def write_corpus(path: str, size_bytes: int, seed: int = 12345) -> None:
    """Lines of 1-6 sentences; about one line in five is Chinese, some mix both, and one in
    two hundred carries an odd fragment."""
    rng = random.Random(seed)
    words = COMMON_WORDS + make_rare_words(rng, 40_000)
    cum_weights = list(itertools.accumulate(1.0 / (rank + 5) ** 1.1 for rank in range(len(words))))
    written = 0
    with open(path, "w", encoding="utf-8") as writer:
        while written < size_bytes:
            kind = rng.random()
            count = rng.randint(1, 6)
            if kind < 0.2:
                line = "".join(chinese_sentence(rng) for _ in range(count))
            elif kind < 0.25:
                line = english_sentence(rng, words, cum_weights) + chinese_sentence(rng)
            else:
                line = " ".join(english_sentence(rng, words, cum_weights) for _ in range(count))
            if rng.random() < 0.005:
                line += " " + odd_sentence(rng)
            line += "\n"
            writer.write(line)
            written += len(line.encode("utf-8"))


def write_vocab(corpus_path: str, vocab_path: str, word_count: int = 25_000) -> None:
    """A realistic vocab: special tokens, characters, frequent words and `##` suffixes."""
    basic = tokenization.BasicTokenizer(do_lower_case=True)
    word_counts: collections.Counter[str] = collections.Counter()
    with open(corpus_path, encoding="utf-8") as reader:
        for line_number, line in enumerate(reader):
            if line_number >= 200_000:
                break
            word_counts.update(basic.tokenize(line))
    characters = sorted({char for word in word_counts for char in word})
    suffix_counts: collections.Counter[str] = collections.Counter()
    for word, count in word_counts.items():
        for length in range(2, min(6, len(word))):
            suffix_counts["##" + word[-length:]] += count
    tokens = SPECIAL_TOKENS + [f"[unused{index}]" for index in range(100)]
    tokens += characters + ["##" + char for char in characters]
    tokens += [word for word, _ in word_counts.most_common(word_count) if len(word) > 1]
    tokens += [suffix for suffix, _ in suffix_counts.most_common(5_000)]
    unique_tokens = list(dict.fromkeys(tokens))
    with open(vocab_path, "w", encoding="utf-8") as writer:
        writer.writelines(token + "\n" for token in unique_tokens)


Batch = Callable[[list[str]], list[list[str]]]
MakeBatch = Callable[[], Batch]


def one_call_per_line(tokenize: Callable[[str], list[str]]) -> Batch:
    return lambda lines: [tokenize(line) for line in lines]


def transformers_competitors(vocab_path: str) -> dict[str, MakeBatch]:
    """The pure-Python BertTokenizer of transformers (named BertTokenizerLegacy from v5 on)."""
    try:
        from transformers.models.bert import tokenization_bert
    except ImportError as error:
        print(f"skipping transformers: not importable ({error})")
        return {}
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

        slow_class = BertTokenizerLegacy
    except ImportError:
        slow_class = tokenization_bert.BertTokenizer  # pure Python before v5
    tokenizer = slow_class(vocab_path, do_lower_case=True)  # it keeps no cache between calls
    return {"transformers": lambda: one_call_per_line(tokenizer.tokenize)}


def rust_competitors(vocab_path: str) -> dict[str, MakeBatch]:
    """`tokenizers` assembled like BERT: one `encode` per line, and `encode_batch` (threads)."""
    try:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    except ImportError as error:
        print(f"skipping rust tokenizers: not importable ({error})")
        return {}
    vocab = tokenization.load_vocab(vocab_path)
    wordpiece = models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=200)
    tokenizer = Tokenizer(wordpiece)
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    def encode_batch(lines: list[str]) -> list[list[str]]:
        encodings = tokenizer.encode_batch(lines, add_special_tokens=False)
        return [encoding.tokens for encoding in encodings]

    def encode(line: str) -> list[str]:
        return tokenizer.encode(line, add_special_tokens=False).tokens

    return {
        "rust": lambda: one_call_per_line(encode),
        "rust batch": lambda: encode_batch,
    }


def time_tokenizer(
    make_tokenizer: Callable[[], Batch], lines: list[str], repeats: int
) -> tuple[float, list[list[str]]]:
    """Best wall time of `repeats` runs, each with a new tokenizer (so with cold caches)."""
    best = float("inf")
    for _ in range(repeats):
        tokenize_lines = make_tokenizer()
        start = time.perf_counter()
        outputs = tokenize_lines(lines)
        best = min(best, time.perf_counter() - start)
    return best, outputs


def report(
    name: str, seconds: float, outputs: list[list[str]], our_seconds: float, differing
) -> None:
    lines_per_second = len(outputs) / seconds
    tokens_per_second = sum(map(len, outputs)) / seconds
    print(
        f"{name:<14}{lines_per_second:>10,.0f}{tokens_per_second:>13,.0f}"
        f"{seconds:>9.1f}{seconds / our_seconds:>11.2f}  {differing}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus_mb", type=float, default=20.0, help="corpus size in MB")
    parser.add_argument("--max_lines", type=int, default=0, help="time only the first N lines")
    parser.add_argument("--repeats", type=int, default=1, help="report the best of N runs")
    args = parser.parse_args()

    data_dir = os.path.join(BENCH_DIR, "data")
    os.makedirs(data_dir, exist_ok=True)
    corpus_path = os.path.join(data_dir, f"tokenization_corpus_{args.corpus_mb:g}mb.txt")
    vocab_path = os.path.join(data_dir, f"tokenization_vocab_{args.corpus_mb:g}mb.txt")
    if not os.path.exists(corpus_path):
        write_corpus(corpus_path, int(args.corpus_mb * 1_000_000))
    if not os.path.exists(vocab_path):
        write_vocab(corpus_path, vocab_path)
    with open(corpus_path, encoding="utf-8") as reader:
        lines = [line.rstrip("\n") for line in reader]
    if args.max_lines:
        lines = lines[: args.max_lines]
    vocab_size = len(tokenization.load_vocab(vocab_path))
    print(f"corpus: {corpus_path}: {len(lines)} lines timed; vocab: {vocab_size} tokens")

    def make_ours() -> Batch:
        return one_call_per_line(
            tokenization.FullTokenizer(vocab_path, do_lower_case=True).tokenize
        )

    our_seconds, our_outputs = time_tokenizer(make_ours, lines, args.repeats)
    header = ("tokenizer", "lines/s", "tokens/s", "seconds", "time/ours", "differ")
    print("{:<14}{:>10}{:>13}{:>9}{:>11}  {}".format(*header))
    report("ours", our_seconds, our_outputs, our_seconds, "-")
    competitors = {**transformers_competitors(vocab_path), **rust_competitors(vocab_path)}
    for name, make_tokenizer in competitors.items():
        seconds, outputs = time_tokenizer(make_tokenizer, lines, args.repeats)
        pairs = zip(outputs, our_outputs, strict=True)
        differing = sum(theirs != mine for theirs, mine in pairs)
        report(name, seconds, outputs, our_seconds, differing)


if __name__ == "__main__":
    main()
