"""finetuning: the step arithmetic, periodic evaluation keeping the best checkpoint, prediction
without padding, and the checkpoint an export takes. The model is a one-variable toy: what is
under test is the loop around it."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

import finetuning

tf1 = tf.compat.v1


def toy_model_fn(num_train_steps, num_warmup_steps, init_checkpoint=None):
    """Learns `weight` towards 3 by plain SGD; predicts `weight * x` and passes `index`
    (x is the `input_ids` feature, which is what an export feeds)."""
    del num_train_steps, num_warmup_steps

    def model_fn(features, labels, mode, params):
        weight = tf1.get_variable("weight", [], initializer=tf1.zeros_initializer())
        if init_checkpoint:
            tf1.train.init_from_checkpoint(init_checkpoint, {"weight": "weight"})
        x = tf.cast(features["input_ids"], tf.float32)
        loss = tf.reduce_mean(tf.square(weight - 3.0) * tf.ones_like(x))
        Spec = tf1.estimator.tpu.TPUEstimatorSpec
        if mode == tf.estimator.ModeKeys.TRAIN:
            step = tf1.train.get_or_create_global_step()
            train_op = tf1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
            return Spec(mode=mode, loss=loss, train_op=train_op)
        if mode == tf.estimator.ModeKeys.EVAL:
            return Spec(
                mode=mode,
                loss=loss,
                eval_metrics=(lambda w: {"mean_weight": tf1.metrics.mean(w)}, [weight + 0 * x]),
            )
        outputs = {"value": weight * x, "index": features.get("index", 0 * x)}
        return Spec(
            mode=mode,
            predictions=outputs,
            export_outputs={"serving_default": tf.estimator.export.PredictOutput(outputs)},
        )

    return model_fn


def dataset_input_fn(num_examples, repeat):
    def input_fn(params):
        data = tf.data.Dataset.from_tensor_slices(
            {"input_ids": np.ones(num_examples, np.int64), "index": np.arange(num_examples)}
        )
        if repeat:
            data = data.repeat()
        return data.batch(params["batch_size"], drop_remainder=True)

    return input_fn


def scripted_scores(values):
    """A score function that reports the given values, one per evaluation."""
    remaining = list(values)
    seen = []

    def score(predictions):
        seen.append(len(predictions))
        return {"score": remaining.pop(0)}

    score.seen = seen
    return score


def test_training_steps_follow_the_originals_arithmetic():
    settings = finetuning.LoopSettings("unused", train_batch_size=32, num_train_epochs=3.0)
    assert finetuning.training_steps(100, settings) == finetuning.TrainingSteps(9, 0)
    settings = finetuning.LoopSettings(
        "unused", train_batch_size=8, num_train_epochs=2.5, warmup_proportion=0.2
    )
    assert finetuning.training_steps(101, settings) == finetuning.TrainingSteps(31, 6)
    settings = finetuning.LoopSettings("unused", train_batch_size=32, num_train_epochs=1.0)
    with pytest.raises(ValueError, match="10 training examples at --train_batch_size=32"):
        finetuning.training_steps(10, settings)


def test_padding_fills_the_last_batch_only():
    assert finetuning.padded_to_batches([1, 2, 3, 4, 5], 4, lambda: 0) == [1, 2, 3, 4, 5, 0, 0, 0]
    assert finetuning.padded_to_batches([1, 2, 3, 4], 4, lambda: 0) == [1, 2, 3, 4]
    assert finetuning.padded_to_batches([], 4, lambda: 0) == []
    with pytest.raises(ValueError, match="positive"):
        finetuning.padded_to_batches([1], 0, lambda: 0)


def test_periodic_evaluation_keeps_the_best_checkpoint_and_a_restart_respects_it(tmp_path):
    settings = finetuning.LoopSettings(
        str(tmp_path), train_batch_size=2, eval_batch_size=4, num_train_epochs=1.0,
        eval_every_steps=4,
    )
    loop = finetuning.FineTuning(settings, toy_model_fn, num_train_examples=20)
    assert loop.steps == finetuning.TrainingSteps(10, 1)
    score = scripted_scores([0.5, 0.9, 0.7])
    loop.set_dev_set(dataset_input_fn(8, repeat=False), 6, "score", score)
    loop.train(dataset_input_fn(20, repeat=True))
    result = loop.evaluate()

    # Evaluated after steps 4, 8 and 10; the last evaluation is not run twice.
    assert score.seen == [6, 6, 6]
    assert result["global_step"] == 10 and result["score"] == 0.7
    written = finetuning.read_eval_results(str(tmp_path / "eval_results.txt"))
    assert written["score"] == "0.7" and written["global_step"] == "10"
    best = finetuning.read_eval_results(str(tmp_path / "best" / "eval_results.txt"))
    assert best["score"] == "0.9" and best["global_step"] == "8"
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith("model.ckpt-8")
    # The copy holds the weights of step 8, not of the last step.
    best_weight = tf.train.load_variable(str(tmp_path / "best"), "weight")
    last_weight = tf.train.load_variable(str(tmp_path), "weight")
    assert 0 < best_weight < last_weight < 3
    assert sorted(os.listdir(tmp_path / "best")) == sorted(
        ["checkpoint", "eval_results.txt"]
        + [n for n in os.listdir(tmp_path) if n.startswith("model.ckpt-8.")]
    )

    # A rerun into the same directory does not replace a better checkpoint with a worse one.
    again = finetuning.FineTuning(settings, toy_model_fn, num_train_examples=20)
    again.set_dev_set(dataset_input_fn(8, repeat=False), 6, "score", scripted_scores([0.8]))
    assert again.evaluator.best_value == 0.9
    again.evaluate()
    best = finetuning.read_eval_results(str(tmp_path / "best" / "eval_results.txt"))
    assert best["score"] == "0.9"


def test_a_missing_main_metric_is_named(tmp_path):
    settings = finetuning.LoopSettings(str(tmp_path), train_batch_size=2, eval_batch_size=4)
    loop = finetuning.FineTuning(settings, toy_model_fn, num_train_examples=4)
    loop.set_dev_set(dataset_input_fn(4, repeat=False), 4, "eval_f1")
    loop.train(dataset_input_fn(4, repeat=True))
    with pytest.raises(KeyError, match="'eval_f1' that picks the best checkpoint"):
        loop.evaluate()


def test_predictions_come_in_input_order_without_the_padding(tmp_path):
    settings = finetuning.LoopSettings(str(tmp_path), train_batch_size=2, predict_batch_size=4)
    loop = finetuning.FineTuning(settings, toy_model_fn, num_train_examples=4)
    loop.train(dataset_input_fn(4, repeat=True))
    predictions = loop.predict(dataset_input_fn(8, repeat=False), num_real=6)
    assert [int(p["index"]) for p in predictions] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(RuntimeError, match="Got 8 predictions for 9 examples"):
        loop.predict(dataset_input_fn(8, repeat=False), num_real=9)


def test_the_export_takes_the_best_else_the_last_else_the_initial_checkpoint(tmp_path):
    init_dir = tmp_path / "init"
    init_loop = finetuning.FineTuning(
        finetuning.LoopSettings(str(init_dir), train_batch_size=2), toy_model_fn, 4
    )
    init_loop.train(dataset_input_fn(4, repeat=True))
    init_checkpoint = tf.train.latest_checkpoint(str(init_dir))

    run_dir = tmp_path / "run"
    settings = finetuning.LoopSettings(
        str(run_dir), train_batch_size=2, init_checkpoint=init_checkpoint
    )
    def model_fn_from_init(steps, warmup):
        return toy_model_fn(steps, warmup, init_checkpoint)

    loop = finetuning.FineTuning(settings, model_fn_from_init)
    # Nothing trained here: the model_fn's graph initialized from --init_checkpoint, saved
    # to a temporary checkpoint that is deleted afterwards.
    with loop.checkpoint_to_export() as checkpoint:
        assert not checkpoint.startswith(str(run_dir))
        initial_weight = tf.train.load_variable(checkpoint, "weight")
        assert initial_weight == tf.train.load_variable(init_checkpoint, "weight") > 0
    assert not os.path.exists(os.path.dirname(checkpoint))

    loop = finetuning.FineTuning(settings, model_fn_from_init, num_train_examples=4)
    loop.train(dataset_input_fn(4, repeat=True))
    with loop.checkpoint_to_export() as checkpoint:
        assert checkpoint == tf.train.latest_checkpoint(str(run_dir))

    # Evaluating at the end alone keeps no copy (the best is the last one)...
    loop.set_dev_set(dataset_input_fn(8, repeat=False), 4, "score", scripted_scores([1.0]))
    loop.evaluate()
    assert not (run_dir / "best").exists()

    # ... evaluating during training does, and the export takes it.
    periodic = dataclasses.replace(settings, eval_every_steps=1)
    loop = finetuning.FineTuning(periodic, model_fn_from_init, num_train_examples=4)
    loop.set_dev_set(dataset_input_fn(8, repeat=False), 4, "score", scripted_scores([1.0]))
    loop.evaluate()
    with loop.checkpoint_to_export() as checkpoint:
        assert checkpoint.startswith(str(run_dir / "best"))

    empty = finetuning.LoopSettings(str(tmp_path / "empty"), train_batch_size=2)
    with pytest.raises(ValueError, match="no checkpoint in .*empty and no --init_checkpoint"):
        with finetuning.FineTuning(empty, toy_model_fn).checkpoint_to_export():
            pass
