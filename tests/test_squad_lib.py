"""Tests for squad_lib.py: reading SQuAD JSON, windowed features, and post-processing.

Every expected value below was worked out by hand from the rules of the original BERT
run_squad.py (the derivations are in the comments); the data and the vocab are written by the
tests.
"""

import json
import logging
import math

import pytest

import squad_lib
import tokenization

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "what",
    "who",
    "is",
    "it",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "the",
    "leader",
    "was",
    "john",
    "smith",
    "(",
    ")",
    "1895",
    "-",
    "1943",
    ".",
    "un",
    "##aff",
    "##able",
    "cat",
    "sat",
    "on",
    "mat",
    "japanese",
    "electronics",
]

TEN_WORDS = "one two three four five six seven eight nine ten"


@pytest.fixture(name="tokenizer")
def fixture_tokenizer(tmp_path):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    return tokenization.FullTokenizer(str(vocab_file), do_lower_case=True)


def write_squad(tmp_path, paragraphs, name="squad.json"):
    path = tmp_path / name
    path.write_text(
        json.dumps({"version": "test", "data": [{"title": "t", "paragraphs": paragraphs}]}),
        encoding="utf-8",
    )
    return str(path)


def answerable(qas_id, question, context, answer_text):
    """A question whose answer is the first occurrence of `answer_text` in `context`."""
    return {
        "id": qas_id,
        "question": question,
        "answers": [{"text": answer_text, "answer_start": context.index(answer_text)}],
    }


def ids_of(tokens):
    return [VOCAB.index(token) for token in tokens]


# --------------------------------------------------------------------------------------------
# Reading


def test_split_context_maps_each_character_to_its_word():
    # " ab c": the leading space belongs to no word (-1); the inner space to the word before it.
    assert squad_lib.split_context(" ab c") == (["ab", "c"], [-1, 0, 0, 0, 1])
    # Narrow no-break space (U+202F), tab and newline all separate words.
    doc_tokens, _ = squad_lib.split_context("a\u202fb\tc\nd  e")
    assert doc_tokens == ["a", "b", "c", "d", "e"]


def test_read_training_examples_locates_answers_by_offset(tmp_path):
    context = "The  cat\u202fsat\ton\nthe mat."
    path = write_squad(
        tmp_path,
        [
            {
                "context": context,
                "qas": [
                    answerable("q1", "who sat", context, "cat"),
                    # Annotations copy the context's own whitespace.
                    answerable("q2", "what", context, "sat\ton"),
                    # Lower-case "the" is word 4 ("The", word 0, differs in case).
                    answerable("q3", "what", context, "the"),
                ],
            }
        ],
    )
    examples = squad_lib.read_squad_examples(path, is_training=True)
    assert [e.qas_id for e in examples] == ["q1", "q2", "q3"]
    assert examples[0].doc_tokens == ["The", "cat", "sat", "on", "the", "mat."]
    assert (examples[0].start_position, examples[0].end_position) == (1, 1)
    assert (examples[1].start_position, examples[1].end_position) == (2, 3)
    assert examples[1].orig_answer_text == "sat\ton"
    assert (examples[2].start_position, examples[2].end_position) == (4, 4)
    assert not any(e.is_impossible for e in examples)


def test_read_prediction_examples_needs_no_answers(tmp_path):
    path = write_squad(
        tmp_path, [{"context": "one two", "qas": [{"id": "q1", "question": "what"}]}]
    )
    (example,) = squad_lib.read_squad_examples(path, is_training=False)
    assert example.question_text == "what"
    assert example.doc_tokens == ["one", "two"]
    assert example.start_position is None and example.end_position is None
    assert example.orig_answer_text is None


def test_read_v2_impossible_question(tmp_path):
    path = write_squad(
        tmp_path,
        [
            {
                "context": "one two",
                "qas": [{"id": "q1", "question": "what", "answers": [], "is_impossible": True}],
            }
        ],
    )
    (example,) = squad_lib.read_squad_examples(path, True, version_2_with_negative=True)
    assert example.is_impossible
    assert (example.start_position, example.end_position) == (-1, -1)
    assert example.orig_answer_text == ""

    # The same file without --version_2_with_negative: the message says to add the flag.
    with pytest.raises(squad_lib.SquadFormatError) as error:
        squad_lib.read_squad_examples(path, True)
    assert str(error.value) == (
        f"{path}: question 'q1' is marked \"is_impossible\": this is SQuAD 2.0 training data; "
        "pass --version_2_with_negative to train on it"
    )
    # Prediction does not look at the answers.
    assert len(squad_lib.read_squad_examples(path, False)) == 1


def test_gbk_file_fails_naming_line_and_flag_and_reads_with_its_encoding(tmp_path):
    context = "北京是中国的首都"
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "北京",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "中国的首都是哪里",
                                "answers": [{"text": "北京", "answer_start": 0}],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "cmrc.json"
    path.write_bytes(json.dumps(squad, ensure_ascii=False).encode("gbk"))
    with pytest.raises(squad_lib.SquadFormatError) as error:
        squad_lib.read_squad_examples(str(path), is_training=True)
    column = json.dumps(squad, ensure_ascii=False).index("北") + 1
    assert str(error.value).startswith(
        f"{path}:1: not valid UTF-8 (byte 0xb1 at column {column}); if the file is in another "
        "encoding, pass --input_encoding=gbk"
    )
    (example,) = squad_lib.read_squad_examples(str(path), is_training=True, encoding="gbk")
    assert example.question_text == "中国的首都是哪里"
    assert example.doc_tokens == [context]  # no spaces: one "word" before WordPiece
    assert (example.orig_answer_text, example.start_position, example.end_position) == (
        "北京",
        0,
        0,
    )


def test_training_skips_answers_not_found_in_context(tmp_path, caplog):
    context = "one two three"
    wrong_text = {
        "id": "bad-text",
        "question": "what",
        "answers": [{"text": "seven", "answer_start": 4}],
    }
    outside = {
        "id": "bad-offset",
        "question": "what",
        "answers": [{"text": "three", "answer_start": 40}],
    }
    # Starts on the paragraph's leading space, which belongs to no word.
    leading_space = {
        "id": "bad-start",
        "question": "what",
        "answers": [{"text": " one", "answer_start": 0}],
    }
    path = write_squad(
        tmp_path,
        [
            {
                "context": context,
                "qas": [wrong_text, outside, answerable("good", "what", context, "two")],
            },
            {"context": " one", "qas": [leading_space]},
        ],
    )
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        examples = squad_lib.read_squad_examples(path, is_training=True)
    assert [e.qas_id for e in examples] == ["good"]
    assert "bad-text" in caplog.text and "could not find answer" in caplog.text
    assert "bad-offset" in caplog.text and "outside its context" in caplog.text
    assert "'bad-start'" in caplog.text


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", '"data" list'),
        ('{"data": 5}', '"data" list'),
        ('{"data": [{"title": "no paragraphs"}]}', 'data[0]: no "paragraphs" list'),
        (
            '{"data": [{"paragraphs": [{"qas": [{"id": "q7", "question": "?"}]}]}]}',
            "(questions ['q7']): no \"context\" string",
        ),
        (
            '{"data": [{"paragraphs": [{"context": "a", "qas": [{"id": "q8"}]}]}]}',
            "question 'q8': no \"question\" string",
        ),
    ],
)
def test_bad_files_raise_errors_naming_file_and_item(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(squad_lib.SquadFormatError) as error:
        squad_lib.read_squad_examples(str(path), is_training=False)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_training_question_needs_exactly_one_answer(tmp_path):
    two_answers = {
        "id": "q9",
        "question": "what",
        "answers": [{"text": "one", "answer_start": 0}, {"text": "two", "answer_start": 4}],
    }
    path = write_squad(tmp_path, [{"context": "one two", "qas": [two_answers]}])
    with pytest.raises(ValueError, match=r"question 'q9': .*exactly 1 answer"):
        squad_lib.read_squad_examples(path, is_training=True)
    # Prediction ignores the answers entirely.
    assert len(squad_lib.read_squad_examples(path, is_training=False)) == 1


# --------------------------------------------------------------------------------------------
# Features


def make_example(context, question="what", qas_id="q1", start=None, end=None, answer=None):
    doc_tokens, _ = squad_lib.split_context(context)
    return squad_lib.SquadExample(
        qas_id=qas_id,
        question_text=question,
        doc_tokens=doc_tokens,
        orig_answer_text=answer,
        start_position=start,
        end_position=end,
    )


def test_doc_spans_slide_by_stride_and_stop_at_the_end():
    # 10 tokens, windows of 5, stride 2: starts 0, 2, 4, then 6 (only 4 left, reaching the end).
    assert squad_lib.compute_doc_spans(10, 5, 2) == [(0, 5), (2, 5), (4, 5), (6, 4)]
    # A stride longer than the window still never skips tokens.
    assert squad_lib.compute_doc_spans(7, 3, 10) == [(0, 3), (3, 3), (6, 1)]
    assert squad_lib.compute_doc_spans(3, 5, 2) == [(0, 3)]
    assert squad_lib.compute_doc_spans(0, 5, 2) == []


def test_max_context_owner_of_each_token():
    # Windows of TEN_WORDS with max_seq_length 9 and a 1-token query: 9 - 1 - 3 = 5 tokens,
    # stride 2 -> spans (0,5) (2,5) (4,5) (6,4). Score = min(left, right) + 0.01 * length:
    #   token 2: span0 min(2,2)+.05=2.05 > span1 min(0,4)+.05          -> span0
    #   token 3: span0 min(3,1)+.05 = span1 min(1,3)+.05 = 1.05 (tie)  -> span0 (first)
    #   token 4: span1 min(2,2)+.05 = 2.05 beats .05 in span0 / span2   -> span1
    #   token 5: span1 1.05 = span2 1.05 (tie)                          -> span1
    #   token 6: span2 min(2,2)+.05 = 2.05                              -> span2
    #   token 7: span2 min(3,1)+.05 = 1.05 > span3 min(1,2)+.04 = 1.04  -> span2 (length)
    #   token 8: span3 min(2,1)+.04 = 1.04 > span2 min(4,0)+.05         -> span3
    spans = squad_lib.compute_doc_spans(10, 5, 2)
    owners = []
    for position in range(10):
        owners.append(
            [i for i in range(len(spans)) if squad_lib._check_is_max_context(spans, i, position)]
        )
    assert owners == [[0], [0], [0], [0], [1], [1], [2], [2], [3], [3]]


def test_max_context_length_bonus_breaks_ties():
    # Token 2 has min(left, right) = 2 in both windows; the longer window (6 > 5) wins.
    spans = [squad_lib.DocSpan(0, 5), squad_lib.DocSpan(0, 6)]
    assert not squad_lib._check_is_max_context(spans, 0, 2)
    assert squad_lib._check_is_max_context(spans, 1, 2)


def test_features_windows_max_context_and_training_positions(tokenizer):
    context = TEN_WORDS
    example = make_example(context, start=5, end=6, answer="six seven")
    features = list(
        squad_lib.iter_features(
            [example],
            tokenizer,
            max_seq_length=9,
            doc_stride=2,
            max_query_length=5,
            is_training=True,
        )
    )
    assert [f.unique_id for f in features] == [1000000000 + i for i in range(4)]
    assert [f.doc_span_index for f in features] == [0, 1, 2, 3]
    assert all(f.example_index == 0 for f in features)

    # Context tokens start at position 3: [CLS] what [SEP].
    span1 = features[1]
    assert span1.tokens == [
        "[CLS]",
        "what",
        "[SEP]",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "[SEP]",
    ]
    assert span1.token_to_orig_map == {3: 2, 4: 3, 5: 4, 6: 5, 7: 6}
    assert span1.input_ids == ids_of(span1.tokens)
    assert span1.input_mask == [1] * 9
    assert span1.segment_ids == [0, 0, 0, 1, 1, 1, 1, 1, 1]

    # Owners from test_max_context_owner_of_each_token, as positions in each window.
    assert features[0].token_is_max_context == {3: True, 4: True, 5: True, 6: True, 7: False}
    assert features[1].token_is_max_context == {3: False, 4: False, 5: True, 6: True, 7: False}
    assert features[2].token_is_max_context == {3: False, 4: False, 5: True, 6: True, 7: False}
    assert features[3].token_is_max_context == {3: False, 4: False, 5: True, 6: True}

    # The last window has 4 context tokens, so one position of padding.
    last = features[3]
    assert last.tokens == ["[CLS]", "what", "[SEP]", "seven", "eight", "nine", "ten", "[SEP]"]
    assert last.input_ids == ids_of(last.tokens) + [0]
    assert last.input_mask == [1] * 8 + [0]
    assert last.segment_ids == [0, 0, 0, 1, 1, 1, 1, 1, 0]

    # "six seven" is tokens 5-6: outside span0 (0-4) and span3 (6-9, misses "six");
    # in span1 at 5-2+3=6 .. 7 and in span2 at 5-4+3=4 .. 5.
    positions = [(f.start_position, f.end_position) for f in features]
    assert positions == [(0, 0), (6, 7), (4, 5), (0, 0)]
    assert not any(f.is_impossible for f in features)


def test_query_is_truncated_and_shrinks_nothing_else(tokenizer):
    example = make_example("one two three", question="who is it what")
    (feature,) = squad_lib.iter_features(
        [example],
        tokenizer,
        max_seq_length=10,
        doc_stride=2,
        max_query_length=2,
        is_training=False,
    )
    # The query keeps its first 2 tokens; 10 - 2 - 3 = 5 >= 3 context tokens -> one window.
    assert feature.tokens == ["[CLS]", "who", "is", "[SEP]", "one", "two", "three", "[SEP]"]
    assert feature.token_to_orig_map == {4: 0, 5: 1, 6: 2}
    assert feature.start_position is None and feature.end_position is None


def test_word_pieces_map_back_to_their_word(tokenizer):
    example = make_example("the unaffable cat")
    (feature,) = squad_lib.iter_features([example], tokenizer, 16, 4, 8, is_training=False)
    assert feature.tokens[3:8] == ["the", "un", "##aff", "##able", "cat"]
    assert feature.token_to_orig_map == {3: 0, 4: 1, 5: 1, 6: 1, 7: 2}


def test_improve_answer_span_narrows_to_the_exact_answer(tokenizer):
    # "(1895-1943)." tokenizes to "( 1895 - 1943 ) ." = tokens 5..10 of the document.
    doc_tokens = ["the", "leader", "was", "john", "smith", "(", "1895", "-", "1943", ")", "."]
    assert squad_lib._improve_answer_span(doc_tokens, 5, 10, tokenizer, "1895") == (6, 6)
    assert squad_lib._improve_answer_span(doc_tokens, 5, 10, tokenizer, "1895-1943") == (6, 8)
    # "Japan" is part of the single token "japanese": nothing better, the span is unchanged.
    assert squad_lib._improve_answer_span(["the", "japanese"], 1, 1, tokenizer, "Japan") == (1, 1)


def test_training_feature_uses_the_improved_span(tmp_path, tokenizer):
    context = "The leader was John Smith (1895-1943)."
    path = write_squad(
        tmp_path, [{"context": context, "qas": [answerable("q1", "who", context, "1895")]}]
    )
    (example,) = squad_lib.read_squad_examples(path, is_training=True)
    assert (example.start_position, example.end_position) == (5, 5)
    (feature,) = squad_lib.iter_features([example], tokenizer, 32, 8, 8, is_training=True)
    # [CLS] who [SEP] the leader was john smith ( 1895 ...: "1895" is at position 3 + 6.
    assert feature.tokens[9] == "1895"
    assert (feature.start_position, feature.end_position) == (9, 9)


def test_answer_inside_a_word_keeps_the_whole_word(tmp_path, tokenizer):
    # "Japan" is annotated inside "Japanese", a single WordPiece token: the answer stays that
    # token (document token 1, position 3 + 1), neither widened nor dropped.
    context = "The Japanese electronics cat"
    path = write_squad(
        tmp_path, [{"context": context, "qas": [answerable("q1", "what", context, "Japan")]}]
    )
    (example,) = squad_lib.read_squad_examples(path, is_training=True)
    (feature,) = squad_lib.iter_features([example], tokenizer, 16, 8, 8, is_training=True)
    assert feature.tokens[4] == "japanese"
    assert (feature.start_position, feature.end_position) == (4, 4)


def test_impossible_training_example_points_at_cls(tokenizer):
    example = make_example(TEN_WORDS, start=-1, end=-1, answer="")
    example.is_impossible = True
    features = list(squad_lib.iter_features([example], tokenizer, 9, 2, 5, is_training=True))
    assert [(f.start_position, f.end_position) for f in features] == [(0, 0)] * 4
    assert all(f.is_impossible for f in features)


def test_convert_examples_to_features_streams_to_callback(tokenizer):
    examples = [make_example(TEN_WORDS, qas_id="a"), make_example("one two", qas_id="b")]
    received = []
    count = squad_lib.convert_examples_to_features(
        examples,
        tokenizer,
        max_seq_length=9,
        doc_stride=2,
        max_query_length=5,
        is_training=False,
        output_fn=received.append,
    )
    # 4 windows for the ten words, 1 for "one two"; ids keep counting across examples.
    assert count == 5
    assert [f.example_index for f in received] == [0, 0, 0, 0, 1]
    assert [f.unique_id for f in received] == list(range(1000000000, 1000000005))


def test_feature_settings_that_cannot_work_are_rejected(tokenizer):
    example = make_example(TEN_WORDS)
    with pytest.raises(ValueError, match="max_seq_length"):
        list(squad_lib.iter_features([example], tokenizer, 8, 2, 5, is_training=False))
    with pytest.raises(ValueError, match="doc_stride"):
        list(squad_lib.iter_features([example], tokenizer, 9, 0, 5, is_training=False))
    with pytest.raises(ValueError, match="'q1'.*is_training=True"):
        list(squad_lib.iter_features([example], tokenizer, 9, 2, 5, is_training=True))


# --------------------------------------------------------------------------------------------
# Post-processing helpers


@pytest.mark.parametrize(
    "pred_text, orig_text, do_lower_case, expected",
    [
        # Case restored, the trailing "'s" of the original word dropped.
        ("steve smith", "Steve Smith's", True, "Steve Smith"),
        # Punctuation split off by the tokenizer: ( 1895 - 1943 ) .
        ("1895", "(1895-1943).", True, "1895"),
        ("1895 - 1943", "(1895-1943).", True, "1895-1943"),
        # Accents stripped by lower-casing tokenization come back from the original.
        ("cafe", "Café.", True, "Café"),
        # Cased model: the text already matches, trailing punctuation is dropped.
        ("New York", "New York,", False, "New York"),
        # Not found in the tokenized original: fall back to the original text.
        ("london", "Paris", True, "Paris"),
        # A soft hyphen (a control character) is deleted by the tokenizer, so the two texts
        # differ in length once spaces are stripped: fall back to the original text.
        ("xz", "x\u00adz", True, "x\u00adz"),
    ],
)
def test_get_final_text(pred_text, orig_text, do_lower_case, expected):
    assert squad_lib.get_final_text(pred_text, orig_text, do_lower_case) == expected


def test_get_final_text_logs_failures_only_when_verbose(caplog):
    with caplog.at_level(logging.INFO, logger="tensorflow"):
        squad_lib.get_final_text("london", "Paris", True)
        assert "Unable to find text" not in caplog.text
        squad_lib.get_final_text("london", "Paris", True, verbose_logging=True)
        assert "Unable to find text: 'london' in 'Paris'" in caplog.text


def test_compute_softmax():
    total = 1 + math.exp(-1) + math.exp(-2)
    expected = [math.exp(-2) / total, math.exp(-1) / total, 1 / total]
    assert squad_lib._compute_softmax([1.0, 2.0, 3.0]) == pytest.approx(expected, rel=1e-12)
    # Shifted by the maximum, so huge logits do not overflow.
    assert squad_lib._compute_softmax([1000.0, 1000.0]) == [0.5, 0.5]
    assert squad_lib._compute_softmax([]) == []


def test_best_indexes_break_ties_by_lower_index():
    assert squad_lib._get_best_indexes([1.0, 3.0, 3.0, 2.0], 3) == [1, 2, 3]
    assert squad_lib._get_best_indexes([1.0, 3.0], 5) == [1, 0]


def test_summarize_result_keeps_only_the_top_logits():
    result = squad_lib.RawResult(7, [0.5, 2.0, -1.0, 4.0], [3.0, 1.0, 1.0, 0.0])
    top = squad_lib.summarize_result(result, 2)
    assert top == ([(3, 4.0), (1, 2.0)], [(0, 3.0), (1, 1.0)], 0.5, 3.0)


# --------------------------------------------------------------------------------------------
# Post-processing end to end
#
# Context "One two Three four Five six", query "what", max_seq_length 8: 8 - 1 - 3 = 4 context
# tokens a window, stride 2 -> window 0 = words 0-3, window 1 = words 2-5, each at positions
# 3-6. Max context: word 2 -> window 0 (min(2,1) beats min(0,3)), word 3 -> window 1 (min(1,2)
# beats min(3,0)). So window 0 may start answers at positions 3, 4, 5 (One two Three), and
# window 1 at positions 4, 5, 6 (four Five six).

CONTEXT = "One two Three four Five six"
LOW = -100.0


def logits(values, seq_length=8):
    row = [LOW] * seq_length
    for position, value in values.items():
        row[position] = value
    return row


@pytest.fixture(name="postprocess_case")
def fixture_postprocess_case(tokenizer):
    example = make_example(CONTEXT)
    features = list(squad_lib.iter_features([example], tokenizer, 8, 2, 4, is_training=False))
    assert [f.tokens[3:7] for f in features] == [
        ["one", "two", "three", "four"],
        ["three", "four", "five", "six"],
    ]
    return example, features


# Null answer loses. With n_best_size 3 the top-3 starts / ends are the explicit values.
# Window 0: starts 1 (query, invalid) 6 (four: not max context here, invalid) 5 (Three);
#   ends 7 ([SEP], invalid) 6 5 -> "Three four" 3+2=5.0, "Three" 3+1=4.0.
# Window 1: starts 3 (Three: not max context here) 6 (six) 4 (four); ends 4 6 3 ->
#   six/six 2.5+1=3.5, four/four 1.5+2=3.5, four..six 1.5+1=2.5 (length 3 = max_answer_length);
#   six/four and */3 have end < start.
# Null: window 0 1.2+0.8=2.0, window 1 0.5+0.5=1.0 -> score_null 1.0 from window 1.
NULL_LOSES = [
    squad_lib.RawResult(
        1000000000,
        logits({0: 1.2, 1: 5.0, 5: 3.0, 6: 4.0}),
        logits({0: 0.8, 5: 1.0, 6: 2.0, 7: 3.0}),
    ),
    squad_lib.RawResult(
        1000000001,
        logits({0: 0.5, 3: 6.0, 4: 1.5, 6: 2.5}),
        logits({0: 0.5, 3: 0.7, 4: 2.0, 6: 1.0}),
    ),
]

# Null answer wins: the [CLS] logits now enter the top 3 and push out other positions.
# Window 0: starts 1 (5.0) 0 (4.0, tie with 6: lower index first) 6; ends 0 7 6 -> nothing
#   valid. Window 1: starts 3 0 6; ends 0 4 6 -> only six/six 2.5+1.0=3.5.
# Null: window 0 4.0+3.5=7.5, window 1 4.0+4.0=8.0 -> score_null 7.5 from window 0.
NULL_WINS = [
    squad_lib.RawResult(
        1000000000,
        logits({0: 4.0, 1: 5.0, 5: 3.0, 6: 4.0}),
        logits({0: 3.5, 5: 1.0, 6: 2.0, 7: 3.0}),
    ),
    squad_lib.RawResult(
        1000000001,
        logits({0: 4.0, 3: 6.0, 4: 1.5, 6: 2.5}),
        logits({0: 4.0, 3: 0.7, 4: 2.0, 6: 1.0}),
    ),
]


def softmax(scores):
    exps = [math.exp(s) for s in scores]
    return [e / sum(exps) for e in exps]


def run_write_predictions(tmp_path, case, results, **kwargs):
    example, features = case
    paths = {
        name: str(tmp_path / f"{name}.json")
        for name in ("predictions", "nbest_predictions", "null_odds")
    }
    squad_lib.write_predictions(
        [example],
        features,
        iter(results),
        n_best_size=3,
        max_answer_length=3,
        do_lower_case=True,
        output_prediction_file=paths["predictions"],
        output_nbest_file=paths["nbest_predictions"],
        output_null_log_odds_file=paths["null_odds"],
        **kwargs,
    )
    return paths


def check_nbest(entries, expected):
    texts_and_logits = [(e["text"], e["start_logit"], e["end_logit"]) for e in entries]
    assert texts_and_logits == expected
    probabilities = [e["probability"] for e in entries]
    assert probabilities == pytest.approx(softmax([s + e for _, s, e in expected]), rel=1e-12)
    assert all(list(e) == ["text", "probability", "start_logit", "end_logit"] for e in entries)


def test_v1_predictions_end_to_end(tmp_path, postprocess_case):
    paths = run_write_predictions(tmp_path, postprocess_case, NULL_LOSES)
    predictions_text = (tmp_path / "predictions.json").read_text()
    assert predictions_text == '{\n    "q1": "Three four"\n}\n'
    # Ties (six 3.5, four 3.5) keep their candidate order; n_best_size 3 cuts "four" off.
    with open(paths["nbest_predictions"]) as reader:
        nbest = json.load(reader)
    check_nbest(nbest["q1"], [("Three four", 3.0, 2.0), ("Three", 3.0, 1.0), ("six", 2.5, 1.0)])
    assert not (tmp_path / "null_odds.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nbest_predictions.json",
        "predictions.json",
        "vocab.txt",
    ]


def test_v2_null_loses(tmp_path, postprocess_case):
    paths = run_write_predictions(
        tmp_path, postprocess_case, NULL_LOSES, version_2_with_negative=True
    )
    with open(paths["predictions"]) as reader:
        assert json.load(reader) == {"q1": "Three four"}
    with open(paths["nbest_predictions"]) as reader:
        nbest = json.load(reader)
    # The null candidate (1.0) did not make the top 3, so it is appended after them.
    check_nbest(
        nbest["q1"],
        [("Three four", 3.0, 2.0), ("Three", 3.0, 1.0), ("six", 2.5, 1.0), ("", 0.5, 0.5)],
    )
    # null_odds = score_null - best non-null = 1.0 - (3.0 + 2.0).
    assert (tmp_path / "null_odds.json").read_text() == '{\n    "q1": -4.0\n}\n'


def test_v2_threshold_turns_the_answer_into_null(tmp_path, postprocess_case):
    # -4.0 > -5.0, so the same logits now answer "" (the null odds do not change).
    paths = run_write_predictions(
        tmp_path,
        postprocess_case,
        NULL_LOSES,
        version_2_with_negative=True,
        null_score_diff_threshold=-5.0,
    )
    with open(paths["predictions"]) as reader:
        assert json.load(reader) == {"q1": ""}
    with open(paths["null_odds"]) as reader:
        assert json.load(reader) == {"q1": -4.0}


def test_v2_null_wins(tmp_path, postprocess_case):
    paths = run_write_predictions(
        tmp_path, postprocess_case, NULL_WINS, version_2_with_negative=True
    )
    with open(paths["predictions"]) as reader:
        assert json.load(reader) == {"q1": ""}
    with open(paths["nbest_predictions"]) as reader:
        nbest = json.load(reader)
    check_nbest(nbest["q1"], [("", 4.0, 3.5), ("six", 2.5, 1.0)])
    # 7.5 - (2.5 + 1.0).
    with open(paths["null_odds"]) as reader:
        assert json.load(reader) == {"q1": 4.0}


def test_v1_on_null_wins_logits_answers_the_only_valid_span(tmp_path, postprocess_case):
    paths = run_write_predictions(tmp_path, postprocess_case, NULL_WINS)
    with open(paths["predictions"]) as reader:
        assert json.load(reader) == {"q1": "six"}


def test_max_answer_length_counts_tokens_inclusively(postprocess_case):
    # With max_answer_length 1 only single-token answers remain: "Three" 4.0, "six" 3.5 and
    # "four" 3.5 ("Three four" and "four Five six" are too long).
    example, features = postprocess_case
    predictions, nbest, _ = squad_lib.compute_predictions(
        [example],
        features,
        NULL_LOSES,
        n_best_size=3,
        max_answer_length=1,
        do_lower_case=True,
    )
    assert predictions == {"q1": "Three"}
    check_nbest(nbest["q1"], [("Three", 3.0, 1.0), ("six", 2.5, 1.0), ("four", 1.5, 2.0)])


def test_nbest_keeps_each_text_once(tokenizer):
    # One window: [CLS] what [SEP] four two three four [SEP]; "four" is at positions 3 and 6.
    # Valid single-token spans, ranked by start + end logit: 4/4 "two" 1.0+3.5, 3/3 "four"
    # 2.0+2.0, 6/6 "four" 1.5+1.0 (same text again: dropped); every other pair is too long or
    # ends before it starts.
    example = make_example("four two three four")
    features = list(squad_lib.iter_features([example], tokenizer, 16, 4, 4, is_training=False))
    result = squad_lib.RawResult(
        1000000000,
        logits({3: 2.0, 4: 1.0, 6: 1.5}, seq_length=16),
        logits({3: 2.0, 4: 3.5, 6: 1.0}, seq_length=16),
    )
    _, nbest, _ = squad_lib.compute_predictions(
        [example], features, [result], n_best_size=3, max_answer_length=1, do_lower_case=True
    )
    check_nbest(nbest["q1"], [("two", 1.0, 3.5), ("four", 2.0, 2.0)])


def test_compute_predictions_returns_what_is_written(postprocess_case):
    example, features = postprocess_case
    predictions, nbest, null_odds = squad_lib.compute_predictions(
        [example],
        features,
        NULL_WINS,
        n_best_size=3,
        max_answer_length=3,
        do_lower_case=True,
        version_2_with_negative=True,
    )
    assert predictions == {"q1": ""}
    assert [entry["text"] for entry in nbest["q1"]] == ["", "six"]
    assert null_odds == {"q1": 4.0}


def test_unknown_results_and_missing_features_do_not_crash(postprocess_case, tokenizer, caplog):
    example, features = postprocess_case
    lonely = make_example("", qas_id="no-window")
    stray = squad_lib.RawResult(123, [9.0] * 8, [9.0] * 8)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        predictions, nbest, null_odds = squad_lib.compute_predictions(
            [example, lonely],
            features,
            [NULL_LOSES[0], stray],
            n_best_size=3,
            max_answer_length=3,
            do_lower_case=True,
            version_2_with_negative=True,
        )
    # Window 1 has no result, so only window 0's candidates remain; its null score 2.0 is
    # the only one: 2.0 - (3.0 + 2.0) = -3.0.
    assert predictions["q1"] == "Three four"
    assert null_odds["q1"] == pytest.approx(-3.0)
    # A question without any window answers "" with the 0.0 stand-in scores.
    assert predictions["no-window"] == ""
    assert null_odds["no-window"] == 0.0
    assert [entry["text"] for entry in nbest["no-window"]] == [""]
    assert "matches no feature (e.g. 123)" in caplog.text
    assert "no result (e.g. unique_id 1000000001)" in caplog.text
    assert "'no-window'" in caplog.text

    # SQuAD 1.1 falls back to the original's "empty" stand-in answer.
    predictions, _, _ = squad_lib.compute_predictions(
        [lonely], [], [], n_best_size=3, max_answer_length=3, do_lower_case=True
    )
    assert predictions == {"no-window": "empty"}


def test_feature_for_a_missing_example_is_an_error(postprocess_case):
    _, features = postprocess_case
    with pytest.raises(ValueError, match="refers to example 0, but there are only 0 examples"):
        squad_lib.compute_predictions([], features, NULL_LOSES, 3, 3, True)


def test_vocab_without_sep_is_named_when_features_are_built(tmp_path):
    vocab_file = tmp_path / "no_sep_vocab.txt"
    vocab_file.write_text("".join(t + "\n" for t in VOCAB if t != "[SEP]"), encoding="utf-8")
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    features = squad_lib.iter_features([make_example("one two")], tokenizer, 16, 8, 4, False)
    with pytest.raises(tokenization.MissingTokenError) as error:
        next(features)
    assert str(error.value).startswith(f"{vocab_file} has no [SEP] token, needed for SQuAD's")
