"""Tests for classifier_data: processors, featurization, TFRecords and bad-input errors.

Data files are written by the tests in the real GLUE / XNLI layouts (headers, column order);
expected token ids are worked out by hand from the tiny vocab below.
"""

import logging
import os
import sys

import pytest
import tensorflow.compat.v1 as tf

import classifier_data as cd
import classifier_metrics
import tokenization

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
    "the", "dog", "is", "hairy", ".",  # 5-9
    "no", "it", "not", "jack", "##son",  # 10-14
    "##ville", "?", "a", "b", "c",  # 15-19
    "d", "e", "f", "g",  # 20-23
]  # fmt: skip
CLS, SEP = 2, 3
A, B, C, D, E, F, G = 17, 18, 19, 20, 21, 22, 23


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab_file = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(vocab_file), do_lower_case=True)


def write(path, lines):
    """Writes `lines` (lists are joined with tabs) as a UTF-8 file, creating directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(("\t".join(line) if isinstance(line, list) else line) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tf_debug_logs():
    """Captures (level, message) of TensorFlow's logger, DEBUG included."""
    records = []

    class Collector(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))

    logger = logging.getLogger("tensorflow")
    handler = Collector(level=logging.DEBUG)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def tf_info_logs():
    """Captures the INFO messages of TensorFlow's logger."""
    records = []

    class Collector(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("tensorflow")
    handler = Collector(level=logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


# ---------------------------------------------------------------------------------------------
# GLUE and XNLI processors
# ---------------------------------------------------------------------------------------------


def test_mrpc_reads_strings_3_and_4_and_quality_as_label(tmp_path):
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    write(tmp_path / "train.tsv", [header, ["1", "11", "12", "The dog.", 'A "dog.']])
    write(tmp_path / "dev.tsv", [header, ["0", "13", "14", "It is.", "It is not."]])
    test_header = ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    write(tmp_path / "test.tsv", [test_header, ["0", "15", "16", "No.", "Yes."]])
    processor = cd.MrpcProcessor()

    # The unbalanced quote stays part of the text: GLUE files are read without quoting.
    assert processor.get_train_examples(str(tmp_path)) == [
        cd.InputExample("train-1", "The dog.", 'A "dog.', "1")
    ]
    assert processor.get_dev_examples(str(tmp_path)) == [
        cd.InputExample("dev-1", "It is.", "It is not.", "0")
    ]
    # Test labels are the dummy "0", as in the original.
    assert processor.get_test_examples(str(tmp_path)) == [
        cd.InputExample("test-1", "No.", "Yes.", "0")
    ]
    assert processor.get_labels() == ["0", "1"]
    assert processor.metric_name == classifier_metrics.ACCURACY_AND_F1


def test_cola_has_no_header_in_train_and_dev_but_one_in_test(tmp_path):
    write(tmp_path / "train.tsv", [["gj04", "1", "", "The dog is hairy."], ["gj04", "0", "*", ""]])
    write(tmp_path / "dev.tsv", [["cj99", "0", "*", "Dog the."]])
    write(tmp_path / "test.tsv", [["index", "sentence"], ["0", "Is it?"], ["1", "No."]])
    processor = cd.ColaProcessor()

    assert processor.get_train_examples(str(tmp_path)) == [
        cd.InputExample("train-0", "The dog is hairy.", None, "1"),
        cd.InputExample("train-1", "", None, "0"),  # an empty sentence is allowed
    ]
    assert processor.get_dev_examples(str(tmp_path)) == [
        cd.InputExample("dev-0", "Dog the.", None, "0")
    ]
    assert processor.get_test_examples(str(tmp_path)) == [
        cd.InputExample("test-1", "Is it?", None, "0"),
        cd.InputExample("test-2", "No.", None, "0"),
    ]
    assert processor.metric_name == classifier_metrics.MCC


MNLI_COLUMNS = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse",
    "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
]  # fmt: skip


def mnli_row(index, premise, hypothesis, *labels):
    return [index, "p", "q", "fiction", "(", "(", "(", "(", premise, hypothesis, *labels]


def test_mnli_matched_and_mismatched_read_their_own_dev_and_test_files(tmp_path):
    train_header = MNLI_COLUMNS + ["label1", "gold_label"]
    dev_header = MNLI_COLUMNS + ["label1", "label2", "label3", "label4", "label5", "gold_label"]
    write(tmp_path / "train.tsv", [train_header, mnli_row("7", "P.", "H.", "neutral", "neutral")])
    dev_labels = ["entailment"] * 4 + ["neutral", "entailment"]
    write(tmp_path / "dev_matched.tsv", [dev_header, mnli_row("8", "M.", "N.", *dev_labels)])
    mismatched_labels = ["contradiction"] * 6
    write(
        tmp_path / "dev_mismatched.tsv",
        [dev_header, mnli_row("9", "X.", "Y.", *mismatched_labels)],
    )
    write(tmp_path / "test_matched.tsv", [MNLI_COLUMNS, mnli_row("10", "T.", "U.")])
    write(tmp_path / "test_mismatched.tsv", [MNLI_COLUMNS, mnli_row("11", "V.", "W.")])
    matched, mismatched = cd.MnliProcessor(), cd.MnliMismatchedProcessor()
    data_dir = str(tmp_path)

    # The label is the last column (gold_label), the guid ends with the index column.
    assert matched.get_train_examples(data_dir) == [
        cd.InputExample("train-7", "P.", "H.", "neutral")
    ]
    assert mismatched.get_train_examples(data_dir) == matched.get_train_examples(data_dir)
    assert matched.get_dev_examples(data_dir) == [
        cd.InputExample("dev_matched-8", "M.", "N.", "entailment")
    ]
    assert mismatched.get_dev_examples(data_dir) == [
        cd.InputExample("dev_mismatched-9", "X.", "Y.", "contradiction")
    ]
    assert matched.get_test_examples(data_dir) == [
        cd.InputExample("test-10", "T.", "U.", "contradiction")
    ]
    assert mismatched.get_test_examples(data_dir) == [
        cd.InputExample("test_mismatched-11", "V.", "W.", "contradiction")
    ]
    assert matched.get_labels() == ["contradiction", "entailment", "neutral"]


XNLI_COLUMNS = [
    "language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID",
    "genre", "label1", "label2", "label3", "label4", "label5", "sentence1_tokenized",
    "sentence2_tokenized", "match",
]  # fmt: skip


def xnli_row(language, label, premise, hypothesis):
    return [language, label, "", "", "", "", premise, hypothesis, "1", "2", "g"] + ["x"] * 8


def test_xnli_reads_translated_multinli_train_and_filters_dev_by_language(tmp_path):
    write(
        tmp_path / "multinli" / "multinli.train.de.tsv",
        [["premise", "hypo", "label"], ["Ein Hund.", "Ein Tier.", "contradictory"]],
    )
    dev_rows = [
        xnli_row("en", "neutral", "A.", "B."),
        xnli_row("de", "entailment", "C.", "D."),
        xnli_row("zh", "neutral", "E.", "F."),
    ]
    write(tmp_path / "xnli.dev.tsv", [XNLI_COLUMNS, *dev_rows])
    german = cd.XnliProcessor(language="de")

    # "contradictory" in the translated training file means "contradiction".
    assert german.get_train_examples(str(tmp_path)) == [
        cd.InputExample("train-1", "Ein Hund.", "Ein Tier.", "contradiction")
    ]
    # The guid counts every row of the file, other languages included.
    assert german.get_dev_examples(str(tmp_path)) == [
        cd.InputExample("dev-2", "C.", "D.", "entailment")
    ]
    assert cd.XnliProcessor().language == "zh"
    assert cd.XnliProcessor().get_dev_examples(str(tmp_path)) == [
        cd.InputExample("dev-3", "E.", "F.", "neutral")
    ]
    with pytest.raises(cd.DataFormatError, match=r"xnli\.dev\.tsv: .*language 'fr'"):
        cd.XnliProcessor(language="fr").get_dev_examples(str(tmp_path))


STSB_COLUMNS = ["index", "genre", "filename", "year", "old_index", "source1", "source2"]

# task: (train lines, test lines, first train example, first test example)
NEW_GLUE_TASKS = {
    "sst-2": (
        [["sentence", "label"], ["a hairy dog ", "1"]],
        [["index", "sentence"], ["0", "not hairy"]],
        cd.InputExample("train-1", "a hairy dog ", None, "1"),
        cd.InputExample("test-0", "not hairy", None, "0"),
    ),
    "qnli": (
        [["index", "question", "sentence", "label"], ["5", "Is it?", "It is.", "entailment"]],
        [["index", "question", "sentence"], ["6", "Why?", "No."]],
        cd.InputExample("train-5", "Is it?", "It is.", "entailment"),
        cd.InputExample("test-6", "Why?", "No.", "entailment"),
    ),
    "qqp": (
        [
            ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
            ["3", "1", "2", "How?", "How so?", "1"],
        ],
        [["id", "question1", "question2"], ["4", "What?", "Who?"]],
        cd.InputExample("train-3", "How?", "How so?", "1"),
        cd.InputExample("test-4", "What?", "Who?", "0"),
    ),
    "rte": (
        [["index", "sentence1", "sentence2", "label"], ["0", "A b.", "C.", "not_entailment"]],
        [["index", "sentence1", "sentence2"], ["0", "D.", "E."]],
        cd.InputExample("train-0", "A b.", "C.", "not_entailment"),
        cd.InputExample("test-0", "D.", "E.", "entailment"),
    ),
    "wnli": (
        [["index", "sentence1", "sentence2", "label"], ["2", "F.", "G.", "1"]],
        [["index", "sentence1", "sentence2"], ["3", "H.", "I."]],
        cd.InputExample("train-2", "F.", "G.", "1"),
        cd.InputExample("test-3", "H.", "I.", "0"),
    ),
    "sts-b": (
        [
            STSB_COLUMNS + ["sentence1", "sentence2", "score"],
            ["9", "news", "f", "2012", "1", "s", "t", "A plane.", "An air plane.", "4.750"],
        ],
        [
            STSB_COLUMNS + ["sentence1", "sentence2"],
            ["1", "news", "f", "2012", "1", "s", "t", "J.", "K."],
        ],
        cd.InputExample("train-9", "A plane.", "An air plane.", 4.75),
        cd.InputExample("test-1", "J.", "K.", None),
    ),
}  # fmt: skip


@pytest.mark.parametrize("task", sorted(NEW_GLUE_TASKS))
def test_glue_processors_read_the_glue_columns(tmp_path, task):
    train_lines, test_lines, expected_train, expected_test = NEW_GLUE_TASKS[task]
    write(tmp_path / "train.tsv", train_lines)
    write(tmp_path / "dev.tsv", train_lines)
    write(tmp_path / "test.tsv", test_lines)
    processor = cd.processor_for_task(task.upper())

    assert processor.get_train_examples(str(tmp_path)) == [expected_train]
    dev_example = processor.get_dev_examples(str(tmp_path))[0]
    assert dev_example.guid == expected_train.guid.replace("train", "dev")
    assert processor.get_test_examples(str(tmp_path)) == [expected_test]


def test_registry_names_kinds_and_metrics():
    assert sorted(cd.PROCESSORS) == sorted(
        ["cola", "mnli", "mnli-mm", "mrpc", "xnli", "sst-2", "qnli", "qqp", "rte", "wnli", "sts-b"]
    )
    metrics = {name: processor.metric_name for name, processor in cd.PROCESSORS.items()}
    assert metrics == {
        "cola": "mcc",
        "mnli": "accuracy",
        "mnli-mm": "accuracy",
        "mrpc": "accuracy_and_f1",
        "xnli": "accuracy",
        "sst-2": "accuracy",
        "qnli": "accuracy",
        "qqp": "accuracy_and_f1",
        "rte": "accuracy",
        "wnli": "accuracy",
        "sts-b": "pearson_and_spearman",
    }
    regression_tasks = {name for name, p in cd.PROCESSORS.items() if p.task_kind == cd.REGRESSION}
    assert regression_tasks == {"sts-b"}
    assert {p.task_kind for p in cd.PROCESSORS.values()} == {cd.CLASSIFICATION, cd.REGRESSION}
    assert cd.StsbProcessor().get_labels() == []
    assert cd.QnliProcessor().get_labels() == ["entailment", "not_entailment"]
    assert cd.WnliProcessor().get_labels() == ["0", "1"]
    with pytest.raises(ValueError, match="Task not found: squad"):
        cd.processor_for_task("squad")


def test_qqp_skips_malformed_training_rows_but_not_test_rows(tmp_path):
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    rows = [
        ["1", "1", "2", "How?", "How so?", "0"],
        ["2", "3", "4", "broken"],
        ["3", "5", "6", "Q?", "R?", "1"],
    ]
    write(tmp_path / "train.tsv", [header, *rows])
    write(tmp_path / "test.tsv", [["id", "question1", "question2"], ["0", "only one"]])
    processor = cd.QqpProcessor()

    assert [e.guid for e in processor.get_train_examples(str(tmp_path))] == ["train-1", "train-3"]
    with pytest.raises(cd.DataFormatError, match=r"test\.tsv:2: expected 3 fields .* found 2"):
        processor.get_test_examples(str(tmp_path))


def test_read_tsv_keeps_the_original_interface(tmp_path):
    path = write(tmp_path / "x.tsv", ["a\tb", "", 'c\t"d'])
    assert cd.DataProcessor._read_tsv(str(path)) == [["a", "b"], [], ["c", '"d']]


# ---------------------------------------------------------------------------------------------
# Truncation and features
# ---------------------------------------------------------------------------------------------


def features_of(tokenizer, text_a, text_b, max_seq_length, label="1", ex_index=10):
    example = cd.InputExample("guid-1", text_a, text_b, label)
    return cd.convert_single_example(ex_index, example, ["0", "1"], max_seq_length, tokenizer)


def test_pair_features_match_hand_computed_ids(tokenizer):
    # [CLS] is jack ##son ##ville hairy ? [SEP] no it is not . [SEP] [PAD] [PAD]
    features = features_of(tokenizer, "Is Jacksonville hairy?", "No it is NOT.", 16)
    assert features.input_ids == [CLS, 7, 13, 14, 15, 8, 16, SEP, 10, 11, 7, 12, 9, SEP, 0, 0]
    assert features.input_mask == [1] * 14 + [0] * 2
    assert features.segment_ids == [0] * 8 + [1] * 6 + [0] * 2
    assert features.label_id == 1
    assert features.is_real_example is True


def test_pair_truncation_in_features(tokenizer):
    # Budget 8 - 3 = 5 tokens: "a b c d e f g" loses 4 tokens, "a b" keeps both.
    features = features_of(tokenizer, "a b c d e f g", "a b", 8)
    assert features.input_ids == [CLS, A, B, C, SEP, A, B, SEP]
    assert features.segment_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    # Budget 7 - 3 = 4 from 3 + 3: b loses "f" (tie), then a loses "c".
    features = features_of(tokenizer, "a b c", "d e f", 7)
    assert features.input_ids == [CLS, A, B, SEP, D, E, SEP]


def test_single_sequence_truncation_and_empty_texts(tokenizer):
    # Budget 6 - 2 = 4 tokens.
    features = features_of(tokenizer, "a b c d e f g", None, 6)
    assert features.input_ids == [CLS, A, B, C, D, SEP]
    assert features.segment_ids == [0] * 6
    # An empty text_b is no second sequence: no second [SEP].
    assert features_of(tokenizer, "a", "", 5).input_ids == [CLS, A, SEP, 0, 0]
    # An empty text_a still gives [CLS] [SEP].
    empty = features_of(tokenizer, "", None, 4)
    assert (empty.input_ids, empty.input_mask) == ([CLS, SEP, 0, 0], [1, 1, 0, 0])


def test_regression_and_multi_label_label_ids(tokenizer):
    regression = cd.convert_single_example(
        0, cd.InputExample("r", "a", None, "3.25"), [], 4, tokenizer, cd.REGRESSION
    )
    assert regression.label_id == 3.25
    multi = cd.convert_single_example(
        0, cd.InputExample("m", "a", None, ["c", "a"]), ["a", "b", "c"], 4, tokenizer,
        cd.MULTI_LABEL,
    )  # fmt: skip
    assert multi.label_id == [1, 0, 1]
    unlabelled = cd.convert_single_example(
        0, cd.InputExample("t", "a", None, None), ["x", "y"], 4, tokenizer
    )
    assert unlabelled.label_id == 0


def test_padding_examples_and_features(tokenizer):
    examples = [cd.InputExample(f"e-{i}", "a") for i in range(5)]
    padded = cd.pad_examples_to_batch_multiple(examples, 4)
    assert len(padded) == 8 and padded[:5] == examples
    assert all(isinstance(e, cd.PaddingInputExample) for e in padded[5:])
    assert len(examples) == 5  # the input list is not modified
    assert len(cd.pad_examples_to_batch_multiple(examples[:4], 4)) == 4

    padding = cd.PaddingInputExample()
    features = cd.convert_single_example(0, padding, ["0", "1"], 4, tokenizer)
    assert features == cd.InputFeatures([0] * 4, [0] * 4, [0] * 4, 0, is_real_example=False)
    regression = cd.convert_single_example(0, padding, [], 3, tokenizer, cd.REGRESSION)
    assert regression.label_id == 0.0 and regression.is_real_example is False
    multi = cd.convert_single_example(0, padding, ["a", "b", "c"], 3, tokenizer, cd.MULTI_LABEL)
    assert multi.label_id == [0, 0, 0]


def test_first_five_examples_are_logged_one_of_them_at_info(tokenizer, tf_debug_logs):
    examples = [cd.InputExample(f"ex-{i}", "the dog", None, "0") for i in range(7)]
    cd.convert_examples_to_features(examples, ["0", "1"], 6, tokenizer)
    guids = [(level, text) for level, text in tf_debug_logs if text.startswith("guid: ")]
    assert [text for _, text in guids] == [f"guid: ex-{i}" for i in range(5)]
    # The first example of a process is shown at INFO (an earlier test may have had it),
    # the others only at DEBUG.
    assert [text for level, text in guids if level == logging.INFO] in ([], ["guid: ex-0"])
    tf_info_logs = [text for _, text in tf_debug_logs]
    assert "tokens: [CLS] the dog [SEP]" in tf_info_logs
    assert "input_ids: 2 5 6 3 0 0" in tf_info_logs
    assert "label: 0 (id = 0)" in tf_info_logs


# ---------------------------------------------------------------------------------------------
# TFRecords
# ---------------------------------------------------------------------------------------------


def expected_tf_example(input_ids, input_mask, segment_ids, label_feature, is_real):
    """The record the original run_classifier writes, built directly from protobufs."""

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "input_ids": ints(input_ids),
                "input_mask": ints(input_mask),
                "segment_ids": ints(segment_ids),
                "label_ids": label_feature,
                "is_real_example": ints([is_real]),
            }
        )
    )


def read_records(path):
    return [tf.train.Example.FromString(r) for r in tf.io.tf_record_iterator(str(path))]


def test_tfrecords_have_the_original_features(tmp_path, tokenizer):
    output = tmp_path / "train.tf_record"
    examples = [cd.InputExample("a", "the dog", "no", "1"), cd.PaddingInputExample()]
    count = cd.file_based_convert_examples_to_features(
        examples, ["0", "1"], 6, tokenizer, str(output)
    )
    assert count == 2
    assert os.listdir(tmp_path) == ["train.tf_record"]  # no temporary file left behind

    label_one = tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))
    label_zero = tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))
    assert read_records(output) == [
        expected_tf_example([CLS, 5, 6, SEP, 10, SEP], [1] * 6, [0, 0, 0, 0, 1, 1], label_one, 1),
        expected_tf_example([0] * 6, [0] * 6, [0] * 6, label_zero, 0),
    ]


def parse_with_spec(record, spec):
    with tf.Graph().as_default():
        parsed = tf.io.parse_single_example(record, spec)
        with tf.Session() as session:
            return session.run(parsed)


def test_regression_and_multi_label_records_parse_with_feature_spec(tmp_path, tokenizer):
    regression_file = tmp_path / "stsb.tf_record"
    cd.file_based_convert_examples_to_features(
        [cd.InputExample("r", "a", "b", 2.5)], [], 5, tokenizer, str(regression_file),
        cd.REGRESSION,
    )  # fmt: skip
    (record,) = tf.io.tf_record_iterator(str(regression_file))
    parsed = parse_with_spec(record, cd.feature_spec(5, cd.REGRESSION))
    assert parsed["label_ids"].dtype.name == "float32" and parsed["label_ids"] == 2.5
    assert list(parsed["input_ids"]) == [CLS, A, SEP, B, SEP]
    assert list(parsed["segment_ids"]) == [0, 0, 0, 1, 1]

    multi_file = tmp_path / "multi.tf_record"
    cd.file_based_convert_examples_to_features(
        [cd.InputExample("m", "a", None, ["y"])], ["x", "y", "z"], 4, tokenizer, str(multi_file),
        cd.MULTI_LABEL,
    )  # fmt: skip
    (record,) = tf.io.tf_record_iterator(str(multi_file))
    parsed = parse_with_spec(record, cd.feature_spec(4, cd.MULTI_LABEL, num_labels=3))
    assert list(parsed["label_ids"]) == [0, 1, 0]
    assert list(parsed["input_mask"]) == [1, 1, 1, 0]
    assert parsed["is_real_example"] == 1

    spec = cd.feature_spec(7)
    assert spec["label_ids"] == tf.io.FixedLenFeature([], tf.int64)
    assert spec["input_ids"] == tf.io.FixedLenFeature([7], tf.int64)
    with pytest.raises(ValueError, match="num_labels"):
        cd.feature_spec(4, cd.MULTI_LABEL)


def test_failed_conversion_leaves_no_record_file(tmp_path, tokenizer):
    output = tmp_path / "eval.tf_record"
    bad = [cd.InputExample("ok", "a", None, "0"), cd.InputExample("bad", "a", None, "7")]
    with pytest.raises(cd.DataFormatError, match="example 'bad': label '7'"):
        cd.file_based_convert_examples_to_features(bad, ["0", "1"], 4, tokenizer, str(output))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# The generic processor
# ---------------------------------------------------------------------------------------------


def test_generic_csv_with_header_names_quotes_and_inferred_labels(tmp_path):
    write(
        tmp_path / "train.csv",
        [
            "id,review,title,sentiment",
            '1,"Good, very ""good""",T1, positive',
            '2,"two',
            'lines",T2,negative',
            "3,,T3,neutral",
        ],
    )
    processor = cd.GenericProcessor(
        data_dir=str(tmp_path), text_a_column="review", text_b_column="title",
        label_column="sentiment",
    )  # fmt: skip
    # Labels come from the training file, sorted, before any split is read by the caller.
    assert processor.get_labels() == ["negative", "neutral", "positive"]
    examples = processor.get_train_examples(str(tmp_path))
    assert examples == [
        cd.InputExample("train-0", 'Good, very "good"', "T1", "positive"),
        cd.InputExample("train-1", "two\nlines", "T2", "negative"),
        cd.InputExample("train-2", "", "T3", "neutral"),
    ]
    # The quoted field spans lines 3-4, so the next row starts on line 5.
    assert [e.source for e in examples] == [
        f"{tmp_path / 'train.csv'}:{line}" for line in (2, 3, 5)
    ]
    assert processor.metric_name == classifier_metrics.PER_CLASS


def test_generic_tsv_by_index_without_header_and_unlabelled_test_file(tmp_path):
    write(tmp_path / "train.tsv", [["10", "a b"], ["2", "c"], ["10", "d"]])
    write(tmp_path / "dev.tsv", [["2", "e"]])
    write(tmp_path / "test.tsv", [["f"], ["g"]])
    processor = cd.GenericProcessor(text_a_column=1, label_column=0)

    assert processor.get_train_examples(str(tmp_path))[0] == cd.InputExample(
        "train-0", "a b", None, "10"
    )
    # Inferred from the training file just read; integers sort numerically.
    assert processor.get_labels() == ["2", "10"]
    assert processor.get_dev_examples(str(tmp_path)) == [cd.InputExample("dev-0", "e", None, "2")]
    # The test file has no label column: index 0 is the text there only if configured so.
    test_processor = cd.GenericProcessor(text_a_column=0, label_column=1, labels=["2", "10"])
    assert test_processor.get_test_examples(str(tmp_path)) == [
        cd.InputExample("test-0", "f", None, None),
        cd.InputExample("test-1", "g", None, None),
    ]


def test_generic_jsonl_keys_format_inference_and_custom_file_names(tmp_path):
    write(
        tmp_path / "my_train.jsonl",
        ['{"q": "Is it?", "a": "Yes.", "y": 1}', "", '{"q": "No?", "a": null, "y": 0}'],
    )
    write(tmp_path / "test.jsonl", ['{"q": "Why?", "a": "So."}'])
    processor = cd.GenericProcessor(
        train_file="my_train.jsonl", text_a_column="q", text_b_column="a", label_column="y"
    )
    assert processor.get_train_examples(str(tmp_path)) == [
        cd.InputExample("train-0", "Is it?", "Yes.", "1"),
        cd.InputExample("train-1", "No?", None, "0"),
    ]
    assert processor.get_labels() == ["0", "1"]
    # test.jsonl is found by its extension, and a test record may lack the label key.
    assert processor.get_test_examples(str(tmp_path)) == [
        cd.InputExample("test-0", "Why?", "So.", None)
    ]


def test_generic_multi_label_fields_and_json_lists(tmp_path, tokenizer):
    write(tmp_path / "train.tsv", ["text\ttopics", "a\tsports|politics", "b\t", "c\t politics "])
    write(tmp_path / "dev.jsonl", ['{"text": "d", "topics": ["arts", "sports"]}'])
    processor = cd.GenericProcessor(
        data_dir=str(tmp_path), label_column="topics", task_kind=cd.MULTI_LABEL
    )
    train = processor.get_train_examples(str(tmp_path))
    assert [e.label for e in train] == [["sports", "politics"], [], ["politics"]]
    assert processor.get_labels() == ["politics", "sports"]
    assert processor.metric_name == classifier_metrics.MULTI_LABEL
    features = cd.convert_examples_to_features(
        train, processor.get_labels(), 4, tokenizer, cd.MULTI_LABEL
    )
    assert [f.label_id for f in features] == [[1, 1], [0, 0], [1, 0]]

    dev = processor.get_dev_examples(str(tmp_path))
    assert dev[0].label == ["arts", "sports"]
    # "arts" never occurs in training, so the dev set cannot be scored against these labels.
    with pytest.raises(cd.DataFormatError, match=r"dev\.jsonl:1: label 'arts' is not in"):
        cd.check_labels(dev, processor.get_labels(), cd.MULTI_LABEL)


def test_generic_regression(tmp_path):
    write(tmp_path / "train.csv", ["s1,s2,score", "a,b,0.5", "c,d,4"])
    processor = cd.GenericProcessor(
        text_a_column="s1", text_b_column="s2", label_column="score", task_kind=cd.REGRESSION
    )
    assert [e.label for e in processor.get_train_examples(str(tmp_path))] == [0.5, 4.0]
    assert processor.get_labels() == []
    assert processor.metric_name == classifier_metrics.PEARSON_AND_SPEARMAN


def test_parse_column_and_label_order():
    assert cd.parse_column("3") == 3
    assert cd.parse_column("label") == "label"
    assert cd.parse_column("") is None
    assert cd.sorted_labels({"10", "2", "-1"}) == ["-1", "2", "10"]
    assert cd.sorted_labels({"b", "10", "a"}) == ["10", "a", "b"]


# The headers of GLUE's test files, as the benchmark ships them: every one starts with the
# example's id, which a submission must give back.
GLUE_TEST_HEADERS = {
    "cola": ("test.tsv", ["index", "sentence"]),
    "mnli": ("test_matched.tsv", ["index", "promptID", "pairID", "genre",
                                  "sentence1_binary_parse", "sentence2_binary_parse",
                                  "sentence1_parse", "sentence2_parse", "sentence1",
                                  "sentence2"]),
    "mrpc": ("test.tsv", ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]),
    "sst-2": ("test.tsv", ["index", "sentence"]),
    "qnli": ("test.tsv", ["index", "question", "sentence"]),
    "qqp": ("test.tsv", ["id", "question1", "question2"]),
    "rte": ("test.tsv", ["index", "sentence1", "sentence2"]),
    "wnli": ("test.tsv", ["index", "sentence1", "sentence2"]),
    "sts-b": ("test.tsv", ["index", "genre", "filename", "year", "old_index", "source1",
                           "source2", "sentence1", "sentence2"]),
}  # fmt: skip
GLUE_TEST_HEADERS["mnli-mm"] = ("test_mismatched.tsv", GLUE_TEST_HEADERS["mnli"][1])


@pytest.mark.parametrize("task", sorted(GLUE_TEST_HEADERS))
def test_glue_test_examples_keep_the_files_own_ids(tmp_path, task):
    file_name, header = GLUE_TEST_HEADERS[task]
    rows = [[str(index), *(["word"] * (len(header) - 1))] for index in (1007, 3, 42)]
    write(tmp_path / file_name, [header, *rows])
    processor = cd.processor_for_task(task)
    assert processor.test_id_name == header[0]
    examples = processor.get_test_examples(str(tmp_path))
    assert [example.example_id for example in examples] == ["1007", "3", "42"]


def test_generic_id_column_is_read_from_the_test_file_only(tmp_path):
    # 中文 ids and texts; train.csv has no id column at all.
    write(tmp_path / "train.csv", ["text,label", "很好,好"])
    write(tmp_path / "test.csv", ["编号,text", "q-7,服务太差了", "q-8,很好"])
    processor = cd.GenericProcessor(data_dir=str(tmp_path), id_column="编号")
    assert processor.get_train_examples(str(tmp_path))[0].example_id is None
    examples = processor.get_test_examples(str(tmp_path))
    assert [(e.example_id, e.text_a) for e in examples] == [("q-7", "服务太差了"), ("q-8", "很好")]
    assert processor.test_id_name == "编号"

    # By index in a file without header, and JSON numbers as their JSON text.
    write(tmp_path / "tsv" / "test.tsv", [["a1", "f"], ["a2", "g"]])
    by_index = cd.GenericProcessor(text_a_column=1, label_column=2, id_column=0)
    assert [e.example_id for e in by_index.get_test_examples(str(tmp_path / "tsv"))] == [
        "a1",
        "a2",
    ]
    assert by_index.test_id_name == "id"
    lines = ['{"id": 17, "text": "a"}', '{"id": "x", "text": "b"}']
    write(tmp_path / "jsonl" / "test.jsonl", lines)
    by_key = cd.GenericProcessor(id_column="id")
    assert [e.example_id for e in by_key.get_test_examples(str(tmp_path / "jsonl"))] == ["17", "x"]
    assert cd.GenericProcessor().test_id_name is None

    write(tmp_path / "bad" / "test.jsonl", ['{"id": [1], "text": "a"}'])
    with pytest.raises(cd.DataFormatError, match=r"test.jsonl:1: the id must be a string"):
        by_key.get_test_examples(str(tmp_path / "bad"))


def test_generic_option_errors():
    with pytest.raises(ValueError, match="has_header=True"):
        cd.GenericProcessor(text_a_column="text", has_header=False)
    with pytest.raises(ValueError, match="file_format='xml'"):
        cd.GenericProcessor(file_format="xml")
    with pytest.raises(ValueError, match="more than once"):
        cd.GenericProcessor(labels=["a", "a"])
    with pytest.raises(ValueError, match="cannot infer its labels"):
        cd.GenericProcessor().get_labels()


# ---------------------------------------------------------------------------------------------
# The module:Class plugin
# ---------------------------------------------------------------------------------------------

PLUGIN_SOURCE = """
import classifier_data


class YesNoProcessor(classifier_data.DataProcessor):
    def get_train_examples(self, data_dir):
        return [classifier_data.InputExample("train-0", data_dir, None, "yes")]

    def get_labels(self):
        return ["no", "yes"]


class NotAProcessor:
    pass
"""


@pytest.fixture
def plugin_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = tmp_path / "plugins" / "yes_no_tasks.py"
    path.parent.mkdir()
    path.write_text(PLUGIN_SOURCE, encoding="utf-8")
    yield path
    sys.modules.pop("yes_no_tasks", None)


def test_load_processor_from_a_file_and_from_a_module(plugin_file):
    processor = cd.load_processor(f"{plugin_file}:YesNoProcessor")
    assert processor.get_labels() == ["no", "yes"]
    assert processor.get_train_examples("/d") == [cd.InputExample("train-0", "/d", None, "yes")]
    # The file's directory is now on sys.path, so the module also imports by name.
    by_name = cd.load_processor("yes_no_tasks:YesNoProcessor")
    assert type(by_name).__name__ == "YesNoProcessor"


def test_load_processor_errors(plugin_file):
    with pytest.raises(ValueError, match="expected 'module:Class'"):
        cd.load_processor("yes_no_tasks")
    with pytest.raises(ImportError, match="cannot import module 'no_such_tasks_module'"):
        cd.load_processor("no_such_tasks_module:Processor")
    with pytest.raises(FileNotFoundError, match="missing.py"):
        cd.load_processor(f"{plugin_file.parent / 'missing.py'}:Processor")
    with pytest.raises(ImportError, match="has no 'Missing'.*YesNoProcessor"):
        cd.load_processor(f"{plugin_file}:Missing")
    with pytest.raises(TypeError, match="NotAProcessor is not a subclass of DataProcessor"):
        cd.load_processor(f"{plugin_file}:NotAProcessor")


# ---------------------------------------------------------------------------------------------
# Bad input: each error names the file and the line
# ---------------------------------------------------------------------------------------------


def test_wrong_number_of_columns_names_the_line(tmp_path):
    header = ["index", "sentence1", "sentence2", "label"]
    write(
        tmp_path / "train.tsv", [header, ["0", "a", "b", "entailment"], ["1", "a b", "entailment"]]
    )
    with pytest.raises(cd.DataFormatError, match=r"train\.tsv:3: expected 4 fields .* found 3"):
        cd.RteProcessor().get_train_examples(str(tmp_path))

    write(tmp_path / "dev.tsv", [["gj04", "1", "", "Fine."], [], ["gj04", "1", "Bad."]])
    with pytest.raises(cd.DataFormatError, match=r"dev\.tsv:3: expected 4 fields"):
        cd.ColaProcessor().get_dev_examples(str(tmp_path))

    write(tmp_path / "data.csv", ["text,label", "a,x", "b,y,extra"])
    processor = cd.GenericProcessor(train_file="data.csv")
    with pytest.raises(cd.DataFormatError, match=r"data\.csv:3: expected 2 fields"):
        processor.get_train_examples(str(tmp_path))


def test_label_not_in_label_list_names_the_line(tmp_path, tokenizer):
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    write(tmp_path / "dev.tsv", [header, ["1", "1", "2", "a", "b"], ["2", "3", "4", "c", "d"]])
    processor = cd.MrpcProcessor()
    examples = processor.get_dev_examples(str(tmp_path))
    expected = r"dev\.tsv:3: label '2' is not in the label list \['0', '1'\]"
    with pytest.raises(cd.DataFormatError, match=expected):
        cd.check_labels(examples, processor.get_labels())
    with pytest.raises(cd.DataFormatError, match=expected):
        cd.convert_examples_to_features(examples, processor.get_labels(), 8, tokenizer)


def test_empty_split_and_missing_file(tmp_path):
    write(tmp_path / "train.tsv", [["sentence", "label"], []])
    with pytest.raises(cd.DataFormatError, match=r"train\.tsv: contains no examples"):
        cd.Sst2Processor().get_train_examples(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv"):
        cd.Sst2Processor().get_dev_examples(str(tmp_path))
    write(tmp_path / "train.jsonl", ["", "  "])
    with pytest.raises(cd.DataFormatError, match=r"train\.jsonl: contains no examples"):
        cd.GenericProcessor(file_format="jsonl").get_train_examples(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"none of .*test\.tsv"):
        cd.GenericProcessor().get_test_examples(str(tmp_path))


def test_malformed_values_name_the_line(tmp_path):
    (tmp_path / "train.tsv").write_bytes(b"sentence\tlabel\na\t1\n\xff\t0\n")
    with pytest.raises(cd.DataFormatError, match=r"train\.tsv:3: not valid UTF-8"):
        cd.Sst2Processor().get_train_examples(str(tmp_path))

    stsb_header = STSB_COLUMNS + ["sentence1", "sentence2", "score"]
    bad_score_row = ["1", "g", "f", "y", "o", "s", "t", "a", "b", "high"]
    write(tmp_path / "stsb" / "train.tsv", [stsb_header, bad_score_row])
    with pytest.raises(cd.DataFormatError, match=r"train\.tsv:2: the label 'high' is not a number"):
        cd.StsbProcessor().get_train_examples(str(tmp_path / "stsb"))

    write(
        tmp_path / "j" / "train.jsonl", ['{"text": "a", "label": "x"}', '{"text": "b", "label": ']
    )
    with pytest.raises(cd.DataFormatError, match=r"train\.jsonl:2: invalid JSON"):
        cd.GenericProcessor().get_train_examples(str(tmp_path / "j"))

    write(tmp_path / "k" / "train.jsonl", ['{"text": "a"}'])
    with pytest.raises(cd.DataFormatError, match=r"train\.jsonl:1: no key 'label'"):
        cd.GenericProcessor().get_train_examples(str(tmp_path / "k"))

    write(tmp_path / "m" / "train.csv", ["body,label", "a,x"])
    with pytest.raises(cd.DataFormatError, match=r"train\.csv:1: no column named 'text'"):
        cd.GenericProcessor().get_train_examples(str(tmp_path / "m"))

    write(tmp_path / "n" / "train.csv", ["text,label", "a,"])
    with pytest.raises(cd.DataFormatError, match=r"train\.csv:2: the label is empty"):
        cd.GenericProcessor().get_train_examples(str(tmp_path / "n"))

    write(tmp_path / "o" / "train.tsv", [["a", "x"]])
    with pytest.raises(cd.DataFormatError, match=r"train\.tsv: label_column=2 does not exist"):
        cd.GenericProcessor(text_a_column=0, label_column=2).get_train_examples(str(tmp_path / "o"))


# ---------------------------------------------------------------------------------------------
# Encodings: Chinese CSV saved by Excel (GBK, or UTF-8 with a byte-order mark)
# ---------------------------------------------------------------------------------------------

CHINESE_ROWS = [("这部电影很好看", "好"), ("服务太差了，不会再来", "差")]


def write_chinese_csv(path, encoding, header="文本,标签"):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = header + "\r\n" + "".join(f"{t},{label}\r\n" for t, label in CHINESE_ROWS)
    path.write_bytes(text.encode(encoding))
    return path


def test_gbk_csv_fails_naming_file_line_and_flag_and_reads_with_its_encoding(tmp_path):
    path = write_chinese_csv(tmp_path / "train.csv", "gbk")
    columns = dict(text_a_column="文本", label_column="标签")
    with pytest.raises(cd.DataFormatError) as error:
        cd.GenericProcessor(**columns).get_train_examples(str(tmp_path))
    # "文" is ce c4 in GBK: the first byte of the file does not decode as UTF-8.
    assert str(error.value).startswith(
        f"{path}:1: not valid UTF-8 (byte 0xce at column 1); if the file is in another "
        "encoding, pass --input_encoding=gbk"
    )
    processor = cd.GenericProcessor(**columns)
    processor.input_encoding = "gbk"
    examples = processor.get_train_examples(str(tmp_path))
    assert [(e.text_a, e.label) for e in examples] == CHINESE_ROWS
    assert [e.source for e in examples] == [f"{path}:2", f"{path}:3"]
    assert sorted(processor.get_labels()) == sorted(["好", "差"])


def test_utf8_csv_with_byte_order_mark_keeps_its_header_names(tmp_path):
    write_chinese_csv(tmp_path / "train.csv", "utf-8-sig")
    processor = cd.GenericProcessor(text_a_column="文本", label_column="标签")
    examples = processor.get_train_examples(str(tmp_path))
    assert [(e.text_a, e.label) for e in examples] == CHINESE_ROWS


def test_glue_style_processor_reads_gbk_tsv_and_read_tsv_binds_to_the_instance(tmp_path):
    header = ["language", "gold_label"] + [f"c{i}" for i in range(2, 6)]
    header += ["sentence1", "sentence2"]
    row = ["zh", "neutral", "", "", "", "", "他在北京", "他住在中国"]
    path = tmp_path / "xnli.dev.tsv"
    path.write_bytes(("\t".join(header) + "\n" + "\t".join(row) + "\n").encode("gbk"))
    with pytest.raises(cd.DataFormatError, match=r"xnli\.dev\.tsv:2: not valid UTF-8 .*gbk"):
        cd.XnliProcessor().get_dev_examples(str(tmp_path))
    processor = cd.XnliProcessor()
    processor.input_encoding = "gbk"
    (example,) = processor.get_dev_examples(str(tmp_path))
    assert (example.text_a, example.text_b, example.label) == ("他在北京", "他住在中国", "neutral")
    # The original's `_read_tsv` is a classmethod; on an instance it reads its encoding.
    assert processor._read_tsv(str(path))[1][6] == "他在北京"
    with pytest.raises(cd.DataFormatError, match="not valid UTF-8"):
        cd.XnliProcessor._read_tsv(str(path))


def test_vocab_without_cls_fails_where_features_are_built(tmp_path):
    vocab_file = tmp_path / "no_cls_vocab.txt"
    vocab_file.write_text("\n".join(t for t in VOCAB if t != "[CLS]") + "\n", encoding="utf-8")
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    example = cd.InputExample("train-0", "the dog", None, "0")
    with pytest.raises(tokenization.MissingTokenError) as error:
        cd.convert_single_example(0, example, ["0", "1"], 8, tokenizer)
    assert str(error.value).startswith(f"{vocab_file} has no [CLS] token")
