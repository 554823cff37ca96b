"""End-to-end tests of run_classifier.py: tiny models trained on data the tests write."""

import csv
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from helpers import (
    FILLER,
    REPO_ROOT,
    read_eval_results,
    run_script,
    write_bert_config,
    write_csv,
    write_keyword_task,
    write_tiny_model,
    write_vocab_for_texts,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A vocab covering the tests' words and a tiny, dropout-free BERT config."""
    return write_tiny_model(tmp_path_factory.mktemp("model"))


def common_flags(tiny_model, data_dir, output_dir, **extra):
    flags = dict(
        tiny_model,
        data_dir=str(data_dir),
        output_dir=str(output_dir),
        max_seq_length=16,
        train_batch_size=16,
        eval_batch_size=8,
        predict_batch_size=8,
        learning_rate=5e-4,
        random_seed=11,
    )
    flags.update(extra)
    return flags


@pytest.mark.slow
def test_generic_csv_single_sentence_learns_predicts_and_caches(tmp_path, tiny_model):
    data = tmp_path / "data"
    labels = write_keyword_task(data, {"train": 320, "dev": 60, "test": 21})
    out = tmp_path / "out"
    flags = common_flags(
        tiny_model,
        data,
        out,
        task_name="generic",
        do_train=True,
        do_eval=True,
        do_predict=True,
        num_train_epochs=6,
        eval_every_steps=60,
    )
    run_script("run_classifier.py", flags)

    results = read_eval_results(out / "eval_results.txt")
    assert results["global_step"] == 120  # 320 / 16 * 6
    assert results["eval_accuracy"] >= 0.9  # chance is about 0.5
    assert {"macro_f1", "f1_happy", "precision_sad", "recall_sad"} <= set(results)
    best = read_eval_results(out / "best" / "eval_results.txt")
    assert best["macro_f1"] >= results["macro_f1"] - 1e-9
    assert (out / "best" / "checkpoint").exists()

    probabilities = np.loadtxt(out / "test_results.tsv", delimiter="\t", ndmin=2)
    assert probabilities.shape == (21, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    with (out / "test_predictions.tsv").open() as f:
        predictions = list(csv.DictReader(f, delimiter="\t"))
    assert [row["guid"] for row in predictions] == [f"test-{i}" for i in range(21)]
    agreed = sum(
        row["prediction"] == want for row, want in zip(predictions, labels["test"], strict=True)
    )
    assert agreed >= 19

    # Same data, vocab and length: the cached features are reused. A new length rebuilds.
    again = run_script("run_classifier.py", dict(flags, do_train=False, do_predict=False))
    assert "Reusing" in again.stdout and "eval.tf_record" in again.stdout
    rebuilt = run_script(
        "run_classifier.py",
        dict(flags, do_train=False, do_predict=False, max_seq_length=20, output_dir=str(out)),
    )
    assert "Reusing" not in rebuilt.stdout


def test_test_predictions_keep_the_test_files_own_ids(tmp_path, tiny_model):
    """--id_column: test_predictions.tsv starts with the test file's id column, under its
    header; test_results.tsv stays the original's (probabilities only, no header)."""
    data = tmp_path / "data"
    write_keyword_task(data, {"train": 16})
    ids = ["r-90", "r-17", "r-5", "评论-3", "r-1"]
    texts = ["wonderful river", "terrible stone", "paper", "candle music", "silver cloud"]
    write_csv(data / "test.csv", ["review_id", "text"], list(zip(ids, texts, strict=True)))
    out = tmp_path / "out"
    flags = common_flags(
        tiny_model,
        data,
        out,
        task_name="generic",
        labels="happy,sad",
        id_column="review_id",
        do_train=True,
        do_predict=True,
        num_train_epochs=1,
    )
    run_script("run_classifier.py", flags)
    with (out / "test_predictions.tsv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["review_id", "guid", "prediction", "text_a", "text_b"]
    assert [row[0] for row in rows[1:]] == ids
    assert [row[3] for row in rows[1:]] == texts
    results = (out / "test_results.tsv").read_text().splitlines()
    assert len(results) == len(ids)
    probabilities = np.array([[float(value) for value in line.split("\t")] for line in results])
    assert probabilities.shape == (len(ids), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert [row[2] for row in rows[1:]] == [["happy", "sad"][i] for i in probabilities.argmax(1)]


MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]


def best_constant_f1(labels) -> float:
    """The F1 of the positive class that the better of "always 1" and "always 0" gets."""
    positives = sum(labels)
    return 2 * positives / (positives + len(labels)) if positives else 0.0


def pair_second_sentence(rng: random.Random, paraphrase: bool) -> str:
    """Filler with "similar" (a paraphrase) or "different" (not one) at a random place."""
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 6))]
    words.insert(rng.randint(0, len(words)), "similar" if paraphrase else "different")
    return " ".join(words)


@pytest.mark.slow
def test_mrpc_sentence_pairs_learn_and_report_f1(tmp_path, tiny_model):
    # The label is told by a keyword of the second sentence only: a model that did not read
    # the pair (segment B) could not beat the best constant prediction.
    rng = random.Random(1)
    data = tmp_path / "mrpc"
    data.mkdir()
    dev_labels = []
    for name, count in (("train", 160), ("dev", 48), ("test", 10)):
        rows = []
        for index in range(count):
            first = " ".join(rng.choice(FILLER) for _ in range(5))
            paraphrase = rng.random() < 0.5
            second = pair_second_sentence(rng, paraphrase)
            rows.append([int(paraphrase), index, index + 1000, first, second])
        if name == "dev":
            dev_labels = [row[0] for row in rows]
        if name == "test":
            rows = [[index, a, b, s1, s2] for index, (_, a, b, s1, s2) in enumerate(rows)]
            header = ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]
        else:
            header = MRPC_HEADER
        (data / f"{name}.tsv").write_text(
            "\n".join("\t".join(map(str, row)) for row in [header, *rows]) + "\n"
        )
    out = tmp_path / "out"
    run_script(
        "run_classifier.py",
        common_flags(
            tiny_model,
            data,
            out,
            task_name="MRPC",
            do_train=True,
            do_eval=True,
            do_predict=True,
            num_train_epochs=20,
        ),
    )
    results = read_eval_results(out / "eval_results.txt")
    assert {
        "eval_accuracy",
        "eval_loss",
        "f1",
        "precision",
        "recall",
        "global_step",
        "loss",
    } <= set(results)
    assert results["global_step"] == 200  # 160 / 16 * 20
    majority = max(sum(dev_labels), len(dev_labels) - sum(dev_labels)) / len(dev_labels)
    assert majority < 0.65 and best_constant_f1(dev_labels) < 0.7
    assert results["eval_accuracy"] >= 0.9
    assert results["f1"] >= 0.9
    assert len((out / "test_results.tsv").read_text().splitlines()) == 10
    with (out / "test_predictions.tsv").open() as f:
        predictions = list(csv.DictReader(f, delimiter="\t"))
    assert [row["index"] for row in predictions] == [str(index) for index in range(10)]


STSB_HEADER = "index genre filename year old_index source1 source2 sentence1 sentence2 score"


@pytest.mark.slow
def test_stsb_regression_learns_and_reports_correlations(tmp_path, tiny_model):
    # The score is 5/3 for every "similar" in the second sentence (0 to 3 of them), a
    # signal the model can only use by regressing on the pair.
    rng = random.Random(2)
    data = tmp_path / "stsb"
    data.mkdir()
    scores = {}
    for name, count in (("train", 192), ("dev", 32), ("test", 8)):
        header = STSB_HEADER.split()
        lines = ["\t".join(header if name != "test" else header[:-1])]
        scores[name] = []
        for index in range(count):
            similar = rng.randint(0, 3)
            first = " ".join(rng.choice(FILLER) for _ in range(4))
            words = [rng.choice(FILLER) for _ in range(4)] + ["similar"] * similar
            rng.shuffle(words)
            second = " ".join(words)
            fields = [str(index), "g", "f", "2012", str(index), "s", "s", first, second]
            if name != "test":
                scores[name].append(similar * 5 / 3)
                fields.append(f"{similar * 5 / 3:.4f}")
            else:
                fields = fields[:7] + [first, second]
            lines.append("\t".join(fields))
        (data / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    run_script(
        "run_classifier.py",
        common_flags(
            tiny_model,
            data,
            out,
            task_name="sts-b",
            do_train=True,
            do_eval=True,
            do_predict=True,
            num_train_epochs=15,
            learning_rate=1e-3,
        ),
    )
    results = read_eval_results(out / "eval_results.txt")
    assert {"pearson", "spearman", "eval_loss"} <= set(results)
    # A constant prediction has no correlation at all; the best constant (the training
    # mean, as a model that ignores its input learns) has this squared error on dev:
    mean = float(np.mean(scores["train"]))
    constant_loss = float(np.mean((np.array(scores["dev"]) - mean) ** 2))
    assert constant_loss > 2.0
    assert results["eval_loss"] <= 0.2 * constant_loss
    assert results["pearson"] >= 0.9 and results["spearman"] >= 0.85
    values = np.loadtxt(out / "test_results.tsv", ndmin=2)
    assert values.shape == (8, 1)


def best_constant_multi_label(gold: list[set[str]], labels: list[str]) -> tuple[float, float]:
    """The best micro F1 and the best subset accuracy over the predictions that ignore the
    input: one fixed set of labels (e.g. all of them, or none) for every example."""
    best_f1 = best_exact = 0.0
    for size in range(len(labels) + 1):
        for chosen in itertools.combinations(labels, size):
            predicted = set(chosen)
            true_positives = sum(len(predicted & tags) for tags in gold)
            counted = len(predicted) * len(gold) + sum(len(tags) for tags in gold)
            best_f1 = max(best_f1, 2 * true_positives / counted if counted else 0.0)
            best_exact = max(best_exact, sum(tags == predicted for tags in gold) / len(gold))
    return best_f1, best_exact


@pytest.mark.slow
def test_multi_label_jsonl(tmp_path, tiny_model):
    rng = random.Random(3)
    data = tmp_path / "tags"
    data.mkdir()
    tags = {"wonderful": "joy", "terrible": "anger", "similar": "calm"}
    dev_tags = []
    for name, count in (("train", 320), ("dev", 48), ("test", 6)):
        with (data / f"{name}.jsonl").open("w") as f:
            for _ in range(count):
                chosen = [word for word in tags if rng.random() < 0.5]
                words = [rng.choice(FILLER) for _ in range(4)] + chosen
                rng.shuffle(words)
                record = {"text": " ".join(words), "tags": "|".join(tags[w] for w in chosen)}
                f.write(json.dumps(record) + "\n")
                if name == "dev":
                    dev_tags.append({tags[w] for w in chosen})
    out = tmp_path / "out"
    run_script(
        "run_classifier.py",
        common_flags(
            tiny_model,
            data,
            out,
            task_name="generic",
            label_column="tags",
            labels="anger,calm,joy",
            multi_label=True,
            do_train=True,
            do_eval=True,
            do_predict=True,
            # At 1e-3 the outcome swung between 0.84 and 0.97 micro F1 with the batch order;
            # at 5e-4 it was 0.92 for both orders tried (seeds 11 and 3, bucketed batches).
            num_train_epochs=30,
        ),
    )
    results = read_eval_results(out / "eval_results.txt")
    assert {"micro_f1", "macro_f1", "subset_accuracy", "f1_joy"} <= set(results)
    # Predicting every tag for every text scores about 0.7 micro F1 here, and no fixed
    # set of tags gets a third of the texts exactly right.
    constant_f1, constant_exact = best_constant_multi_label(dev_tags, ["anger", "calm", "joy"])
    assert constant_f1 < 0.75 and constant_exact < 0.3
    assert results["global_step"] == 600  # 320 / 16 * 30
    assert results["micro_f1"] >= 0.85
    assert results["subset_accuracy"] >= 0.6
    probabilities = np.loadtxt(out / "test_results.tsv", delimiter="\t", ndmin=2)
    assert probabilities.shape == (6, 3)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert (out / "test_predictions.tsv").read_text().startswith("guid\tprediction")


# ------------------------------------------------------------------------- bad input


@pytest.fixture()
def small_csv_task(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", ["text", "label"], [["river stone", "happy"], ["paper", "sad"]])
    write_csv(data / "dev.csv", ["text", "label"], [["river", "happy"], ["stone", "sad"]])
    return data


def failing_run(tiny_model, data, tmp_path, **extra):
    flags = common_flags(tiny_model, data, tmp_path / "out", task_name="generic", **extra)
    flags.setdefault("do_train", True)
    result = run_script("run_classifier.py", flags, expect_failure=True)
    assert not list((tmp_path / "out").glob("model.ckpt-*")), "training must not start"
    return result.stdout


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('"river","happy","extra"', "train.csv:3"),
        ('"river","angry"', "angry"),
    ],
)
def test_bad_rows_fail_before_training_naming_file_and_line(
    tmp_path, tiny_model, small_csv_task, bad_line, message
):
    with (small_csv_task / "dev.csv").open("a") as f:
        f.write(bad_line + "\n")
    if "extra" in bad_line:
        (small_csv_task / "train.csv").write_text('text,label\n"a",happy\n' + bad_line + "\n")
    output = failing_run(tiny_model, small_csv_task, tmp_path, do_eval=True, labels="happy,sad")
    assert message in output


def test_missing_data_file_is_named(tmp_path, tiny_model, small_csv_task):
    (small_csv_task / "train.csv").unlink()
    output = failing_run(tiny_model, small_csv_task, tmp_path, train_file="train.csv")
    assert "train.csv" in output


def test_sequence_longer_than_the_model_is_rejected(tmp_path, tiny_model, small_csv_task):
    output = failing_run(tiny_model, small_csv_task, tmp_path, max_seq_length=64)
    assert "--max_seq_length=64" in output and "max_position_embeddings" in output


def test_checkpoint_that_does_not_fit_the_config_is_rejected(tmp_path, tiny_model, small_csv_task):
    bigger = json.loads(Path(tiny_model["bert_config_file"]).read_text())
    bigger["hidden_size"] = 64
    bigger_config = tmp_path / "bigger_config.json"
    bigger_config.write_text(json.dumps(bigger))
    checkpoint = tmp_path / "ckpt" / "bert_model.ckpt"
    script = (
        "import tensorflow as tf, modeling\n"
        "tf1 = tf.compat.v1\n"
        "with tf.Graph().as_default(), tf1.Session() as sess:\n"
        f"    config = modeling.BertConfig.from_json_file({str(bigger_config)!r})\n"
        "    modeling.BertModel(config, False, tf.zeros([1, 4], tf.int32))\n"
        "    sess.run(tf1.global_variables_initializer())\n"
        f"    tf1.train.Saver().save(sess, {str(checkpoint)!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True)
    output = failing_run(tiny_model, small_csv_task, tmp_path, init_checkpoint=str(checkpoint))
    assert "does not fit the model config" in output
    assert "bert/embeddings/word_embeddings" in output


SERVING_CHECK = """
import sys
import numpy as np
import tensorflow as tf

export_path, record_file, expected_file = sys.argv[1:]
model = tf.saved_model.load(export_path)
records = [r.numpy() for r in tf.data.TFRecordDataset(record_file)]
parsed = [tf.train.Example.FromString(r).features.feature for r in records]
inputs = {
    name: tf.constant([list(f[name].int64_list.value) for f in parsed], tf.int32)
    for name in ("input_ids", "input_mask", "segment_ids")
}
by_tensors = model.signatures["serving_default"](**inputs)["probabilities"].numpy()
by_examples = model.signatures["examples:serving_default"](
    examples=tf.constant(records)
)["probabilities"].numpy()
expected = np.loadtxt(expected_file, delimiter="\\t", ndmin=2)
real = len(expected)
print("max difference", np.abs(by_tensors[:real] - expected).max(),
      np.abs(by_examples[:real] - expected).max())
assert np.abs(by_tensors[:real] - expected).max() <= 1e-5
assert np.abs(by_examples[:real] - expected).max() <= 1e-5
"""


def check_export_matches(exported: Path, run_dir: Path, cwd: Path) -> Path:
    """Loads the one export under `exported` in a fresh process with only TensorFlow (the
    SavedModel must stand on its own) and checks both signatures against the
    test_results.tsv that Estimator.predict wrote in `run_dir`; returns the export's path."""
    (export_path,) = [path for path in exported.iterdir() if path.is_dir()]
    records, expected = run_dir / "predict.tf_record", run_dir / "test_results.tsv"
    command = [sys.executable, "-c", SERVING_CHECK, str(export_path), str(records), str(expected)]
    subprocess.run(command, cwd=cwd, check=True)
    return export_path


@pytest.mark.slow
def test_exported_saved_model_gives_the_estimators_predictions(tmp_path, tiny_model):
    data = tmp_path / "data"
    write_keyword_task(data, {"train": 64, "test": 11})
    out, exported = tmp_path / "out", tmp_path / "exported"
    run_script(
        "run_classifier.py",
        common_flags(
            tiny_model,
            data,
            out,
            task_name="generic",
            labels="happy,sad",
            do_train=True,
            do_predict=True,
            num_train_epochs=1,
            export_dir=exported,
        ),
    )
    export_path = check_export_matches(exported, out, tmp_path)
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "saved_model_cli"),
            "show",
            "--dir",
            str(export_path),
            "--all",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "signature_def['serving_default']" in shown
    assert "signature_def['examples:serving_default']" in shown
    assert "probabilities" in shown and "logits" in shown


@pytest.mark.slow
def test_export_from_init_checkpoint_alone(tmp_path, tiny_model):
    """A model fine-tuned earlier exports without training again: --export_dir with
    --init_checkpoint and no --do_* flag."""
    data = tmp_path / "data"
    write_keyword_task(data, {"train": 32, "test": 5})
    trained = tmp_path / "trained"
    flags = common_flags(tiny_model, data, trained, task_name="generic", labels="happy,sad")
    run_script("run_classifier.py", dict(flags, do_train=True, do_predict=True))
    exported = tmp_path / "exported"
    run_script(
        "run_classifier.py",
        dict(
            flags,
            output_dir=tmp_path / "fresh",
            init_checkpoint=latest_checkpoint(trained),
            export_dir=exported,
        ),
    )
    check_export_matches(exported, trained, tmp_path)


def latest_checkpoint(model_dir: Path) -> str:
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(model_dir))


# ------------------------------------------------------------------ encodings and vocabs

CHINESE_TRAIN = [("这部电影很好看", "好"), ("服务太差了", "差")]


def write_chinese_task(root: Path):
    """A GBK train.csv (as Excel saves Chinese text), a vocab of its characters and a config."""
    data = root / "data"
    data.mkdir()
    rows = "".join(f"{text},{label}\r\n" for text, label in CHINESE_TRAIN)
    (data / "train.csv").write_bytes(("text,label\r\n" + rows).encode("gbk"))
    vocab = write_vocab_for_texts(root / "vocab.txt", [text for text, _ in CHINESE_TRAIN])
    write_bert_config(root / "bert_config.json", len(vocab), max_position_embeddings=32)
    model = {"vocab_file": root / "vocab.txt", "bert_config_file": root / "bert_config.json"}
    return data, model, vocab


def test_gbk_csv_fails_naming_line_and_flag_then_trains_with_input_encoding(tmp_path):
    data, model, vocab = write_chinese_task(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "test_results.tsv").write_text("earlier run\n")
    flags = common_flags(
        model, data, out, task_name="generic", do_train=True, train_batch_size=2, labels="好,差"
    )
    failed = run_script("run_classifier.py", flags, expect_failure=True)
    # Line 2 is "这部电影很好看,好": "这" is d5 e2 in GBK.
    assert (
        f"{data / 'train.csv'}:2: not valid UTF-8 (byte 0xd5 at column 1); if the file is in "
        "another encoding, pass --input_encoding=gbk"
    ) in failed.stdout
    assert sorted(path.name for path in out.iterdir()) == ["test_results.tsv"]

    run_script("run_classifier.py", dict(flags, input_encoding="gbk", num_train_epochs=1))
    assert (out / "test_results.tsv").read_text() == "earlier run\n"
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(out / "train.tf_record"))]
    spec = {
        "input_ids": tf.io.FixedLenFeature([16], tf.int64),
        "label_ids": tf.io.FixedLenFeature([], tf.int64),
    }
    parsed = [tf.io.parse_single_example(record, spec) for record in records]
    for features, (text, label) in zip(parsed, CHINESE_TRAIN, strict=True):
        tokens = ["[CLS]", *text, "[SEP]"]
        expected = [vocab.index(token) for token in tokens] + [0] * (16 - len(tokens))
        assert features["input_ids"].numpy().tolist() == expected
        assert int(features["label_ids"]) == ["好", "差"].index(label)


def test_vocab_larger_than_the_config_is_rejected_naming_both(tmp_path, small_csv_task):
    (tmp_path / "model").mkdir()
    model = write_tiny_model(tmp_path / "model")
    num_tokens = len(Path(model["vocab_file"]).read_text(encoding="utf-8").splitlines())
    smaller = tmp_path / "other_bert_config.json"
    config = json.loads(Path(model["bert_config_file"]).read_text())
    smaller.write_text(json.dumps(dict(config, vocab_size=num_tokens - 5)))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "test_results.tsv").write_text("earlier run\n")
    output = failing_run(dict(model, bert_config_file=str(smaller)), small_csv_task, tmp_path)
    assert (
        f"{model['vocab_file']} holds {num_tokens} tokens but {smaller} has "
        f"vocab_size={num_tokens - 5}: the vocab and the config come from different models"
    ) in output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["test_results.tsv"]
    assert (tmp_path / "out" / "test_results.tsv").read_text() == "earlier run\n"


def test_vocab_without_sep_is_named_where_features_are_built(tmp_path, small_csv_task):
    (tmp_path / "model").mkdir()
    model = write_tiny_model(tmp_path / "model")
    vocab_file = Path(model["vocab_file"])
    tokens = vocab_file.read_text(encoding="utf-8").splitlines()
    # [SEP] replaced by another word, so that the vocab keeps its size.
    vocab_file.write_text(
        "\n".join("zzz" if t == "[SEP]" else t for t in tokens) + "\n", encoding="utf-8"
    )
    output = failing_run(model, small_csv_task, tmp_path, train_batch_size=2)
    assert f"{vocab_file} has no [SEP] token, needed for the classifier's inputs" in output
    assert not (tmp_path / "out" / "train.tf_record").exists()
