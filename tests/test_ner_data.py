"""Tests of ner_data: readers, windows and their masks, document context, TFRecords."""

import json
import logging
import random

import numpy as np
import pytest
import tensorflow as tf

import ner_data
import ner_tags
import tfrecord_io
import tokenization
from classifier_data import DataFormatError
from helpers import write_vocab_for_texts

LABELS = ner_tags.labels_for_types(["LOC", "MISC", "ORG", "PER"], "BIO")


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory):
    """WordPiece over single characters only: a word of n characters is n pieces."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    texts = ["abcdefghijklmnopqrstuvwxyz0123456789", "张三在北京大学工作李四上海华为公司"]
    write_vocab_for_texts(path, texts, min_count=10**9)
    return tokenization.FullTokenizer(str(path), do_lower_case=True)


def by_line(sentences):
    return [(s.words, s.tags, s.document, s.lines) for s in sentences]


# --- readers ----------------------------------------------------------------------------------

CONLL_SAMPLE = (
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU\tNNP\tB-NP\tB-ORG\n"
    "rejects VBZ B-VP O\n"
    "German  JJ B-NP B-MISC\r\n"
    "call NN I-NP O\n"
    "\n"
    "\n"
    "Peter NNP B-NP B-PER\n"
    "Blackburn NNP B-NP I-PER\n"
    "-DOCSTART- -X- -X- O\n"
    "BRUSSELS NNP B-NP B-LOC"
)


def test_read_conll_columns_documents_and_lines(tmp_path):
    path = write(tmp_path, "train.txt", CONLL_SAMPLE)
    sentences = ner_data.read_conll(path, "BIO")
    assert by_line(sentences) == [
        (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"], 0, [3, 4, 5, 6]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"], 0, [9, 10]),
        (["BRUSSELS"], ["B-LOC"], 1, [12]),
    ]
    assert sentences[1].location(1) == f"{path}:10"
    unlabelled = ner_data.read_conll(path, "BIO", labelled=False)
    assert unlabelled[0].tags is None and unlabelled[0].words[0] == "EU"


def test_read_chinese_character_per_line(tmp_path):
    text = "张 B-PER\n三 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\u3000 O\n\n华\tB-ORG\n为\tI-ORG\n"
    path = write(tmp_path, "zh.txt", "\ufeff" + text)  # a byte-order mark is dropped
    sentences = ner_data.read_conll(path, "BIO")
    assert by_line(sentences) == [
        (["张", "三", "在", "北", "京", "\u3000"], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"],
         0, [1, 2, 3, 4, 5, 6]),
        (["华", "为"], ["B-ORG", "I-ORG"], 0, [8, 9]),
    ]  # fmt: skip
    gbk = write(tmp_path, "zh_gbk.txt", text, encoding="gbk")
    assert by_line(ner_data.read_conll(gbk, "BIO", encoding="gbk")) == by_line(sentences)
    with pytest.raises(DataFormatError, match=f"{gbk}:1: not valid UTF-8 .*--input_encoding"):
        ner_data.read_conll(gbk, "BIO")


def test_iobes_repair_names_the_unclosed_chunk(tmp_path, caplog):
    path = write(tmp_path, "train.txt", "a O\nb O\nc B-LOC\nd O\n")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        assert ner_data.read_conll(path, "IOBES")[0].tags == ["O", "O", "S-LOC", "O"]
    assert f"{path}:3: 'O B-LOC O' breaks the IOBES scheme at 'B-LOC'" in caplog.text


def test_read_bmes_and_iobes(tmp_path):
    path = write(tmp_path, "bmes.txt", "北 B-LOC\n京 M-LOC\n市 E-LOC\n人 S-PER\n")
    assert ner_data.read_conll(path, "BMES")[0].tags == ["B-LOC", "M-LOC", "E-LOC", "S-PER"]
    with pytest.raises(DataFormatError, match=f"{path}:2: tag 'M-LOC' is not a BIO tag"):
        ner_data.read_conll(path, "BIO")


def test_undecodable_line_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a O\n\nb O\nc\xff O\n")
    expected = f"{path}:4: not valid UTF-8 \\(byte 0xff at column 2\\)"
    with pytest.raises(DataFormatError, match=expected):
        ner_data.read_conll(str(path), "BIO")


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("EU B-ORG\nrejects\n", 2, "the word 'rejects' has no tag"),
        ("EU O\n\nPeter X-PER\n", 3, "tag 'X-PER' is not a BIO tag"),
        ("EU B_PER\n", 1, "tag 'B_PER' is not a BIO tag"),
    ],
)
def test_bad_conll_lines_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(DataFormatError, match=f"^{path}:{line}: {message}"):
        ner_data.read_conll(path, "BIO")


def test_invalid_sequence_is_repaired_with_a_warning_or_rejected(tmp_path, caplog):
    path = write(tmp_path, "train.txt", "the O\nEU I-ORG\nbank I-ORG\n\nof O\nI-PER-less O\n")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        sentences = ner_data.read_conll(path, "BIO")
    assert sentences[0].tags == ["O", "B-ORG", "I-ORG"]
    assert sentences[1].tags == ["O", "O"]
    assert (
        f"{path}:2: 'O I-ORG I-ORG' breaks the BIO scheme at 'I-ORG'; read as 'O B-ORG I-ORG'"
        in caplog.text
    )
    assert f"{path}: 1 sentence(s) broke the BIO scheme and were repaired (if" in caplog.text
    with pytest.raises(DataFormatError, match=f"{path}:2: 'O I-ORG I-ORG' breaks the BIO"):
        ner_data.read_conll(path, "BIO", invalid_sequence="error")
    # IOB1 allows an I- after O: nothing to repair.
    assert ner_data.read_conll(path, "IOB1")[0].tags == ["O", "I-ORG", "I-ORG"]


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- -X- O\n\n"])
def test_empty_split_is_an_error(tmp_path, text):
    path = write(tmp_path, "dev.txt", text)
    with pytest.raises(DataFormatError, match=f"{path}: holds no sentences"):
        ner_data.read_conll(path, "BIO")


def test_tag_outside_the_label_list_names_file_and_line(tmp_path):
    path = write(tmp_path, "dev.txt", "a O\n\nb B-PER\nc B-EVENT\n")
    sentences = ner_data.read_conll(path, "BIO")
    with pytest.raises(DataFormatError, match=f"{path}:4: tag 'B-EVENT' is not in the label"):
        ner_data.check_labels(sentences, LABELS)


def test_label_list_from_training_data(tmp_path):
    path = write(tmp_path, "train.txt", CONLL_SAMPLE)
    assert ner_data.label_list_from(ner_data.read_conll(path, "BIO"), "BIO") == LABELS
    assert LABELS[:3] == ["O", "B-LOC", "B-MISC"]


def test_read_json_lines(tmp_path):
    records = [
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"], "document": "d1"},
        {"tokens": ["in", "Bonn"], "tags": ["O", "I-LOC"], "document": "d1"},
        {"tokens": ["张", "三"], "tags": ["B-PER", "I-PER"], "document": "d2"},
        {"tokens": ["x"], "tags": ["O"]},
        {"tokens": ["y"], "tags": ["O"]},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path = write(tmp_path, "train.jsonl", "\n".join(lines[:2] + [""] + lines[2:]) + "\n")
    sentences = ner_data.read_sentences(path, "BIO")
    assert [s.document for s in sentences] == [0, 0, 1, 2, 3]
    assert [s.lines[0] for s in sentences] == [1, 2, 4, 5, 6]
    assert sentences[1].tags == ["O", "B-LOC"]  # repaired
    assert sentences[2].words == ["张", "三"]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"tokens": ["a"], "tags": ["O"]', "not valid JSON"),
        ('["a"]', 'expected an object with "tokens"'),
        ('{"tokens": ["a", "b"], "tags": ["O"]}', "2 tokens but 1 tags"),
        ('{"tokens": "a b", "tags": ["O"]}', "'tokens' must be a list of strings"),
        ('{"tokens": ["a"]}', 'no "tags"'),
        ('{"tokens": [], "tags": []}', "no tokens"),
        ('{"tokens": ["a"], "tags": ["B_PER"]}', "'B_PER' is not a BIO tag"),
    ],
)
def test_bad_json_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, "bad.jsonl", '{"tokens": ["ok"], "tags": ["O"]}\n' + line + "\n")
    with pytest.raises(DataFormatError, match=f"{path}:2: .*{message}"):
        ner_data.read_json_lines(path, "BIO")


# --- features ---------------------------------------------------------------------------------


def sentence(words, tags, document=0):
    return ner_data.NerSentence(words, tags, document, "mem", list(range(1, len(words) + 1)))


def test_hand_worked_features(char_tokenizer):
    # "\x07" is a control character: it tokenizes to nothing and becomes [UNK].
    example = sentence(["EU", "rejects", "\x07", "Pe"], ["B-ORG", "O", "O", "B-PER"])
    [window] = ner_data.convert_sentences_to_features(
        [example], LABELS, "BIO", char_tokenizer, max_seq_length=16, doc_stride=4
    )
    expected_tokens = ["[CLS]", "e", "##u", "r", "##e", "##j", "##e", "##c", "##t", "##s",
                       "[UNK]", "p", "##e", "[SEP]"]  # fmt: skip
    assert window.tokens == expected_tokens
    assert window.input_ids == char_tokenizer.convert_tokens_to_ids(expected_tokens) + [0, 0]
    assert window.input_mask == [1] * 14 + [0, 0]
    assert window.segment_ids == [0] * 16
    first_pieces = [1, 3, 10, 11]
    assert window.label_mask == [int(p in first_pieces) for p in range(16)]
    assert window.prediction_mask == window.label_mask
    expected_labels = [0] * 16
    for position, tag in zip(first_pieces, example.tags, strict=True):
        expected_labels[position] = LABELS.index(tag)
    assert window.label_ids == expected_labels
    assert window.word_indices == [-1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, -1, -1, -1]
    assert window.sentence_index == 0 and window.is_real_example


def random_sentences(rng, num_sentences, max_words, types=("PER", "LOC")):
    result = []
    for index in range(num_sentences):
        num_words = rng.randint(1, max_words)
        words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 4)))
                 for _ in range(num_words)]  # fmt: skip
        chunks, position = [], 0
        while position < num_words:
            length = rng.randint(1, 3)
            if rng.random() < 0.4:
                chunks.append(
                    ner_tags.Chunk(
                        rng.choice(types), position, min(position + length, num_words) - 1
                    )
                )
            position += length
        tags = ner_tags.encode_chunks(chunks, num_words, "BIO")
        result.append(sentence(words, tags, document=index // 4))
    return result


def window_body(window):
    """The positions of the window's own sentence (word_indices >= 0)."""
    return [p for p, word in enumerate(window.word_indices) if word >= 0]


def check_windows(sentences, features, max_seq_length, tokenizer, scheme="BIO"):
    label_list = ner_tags.labels_for_types(["LOC", "PER"], scheme)
    owners = {}
    for window_index, window in enumerate(features):
        assert len(window.input_ids) == max_seq_length
        assert sum(window.input_mask) <= max_seq_length
        assert window.tokens[0] == "[CLS]" and window.tokens[-1] == "[SEP]"
        example = sentences[window.sentence_index]
        pieces = [(p, w) for w, word in enumerate(example.words) for p in tokenizer.tokenize(word)]
        body = window_body(window)
        # The window's own pieces are one contiguous run of the sentence's pieces.
        assert body == list(range(body[0], body[-1] + 1))
        run = [(window.tokens[p], window.word_indices[p]) for p in body]
        assert any(pieces[s : s + len(run)] == run for s in range(len(pieces)))
        labelled = [p for p in range(max_seq_length) if window.label_mask[p]]
        for position in range(max_seq_length):
            assert window.prediction_mask[position] <= window.label_mask[position]
            if window.label_mask[position]:
                assert position in body
                word = window.word_indices[position]
                assert window.word_indices[position - 1] != word  # a first piece
            else:
                assert window.label_ids[position] == 0
            if window.prediction_mask[position]:
                key = (window.sentence_index, window.word_indices[position])
                assert key not in owners, f"{key} predicted twice"
                owners[key] = window_index
        # Window labels: its words' tags re-encoded as a valid sequence of their own.
        words = [window.word_indices[p] for p in labelled]
        expected = ner_tags.repair([example.tags[w] for w in words], scheme)
        assert [label_list[window.label_ids[p]] for p in labelled] == expected
    every_word = {(s, w) for s, example in enumerate(sentences) for w in range(len(example.words))}
    assert set(owners) == every_word
    return owners


def max_context_owner(features, sentence_index, word):
    """The squad rule, written here: of the windows holding the word's first piece, the first
    with the largest min(left, right) + 0.01 * length, counted in the sentence's own pieces."""
    best, best_score = None, None
    for index, window in enumerate(features):
        if window.sentence_index != sentence_index:
            continue
        body = window_body(window)
        firsts = [p for p in body if window.label_mask[p] and window.word_indices[p] == word]
        if not firsts:
            continue
        position = firsts[0]
        score = min(position - body[0], body[-1] - position) + 0.01 * len(body)
        if best_score is None or score > best_score:
            best, best_score = index, score
    return best


@pytest.mark.parametrize("max_seq_length", [6, 11, 16])
@pytest.mark.parametrize("stride_kind", ["one", "small", "half", "full", "beyond"])
def test_windows_cover_every_word_exactly_once(char_tokenizer, max_seq_length, stride_kind):
    max_pieces = max_seq_length - 2
    doc_stride = {"one": 1, "small": 3, "half": max(max_pieces // 2, 1), "full": max_pieces,
                  "beyond": max_pieces + 3}[stride_kind]  # fmt: skip
    rng = random.Random(f"{max_seq_length}-{stride_kind}")
    # Up to 40 words of 1-4 pieces: several times max_seq_length.
    sentences = random_sentences(rng, num_sentences=12, max_words=40)
    features = ner_data.convert_sentences_to_features(
        sentences, ner_tags.labels_for_types(["LOC", "PER"], "BIO"), "BIO", char_tokenizer,
        max_seq_length, doc_stride,
    )  # fmt: skip
    assert len(features) > 3 * len(sentences)
    owners = check_windows(sentences, features, max_seq_length, char_tokenizer)
    for (sentence_index, word), owner in owners.items():
        assert owner == max_context_owner(features, sentence_index, word)
    assert [w.sentence_index for w in features] == sorted(w.sentence_index for w in features)


@pytest.mark.parametrize("doc_stride", [2, 5, 9])
def test_document_context_labels_only_the_centre_sentence(char_tokenizer, doc_stride):
    max_seq_length = 18
    rng = random.Random(doc_stride)
    sentences = random_sentences(rng, num_sentences=16, max_words=12)
    features = ner_data.convert_sentences_to_features(
        sentences, ner_tags.labels_for_types(["LOC", "PER"], "BIO"), "BIO", char_tokenizer,
        max_seq_length, doc_stride, use_document_context=True,
    )  # fmt: skip
    check_windows(sentences, features, max_seq_length, char_tokenizer)
    pieces = [[p for word in s.words for p in char_tokenizer.tokenize(word)] for s in sentences]
    num_with_context = 0
    for window in features:
        index = window.sentence_index
        body = window_body(window)
        left = window.tokens[1 : body[0]]
        right = window.tokens[body[-1] + 1 : -1]
        doc = [i for i, s in enumerate(sentences) if s.document == sentences[index].document]
        before = [p for i in doc if i < index for p in pieces[i]]
        after = [p for i in doc if i > index for p in pieces[i]]
        # Context is the nearest pieces of the same document, in order, and unlabelled.
        assert left == (before[len(before) - len(left) :] if left else [])
        assert right == after[: len(right)]
        for position in [*range(1, body[0]), *range(body[-1] + 1, len(window.tokens) - 1)]:
            assert window.label_mask[position] == window.label_ids[position] == 0
            assert window.word_indices[position] == -1
        if len(body) == len(pieces[index]):
            # A whole sentence takes as much context as the budget and the document allow.
            budget = max_seq_length - 2 - len(body)
            assert len(left) + len(right) == min(budget, len(before) + len(after))
        num_with_context += bool(left or right)
    assert num_with_context > len(sentences) // 2


def test_document_context_stays_within_the_document(char_tokenizer):
    sentences = [sentence(["ab"], ["O"], 0), sentence(["cd"], ["B-PER"], 1),
                 sentence(["ef"], ["O"], 1)]  # fmt: skip
    features = ner_data.convert_sentences_to_features(
        sentences, LABELS, "BIO", char_tokenizer, 16, 4, use_document_context=True
    )
    assert [w.tokens for w in features] == [
        ["[CLS]", "a", "##b", "[SEP]"],
        ["[CLS]", "c", "##d", "e", "##f", "[SEP]"],
        ["[CLS]", "c", "##d", "e", "##f", "[SEP]"],
    ]
    assert features[1].label_mask[:6] == [0, 1, 0, 0, 0, 0]
    assert features[2].label_mask[:6] == [0, 0, 0, 1, 0, 0]
    assert features[1].label_ids[1] == LABELS.index("B-PER")


def test_document_context_takes_all_of_a_short_neighbour(char_tokenizer):
    sentences = [sentence(["abc"], ["B-PER"]), sentence(["d"], ["O"]), sentence(["e"], ["O"])]
    features = ner_data.convert_sentences_to_features(
        sentences, LABELS, "BIO", char_tokenizer, 7, 2, use_document_context=True
    )
    assert features[1].tokens == ["[CLS]", "a", "##b", "##c", "d", "e", "[SEP]"]
    # Nothing follows the last sentence: the left side takes the whole budget of 4.
    assert features[2].tokens == ["[CLS]", "a", "##b", "##c", "d", "e", "[SEP]"]
    assert features[2].label_mask == [0, 0, 0, 0, 0, 1, 0]


def test_unlabelled_sentences_still_have_label_masks(char_tokenizer):
    example = ner_data.NerSentence(["abc", "d"], None, 0, "mem", [1, 2])
    [window] = ner_data.convert_sentences_to_features(
        [example], LABELS, "BIO", char_tokenizer, 8, 2
    )
    assert window.label_mask == [0, 1, 0, 0, 1, 0, 0, 0]
    assert window.label_ids == [0] * 8


def test_convert_checks_labels_and_arguments(char_tokenizer):
    example = sentence(["a"], ["B-EVENT"])
    with pytest.raises(DataFormatError, match="mem:1: tag 'B-EVENT' is not in the label list"):
        ner_data.convert_sentences_to_features([example], LABELS, "BIO", char_tokenizer, 8, 2)
    with pytest.raises(ValueError, match="doc_stride"):
        ner_data.convert_sentences_to_features([], LABELS, "BIO", char_tokenizer, 8, 0)
    with pytest.raises(ValueError, match="max_seq_length"):
        ner_data.convert_sentences_to_features([], LABELS, "BIO", char_tokenizer, 2, 1)
    with pytest.raises(ner_tags.TagError, match="lacks"):
        ner_data.convert_sentences_to_features([], ["O", "B-PER"], "BIO", char_tokenizer, 8, 1)


def test_word_predictions_map_windows_back_to_words(char_tokenizer):
    rng = random.Random(5)
    sentences = random_sentences(rng, num_sentences=6, max_words=30)
    label_list = ner_tags.labels_for_types(["LOC", "PER"], "BIO")
    features = ner_data.convert_sentences_to_features(
        sentences, label_list, "BIO", char_tokenizer, 10, 3
    )
    features = ner_data.pad_features_to_batch_multiple(features, 7, 10)
    assert len(features) % 7 == 0 and not features[-1].is_real_example

    def code(sentence_index, word):
        return (sentence_index * 7 + word) % len(label_list)

    predicted = [
        [code(w.sentence_index, word) if word >= 0 else 0 for word in w.word_indices]
        for w in features
    ]
    tags = ner_data.word_predictions(features, predicted, sentences, label_list)
    assert tags == [[label_list[code(s, w)] for w in range(len(example.words))]
                    for s, example in enumerate(sentences)]  # fmt: skip
    with pytest.raises(ValueError, match="predicted twice"):
        ner_data.word_predictions(features + features, predicted * 2, sentences, label_list)
    with pytest.raises(ValueError, match="has no prediction"):
        ner_data.word_predictions(features[1:], predicted[1:], sentences, label_list)


def test_tfrecords_round_trip(tmp_path, char_tokenizer):
    sentences = random_sentences(random.Random(2), num_sentences=3, max_words=10)
    label_list = ner_tags.labels_for_types(["LOC", "PER"], "BIO")
    features = ner_data.convert_sentences_to_features(
        sentences, label_list, "BIO", char_tokenizer, 12, 4
    ) + [ner_data.padding_features(12)]
    path = str(tmp_path / "train.tfrecord")
    assert ner_data.write_features(features, [path]) == len(features)
    spec = ner_data.feature_spec(12)
    assert set(spec) == {"input_ids", "input_mask", "segment_ids", "label_ids", "label_mask",
                         "prediction_mask", "is_real_example"}  # fmt: skip
    tfrecord_io.check_record_lengths(path, spec)
    records = list(tf.data.TFRecordDataset(path).map(lambda r: tf.io.parse_single_example(r, spec)))
    assert len(records) == len(features)
    for record, window in zip(records, features, strict=True):
        for name in ner_data.FEATURE_NAMES:
            np.testing.assert_array_equal(record[name].numpy(), getattr(window, name))
        assert record["is_real_example"].numpy() == int(window.is_real_example)


def test_readers_take_already_opened_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("Peter B-PER\nsaid O\n\n张 B-PER\n", encoding="utf-8")
    with open(path, encoding="utf-8") as lines:  # lines keep their "\n"
        sentences = ner_data.read_conll_lines(lines, str(path), "BIO")
    assert [s.words for s in sentences] == [["Peter", "said"], ["张"]]
    json_lines = iter(['{"tokens": ["a", "b"], "tags": ["O", "B-LOC"]}\n'])
    [record] = ner_data.read_json_lines_from(json_lines, "stdin", "BIO")
    assert record.tags == ["O", "B-LOC"] and record.location() == "stdin:1"
