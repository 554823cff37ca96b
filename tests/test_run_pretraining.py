"""End-to-end tests of run_pretraining.py on the project's own small corpus."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import MAX_PREDICTIONS, SEQ_LENGTH

from helpers import (
    REPO_ROOT,
    read_eval_results,
    run_script,
)


def pretraining_flags(data, output_dir, **extra):
    flags = {
        "input_file": f"{data}/*.tfrecord",
        "bert_config_file": data / "bert_config.json",
        "output_dir": output_dir,
        "max_seq_length": SEQ_LENGTH,
        "max_predictions_per_seq": MAX_PREDICTIONS,
        "train_batch_size": 32,
        "eval_batch_size": 32,
        "max_eval_steps": 10,
        "num_warmup_steps": 0,
        "save_checkpoints_steps": 1000,
        "random_seed": 5,
    }
    flags.update(extra)
    return flags


@pytest.mark.slow
def test_masked_lm_accuracy_rises_from_step_zero(pretraining_data, tmp_path):
    out = tmp_path / "model"
    # One step at learning rate 0 saves the initial weights, so they can be evaluated.
    base = pretraining_flags(pretraining_data, out, do_train=True, do_eval=True)
    run_script("run_pretraining.py", dict(base, num_train_steps=1, learning_rate=0.0))
    at_start = read_eval_results(out / "eval_results.txt")
    run_script(
        "run_pretraining.py",
        dict(base, num_train_steps=600, learning_rate=1e-3, num_warmup_steps=50),
    )
    trained = read_eval_results(out / "eval_results.txt")
    assert trained["global_step"] == 600
    assert at_start["masked_lm_accuracy"] < 0.02  # about 1 / vocabulary size
    assert trained["masked_lm_accuracy"] > 0.15
    assert trained["masked_lm_loss"] < at_start["masked_lm_loss"] - 1.0
    assert {"next_sentence_accuracy", "next_sentence_loss", "loss"} <= set(trained)
    events = list(out.glob("events.out.tfevents.*"))
    assert events, "training writes TensorBoard summaries"
    tags = {
        value.tag
        for event_file in events
        for event in tf.compat.v1.train.summary_iterator(str(event_file))
        for value in event.summary.value
    }
    assert {"masked_lm_loss", "next_sentence_loss", "learning_rate"} <= tags


@pytest.mark.slow
def test_restart_after_a_kill_continues_from_the_last_checkpoint(pretraining_data, tmp_path):
    out = tmp_path / "model"
    flags = pretraining_flags(
        pretraining_data,
        out,
        do_train=True,
        num_train_steps=400,
        learning_rate=1e-3,
        save_checkpoints_steps=20,
    )
    command = [sys.executable, str(REPO_ROOT / "run_pretraining.py")]
    command += [f"--{name}={'true' if value is True else value}" for name, value in flags.items()]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 300
        while not (out / "model.ckpt-40.index").exists():
            assert process.poll() is None, "training stopped before it could be killed"
            assert time.time() < deadline, "no checkpoint at step 40 within 5 minutes"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = tf.train.load_checkpoint(str(out)).get_tensor("global_step")
    assert 40 <= killed_at < 400

    resumed = run_script("run_pretraining.py", dict(flags, num_train_steps=killed_at + 20))
    assert f"model.ckpt-{killed_at}" in resumed.stdout  # restored, not started over
    assert tf.train.load_checkpoint(str(out)).get_tensor("global_step") == killed_at + 20


@pytest.mark.slow
def test_checkpoint_restores_heads_and_encoder_for_fine_tuning(pretraining_data, tmp_path):
    first = tmp_path / "first"
    run_script(
        "run_pretraining.py",
        pretraining_flags(
            pretraining_data, first, do_train=True, num_train_steps=5, learning_rate=1e-3
        ),
    )
    source = tf.train.load_checkpoint(str(first))
    # Continued pre-training from it (learning rate 0 keeps what was restored).
    second = tmp_path / "second"
    run_script(
        "run_pretraining.py",
        pretraining_flags(
            pretraining_data,
            second,
            do_train=True,
            num_train_steps=1,
            learning_rate=0.0,
            init_checkpoint=first / "model.ckpt-5",
        ),
    )
    continued = tf.train.load_checkpoint(str(second))
    for name in (
        "cls/predictions/transform/dense/kernel",
        "cls/predictions/transform/LayerNorm/gamma",
        "cls/predictions/output_bias",
        "cls/seq_relationship/output_weights",
        "bert/encoder/layer_1/output/dense/kernel",
    ):
        np.testing.assert_array_equal(continued.get_tensor(name), source.get_tensor(name))

    # Fine-tuning the classifier from it restores every encoder variable.
    data = tmp_path / "cls"
    data.mkdir()
    (data / "train.tsv").write_text(
        "sentence\tlabel\n" + "The river flows to the sea.\t1\nBees make honey.\t0\n" * 4
    )
    tuned = tmp_path / "tuned"
    run_script(
        "run_classifier.py",
        {
            "task_name": "generic",
            "data_dir": data,
            "text_a_column": "sentence",
            "vocab_file": pretraining_data / "vocab.txt",
            "bert_config_file": pretraining_data / "bert_config.json",
            "init_checkpoint": first / "model.ckpt-5",
            "output_dir": tuned,
            "do_train": True,
            "train_batch_size": 8,
            "num_train_epochs": 1,
            "learning_rate": 0.0,
            "max_seq_length": 16,
        },
    )
    fine_tuned = tf.train.load_checkpoint(str(tuned))
    encoder = [name for name, _ in tf.train.list_variables(str(first)) if name.startswith("bert/")]
    encoder = [name for name in encoder if not name.endswith(("adam_m", "adam_v"))]
    assert len(encoder) == 5 + 16 * 2 + 2
    for name in encoder:
        np.testing.assert_array_equal(fine_tuned.get_tensor(name), source.get_tensor(name))
    assert fine_tuned.get_tensor("output_weights").shape == (2, 64)


def test_record_lengths_that_differ_from_the_flags_are_a_clear_error(pretraining_data, tmp_path):
    result = run_script(
        "run_pretraining.py",
        pretraining_flags(pretraining_data, tmp_path / "m", do_train=True, max_seq_length=32),
        expect_failure=True,
    )
    assert "'input_ids' has length 64 but 32 was expected" in result.stdout
    assert "--max_seq_length" in result.stdout


def test_input_glob_matching_nothing_names_the_flag(pretraining_data, tmp_path):
    flags = pretraining_flags(pretraining_data, tmp_path / "m", do_train=True)
    flags["input_file"] = tmp_path / "missing-*.tfrecord"
    result = run_script("run_pretraining.py", flags, expect_failure=True)
    assert "--input_file: no file matches" in result.stdout


def test_text_corpus_given_as_records_is_named_before_training(pretraining_data, tmp_path):
    # A common slip: --input_file pointing at the corpus instead of create_pretraining_data's
    # output. Without the check, TensorFlow stops mid-training with a DataLossError.
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.tfrecord").write_bytes((pretraining_data / "a.tfrecord").read_bytes())
    corpus = data / "corpus.txt"
    corpus.write_text("北京是中国的首都。\nThe second line.\n", encoding="utf-8")
    flags = pretraining_flags(pretraining_data, tmp_path / "m", do_train=True, num_train_steps=2)
    flags["input_file"] = f"{data}/*.tfrecord,{corpus}"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "eval_results.txt").write_text("earlier run\n")
    result = run_script("run_pretraining.py", flags, expect_failure=True)
    assert (
        f"{corpus} is not a TFRecord file: it is a text file starting with '北京是中国的首都。'"
    ) in result.stdout
    assert sorted(path.name for path in (tmp_path / "m").iterdir()) == ["eval_results.txt"]
    assert (tmp_path / "m" / "eval_results.txt").read_text() == "earlier run\n"
    assert corpus.read_text(encoding="utf-8").startswith("北京")


ENCODER_CHECK = """
import sys
import numpy as np
import tensorflow as tf
import modeling

export_path, config_file, checkpoint = sys.argv[1:]
ids = np.array([[2, 7, 9, 11, 3, 0], [2, 5, 3, 6, 8, 3]], np.int32)
mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], np.int32)
types = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], np.int32)
served = tf.saved_model.load(export_path).signatures["serving_default"](
    input_ids=tf.constant(ids), input_mask=tf.constant(mask), segment_ids=tf.constant(types)
)
with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    config = modeling.BertConfig.from_json_file(config_file)
    model = modeling.BertModel(
        config, False, tf.constant(ids), tf.constant(mask), tf.constant(types)
    )
    tf.compat.v1.train.Saver().restore(sess, checkpoint)
    pooled, sequence = sess.run([model.get_pooled_output(), model.get_sequence_output()])
assert np.abs(served["pooled_output"].numpy() - pooled).max() <= 1e-5
assert np.abs(served["sequence_output"].numpy() - sequence).max() <= 1e-5
print("encoder export matches")
"""


@pytest.mark.slow
def test_encoder_export_from_init_checkpoint_alone(pretraining_data, tmp_path):
    trained = tmp_path / "trained"
    run_script(
        "run_pretraining.py",
        pretraining_flags(
            pretraining_data, trained, do_train=True, num_train_steps=2, learning_rate=1e-3
        ),
    )
    exported = tmp_path / "exported"
    run_script(
        "run_pretraining.py",
        {
            "bert_config_file": pretraining_data / "bert_config.json",
            "init_checkpoint": trained / "model.ckpt-2",
            "output_dir": tmp_path / "empty",
            "export_dir": exported,
            "max_seq_length": 6,
        },
    )
    (export_path,) = [path for path in exported.iterdir() if path.is_dir()]
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            ENCODER_CHECK,
            str(export_path),
            str(pretraining_data / "bert_config.json"),
            str(trained / "model.ckpt-2"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert "encoder export matches" in check.stdout


@pytest.mark.slow
def test_encoder_export_ships_the_vocab_for_its_predictor(pretraining_data, tmp_path):
    """--vocab_file: the export carries vocab.txt and do_lower_case, so EncoderPredictor
    needs nothing but the export to turn text into vectors."""
    import json

    import predictor

    exported = tmp_path / "exported"
    run_script(
        "run_pretraining.py",
        pretraining_flags(
            pretraining_data,
            tmp_path / "model",
            do_train=True,
            num_train_steps=1,
            export_dir=exported,
            vocab_file=pretraining_data / "vocab.txt",
            do_lower_case=True,
        ),
    )
    (export_path,) = [path for path in exported.iterdir() if path.is_dir()]
    extra = export_path / "assets.extra"
    assert (extra / "vocab.txt").read_bytes() == (pretraining_data / "vocab.txt").read_bytes()
    assert json.loads((extra / "bert_export.json").read_text())["do_lower_case"] is True

    encoder = predictor.EncoderPredictor(str(exported))
    vocab = (pretraining_data / "vocab.txt").read_text(encoding="utf-8").splitlines()
    # Upper case in, the vocab's lower-cased words out: do_lower_case came with the export.
    features = encoder.featurize(["The RIVER"])
    tokens = ["[CLS]", "the", "river", "[SEP]"]
    padding = [0] * (SEQ_LENGTH - len(tokens))
    assert features["input_ids"].tolist() == [[vocab.index(t) for t in tokens] + padding]
    assert encoder.encode(["the river"]).shape == (1, 64)


@pytest.mark.slow
def test_eval_input_file_evaluates_on_held_out_records(pretraining_data, tmp_path):
    """Training on a.tfrecord and evaluating on b.tfrecord (--eval_input_file) scores the
    checkpoint on b's examples: the same numbers as evaluating it with --input_file=b, other
    numbers than on the training file a (the default, as the original)."""
    out = tmp_path / "model"
    a, b = pretraining_data / "a.tfrecord", pretraining_data / "b.tfrecord"
    base = pretraining_flags(pretraining_data, out, max_eval_steps=3, learning_rate=1e-3)
    run_script(
        "run_pretraining.py",
        dict(base, input_file=a, eval_input_file=b, do_train=True, do_eval=True, num_train_steps=3),
    )
    held_out = read_eval_results(out / "eval_results.txt")
    run_script("run_pretraining.py", dict(base, input_file=b, do_eval=True))
    on_b = read_eval_results(out / "eval_results.txt")
    run_script("run_pretraining.py", dict(base, input_file=a, do_eval=True))
    on_a = read_eval_results(out / "eval_results.txt")
    assert held_out["global_step"] == on_b["global_step"] == on_a["global_step"] == 3
    for name in ("masked_lm_loss", "masked_lm_accuracy", "next_sentence_loss", "loss"):
        np.testing.assert_allclose(held_out[name], on_b[name], rtol=1e-6, err_msg=name)
    assert abs(held_out["masked_lm_loss"] - on_a["masked_lm_loss"]) > 1e-3


def test_eval_input_file_matching_nothing_names_the_flag(pretraining_data, tmp_path):
    flags = pretraining_flags(pretraining_data, tmp_path / "m", do_eval=True)
    flags["eval_input_file"] = tmp_path / "held-out-*.tfrecord"
    result = run_script("run_pretraining.py", flags, expect_failure=True)
    assert "--eval_input_file: no file matches" in result.stdout
