"""encoder_inputs: `[CLS] a [SEP] b [SEP]` layout, truncation and padding, checked by hand."""

import pytest

import encoder_inputs
import tokenization


@pytest.fixture
def tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "猫", "坐", "##s", "[MASK]"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(path), do_lower_case=True)


def test_truncate_seq_pair_pops_from_the_longer_and_from_b_on_ties():
    tokens_a, tokens_b = list("abcde"), list("xy")
    encoder_inputs.truncate_seq_pair(tokens_a, tokens_b, 5)
    assert (tokens_a, tokens_b) == (list("abc"), list("xy"))

    # 3+3 > 4: tie -> b loses "z"; 3+2: a longer -> a loses "c"; 2+2 = 4 fits.
    tokens_a, tokens_b = list("abc"), list("xyz")
    encoder_inputs.truncate_seq_pair(tokens_a, tokens_b, 4)
    assert (tokens_a, tokens_b) == (list("ab"), list("xy"))

    # One more step from 2+2: tie -> b loses "y".
    encoder_inputs.truncate_seq_pair(tokens_a, tokens_b, 3)
    assert (tokens_a, tokens_b) == (list("ab"), list("x"))


def test_a_pair_is_laid_out_with_segments_and_padding(tokenizer):
    inputs = encoder_inputs.text_inputs("The cat", "猫坐", 10, tokenizer)
    assert inputs.tokens == ["[CLS]", "the", "cat", "[SEP]", "猫", "坐", "[SEP]"]
    assert inputs.input_ids == [2, 4, 5, 3, 7, 8, 3, 0, 0, 0]
    assert inputs.input_mask == [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert inputs.segment_ids == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]


def test_a_single_text_keeps_max_minus_two_tokens(tokenizer):
    inputs = encoder_inputs.text_inputs("the cat sat cats", None, 5, tokenizer)
    assert inputs.tokens == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    assert inputs.input_mask == [1] * 5 and inputs.segment_ids == [0] * 5


def test_an_empty_second_text_makes_a_single_sequence(tokenizer):
    for text_b in ("", None, "   "):
        inputs = encoder_inputs.text_inputs("the cat", text_b, 6, tokenizer)
        assert inputs.tokens == ["[CLS]", "the", "cat", "[SEP]"]


def test_a_pair_is_cut_longest_first_and_the_inputs_are_left_alone(tokenizer):
    tokens_a, tokens_b = ["the", "cat", "sat", "the"], ["猫"]
    inputs = encoder_inputs.pair_inputs(tokens_a, tokens_b, 7, tokenizer)
    assert inputs.tokens == ["[CLS]", "the", "cat", "sat", "[SEP]", "猫", "[SEP]"]
    assert tokens_a == ["the", "cat", "sat", "the"]


def test_too_short_a_sequence_length_names_the_flag(tokenizer):
    with pytest.raises(ValueError, match="--max_seq_length must be at least 3"):
        encoder_inputs.text_inputs("the", None, 2, tokenizer)


def test_truncate_context_first_keeps_the_options_end_and_cuts_the_context():
    # b keeps its last 3 of 5 tokens; a then gets the 6 - 3 = 3 positions left.
    tokens_a, tokens_b = list("abcdefgh"), list("vwxyz")
    encoder_inputs.truncate_context_first(tokens_a, tokens_b, 6, max_b_length=3)
    assert (tokens_a, tokens_b) == (list("abc"), list("xyz"))

    # A short pair is left alone, a short b lets a keep more.
    tokens_a, tokens_b = list("abc"), list("xy")
    encoder_inputs.truncate_context_first(tokens_a, tokens_b, 6, max_b_length=3)
    assert (tokens_a, tokens_b) == (list("abc"), list("xy"))
    tokens_a, tokens_b = list("abcdefgh"), list("z")
    encoder_inputs.truncate_context_first(tokens_a, tokens_b, 6, max_b_length=3)
    assert (tokens_a, tokens_b) == (list("abcde"), list("z"))

    # b longer than the whole budget: a goes, b keeps its end.
    tokens_a, tokens_b = list("ab"), list("uvwxyz")
    encoder_inputs.truncate_context_first(tokens_a, tokens_b, 4, max_b_length=10)
    assert (tokens_a, tokens_b) == ([], list("wxyz"))


def test_pair_inputs_with_max_b_length_cuts_the_context_first(tokenizer):
    inputs = encoder_inputs.pair_inputs(
        ["the", "cat", "sat", "the", "cat"], ["the", "cat", "sat"], 8, tokenizer, max_b_length=2
    )
    # 8 - 3 = 5 tokens: b keeps "cat sat", a the first 3 of its 5.
    assert inputs.tokens == ["[CLS]", "the", "cat", "sat", "[SEP]", "cat", "sat", "[SEP]"]
    assert inputs.segment_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert inputs.input_mask == [1] * 8
