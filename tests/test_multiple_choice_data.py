"""multiple_choice_data: the readers on hand-written samples of each format (English and
Chinese), their errors, and the features (layout, blanks, dummy choices, records)."""

import json

import numpy as np
import pytest
import tensorflow as tf

import multiple_choice_data as mc
import tokenization
from helpers import write_csv, write_vocab_for_texts

DataFormatError = mc.DataFormatError

SWAG_HEADER = [
    "",
    "video-id",
    "fold-ind",
    "startphrase",
    "sent1",
    "sent2",
    "gold-source",
    "ending0",
    "ending1",
    "ending2",
    "ending3",
    "label",
]


def test_swag_rows_give_sent1_as_context_sent2_as_question_and_the_endings(tmp_path):
    path = tmp_path / "val.csv"
    write_csv(
        path,
        SWAG_HEADER,
        [
            [
                "0",
                "lsmdc-1",
                "18313",
                "She opens it. He",
                "She opens it.",
                "He",
                "gold",
                "smiles, then leaves.",
                "turns, away.",
                "walks.",
                "sits down.",
                "2",
            ],
            [
                "1",
                "anetv-2",
                "18419",
                "A man rides. The man",
                "A man rides.",
                "The man",
                "gen",
                "falls.",
                "stops.",
                "waves.",
                "jumps.",
                "0",
            ],
        ],
    )
    examples = mc.read_swag(str(path))
    assert [(e.guid, e.context, e.question, e.label) for e in examples] == [
        ("18313", "She opens it.", "He", 2),
        ("18419", "A man rides.", "The man", 0),
    ]
    # A comma inside a quoted field stays in its ending.
    assert examples[0].choices == ["smiles, then leaves.", "turns, away.", "walks.", "sits down."]
    assert examples[1].source == f"{path}:3"


def test_swag_test_file_without_labels_reads_unlabelled_and_not_as_training_data(tmp_path):
    path = tmp_path / "test.csv"
    write_csv(path, SWAG_HEADER[:-1], [["0", "v", "7", "x", "A cat.", "It", "gold", *"abcd"]])
    (example,) = mc.read_swag(str(path), labelled=False)
    assert example.label is None and example.choices == list("abcd")
    with pytest.raises(DataFormatError, match=rf"{path}:1: the SWAG header lacks \['label'\]"):
        mc.read_swag(str(path), labelled=True)


def test_swag_label_outside_the_endings_and_short_rows_name_file_line_and_example(tmp_path):
    path = tmp_path / "train.csv"
    write_csv(path, SWAG_HEADER, [["0", "v", "41", "x", "A cat.", "It", "gold", *"abcd", "4"]])
    with pytest.raises(DataFormatError, match=rf"{path}:2: example 41: label 4 is outside its 4"):
        mc.read_swag(str(path))
    write_csv(path, SWAG_HEADER, [["0", "v", "42", "x", "A cat.", "It", "gold", "a", "b"]])
    with pytest.raises(DataFormatError, match=rf"{path}:2: example 42: has 9 fields"):
        mc.read_swag(str(path))


def write_race(directory, name, record):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(record), encoding="utf-8")


RACE_RECORD = {
    "article": "Tom has a red bike. He rides it to school.",
    "questions": ["What colour is Tom's bike?", "Tom rides his bike to _ ."],
    "options": [["Blue", "Red", "Green", "Black"], ["school", "the park", "work", "town"]],
    "answers": ["B", "A"],
    "id": "middle1.txt",
}


def test_race_reads_high_and_middle_one_example_per_question(tmp_path):
    split = tmp_path / "train"
    write_race(split / "middle", "1.txt", RACE_RECORD)
    high = dict(RACE_RECORD, id="high7.txt", questions=["Q?"], options=[["x", "y"]], answers=["b"])
    write_race(split / "high", "7.txt", high)
    examples = mc.read_race(str(split))
    assert [(e.guid, e.question, e.label) for e in examples] == [
        ("high7.txt-0", "Q?", 1),
        ("middle1.txt-0", "What colour is Tom's bike?", 1),
        ("middle1.txt-1", "Tom rides his bike to _ .", 0),
    ]
    assert examples[1].context == RACE_RECORD["article"]
    assert examples[2].choices == ["school", "the park", "work", "town"]


def test_race_errors_name_the_file_and_question(tmp_path):
    no_answers = {k: v for k, v in RACE_RECORD.items() if k != "answers"}
    write_race(tmp_path / "a", "1.txt", no_answers)
    with pytest.raises(DataFormatError, match=r"a/1.txt: the RACE file has no 'answers'"):
        mc.read_race(str(tmp_path / "a"))
    # A test split may come without answers.
    assert [e.label for e in mc.read_race(str(tmp_path / "a"), labelled=False)] == [None, None]

    write_race(tmp_path / "b", "1.txt", dict(RACE_RECORD, answers=["B"]))
    with pytest.raises(DataFormatError, match=r"b/1.txt: mismatched counts .*'answers': 1"):
        mc.read_race(str(tmp_path / "b"))

    write_race(tmp_path / "c", "1.txt", dict(RACE_RECORD, answers=["B", "E"]))
    with pytest.raises(
        DataFormatError, match=r"c/1.txt: example middle1.txt-1: label 4 is outside its 4"
    ):
        mc.read_race(str(tmp_path / "c"))

    write_race(tmp_path / "d", "1.txt", dict(RACE_RECORD, options=[["x", "y"], []]))
    with pytest.raises(DataFormatError, match=r"d/1.txt: example middle1.txt-1: has no choices"):
        mc.read_race(str(tmp_path / "d"))


C3_DOCUMENTS = [
    [
        ["男：你今天去哪儿了？", "女：我去图书馆看书了。"],
        [
            {
                "question": "女的去哪儿了？",
                "choice": ["商店", "图书馆", "学校"],
                "answer": "图书馆",
            },
            {"question": "女的做什么了？", "choice": ["看书", "买菜"], "answer": "看书"},
        ],
        "m1-1",
    ],
    [
        ["北京是中国的首都。"],
        [{"question": "中国的首都是哪里？", "choice": ["上海", "北京"], "answer": "北京"}],
        "d2",
    ],
]


def test_c3_reads_each_question_with_the_dialogue_as_context(tmp_path):
    path = tmp_path / "c3-m-train.json"
    path.write_text(json.dumps(C3_DOCUMENTS, ensure_ascii=False), encoding="utf-8")
    examples = mc.read_c3(str(path))
    assert [(e.guid, e.question, e.label, len(e.choices)) for e in examples] == [
        ("m1-1-0", "女的去哪儿了？", 1, 3),
        ("m1-1-1", "女的做什么了？", 0, 2),
        ("d2-0", "中国的首都是哪里？", 1, 2),
    ]
    assert examples[0].context == "男：你今天去哪儿了？\n女：我去图书馆看书了。"


def test_c3_in_another_encoding_and_an_answer_outside_the_choices(tmp_path):
    path = tmp_path / "c3-d-dev.json"
    path.write_bytes(json.dumps(C3_DOCUMENTS[1:], ensure_ascii=False).encode("gb18030"))
    with pytest.raises(DataFormatError, match="not valid UTF-8 .*--input_encoding"):
        mc.read_c3(str(path))
    assert mc.read_c3(str(path), encoding="gb18030")[0].choices == ["上海", "北京"]

    bad = [
        [["北京。"], [{"question": "哪里？", "choice": ["上海", "北京"], "answer": "广州"}], "d9"]
    ]
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataFormatError, match="example d9-0: answer '广州' is not one of its"):
        mc.read_c3(str(path))


CHID_LINES = [
    {
        "candidates": ["一目了然", "画蛇添足", "守株待兔", "亡羊补牢"],
        "content": [
            "他的解释#idiom000001#，大家都懂了。后来又加了几句，真是#idiom000002#。",
            "农夫天天坐在树下#idiom000003#。",
        ],
    },
]
CHID_ANSWERS = {"#idiom000001#": 0, "#idiom000002#": 1, "#idiom000003#": 2}


def write_chid(tmp_path, answers=CHID_ANSWERS):
    path = tmp_path / "train.json"
    lines = [json.dumps(line, ensure_ascii=False) for line in CHID_LINES]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if answers is not None:
        (tmp_path / "train_answer.json").write_text(json.dumps(answers), encoding="utf-8")
    return path


def test_chid_gives_one_example_per_blank_the_others_marked(tmp_path):
    path = write_chid(tmp_path)
    examples = mc.read_chid(str(path))
    assert [(e.guid, e.label, e.question) for e in examples] == [
        ("#idiom000001#", 0, ""),
        ("#idiom000002#", 1, ""),
        ("#idiom000003#", 2, ""),
    ]
    assert examples[0].context == "他的解释_，大家都懂了。后来又加了几句，真是…。"
    assert examples[1].context == "他的解释…，大家都懂了。后来又加了几句，真是_。"
    assert examples[2].context == "农夫天天坐在树下_。"
    assert all(e.choices == CHID_LINES[0]["candidates"] for e in examples)
    assert examples[2].source == f"{path}:1"

    # The window keeps that many characters on each side of the blank.
    near = mc.read_chid(str(path), window_chars=3)
    assert near[0].context == "的解释_，大家"


def test_chid_without_answers_and_with_an_answer_missing(tmp_path):
    path = write_chid(tmp_path, answers=None)
    with pytest.raises(DataFormatError, match="train_answer.json do not exist"):
        mc.read_chid(str(path))
    assert [e.label for e in mc.read_chid(str(path), labelled=False)] == [None] * 3
    write_chid(tmp_path, answers={"#idiom000001#": 0, "#idiom000003#": 9})
    with pytest.raises(
        DataFormatError, match=r"train.json:1: example #idiom000002#: has no answer"
    ):
        mc.read_chid(str(path))
    write_chid(tmp_path, answers=dict(CHID_ANSWERS, **{"#idiom000003#": 9}))
    with pytest.raises(DataFormatError, match="example #idiom000003#: label 9 is outside its 4"):
        mc.read_chid(str(path))


def test_json_lines_label_by_index_or_text_and_its_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    records = [
        {
            "id": "q1",
            "context": "猫在桌子上。",
            "question": "猫在哪里？",
            "choices": ["桌子上", "床下"],
            "label": 0,
        },
        {"context": "The sky is blue.", "choices": ["red", "blue", "green"], "label": "blue"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n")
    examples = mc.read_json_lines(str(path))
    assert [(e.guid, e.question, e.label) for e in examples] == [
        ("q1", "猫在哪里？", 0),
        ("2", "", 1),
    ]

    for record, message in [
        ({"id": "x", "context": "c", "choices": [], "label": 0}, "example x: has no choices"),
        ({"id": "x", "context": "c", "choices": ["a"], "label": 1}, "label 1 is outside its 1"),
        ({"id": "x", "context": "c", "choices": ["a"], "label": "b"}, "'b' is not one of its"),
        ({"id": "x", "context": "c", "choices": "ab", "label": 0}, "'choices' must be a list"),
        ({"id": "x", "context": "c", "choices": ["a", "b"]}, "example x: has no label"),
    ]:
        path.write_text(json.dumps(records[1]) + "\n" + json.dumps(record) + "\n")
        with pytest.raises(DataFormatError, match=rf"{path}:2: .*{message}"):
            mc.read_json_lines(str(path))


def test_num_choices_is_the_most_of_any_example_or_checked_against_the_flag():
    examples = [
        mc.MultipleChoiceExample("a", "c", "", ["x", "y"], 0, "f:1"),
        mc.MultipleChoiceExample("b", "c", "", ["x", "y", "z"], 0, "f:2"),
    ]
    assert mc.num_choices_of(examples, None) == 3
    assert mc.num_choices_of(examples, 5) == 5
    with pytest.raises(DataFormatError, match="f:2: example b: has 3 choices, more than"):
        mc.num_choices_of(examples, 2)


# ------------------------------------------------------------------------------ features


@pytest.fixture
def tokenizer(tmp_path):
    texts = ["tom rides his red bike to school the park _", "猫在桌子上床下哪里"]
    write_vocab_for_texts(tmp_path / "vocab.txt", texts)
    return tokenization.FullTokenizer(str(tmp_path / "vocab.txt"), do_lower_case=True)


def test_segment_b_fills_the_blank_or_follows_the_question():
    assert mc.segment_b_text("Tom rides to _ .", "school") == "Tom rides to school ."
    assert mc.segment_b_text("Tom rides to ___ , then _", "a\\1") == "Tom rides to a\\1 , then a\\1"
    assert mc.segment_b_text("Where?", "school") == "Where? school"
    assert mc.segment_b_text("", "school") == "school"


def tokens_of(tokenizer, ids):
    inverse = {i: t for t, i in tokenizer.vocab.items()}
    return " ".join(inverse[i] for i in ids if i)


def test_features_lay_out_each_choice_and_pad_with_masked_dummies(tokenizer):
    example = mc.MultipleChoiceExample(
        "q", "Tom rides his red bike to the park", "", ["school", "tom rides to the park"], 1
    )
    features = mc.convert_example(example, 3, 12, max_qa_length=4, tokenizer=tokenizer)
    # 12 - 3 = 9 tokens: a short option leaves the whole context (8 tokens); a long one
    # keeps its last 4 tokens and the context gets the first 5 of its 8.
    assert tokens_of(tokenizer, features.input_ids[0]) == (
        "[CLS] tom rides his red bike to the park [SEP] school [SEP]"
    )
    assert tokens_of(tokenizer, features.input_ids[1]) == (
        "[CLS] tom rides his red bike [SEP] rides to the park [SEP]"
    )
    assert features.segment_ids[0] == [0] * 10 + [1] * 2
    assert features.segment_ids[1] == [0] * 7 + [1] * 5
    assert features.input_mask[0] == features.input_mask[1] == [1] * 12
    # The dummy third choice: all zeros, masked.
    assert features.input_ids[2] == features.input_mask[2] == features.segment_ids[2] == [0] * 12
    assert features.choice_mask == [1, 1, 0]
    assert features.label_id == 1 and features.is_real_example

    blank = mc.MultipleChoiceExample("q", "tom rides", "rides to _", ["school", "the park"], 0)
    features = mc.convert_example(blank, 2, 10, max_qa_length=4, tokenizer=tokenizer)
    assert tokens_of(tokenizer, features.input_ids[1]) == (
        "[CLS] tom rides [SEP] rides to the park [SEP]"
    )
    assert features.input_mask[0] == [1] * 8 + [0] * 2


def test_chinese_choice_layout(tokenizer):
    example = mc.MultipleChoiceExample("q", "猫在桌子上", "猫在哪里", ["桌子上", "床下"], 0)
    features = mc.convert_example(example, 2, 16, max_qa_length=8, tokenizer=tokenizer)
    assert tokens_of(tokenizer, features.input_ids[1]).split() == [
        "[CLS]",
        *"猫在桌子上",
        "[SEP]",
        *"猫在哪里床下",
        "[SEP]",
    ]


def test_records_parse_back_to_the_features(tmp_path, tokenizer):
    example = mc.MultipleChoiceExample("q", "tom rides", "", ["school", "the park"], 1)
    features = [
        mc.convert_example(example, 3, 8, max_qa_length=3, tokenizer=tokenizer),
        mc.padding_features(3, 8),
    ]
    path = str(tmp_path / "x.tf_record")
    assert mc.write_features(features, [path]) == 2
    spec = mc.feature_spec(3, 8)
    parsed = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(path)]
    for record, feature in zip(parsed, features, strict=True):
        for name in mc.FEATURE_NAMES:
            np.testing.assert_array_equal(record[name].numpy(), getattr(feature, name))
        assert record["choice_mask"].numpy().tolist() == feature.choice_mask
        assert int(record["label_ids"]) == feature.label_id
        assert int(record["is_real_example"]) == int(feature.is_real_example)
    assert parsed[1]["choice_mask"].numpy().tolist() == [0, 0, 0]


def test_max_qa_length_must_leave_room_in_the_sequence():
    with pytest.raises(ValueError, match="--max_qa_length=126 must be between 1 and"):
        mc.check_lengths(128, 126)
    mc.check_lengths(128, 125)
