"""Tests for word_boundaries.py: word continuations of Chinese text from jieba or a reference
file, checked against hand-segmented lines."""

import pytest

import tokenization
import word_boundaries


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。", "walk", "##ing", "t",
             *"我们在北京大学研究生命科学很贵恤", "##们"]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", "utf-8")
    return tokenization.FullTokenizer(str(path))


@pytest.fixture(scope="module")
def jieba_boundaries(tokenizer):
    return word_boundaries.WordBoundaries(tokenizer, word_boundaries.JiebaSegmenter())


def test_jieba_groups_the_characters_of_each_word(jieba_boundaries, tokenizer):
    # jieba 0.42.1: 我们 / 在 / 北京大学 / 研究 / 生命科学 / ，/ walking / 很贵 / 。
    line = "我们在北京大学研究生命科学，walking很贵。"
    tokens, continues = jieba_boundaries.tokens_and_continuations(line)
    assert tokens == tokenizer.tokenize(line)
    assert list(zip(tokens, continues, strict=True)) == [
        ("我", False), ("们", True), ("在", False), ("北", False), ("京", True), ("大", True),
        ("学", True), ("研", False), ("究", True), ("生", False), ("命", True), ("科", True),
        ("学", True), ("，", False), ("walk", False), ("##ing", True), ("很", False),
        ("贵", True), ("。", False)]


def test_a_cjk_character_of_a_mixed_word_stands_alone(jieba_boundaries):
    # jieba 0.42.1: 我们 / T恤 / 很 / 贵; BERT splits T恤 into t and 恤, two words.
    tokens, continues = jieba_boundaries.tokens_and_continuations("我们T恤很贵")
    assert tokens == ["我", "们", "t", "恤", "很", "贵"]
    assert continues == [False, True, False, False, False, False]


def test_unknown_characters_keep_their_place(jieba_boundaries):
    # 龘 is not in the vocab: [UNK], still one CJK token, so the words after it line up.
    tokens, continues = jieba_boundaries.tokens_and_continuations("龘我们")
    assert tokens == ["[UNK]", "我", "们"]
    assert continues == [False, False, True]


def test_reference_positions_count_cls_as_zero(tokenizer):
    boundaries = word_boundaries.WordBoundaries(tokenizer)
    ref = word_boundaries.WordRef([2, 5, 6], "ref.txt:1")
    tokens, continues = boundaries.tokens_and_continuations("我们在北京大学", ref)
    assert tokens == ["我", "们", "在", "北", "京", "大", "学"]
    assert continues == [False, True, False, False, True, True, False]


def test_reference_position_outside_the_line_names_the_reference_line(tokenizer):
    boundaries = word_boundaries.WordBoundaries(tokenizer)
    ref = word_boundaries.WordRef([3], "ref.txt:4")
    with pytest.raises(word_boundaries.WordRefError, match="ref.txt:4: position 3"):
        boundaries.tokens_and_continuations("我们", ref, where="in.txt:9")


def test_read_word_refs_skips_blank_lines_and_numbers_the_rest(tmp_path):
    path = tmp_path / "ref.txt"
    path.write_text("[2]\n\n[]\n[3, 4]\n", "utf-8")
    assert list(word_boundaries.read_word_refs(str(path))) == [
        word_boundaries.WordRef([2], f"{path}:1"),
        word_boundaries.WordRef([], f"{path}:3"),
        word_boundaries.WordRef([3, 4], f"{path}:4"),
    ]


@pytest.mark.parametrize("line", ["[1, 2", "{\"a\": 1}", "[true]"])
def test_read_word_refs_rejects_what_is_not_a_list_of_positions(tmp_path, line):
    path = tmp_path / "ref.txt"
    path.write_text(f"[]\n{line}\n", "utf-8")
    with pytest.raises(word_boundaries.WordRefError, match=f"{path}:2"):
        list(word_boundaries.read_word_refs(str(path)))


def test_flags_survive_and_strip():
    flagged = word_boundaries.flag_continuations([7, 8, 9], [False, True, False])
    assert [word_boundaries.continues_word(i) for i in flagged] == [False, True, False]
    assert [word_boundaries.plain_id(i) for i in flagged] == [7, 8, 9]
