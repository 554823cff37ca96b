"""Tests of raw_text_export.py: in-graph tokenization and the raw-text classifier export."""

import ast
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import classifier_data
import raw_text_export
import tokenization
from helpers import (
    SPECIAL_TOKENS,
    run_script,
    write_keyword_task,
    write_tiny_model,
)

tf1 = tf.compat.v1
# saved_model_cli is installed beside the interpreter running the tests.
REPO_PYTHON_BIN = Path(sys.executable).parent

TEXTS = [
    "Hello, World! The quick brown fox.",
    "unaffable runners",
    "Héllo Ça va? naïve café résumé ÅNGSTRÖM",
    "中文分词测试，你好！",
    "mixed中文and English…「quotes」 — dash",
    "$5.00 + 3^2 = `x` ~ {a|b} [CLS] #hash",
    "tabs\tand\nnewlines\r\u3000ideographic\u00a0nbsp",
    "zero\u200bwidth and control\x07char\x00 \ufffd",
    "Ǆemal İstanbul ΣΊΣΥΦΟΣ ﬁne",
    "",
    "   ",
    "a verylongwordthatthevocabcannotsplitatallbecauseofQ",
    "x" * 205 + " end",
    "the the the the the the the the the the the the the the the the",
]
# Words the vocab holds whole or in pieces, so WordPiece has real choices to make.
VOCAB_WORDS = (
    "hello world the quick un ##aff ##able run ##ner ##s cafe naive Hello World The fox end"
).split()


def write_vocab(path):
    """A vocab of the special tokens, some words and pieces, and the characters of TEXTS
    (lower- and upper-cased, alone and as ## pieces) except "Q", which makes [UNK]s."""
    chars = set()
    for text in TEXTS:
        for do_lower_case in (True, False):
            for word in tokenization.BasicTokenizer(do_lower_case).tokenize(text):
                chars.update(word)
    chars.discard("Q")
    pieces = sorted(chars) + ["##" + char for char in sorted(chars)]
    vocab = list(dict.fromkeys(SPECIAL_TOKENS + VOCAB_WORDS + pieces))
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")


def expected_features(tokenizer, text_a, text_b, max_seq_length):
    example = classifier_data.InputExample(guid="g", text_a=text_a, text_b=text_b, label=None)
    features = classifier_data.convert_single_example(10, example, ["x"], max_seq_length, tokenizer)
    return features.input_ids, features.input_mask, features.segment_ids


def in_graph_features(vocab_file, do_lower_case, texts_a, texts_b, max_seq_length):
    with tf.Graph().as_default():
        text_a, text_b = raw_text_export.text_inputs()
        asset = str(vocab_file) + ".ids.tsv"
        vocab = raw_text_export.write_vocab_asset(str(vocab_file), asset)
        features = raw_text_export.raw_text_features(
            text_a, text_b, asset, vocab, do_lower_case, max_seq_length
        )
        with tf1.Session() as session:
            session.run(tf1.tables_initializer())
            feed = {text_a: texts_a}
            if texts_b is not None:
                feed[text_b] = texts_b
            return session.run(features, feed)


@pytest.mark.parametrize("do_lower_case", [True, False])
@pytest.mark.parametrize("max_seq_length", [8, 64])
def test_in_graph_features_equal_tokenization_and_classifier_data(
    tmp_path, do_lower_case, max_seq_length
):
    vocab_file = tmp_path / "vocab.txt"
    write_vocab(vocab_file)
    tokenizer = tokenization.FullTokenizer(str(vocab_file), do_lower_case)
    # Singles (text_b not fed), then every ordered pair of texts, which covers truncation
    # of a longer a, a longer b, ties, and empty texts on either side.
    pairs = [(a, b) for a in TEXTS for b in TEXTS]
    cases = [(TEXTS, None)] + [([a for a, _ in pairs], [b for _, b in pairs])]
    for texts_a, texts_b in cases:
        got = in_graph_features(vocab_file, do_lower_case, texts_a, texts_b, max_seq_length)
        for index, text_a in enumerate(texts_a):
            text_b = None if texts_b is None else texts_b[index]
            want = expected_features(tokenizer, text_a, text_b, max_seq_length)
            for name, values in zip(("input_ids", "input_mask", "segment_ids"), want, strict=True):
                assert got[name][index].tolist() == values, (name, text_a, text_b)


def test_tokens_are_real_wordpieces(tmp_path):
    """A hand-checked case, so the comparison above cannot pass on a tokenizer that is
    wrong in the same way as tokenization.py."""
    vocab_file = tmp_path / "vocab.txt"
    write_vocab(vocab_file)
    vocab = tokenization.load_vocab(str(vocab_file))
    got = in_graph_features(vocab_file, True, ["Unaffable, runners!"], None, 12)
    tokens = ["[CLS]", "un", "##aff", "##able", ",", "run", "##ner", "##s", "!", "[SEP]"]
    assert got["input_ids"][0].tolist() == [vocab[t] for t in tokens] + [0, 0]
    assert got["input_mask"][0].tolist() == [1] * 10 + [0, 0]


@pytest.mark.parametrize("max_seq_length", [3, 4, 5, 9, 10])
def test_pair_truncation_pops_from_the_longer_text(max_seq_length):
    """kept_lengths against the loop of classifier_data, written out here."""
    lengths = [(a, b) for a in range(0, 12) for b in range(0, 12)]

    def by_loop(len_a, len_b):
        if len_b == 0:
            return min(len_a, max_seq_length - 2), 0
        while len_a + len_b > max_seq_length - 3:
            if len_a > len_b:
                len_a -= 1
            else:
                len_b -= 1
        return len_a, len_b

    with tf.Graph().as_default(), tf1.Session() as session:
        kept = raw_text_export.kept_lengths(
            tf.constant([a for a, _ in lengths], tf.int64),
            tf.constant([b for _, b in lengths], tf.int64),
            max_seq_length,
        )
        kept_a, kept_b = session.run(kept)
    assert list(zip(kept_a.tolist(), kept_b.tolist(), strict=True)) == [
        by_loop(*ab) for ab in lengths
    ]


SERVING_CHECK = """
import sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the tokenizer's ops

export_path, texts_file, results_file = sys.argv[1:]
texts = [line.rstrip("\\n") for line in open(texts_file, encoding="utf-8")]
want = np.loadtxt(results_file, delimiter="\\t", ndmin=2)
# A model that tells the texts apart, so agreeing within 1e-5 says the ids were the same.
assert np.ptp(want[:, 0]) > 0.01, want
loaded = tf.saved_model.load(export_path)
both = loaded.signatures["serving_default"]
got = both(text_a=tf.constant(texts), text_b=tf.constant([""] * len(texts)))
np.testing.assert_allclose(got["probabilities"].numpy(), want, atol=1e-5)
single = loaded.signatures["single_text"](text_a=tf.constant(texts))
np.testing.assert_allclose(single["probabilities"].numpy(), want, atol=1e-5)
np.testing.assert_allclose(
    tf.nn.softmax(single["logits"]).numpy(), want, atol=1e-5
)
print("raw-text export OK")
"""


@pytest.mark.slow
def test_raw_text_export_gives_the_estimators_predictions(tmp_path):
    (tmp_path / "model").mkdir()
    # Large initial weights make even a briefly trained model's outputs depend strongly on
    # the token ids, so a wrong id would show far beyond the tolerance.
    model = write_tiny_model(tmp_path / "model", initializer_range=1.0)
    data = tmp_path / "data"
    write_keyword_task(data, {"train": 64, "test": 9})
    out, exported = tmp_path / "out", tmp_path / "exported"
    run_script(
        "run_classifier.py",
        dict(
            model,
            data_dir=str(data),
            output_dir=str(out),
            task_name="generic",
            labels="happy,sad",
            max_seq_length=16,
            train_batch_size=16,
            predict_batch_size=8,
            learning_rate=5e-4,
            do_train=True,
            do_predict=True,
            num_train_epochs=1,
            export_dir=str(exported),
            export_raw_text=True,
        ),
    )
    (export_path,) = (tmp_path / "exported_raw_text").iterdir()
    with (data / "test.csv").open(encoding="utf-8") as reader:
        texts = [row["text"] for row in csv.DictReader(reader)]
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
    # The vocab travels inside the SavedModel: remove the original to prove it.
    (tmp_path / "model" / "vocab.txt").unlink()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVING_CHECK,
            str(export_path),
            str(texts_file),
            str(out / "test_results.tsv"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (export_path / "assets" / raw_text_export.VOCAB_ASSET).exists()


# What README.md tells a user to run on a raw-text export, word for word.
PYTHON_RECIPE = """
import sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers NormalizeUTF8 and the other tokenizer ops)

model = tf.saved_model.load(sys.argv[1])
classify = model.signatures["single_text"]
print(classify(text_a=tf.constant(sys.argv[2:]))["probabilities"].numpy().tolist())
"""
SAVED_MODEL_CLI_WITH_TF_TEXT = (
    "import tensorflow_text; from tensorflow.python.tools import saved_model_cli; "
    "saved_model_cli.main()"
)
RECIPE_TEXTS = ["A wonderful little film.", "这部电影很好看"]


@pytest.fixture(scope="module")
def tiny_raw_text_export(tmp_path_factory):
    """A raw-text export of an untrained tiny classifier, initialized from a fixed seed;
    large initial weights make its outputs differ from text to text."""
    import classifier_task
    import export
    import modeling

    root = tmp_path_factory.mktemp("raw_text")
    model = write_tiny_model(root, initializer_range=1.0)
    config = modeling.BertConfig.from_json_file(model["bert_config_file"])
    classifier_fn = classifier_task.model_fn_builder(config, 2, None, 1e-4, 1, 0, False, False)

    def model_fn(*args):
        tf1.set_random_seed(7)  # the graph's seed: the same weights on every run
        return classifier_fn(*args)

    with export.initialized_checkpoint(model_fn, 16) as checkpoint:
        return raw_text_export.export_raw_text_saved_model(
            model_fn, checkpoint, str(root / "exported_raw_text"), 16, model["vocab_file"], True
        )


def run_python(*args, cwd):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=300,
    )


def printed_probabilities(cli_output: str) -> list[list[float]]:
    """The `probabilities` array saved_model_cli run prints (`[[0.5 0.5]\\n [0.4 0.6]]`)."""
    block = cli_output.split("Result for output key probabilities:")[1]
    block = block.split("Result for output key")[0]
    rows = block[block.index("[[") : block.index("]]") + 2].strip("[]").split("]")
    return [[float(v) for v in row.strip(" \n[").split()] for row in rows if row.strip(" \n[")]


@pytest.mark.slow
def test_documented_loading_recipes_work_on_a_raw_text_export(tiny_raw_text_export, tmp_path):
    """README's Python recipe (import tensorflow_text, then tf.saved_model.load) and its
    saved_model_cli command run in fresh processes and agree; plain saved_model_cli fails
    for the reason README gives."""
    export_path = tiny_raw_text_export
    by_python = run_python("-c", PYTHON_RECIPE, export_path, *RECIPE_TEXTS, cwd=tmp_path)
    assert by_python.returncode == 0, by_python.stderr[-3000:]
    probabilities = ast.literal_eval(by_python.stdout.strip().splitlines()[-1])
    assert len(probabilities) == 2
    # The texts get different outputs (by 0.016 with this seed), far beyond the tolerance
    # below, so agreeing there means each text got its own answer.
    assert abs(probabilities[0][0] - probabilities[1][0]) > 1e-3

    inputs = 'text_a=["A wonderful little film.", "这部电影很好看"];text_b=["", ""]'
    command = ["run", "--dir", export_path, "--tag_set", "serve"]
    command += ["--signature_def", "serving_default", "--input_exprs", inputs]
    by_cli = run_python("-c", SAVED_MODEL_CLI_WITH_TF_TEXT, *command, cwd=tmp_path)
    assert by_cli.returncode == 0, by_cli.stderr[-3000:]
    np.testing.assert_allclose(printed_probabilities(by_cli.stdout), probabilities, atol=1e-5)

    plain = subprocess.run(
        [str(REPO_PYTHON_BIN / "saved_model_cli"), *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode != 0
    assert "Op type not registered 'NormalizeUTF8'" in plain.stderr
