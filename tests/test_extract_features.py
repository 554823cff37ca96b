"""Tests of extract_features.py on a tiny random BERT: per-token JSON, pooled vectors and the
exported encoder against the model's own layers computed here, in-process, from the same
checkpoint."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import extract_features
import input_files
import modeling
from helpers import FILLER, run_script, write_bert_config, write_tiny_model, write_vocab_for_texts

tf1 = tf.compat.v1
SEQ_LENGTH = 16

LONG_A = FILLER[:12]
LONG_B = FILLER[4:8]
SINGLE_LONG = (FILLER + FILLER)[:20]
INPUT_LINES = [
    "river stone ||| Garden rivers ?",
    "wonderful music",
    " ".join(LONG_A) + " ||| " + " ".join(LONG_B),
    " ".join(SINGLE_LONG),
]
# Tokens and segments worked out by hand from the spec: lower-cased, "rivers" is
# "river" + "##s", "?" is not in the vocab, a pair is cut longest-first to 16 - 3 tokens
# (the 12-word text_a loses 3 to the 4-word text_b), a single sentence to 16 - 2.
EXPECTED_TOKENS = [
    ["[CLS]", "river", "stone", "[SEP]", "garden", "river", "##s", "[UNK]", "[SEP]"],
    ["[CLS]", "wonderful", "music", "[SEP]"],
    ["[CLS]", *LONG_A[:9], "[SEP]", *LONG_B, "[SEP]"],
    ["[CLS]", *SINGLE_LONG[:14], "[SEP]"],
]
EXPECTED_SEGMENTS = [[0] * 4 + [1] * 5, [0] * 4, [0] * 11 + [1] * 5, [0] * 16]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """Vocab, config and a random-init checkpoint of BertModel alone (no global_step, like
    a converted checkpoint)."""
    root = tmp_path_factory.mktemp("extract")
    model_flags = write_tiny_model(root)
    config = modeling.BertConfig.from_json_file(model_flags["bert_config_file"])
    checkpoint = str(root / "bert_model.ckpt")
    with tf.Graph().as_default():
        tf1.set_random_seed(7)
        ids = tf1.placeholder(tf.int32, [None, SEQ_LENGTH])
        modeling.BertModel(config, is_training=False, input_ids=ids)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, checkpoint)
    input_file = root / "input.txt"
    input_file.write_text("\n".join(INPUT_LINES) + "\n", encoding="utf-8")
    vocab = (root / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return dict(model_flags, init_checkpoint=checkpoint, input_file=str(input_file)), vocab


def hand_made_inputs(vocab):
    """`[num_lines, SEQ_LENGTH]` ids, mask and segments from EXPECTED_TOKENS."""
    ids, mask, segments = (np.zeros([len(INPUT_LINES), SEQ_LENGTH], np.int32) for _ in range(3))
    for row, (tokens, segment) in enumerate(zip(EXPECTED_TOKENS, EXPECTED_SEGMENTS, strict=True)):
        ids[row, : len(tokens)] = [vocab.index(token) for token in tokens]
        mask[row, : len(tokens)] = 1
        segments[row, : len(segment)] = segment
    return ids, mask, segments


def direct_outputs(flags, vocab):
    """The checkpoint's encoder layers, sequence and pooled outputs on the hand-made inputs."""
    config = modeling.BertConfig.from_json_file(flags["bert_config_file"])
    ids, mask, segments = hand_made_inputs(vocab)
    with tf.Graph().as_default():
        model = modeling.BertModel(
            config,
            is_training=False,
            input_ids=tf.constant(ids),
            input_mask=tf.constant(mask),
            token_type_ids=tf.constant(segments),
        )
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, flags["init_checkpoint"])
            layers, pooled = session.run([model.get_all_encoder_layers(), model.pooled_output])
    return {"layers": layers, "pooled": pooled, "inputs": (ids, mask, segments)}


@pytest.fixture(scope="module")
def mean_run(tiny_bert, tmp_path_factory):
    """One run writing the JSON, mean-pooled vectors and the SavedModel."""
    flags, vocab = tiny_bert
    out = tmp_path_factory.mktemp("mean_run")
    run_script(
        "extract_features.py",
        dict(
            flags,
            output_file=out / "features.jsonl",
            pooling="mean",
            pooled_output_file=out / "mean.npy",
            export_dir=out / "exported",
            layers="-1,-2",
            max_seq_length=SEQ_LENGTH,
            batch_size=3,
        ),
    )
    return out, direct_outputs(flags, vocab)


@pytest.mark.slow
def test_json_lists_the_tokens_and_the_models_layers(mean_run):
    out, direct = mean_run
    lines = (out / "features.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(INPUT_LINES)
    for line_index, line in enumerate(lines):
        record = json.loads(line)
        assert list(record) == ["linex_index", "features"]
        assert record["linex_index"] == line_index
        tokens = [entry["token"] for entry in record["features"]]
        assert tokens == EXPECTED_TOKENS[line_index]
        for position, entry in enumerate(record["features"]):
            assert [layer["index"] for layer in entry["layers"]] == [-1, -2]
            for layer in entry["layers"]:
                expected = direct["layers"][layer["index"]][line_index, position]
                assert len(layer["values"]) == 32
                np.testing.assert_allclose(layer["values"], expected, atol=1e-5, rtol=0)
                # Rounded to 6 decimals, as the original writes them.
                assert all(round(value, 6) == value for value in layer["values"])


@pytest.mark.slow
def test_mean_pooling_averages_every_real_token_of_the_last_layer(mean_run):
    out, direct = mean_run
    vectors = np.load(out / "mean.npy")
    assert vectors.shape == (len(INPUT_LINES), 32) and vectors.dtype == np.float32
    last_layer = direct["layers"][-1]
    for row, tokens in enumerate(EXPECTED_TOKENS):
        expected = last_layer[row, : len(tokens)].mean(axis=0)  # [CLS] and [SEP]s included
        np.testing.assert_allclose(vectors[row], expected, atol=1e-5, rtol=0)


EXPORT_CHECK = """
import sys
import numpy as np
import tensorflow as tf

export_path, inputs_file, outputs_file = sys.argv[1:]
inputs = np.load(inputs_file)
model = tf.saved_model.load(export_path)
outputs = model.signatures["serving_default"](
    **{name: tf.constant(inputs[name]) for name in ("input_ids", "input_mask", "segment_ids")}
)
np.savez(outputs_file, **{name: value.numpy() for name, value in outputs.items()})
"""


@pytest.mark.slow
def test_exported_encoder_gives_the_checkpoints_outputs_in_a_fresh_process(
    mean_run, tiny_bert, tmp_path
):
    out, direct = mean_run
    (export_path,) = [path for path in (out / "exported").iterdir() if path.is_dir()]
    assets = export_path / "assets.extra"
    assert (assets / "vocab.txt").read_text() == Path(tiny_bert[0]["vocab_file"]).read_text()
    assert json.loads((assets / "bert_export.json").read_text())["do_lower_case"] is True
    ids, mask, segments = direct["inputs"]
    np.savez(tmp_path / "inputs.npz", input_ids=ids, input_mask=mask, segment_ids=segments)
    subprocess.run(
        [
            sys.executable,
            "-c",
            EXPORT_CHECK,
            str(export_path),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "outputs.npz"),
        ],
        cwd=tmp_path,
        check=True,
    )
    served = np.load(tmp_path / "outputs.npz")
    assert set(served.files) == {"pooled_output", "sequence_output", "encodes"}
    np.testing.assert_allclose(served["pooled_output"], direct["pooled"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(served["sequence_output"], direct["layers"][-1], atol=1e-5, rtol=0)
    # The default pooling flags: bert-as-service's REDUCE_MEAN of the second-to-last layer.
    for row, tokens in enumerate(EXPECTED_TOKENS):
        expected = direct["layers"][-2][row, : len(tokens)].mean(axis=0)
        np.testing.assert_allclose(served["encodes"][row], expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_bert_as_service_pooling_flags_write_the_vectors(tiny_bert, tmp_path):
    flags, vocab = tiny_bert
    run_script(
        "extract_features.py",
        dict(
            flags,
            pooled_output_file=tmp_path / "vectors.npy",
            pooling_strategy="REDUCE_MEAN_MAX",
            pooling_layer="-1,-2",
            mask_cls_sep=True,
            layers="-1",
            max_seq_length=SEQ_LENGTH,
        ),
    )
    vectors = np.load(tmp_path / "vectors.npy")
    assert vectors.shape == (len(INPUT_LINES), 4 * 32)
    layers = direct_outputs(flags, vocab)["layers"]
    for row, tokens in enumerate(EXPECTED_TOKENS):
        keep = [i for i, token in enumerate(tokens) if token not in ("[CLS]", "[SEP]")]
        both = np.concatenate([layers[-1][row, keep], layers[-2][row, keep]], axis=-1)
        expected = np.concatenate([both.mean(axis=0), both.max(axis=0)])
        np.testing.assert_allclose(vectors[row], expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_cls_pooling_of_the_first_listed_layer_without_json(tiny_bert, tmp_path):
    flags, vocab = tiny_bert
    run_script(
        "extract_features.py",
        dict(
            flags,
            pooling="cls",
            pooled_output_file=tmp_path / "cls.npy",
            layers="0,-1",
            max_seq_length=SEQ_LENGTH,
            batch_size=8,
        ),
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cls.npy"]
    vectors = np.load(tmp_path / "cls.npy")
    first_layer = direct_outputs(flags, vocab)["layers"][0]
    np.testing.assert_allclose(vectors, first_layer[:, 0, :], atol=1e-5, rtol=0)


def test_layers_must_be_integers_naming_existing_layers():
    assert extract_features.parse_layer_indexes("-1,-2, 0", 2) == [-1, -2, 0]
    with pytest.raises(ValueError, match=r"--layers='-1,x': 'x' is not an integer"):
        extract_features.parse_layer_indexes("-1,x", 2)
    with pytest.raises(ValueError, match=r"layer -3 does not exist; the model has 2 layers"):
        extract_features.parse_layer_indexes("-1,-3", 2)
    with pytest.raises(ValueError, match=r"layer 2 does not exist"):
        extract_features.parse_layer_indexes("2", 2)


def test_the_default_layers_on_a_two_layer_model_fail_naming_the_flag(tiny_bert, tmp_path):
    flags, _ = tiny_bert
    result = run_script(
        "extract_features.py",
        dict(flags, output_file=tmp_path / "out.jsonl", max_seq_length=SEQ_LENGTH),
        expect_failure=True,
    )
    assert "--layers='-1,-2,-3,-4': layer -3 does not exist" in result.stdout
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        ({}, "Nothing to write: set --output_file"),
        ({"pooling": "cls"}, "--pooling and --pooled_output_file must be given together"),
    ],
)
def test_asking_for_no_or_half_an_output_is_a_clear_error(tiny_bert, extra, message):
    flags, _ = tiny_bert
    result = run_script("extract_features.py", dict(flags, **extra), expect_failure=True)
    assert message in result.stdout


def test_reading_splits_pairs_on_the_last_separator_and_keeps_blank_lines(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"  a b ||| c  \n\nx ||| y ||| z\nno|||pair\r\n")
    examples = extract_features.read_examples(str(path))
    assert [(e.unique_id, e.text_a, e.text_b) for e in examples] == [
        (0, "a b", "c"),
        (1, "", None),
        (2, "x ||| y", "z"),
        (3, "no|||pair", None),
    ]


# ------------------------------------------------------------------------- bad input

CHINESE_LINES = ["北京是中国的首都", "今天天气很好 ||| 我们去公园"]


@pytest.fixture(scope="module")
def chinese_bert(tmp_path_factory):
    """A vocab of the Chinese lines' characters, its config and a random-init checkpoint."""
    root = tmp_path_factory.mktemp("chinese")
    vocab = write_vocab_for_texts(root / "vocab.txt", CHINESE_LINES)
    write_bert_config(root / "bert_config.json", len(vocab), max_position_embeddings=32)
    config = modeling.BertConfig.from_json_file(str(root / "bert_config.json"))
    checkpoint = str(root / "bert_model.ckpt")
    with tf.Graph().as_default():
        modeling.BertModel(config, False, tf1.placeholder(tf.int32, [None, SEQ_LENGTH]))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, checkpoint)
    flags = dict(
        vocab_file=str(root / "vocab.txt"),
        bert_config_file=str(root / "bert_config.json"),
        init_checkpoint=checkpoint,
        max_seq_length=SEQ_LENGTH,
        layers="-1",
    )
    return flags


def test_gbk_input_fails_naming_line_and_flag_then_reads_with_input_encoding(
    chinese_bert, tmp_path
):
    input_file = tmp_path / "input.txt"
    input_file.write_bytes(("\n".join(CHINESE_LINES) + "\n").encode("gbk"))
    output_file = tmp_path / "features.jsonl"
    output_file.write_text("earlier run\n")
    flags = dict(chinese_bert, input_file=input_file, output_file=output_file)
    failed = run_script("extract_features.py", flags, expect_failure=True)
    # "北" is b1 b1 in GBK.
    assert (
        f"{input_file}:1: not valid UTF-8 (byte 0xb1 at column 1); if the file is in another "
        "encoding, pass --input_encoding=gbk"
    ) in failed.stdout
    assert output_file.read_text() == "earlier run\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["features.jsonl", "input.txt"]

    run_script("extract_features.py", dict(flags, input_encoding="gbk"))
    lines = [json.loads(line) for line in output_file.read_text(encoding="utf-8").splitlines()]
    tokens = [[entry["token"] for entry in line["features"]] for line in lines]
    assert tokens == [
        ["[CLS]", *"北京是中国的首都", "[SEP]"],
        ["[CLS]", *"今天天气很好", "[SEP]", *"我们去公园", "[SEP]"],
    ]


def test_empty_input_is_named_and_the_old_output_survives(tiny_bert, tmp_path):
    flags, _ = tiny_bert
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    output_file = tmp_path / "features.jsonl"
    output_file.write_text("earlier run\n")
    result = run_script(
        "extract_features.py",
        dict(flags, input_file=empty, output_file=output_file, layers="-1", max_seq_length=16),
        expect_failure=True,
    )
    assert f"--input_file={empty} is empty: there are no lines to extract features of" in (
        result.stdout
    )
    assert output_file.read_text() == "earlier run\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.txt", "features.jsonl"]
    with pytest.raises(input_files.InputFileError, match="empty.txt is empty"):
        extract_features.read_examples(str(empty))


def test_vocab_larger_than_the_config_is_rejected_naming_both(tiny_bert, tmp_path):
    flags, vocab = tiny_bert
    config = json.loads(Path(flags["bert_config_file"]).read_text())
    config["vocab_size"] = len(vocab) - 1
    other_config = tmp_path / "other_bert_config.json"
    other_config.write_text(json.dumps(config))
    output_file = tmp_path / "features.jsonl"
    output_file.write_text("earlier run\n")
    result = run_script(
        "extract_features.py",
        dict(flags, bert_config_file=other_config, output_file=output_file, layers="-1"),
        expect_failure=True,
    )
    assert (
        f"{flags['vocab_file']} holds {len(vocab)} tokens but {other_config} has "
        f"vocab_size={len(vocab) - 1}: the vocab and the config come from different models"
    ) in result.stdout
    assert output_file.read_text() == "earlier run\n"
