"""Tests for tokenization.py.

Expected tokens below were worked out by hand from the original BERT tokenizer's rules (and
agree with it). The randomized test compares against `reference_*`, a deliberately plain
re-implementation of those rules written here, character by character.
"""

import os
import pickle
import random
import subprocess
import sys
import unicodedata

import pytest

import tokenization

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_vocab(directory, tokens, name="vocab.txt"):
    path = directory / name
    path.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------------------------
# Reference implementation, written from the rules in the original's documentation.


def reference_is_cjk(code_point):
    ranges = [
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    ]
    return any(low <= code_point <= high for low, high in ranges)


def reference_is_punctuation(char):
    code_point = ord(char)
    ascii_symbol = (
        33 <= code_point <= 47
        or 58 <= code_point <= 64
        or 91 <= code_point <= 96
        or 123 <= code_point <= 126
    )
    return ascii_symbol or unicodedata.category(char)[0] == "P"


def reference_basic_tokenize(text, do_lower_case):
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="ignore")
    spaced = ""
    for char in text:
        category = unicodedata.category(char)
        if char in ("\x00", "\ufffd"):
            continue
        if char in "\t\n\r " or category == "Zs":
            spaced += " "
        elif category in ("Cc", "Cf"):
            continue
        elif reference_is_cjk(ord(char)):
            spaced += " " + char + " "
        else:
            spaced += char
    tokens = []
    for chunk in spaced.split():
        if do_lower_case:
            decomposed = unicodedata.normalize("NFD", chunk.lower())
            chunk = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
        word = ""
        for char in chunk:
            if reference_is_punctuation(char):
                tokens += word.split() + [char]
                word = ""
            else:
                word += char
        tokens += word.split()
    return tokens


def reference_wordpiece(word, vocab, max_chars=200):
    if len(word) > max_chars:
        return ["[UNK]"]
    pieces = []
    rest = word
    while rest:
        prefix = "" if len(pieces) == 0 else "##"
        length = len(rest)
        while length > 0 and prefix + rest[:length] not in vocab:
            length -= 1
        if length == 0:
            return ["[UNK]"]
        pieces.append(prefix + rest[:length])
        rest = rest[length:]
    return pieces


def reference_full_tokenize(text, vocab, do_lower_case):
    pieces = []
    for word in reference_basic_tokenize(text, do_lower_case):
        pieces += reference_wordpiece(word, vocab)
    return pieces


# --------------------------------------------------------------------------------------------
# Basic tokenization, rule by rule: (text, lower-cased tokens, cased tokens).

BASIC_CASES = {
    "original example": (
        " \tHeLLo!how  \n Are yoU?  ",
        ["hello", "!", "how", "are", "you", "?"],
        ["HeLLo", "!", "how", "Are", "yoU", "?"],
    ),
    "empty": ("", [], []),
    "only whitespace": (" \t\n\r\u3000 ", [], []),
    "accents": (
        "H\u00e9llo \u00d1and\u00fa",
        ["hello", "nandu"],
        ["H\u00e9llo", "\u00d1and\u00fa"],
    ),
    "combining mark": ("e\u0301t\u00e9", ["ete"], ["e\u0301t\u00e9"]),
    "lone combining mark vanishes when lower-casing": ("\u0301", [], ["\u0301"]),
    "dotted capital I loses its dot": ("\u0130stanbul", ["istanbul"], ["\u0130stanbul"]),
    "kana voicing mark is Mn": (
        "\u3072\u3089\u304c\u306a",
        ["\u3072\u3089\u304b\u306a"],
        ["\u3072\u3089\u304c\u306a"],
    ),
    "hangul decomposes to jamo": ("\ud55c", ["\u1112\u1161\u11ab"], ["\ud55c"]),
    # The chunk is lower-cased before the punctuation split, so final sigma sees past ".".
    "sigma followed by a letter": (
        "\u0391\u03a3.\u0391",
        ["\u03b1\u03c3", ".", "\u03b1"],
        ["\u0391\u03a3", ".", "\u0391"],
    ),
    "final sigma": ("\u0391\u03a3.", ["\u03b1\u03c2", "."], ["\u0391\u03a3", "."]),
    "cjk ideographs": ("ah\u535a\u63a8zz", ["ah", "\u535a", "\u63a8", "zz"], None),
    # A compatibility ideograph is spaced out, then NFD maps it to its unified twin.
    "cjk extension b and compatibility": (
        "\U00020000x\uf900y",
        ["\U00020000", "x", "\u8c48", "y"],
        ["\U00020000", "x", "\uf900", "y"],
    ),
    "just past the cjk ranges": ("a\U0002ceb0b\u4dc0c", ["a\U0002ceb0b\u4dc0c"], None),
    "ascii symbols are punctuation": (
        "a^b$c`d~e+f<g|h",
        ["a", "^", "b", "$", "c", "`", "d", "~", "e", "+", "f", "<", "g", "|", "h"],
        None,
    ),
    "unicode punctuation": (
        "\u00abhi\u00bb x\u2014y \u4e2d\u3002 a\u00b7b",
        ["\u00ab", "hi", "\u00bb", "x", "\u2014", "y", "\u4e2d", "\u3002", "a", "\u00b7", "b"],
        None,
    ),
    "inverted question mark": (
        "\u00bfQu\u00e9?",
        ["\u00bf", "que", "?"],
        ["\u00bf", "Qu\u00e9", "?"],
    ),
    "non-ascii symbols are not punctuation": (
        "\u20ac5 a\u00b1b a\U0001f600b a\u0e3fb",
        ["\u20ac5", "a\u00b1b", "a\U0001f600b", "a\u0e3fb"],
        None,
    ),
    "control characters are dropped": ("a\x00b\x07c\x7fd\x1ce\x85f", ["abcdef"], None),
    "format characters are dropped": ("ab\u200dcd\u200be\xadf\ufeffg", ["abcdefg"], None),
    "replacement character is dropped": ("a\ufffdb", ["ab"], None),
    "private use is kept whole": ("a\ue000b \U000f0000", ["a\ue000b", "\U000f0000"], None),
    "nbsp and ideographic space split": ("a\xa0b\u3000c\u2009d", ["a", "b", "c", "d"], None),
    "line separators split through str.split": ("a\u2028b\u2029c", ["a", "b", "c"], None),
    "literal special token text is split": (
        "[CLS] x",
        ["[", "cls", "]", "x"],
        ["[", "CLS", "]", "x"],
    ),
    "ligature is not decomposed by NFD": ("\ufb01", ["\ufb01"], None),
    "kelvin sign lower-cases to ascii": ("\u212a", ["k"], ["\u212a"]),
}


@pytest.mark.parametrize("name", sorted(BASIC_CASES))
def test_basic_tokenizer_rules(name):
    text, lower_expected, cased_expected = BASIC_CASES[name]
    assert tokenization.BasicTokenizer(do_lower_case=True).tokenize(text) == lower_expected
    if cased_expected is None:
        cased_expected = lower_expected
    assert tokenization.BasicTokenizer(do_lower_case=False).tokenize(text) == cased_expected


def test_basic_tokenizer_reads_bytes_as_utf8_ignoring_bad_bytes():
    tokenizer = tokenization.BasicTokenizer()
    assert tokenizer.tokenize("H\u00e9llo".encode()) == ["hello"]
    assert tokenizer.tokenize(b"ab\xffcd \xe4\xb8") == ["abcd"]
    assert tokenizer.tokenize(b"\xe4\xb8\xad\xed\xa0\x80x") == ["\u4e2d", "x"]


def test_non_text_input_is_rejected():
    with pytest.raises(ValueError, match="Unsupported string type"):
        tokenization.BasicTokenizer().tokenize(42)


def test_character_classes():
    assert tokenization._is_whitespace("\u00a0") and tokenization._is_whitespace("\t")
    assert not tokenization._is_whitespace("\u2028")  # Zl: str.split handles it instead
    assert tokenization._is_control("\u0005") and tokenization._is_control("\u200d")
    assert not tokenization._is_control("\r") and not tokenization._is_control("\ue000")
    assert tokenization._is_punctuation("$") and tokenization._is_punctuation("\u3001")
    assert not tokenization._is_punctuation("\u20ac") and not tokenization._is_punctuation(" ")


# --------------------------------------------------------------------------------------------
# WordPiece and the full tokenizer.

# The original's tokenization_test.py vocab, exactly: it has no [MASK] (or [PAD]).
ORIGINAL_TEST_TOKENS = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un"]
ORIGINAL_TEST_TOKENS += ["runn", "##ing", ","]


def test_wordpiece_greedy_longest_match():
    vocab = {token: index for index, token in enumerate(ORIGINAL_TEST_TOKENS)}
    tokenizer = tokenization.WordpieceTokenizer(vocab=vocab)
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert tokenizer.tokenize("wa want") == ["wa", "want"]


def test_wordpiece_word_length_limit():
    vocab = {"a": 0, "##a": 1}
    tokenizer = tokenization.WordpieceTokenizer(vocab=vocab, unk_token="<?>")
    assert tokenizer.tokenize("a" * 200) == ["a"] + ["##a"] * 199
    assert tokenizer.tokenize("a" * 201) == ["<?>"]
    short = tokenization.WordpieceTokenizer(vocab=vocab, max_input_chars_per_word=3)
    assert short.tokenize("aaa aaaa") == ["a", "##a", "##a", "[UNK]"]


def test_full_tokenizer_original_example(tmp_path):
    tokenizer = tokenization.FullTokenizer(write_vocab(tmp_path, ORIGINAL_TEST_TOKENS))
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]
    assert tokenizer.convert_ids_to_tokens([7, 4, 0]) == ["un", "##want", "[UNK]"]
    assert tokenizer.inv_vocab[3] == "want" and tokenizer.vocab["want"] == 3
    assert isinstance(tokenizer.basic_tokenizer, tokenization.BasicTokenizer)
    assert tokenizer.wordpiece_tokenizer.vocab is tokenizer.vocab
    with pytest.raises(KeyError):
        tokenizer.convert_tokens_to_ids(["absent"])


def test_full_tokenizer_literal_special_tokens_and_case(tmp_path):
    vocab_file = write_vocab(tmp_path, SPECIAL_TOKENS + ["[", "]", "cl", "##s", "hi"])
    uncased = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
    assert uncased.tokenize("[CLS] Hi [SEP]") == ["[", "cl", "##s", "]", "hi", "[", "[UNK]", "]"]
    cased = tokenization.FullTokenizer(vocab_file, do_lower_case=False)
    assert cased.tokenize("[CLS] Hi hi") == ["[", "[UNK]", "]", "[UNK]", "hi"]


def test_full_tokenizer_counts_word_length_after_basic_tokenization(tmp_path):
    vocab_file = write_vocab(tmp_path, SPECIAL_TOKENS + ["a", "##a", "e", "##e", "!"])
    uncased = tokenization.FullTokenizer(vocab_file)
    halves = ["a"] + ["##a"] * 149
    assert uncased.tokenize("a" * 150 + "!" + "a" * 150) == halves + ["!"] + halves
    assert uncased.tokenize("a" * 201 + " a") == ["[UNK]", "a"]
    # 101 "e" + combining acute = 202 characters; lower-casing strips the accents first.
    accented = "e\u0301" * 101
    assert uncased.tokenize(accented) == ["e"] + ["##e"] * 100
    cased = tokenization.FullTokenizer(vocab_file, do_lower_case=False)
    assert cased.tokenize(accented) == ["[UNK]"]


def test_full_tokenizer_cache_stays_bounded_and_correct(tmp_path, monkeypatch):
    monkeypatch.setattr(tokenization, "_CACHE_SIZE", 8)
    tokens = SPECIAL_TOKENS + list("abcdefghij") + ["##" + c for c in "abcdefghij"]
    vocab_file = write_vocab(tmp_path, tokens)
    tokenizer = tokenization.FullTokenizer(vocab_file)
    vocab = tokenization.load_vocab(vocab_file)
    text = " ".join(a + b + c for a in "abcde" for b in "fghij" for c in "aXj")
    for _ in range(2):
        assert tokenizer.tokenize(text) == reference_full_tokenize(text, vocab, True)
    assert len(tokenizer._chunk_pieces) <= 8


def test_pickled_tokenizer_tokenizes_the_same(tmp_path):
    tokenizer = tokenization.FullTokenizer(write_vocab(tmp_path, ORIGINAL_TEST_TOKENS))
    expected = ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.tokenize("unwanted, running") == expected
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert len(copy._chunk_pieces) == 0  # caches travel empty
    assert copy.tokenize("unwanted, running") == expected
    assert copy.vocab == tokenizer.vocab and copy.basic_tokenizer.do_lower_case


# --------------------------------------------------------------------------------------------
# Randomized comparison with the reference implementation.

CHARACTER_POOLS = [
    [chr(c) for c in range(32, 127)],
    [chr(c) for c in range(0, 32)] + [chr(c) for c in range(0x7F, 0x100)],  # controls, Latin-1
    list("\u00e1\u00e9\u00ed\u00f3\u00fa\u00e0\u00e8\u00f1\u00e7\u00c0\u00c9\u00dc\u00df\u0130")
    + [chr(c) for c in range(0x300, 0x370)],  # accented letters and combining marks
    [chr(c) for c in range(0x4E00, 0x4E30)] + ["\u3400", "\uf900", "\U00020001", "\U0002f800"],
    list("\u00ab\u00bb\u00bf\u00a1\u2014\u2013\u201c\u201d\u2026\u3001\u3002\uff0c\uff01\u00b7"),
    list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2009\u2028\u2029\u3000\u200b"),  # whitespace-ish
    list("\x00\x07\u200c\u200d\ufeff\ufffd\U000e0001\u00ad\ue000\U000f0000"),  # controls, Co
    list("\u03a3\u0391\u03c3\u212a\ufb01\u3072\u304c\ud55c\u20ac\u00b1\U0001f600$^`~"),
]
WORDS = ["un", "want", "ed", "runn", "ing", "the", "caf\u00e9", "\u4e2d\u6587"]


def random_text(rng):
    parts = []
    for _ in range(rng.randrange(40)):
        if rng.random() < 0.25:
            parts.append(rng.choice(WORDS))
        else:
            parts.append(rng.choice(rng.choice(CHARACTER_POOLS)))
    if rng.random() < 0.01:
        parts.append("e" * rng.randrange(195, 205))
    return "".join(parts)


def random_vocab_tokens():
    tokens = SPECIAL_TOKENS + ORIGINAL_TEST_TOKENS[3:] + ["the", "ca", "##f", "##e", "caf\u00e9"]
    tokens += [chr(c) for c in range(33, 127)] + ["##" + chr(c) for c in range(97, 123)]
    tokens += [chr(c) for c in range(0x4E00, 0x4E20)] + ["\u00e9", "##\u00e9", "\u03c3"]
    return tokens


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_matches_reference_on_random_text(tmp_path, do_lower_case):
    vocab_file = write_vocab(tmp_path, random_vocab_tokens())
    vocab = tokenization.load_vocab(vocab_file)
    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    rng = random.Random(1234)
    for _ in range(2500):
        text = random_text(rng)
        if rng.random() < 0.1:
            text = text.encode("utf-8", "surrogatepass") + bytes([rng.randrange(128, 256)])
        expected_words = reference_basic_tokenize(text, do_lower_case)
        assert tokenizer.basic_tokenizer.tokenize(text) == expected_words, repr(text)
        expected = reference_full_tokenize(text, vocab, do_lower_case)
        assert tokenizer.tokenize(text) == expected, repr(text)


# --------------------------------------------------------------------------------------------
# Vocab files.


def test_load_vocab_duplicates_keep_last_index(tmp_path):
    vocab_file = write_vocab(tmp_path, SPECIAL_TOKENS + ["a", "b", "a"])
    vocab = tokenization.load_vocab(vocab_file)
    assert list(vocab.items())[-2:] == [("a", 7), ("b", 6)]
    assert len(vocab) == 7
    tokenizer = tokenization.FullTokenizer(vocab_file)
    assert 5 not in tokenizer.inv_vocab and tokenizer.inv_vocab[7] == "a"


def test_load_vocab_line_handling(tmp_path):
    path = tmp_path / "vocab.txt"
    # CR is dropped everywhere (as TensorFlow's readline did); blank lines take an index;
    # surrounding whitespace is stripped; the last line needs no newline.
    path.write_bytes(b"[UNK]\r\nx\ry\n\n  pad\t \n\xc3\xa9\nlast")
    vocab = tokenization.load_vocab(path)
    assert list(vocab.items()) == [("[UNK]", 0), ("xy", 1), ("", 2), ("pad", 3), ("\u00e9", 4)] + [
        ("last", 5)
    ]


def test_missing_vocab_file_names_the_path(tmp_path):
    path = str(tmp_path / "no_such_vocab.txt")
    with pytest.raises(FileNotFoundError, match="no_such_vocab.txt"):
        tokenization.FullTokenizer(path)


def test_empty_vocab_file_names_the_path(tmp_path):
    path = tmp_path / "empty_vocab.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty_vocab.txt.*empty"):
        tokenization.load_vocab(str(path))


def test_vocab_without_special_tokens_is_accepted_until_one_is_needed(tmp_path):
    path = write_vocab(tmp_path, ["[UNK]", "[CLS]", "hello"], name="partial_vocab.txt")
    tokenizer = tokenization.FullTokenizer(path)
    assert tokenizer.tokenize("Hello xyz") == ["hello", "[UNK]"]
    assert tokenizer.convert_tokens_to_ids(["hello", "[UNK]"]) == [2, 0]
    tokenization.require_tokens(tokenizer, ["[CLS]", "[UNK]"], "this use")
    with pytest.raises(tokenization.MissingTokenError) as error:
        tokenization.require_tokens(tokenizer, tokenization.PRETRAINING_TOKENS, "masking")
    message = str(error.value)
    assert message.startswith(path + " has no [SEP], [MASK] token, needed for masking")
    assert isinstance(error.value, tokenization.InvalidVocabError)
    assert isinstance(error.value, ValueError)


def test_vocab_without_unk_fails_only_for_a_word_without_pieces(tmp_path):
    path = write_vocab(tmp_path, ["[CLS]", "[SEP]", "hello", "##s"], name="no_unk.txt")
    tokenizer = tokenization.FullTokenizer(path)
    assert tokenizer.convert_tokens_to_ids(tokenizer.tokenize("hellos hello")) == [2, 3, 2]
    # As in the original, tokenizing gives [UNK]; converting it is what cannot be done.
    tokens = tokenizer.tokenize("hello xyz")
    assert tokens == ["hello", "[UNK]"]
    with pytest.raises(tokenization.MissingTokenError) as error:
        tokenizer.convert_tokens_to_ids(tokens)
    assert str(error.value).startswith(f"{path} has no [UNK] token, needed for words that")
    assert isinstance(error.value, KeyError)  # what the original raised
    with pytest.raises(KeyError) as plain:
        tokenizer.convert_tokens_to_ids(["absent"])
    assert not isinstance(plain.value, tokenization.MissingTokenError)


def test_git_lfs_pointer_vocab_is_named(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(
        b"version https://git-lfs.github.com/spec/v1\noid sha256:"
        + b"ab" * 32
        + b"\nsize 231508\n"
    )
    with pytest.raises(tokenization.InvalidVocabError, match="vocab.txt is a git-lfs pointer"):
        tokenization.FullTokenizer(str(path))


def test_vocab_with_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad_vocab.txt"
    path.write_bytes(b"[UNK]\n[CLS]\nb\xffad\n")
    with pytest.raises(tokenization.InvalidVocabError) as error:
        tokenization.load_vocab(str(path))
    assert str(error.value) == (
        f"{path}:3: not valid UTF-8 (byte 0xff at column 2); vocab files are UTF-8, "
        "whatever --input_encoding says"
    )


def test_vocab_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom_vocab.txt"
    path.write_bytes(b"\xef\xbb\xbf[PAD]\n[UNK]\n")
    assert list(tokenization.load_vocab(str(path)).items()) == [("[PAD]", 0), ("[UNK]", 1)]


def test_scheme_paths_go_through_tensorflow_filesystems():
    tf = pytest.importorskip("tensorflow")
    path = "ram://tokenization_test/vocab.txt"
    with tf.io.gfile.GFile(path, "w") as writer:
        writer.write("".join(token + "\n" for token in ORIGINAL_TEST_TOKENS))
    assert tokenization.FullTokenizer(path).tokenize("unwanted") == ["un", "##want", "##ed"]
    with pytest.raises(FileNotFoundError, match="ram://tokenization_test/absent.txt"):
        tokenization.load_vocab("ram://tokenization_test/absent.txt")


def test_local_use_does_not_import_tensorflow(tmp_path):
    vocab_file = write_vocab(tmp_path, ORIGINAL_TEST_TOKENS)
    script = (
        "import sys, tokenization\n"
        f"tokenizer = tokenization.FullTokenizer({vocab_file!r})\n"
        "assert tokenizer.tokenize('unwanted') == ['un', '##want', '##ed']\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Small helpers kept from the original API.


def test_convert_to_unicode_and_printable_text():
    assert tokenization.convert_to_unicode(b"caf\xc3\xa9\xff") == "caf\u00e9"
    assert tokenization.printable_text("caf\u00e9") == "caf\u00e9"
    assert tokenization.printable_text(b"x") == "x"
    with pytest.raises(ValueError, match="Unsupported string type"):
        tokenization.convert_to_unicode(None)


def test_module_level_conversions():
    vocab = {"a": 0, "b": 1}
    assert tokenization.convert_tokens_to_ids(vocab, ["b", "a"]) == [1, 0]
    assert tokenization.convert_ids_to_tokens({0: "a", 1: "b"}, [1]) == ["b"]
    assert tokenization.whitespace_tokenize("  a\tb\u2028c ") == ["a", "b", "c"]
    assert tokenization.whitespace_tokenize(" \n ") == []


@pytest.mark.parametrize(
    "do_lower_case, checkpoint",
    [
        (True, None),
        (False, "/models/uncased_L-12_H-768_A-12/model.ckpt"),  # not a bert_model.ckpt path
        (True, "/models/uncased_L-12_H-768_A-12/bert_model.ckpt"),
        (False, "/models/cased_L-12_H-768_A-12/bert_model.ckpt"),
        (True, "/models/my_model/bert_model.ckpt"),
    ],
)
def test_case_validation_accepts_consistent_flags(do_lower_case, checkpoint):
    tokenization.validate_case_matches_checkpoint(do_lower_case, checkpoint)


def test_case_validation_rejects_mismatch():
    checkpoint = "gs://bucket/chinese_L-12_H-768_A-12/bert_model.ckpt"
    with pytest.raises(ValueError) as error:
        tokenization.validate_case_matches_checkpoint(False, checkpoint)
    message = str(error.value)
    assert message.startswith("You passed in `--do_lower_case=False` with `--init_checkpoint=gs")
    assert "`chinese_L-12_H-768_A-12` seems to be a lowercased model" in message
    assert "should pass in `--do_lower_case=True`" in message
    with pytest.raises(ValueError, match="seems to be a cased model"):
        tokenization.validate_case_matches_checkpoint(
            True, "multi_cased_L-12_H-768_A-12/bert_model.ckpt"
        )


# --------------------------------------------------------------------------------------------
# SentencePiece.

SPM_TRAINING_LINES = [
    "the cafe is open from 9 to 5 and costs 10,000 dollars",
    "Caf\u00e9 au lait is served hot in the small cafe",
    "we paid 2,500 for the old piano and 1,000 for the lessons",
    "na\u00efve readers read many books about the sea",
]


def train_spm_model(directory, name, control_symbols):
    spm = pytest.importorskip("sentencepiece")
    text_file = directory / f"{name}.txt"
    text_file.write_text("\n".join(SPM_TRAINING_LINES * 20) + "\n", encoding="utf-8")
    prefix = str(directory / name)
    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=prefix,
        vocab_size=50,
        control_symbols=control_symbols,
        user_defined_symbols=["0,"],  # forces a digit-comma piece to exist
        character_coverage=1.0,
        minloglevel=2,
    )
    return prefix + ".model"


@pytest.fixture(scope="module")
def spm_model_file(tmp_path_factory):
    return train_spm_model(tmp_path_factory.mktemp("spm"), "bert_spm", ["[CLS]", "[SEP]", "[MASK]"])


@pytest.fixture(scope="module")
def raw_sp_model(spm_model_file):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=spm_model_file)


def test_spm_lower_cases_strips_accents_and_collapses_spaces(spm_model_file, raw_sp_model):
    tokenizer = tokenization.SentencePieceTokenizer(spm_model_file, do_lower_case=True)
    pieces = tokenizer.tokenize("  Caf\u00e9   AU lait ".encode())
    assert pieces == raw_sp_model.EncodeAsPieces("cafe au lait")
    assert "".join(pieces) == "\u2581cafe\u2581au\u2581lait"


def test_spm_cased_keeps_text(spm_model_file, raw_sp_model):
    tokenizer = tokenization.SentencePieceTokenizer(spm_model_file, do_lower_case=False)
    pieces = tokenizer.tokenize("Caf\u00e9 au\tlait")
    assert pieces == raw_sp_model.EncodeAsPieces("Caf\u00e9 au lait")
    assert pieces[0].startswith("\u2581")


def test_spm_splits_comma_after_digit(spm_model_file, raw_sp_model):
    raw = raw_sp_model.EncodeAsPieces("paid 10,000 dollars")
    assert "0," in raw  # the case under test really occurs
    pieces = tokenization.SentencePieceTokenizer(spm_model_file).tokenize("paid 10,000 dollars")
    assert "".join(pieces) == "\u2581paid\u258110,000\u2581dollars"
    assert "," in pieces
    assert not any(len(p) > 1 and p.endswith(",") and p[-2].isdigit() for p in pieces)
    assert pieces == raw[: raw.index("0,")] + ["0", ","] + raw[raw.index("0,") + 1 :]


def test_spm_vocab_and_id_conversions(spm_model_file, raw_sp_model):
    tokenizer = tokenization.create_tokenizer(spm_model_file=spm_model_file)
    assert isinstance(tokenizer, tokenization.SentencePieceTokenizer)
    assert len(tokenizer.vocab) == raw_sp_model.GetPieceSize() == 50
    assert tokenizer.vocab["[CLS]"] == raw_sp_model.PieceToId("[CLS]")
    assert tokenizer.inv_vocab[tokenizer.vocab["[MASK]"]] == "[MASK]"
    pieces = tokenizer.tokenize("the old piano")
    ids = tokenizer.convert_tokens_to_ids(pieces)
    assert ids == [tokenizer.vocab[piece] for piece in pieces]
    assert tokenizer.convert_ids_to_tokens(ids) == pieces
    assert tokenizer.convert_tokens_to_ids(["not-a-piece"]) == [raw_sp_model.unk_id()]


def test_spm_model_without_special_tokens_fails_only_where_they_are_needed(tmp_path):
    model_file = train_spm_model(tmp_path, "plain_spm", [])
    tokenizer = tokenization.SentencePieceTokenizer(model_file)
    raw = pytest.importorskip("sentencepiece").SentencePieceProcessor(model_file=model_file)
    assert tokenizer.tokenize("the cafe") == raw.EncodeAsPieces("the cafe")
    with pytest.raises(tokenization.MissingTokenError) as error:
        tokenization.require_tokens(tokenizer, tokenization.FEATURE_TOKENS, "the inputs")
    assert str(error.value).startswith(f"{model_file} has no [CLS], [SEP] token")


def test_spm_bad_model_files_name_the_path(tmp_path):
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    with pytest.raises(tokenization.InvalidVocabError, match="garbage.model"):
        tokenization.SentencePieceTokenizer(str(garbage))
    with pytest.raises(FileNotFoundError, match="absent.model"):
        tokenization.SentencePieceTokenizer(str(tmp_path / "absent.model"))


def test_create_tokenizer_picks_by_flags(tmp_path, spm_model_file):
    vocab_file = write_vocab(tmp_path, ORIGINAL_TEST_TOKENS)
    wordpiece = tokenization.create_tokenizer(vocab_file=vocab_file, do_lower_case=False)
    assert isinstance(wordpiece, tokenization.FullTokenizer)
    assert wordpiece.basic_tokenizer.do_lower_case is False
    both = tokenization.create_tokenizer(vocab_file=vocab_file, spm_model_file=spm_model_file)
    assert isinstance(both, tokenization.SentencePieceTokenizer)
    with pytest.raises(ValueError, match="--vocab_file"):
        tokenization.create_tokenizer()


def test_spm_git_lfs_pointer_is_named(tmp_path):
    pytest.importorskip("sentencepiece")
    pointer = tmp_path / "spiece.model"
    pointer.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 760289\n")
    with pytest.raises(tokenization.InvalidVocabError) as error:
        tokenization.SentencePieceTokenizer(str(pointer))
    assert str(error.value).startswith(
        f"{pointer} is a git-lfs pointer file, not the SentencePiece model itself"
    )
