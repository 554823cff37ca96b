"""run_multiple_choice.py: the model's [batch, N, seq] logits against N separate passes of
the encoder, the masked dummy choices, and end to end a tiny model learning a synthetic
task (the right choice shares the context's key word), with the Estimator, the SavedModel
and the predictor agreeing."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import modeling
import run_multiple_choice
from helpers import FILLER, read_eval_results, run_script, write_bert_config, write_vocab_for_texts

tf1 = tf.compat.v1
REPO_ROOT = Path(__file__).resolve().parent.parent


OUTPUT_NAMES = ("loss", "per_example_loss", "logits", "probabilities")


def tiny_config(vocab_size=40):
    return modeling.BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
    )


def random_batch(rng, batch, num_choices, seq, vocab_size):
    lengths = rng.integers(3, seq + 1, size=[batch, num_choices])
    positions = np.arange(seq)
    input_mask = (positions < lengths[..., None]).astype(np.int32)
    input_ids = rng.integers(5, vocab_size, size=[batch, num_choices, seq]) * input_mask
    segment_ids = ((positions >= 3) & (input_mask == 1)).astype(np.int32)
    return input_ids.astype(np.int32), input_mask, segment_ids


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    return np.exp(x) / np.exp(x).sum(-1, keepdims=True)


def test_choice_logits_equal_separate_encoder_passes_and_dummies_get_probability_zero():
    rng = np.random.default_rng(0)
    batch, num_choices, seq = 2, 3, 10
    config = tiny_config()
    input_ids, input_mask, segment_ids = random_batch(rng, batch, num_choices, seq, 40)
    choice_mask = np.array([[1, 1, 1], [1, 1, 0]], np.int32)
    label_ids = np.array([2, 1], np.int32)
    with tf.Graph().as_default():
        tf1.set_random_seed(1)
        features = {
            "input_ids": tf.constant(input_ids),
            "input_mask": tf.constant(input_mask),
            "segment_ids": tf.constant(segment_ids),
            "choice_mask": tf.constant(choice_mask),
            "label_ids": tf.constant(label_ids),
        }
        outputs = run_multiple_choice.create_model(config, False, features, False)
        # The same encoder, one choice at a time: [batch, seq] inputs.
        with tf1.variable_scope(tf1.get_variable_scope(), reuse=True):
            pooled = [
                modeling.BertModel(
                    config,
                    False,
                    tf.constant(input_ids[:, k]),
                    tf.constant(input_mask[:, k]),
                    tf.constant(segment_ids[:, k]),
                    scope="bert",
                ).get_pooled_output()
                for k in range(num_choices)
            ]
        head = {v.op.name: v for v in tf1.global_variables() if not v.op.name.startswith("bert/")}
        assert {name: v.shape.as_list() for name, v in head.items()} == {
            "output_weights": [1, 32],
            "output_bias": [1],
        }
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            # A non-zero bias, so that the test sees it added once per choice.
            session.run(head["output_bias"].assign([0.3]))
            fetched = {name: getattr(outputs, name) for name in OUTPUT_NAMES}
            got, pooled_k, weights, bias = session.run(
                [fetched, pooled, head["output_weights"], head["output_bias"]]
            )
    expected = np.stack([p @ weights[0] + bias[0] for p in pooled_k], axis=1)
    real = choice_mask == 1
    np.testing.assert_allclose(got["logits"][real], expected[real], rtol=0, atol=1e-5)
    assert got["probabilities"][1, 2] == 0.0
    np.testing.assert_allclose(got["probabilities"][0], softmax(expected[0]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        got["probabilities"][1, :2], softmax(expected[1, :2]), rtol=0, atol=1e-6
    )
    loss = -np.log([softmax(expected[0])[2], softmax(expected[1, :2])[1]])
    np.testing.assert_allclose(got["per_example_loss"], loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["loss"], loss.mean(), rtol=0, atol=1e-5)


def test_a_dummy_choice_never_wins_even_against_very_low_scores():
    """Real choices with hugely negative scores still beat the masked one."""
    import heads

    with tf.Graph().as_default():
        pooled = tf.constant(np.full([4, 2], -1000.0), tf.float32)
        outputs = heads.multiple_choice_head(
            pooled, tf.constant([[1, 0], [0, 1]]), tf.constant([0, 1]), False, 0.1
        )
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            probabilities = session.run(outputs.probabilities)
    np.testing.assert_array_equal(probabilities, [[1.0, 0.0], [0.0, 1.0]])


# ------------------------------------------------------------------------- end to end

# Four keys, so that every 4-choice example holds all of them: no key tells on its own
# whether its choice is right, only whether the context holds it too.
KEYS = "red blue green yellow".split()
# The task's own fillers: words of helpers.FILLER that are not keys.
WORDS = [word for word in FILLER if word not in KEYS]
# How many filler words surround the key in a context and in a choice.
CONTEXT_FILLERS = (2, 2)
CHOICE_FILLERS = (1, 1)


def synthetic_example(rng: random.Random, index: int, num_choices: int) -> dict:
    """A context that starts with a key word; every choice starts with a different key,
    the right one with the context's. Labels alternate between index and text.

    The keys stand at the same place in every sequence: with keys anywhere among the
    fillers, the tiny model learned the match on some data seeds only."""
    keys = rng.sample(KEYS, num_choices)
    label = rng.randrange(num_choices)

    def phrase(key, length):
        return " ".join([key] + [rng.choice(WORDS) for _ in range(length)])

    choices = [phrase(key, rng.randint(*CHOICE_FILLERS)) for key in keys]
    return {
        "id": f"ex{index}",
        "context": phrase(keys[label], rng.randint(*CONTEXT_FILLERS)),
        "question": "which",
        "choices": choices,
        "label": label if index % 2 else choices[label],
    }


def write_synthetic_task(data_dir: Path, sizes: dict, seed: int) -> dict:
    rng = random.Random(seed)
    data_dir.mkdir(parents=True)
    splits = {}
    for split, count in sizes.items():
        # Every fifth example has 3 choices: padded with a dummy in a 4-choice run.
        splits[split] = [synthetic_example(rng, i, 3 if i % 5 == 0 else 4) for i in range(count)]
        lines = [json.dumps(example) for example in splits[split]]
        (data_dir / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return splits


def tiny_model(root: Path, **config_overrides) -> dict:
    vocab = write_vocab_for_texts(root / "vocab.txt", [" ".join(WORDS + KEYS + ["which"])])
    config = dict(
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=32
    )
    config.update(config_overrides)
    write_bert_config(root / "bert_config.json", len(vocab), **config)
    return {"vocab_file": root / "vocab.txt", "bert_config_file": root / "bert_config.json"}


def choice_flags(model, data, out, **extra):
    flags = dict(
        model,
        task_name="jsonl",
        data_dir=data,
        output_dir=out,
        max_seq_length=24,
        max_qa_length=8,
        train_batch_size=16,
        eval_batch_size=8,
        predict_batch_size=8,
        learning_rate=2e-3,
        num_train_epochs=10,
        random_seed=7,
    )
    flags.update(extra)
    return flags


def saved_model_probabilities(export_dir: Path, records: Path, tmp_path: Path):
    """Probabilities from the SavedModel's tf.Example signature, in a fresh process."""
    script = f"""
import json
import tensorflow as tf
import export
model = tf.saved_model.load(export.resolve_saved_model_dir({str(export_dir)!r}))
examples = [r.numpy() for r in tf.data.TFRecordDataset({str(records)!r})]
out = model.signatures["examples:serving_default"](examples=tf.constant(examples))
json.dump(out["probabilities"].numpy().tolist(), open({str(tmp_path / "p.json")!r}, "w"))
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO_ROOT)
    return np.array(json.loads((tmp_path / "p.json").read_text()))


def predictor_records(export_dir: Path, questions) -> list:
    script = f"""
import json
import predictor
p = predictor.MultipleChoicePredictor({str(export_dir)!r})
print(json.dumps(p.predict({questions!r}, batch_size=5)))
"""
    shown = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout
    return json.loads(shown.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [12])
def test_a_tiny_model_learns_the_synthetic_task_and_export_and_predictor_agree(tmp_path, seed):
    data = tmp_path / "data"
    splits = write_synthetic_task(data, {"train": 480, "dev": 80, "test": 21}, seed)
    model = tiny_model(tmp_path)
    out, exported = tmp_path / "out", tmp_path / "exported"
    run_script(
        "run_multiple_choice.py",
        choice_flags(
            model,
            data,
            out,
            do_train=True,
            do_eval=True,
            do_predict=True,
            # No periodic evaluation: the export then holds the last checkpoint, the one
            # --do_predict reads (with it, the export would be the best one).
            export_dir=exported,
        ),
        timeout=900,
    )
    results = read_eval_results(out / "eval_results.txt")
    assert results["eval_accuracy"] >= 0.95, results

    # test_predictions.jsonl: one record per test example, its own choices only.
    records = [
        json.loads(line)
        for line in (out / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    test = splits["test"]
    assert [r["id"] for r in records] == [e["id"] for e in test]
    for record, example in zip(records, test, strict=True):
        assert len(record["probabilities"]) == len(example["choices"])
        assert abs(sum(record["probabilities"]) - 1.0) < 1e-5
        assert record["choice"] == example["choices"][record["prediction"]]
    gold = [
        e["label"] if isinstance(e["label"], int) else e["choices"].index(e["label"]) for e in test
    ]
    right = sum(r["prediction"] == g for r, g in zip(records, gold, strict=True))
    assert right >= 0.9 * len(test)

    # test_results.tsv: every row has the run's 4 columns, 0 for a 3-choice example's dummy.
    rows = np.array(
        [
            [float(x) for x in line.split("\t")]
            for line in (out / "test_results.tsv").read_text().splitlines()
        ]
    )
    assert rows.shape == (len(test), 4)
    assert rows[0, 3] == 0.0 and len(test[0]["choices"]) == 3

    # The SavedModel on the same records (the padding that fills the last batch included).
    served = saved_model_probabilities(exported, out / "predict.tf_record", tmp_path)
    np.testing.assert_allclose(served[: len(test)], rows, rtol=0, atol=1e-5)

    # The predictor from raw text gives the same records.
    questions = [(e["context"], e["question"], e["choices"]) for e in test]
    from_predictor = predictor_records(exported, questions)
    assert [r["prediction"] for r in from_predictor] == [r["prediction"] for r in records]
    for ours, theirs in zip(from_predictor, records, strict=True):
        np.testing.assert_allclose(
            ours["probabilities"], theirs["probabilities"], rtol=0, atol=1e-5
        )


def test_a_label_outside_the_choices_stops_before_any_work_naming_file_line_and_example(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = {"context": "red river", "choices": ["red", "blue"], "label": 0}
    bad = {"id": "q7", "context": "red river", "choices": ["red", "blue"], "label": 2}
    (data / "train.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = run_script(
        "run_multiple_choice.py",
        choice_flags(tiny_model(tmp_path), data, tmp_path / "out", do_train=True),
        expect_failure=True,
    )
    assert (
        f"{data / 'train.jsonl'}:2: example q7: label 2 is outside its 2 choices" in result.stdout
    )
    assert not (tmp_path / "out" / "train.tf_record").exists()


def test_a_race_file_without_answers_is_named(tmp_path):
    split = tmp_path / "data" / "dev" / "high"
    split.mkdir(parents=True)
    record = {"article": "a", "questions": ["q?"], "options": [["x", "y"]], "id": "high3.txt"}
    (split / "3.txt").write_text(json.dumps(record))
    result = run_script(
        "run_multiple_choice.py",
        choice_flags(
            tiny_model(tmp_path),
            tmp_path / "data",
            tmp_path / "out",
            task_name="race",
            do_eval=True,
        ),
        expect_failure=True,
    )
    assert f"{split / '3.txt'}: the RACE file has no 'answers'" in result.stdout
