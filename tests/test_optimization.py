"""Tests for optimization.py: schedule, AdamW and LAMB updates, clipping, global step, slot
names, replicas, gradient accumulation and dynamic loss scaling.

Expected values come from hand arithmetic or from the small NumPy implementations of the
BERT update written below from the spec (Adam without bias correction, decoupled weight
decay, global-norm clipping; LAMB with bias correction and trust ratio), never from the
code under test.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import optimization

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-6


def numpy_adamw_step(param, grad, m, v, learning_rate, weight_decay_rate):
    """The BERT AdamW update from its definition; returns (param, m, v)."""
    m = BETA_1 * m + (1.0 - BETA_1) * grad
    v = BETA_2 * v + (1.0 - BETA_2) * grad**2
    update = m / (np.sqrt(v) + EPSILON) + weight_decay_rate * param
    return param - learning_rate * update, m, v


def numpy_lamb_step(param, grad, m, v, step, learning_rate, weight_decay_rate, adapt):
    """The LAMB update from You et al. 2019 at optimizer step `step` (1-based)."""
    m = BETA_1 * m + (1.0 - BETA_1) * grad
    v = BETA_2 * v + (1.0 - BETA_2) * grad**2
    m_hat = m / (1.0 - BETA_1**step)
    v_hat = v / (1.0 - BETA_2**step)
    update = m_hat / (np.sqrt(v_hat) + EPSILON) + weight_decay_rate * param
    ratio = 1.0
    param_norm, update_norm = np.linalg.norm(param), np.linalg.norm(update)
    if adapt and param_norm > 0 and update_norm > 0:
        ratio = param_norm / update_norm
    return param - learning_rate * ratio * update, m, v


def read_variable(session, name):
    """Value of the global variable called `name` (no `:0`) in the session's graph."""
    with session.graph.as_default():
        (variable,) = [v for v in tf.compat.v1.global_variables() if v.op.name == name]
    return session.run(variable)


def run_in_new_graph(build):
    """Builds `build()` in a fresh graph and returns (session, build's result)."""
    graph = tf.Graph()
    with graph.as_default():
        result = build()
        session = tf.compat.v1.Session(graph=graph)
        session.run(tf.compat.v1.global_variables_initializer())
    return session, result


# ------------------------------------------------------------------ learning-rate schedule


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 0.0),  # warm-up starts from zero
        (5, 1.0),  # 2.0 * 5 / 10
        (9, 1.8),  # 2.0 * 9 / 10, last warm-up step
        (10, 1.8),  # warm-up over: 2.0 * (1 - 10 / 100)
        (55, 0.9),  # 2.0 * (1 - 55 / 100)
        (99, 0.02),  # 2.0 * (1 - 99 / 100)
        (100, 0.0),  # decayed to zero at num_train_steps
        (150, 0.0),  # and stays there (no cycling)
    ],
)
def test_learning_rate_schedule_with_warmup(step, expected):
    with tf.Graph().as_default():
        global_step = tf.constant(step, dtype=tf.int64)
        rate = optimization.learning_rate_schedule(2.0, global_step, 100, 10)
        with tf.compat.v1.Session() as session:
            assert session.run(rate) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("step, expected", [(0, 2.0), (25, 1.5), (100, 0.0)])
def test_learning_rate_schedule_without_warmup_decays_from_init_lr(step, expected):
    with tf.Graph().as_default():
        rate = optimization.learning_rate_schedule(2.0, tf.constant(step), 100, 0)
        with tf.compat.v1.Session() as session:
            assert session.run(rate) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "num_train_steps, num_warmup_steps, flag",
    [(0, 0, "num_train_steps"), (None, 0, "num_train_steps"), (10, -1, "num_warmup_steps")],
)
def test_learning_rate_schedule_rejects_bad_step_counts(num_train_steps, num_warmup_steps, flag):
    with tf.Graph().as_default(), pytest.raises(ValueError, match=flag):
        optimization.learning_rate_schedule(1.0, tf.constant(0), num_train_steps, num_warmup_steps)


# ------------------------------------------------------------------ the AdamW update


@pytest.mark.parametrize("use_resource", [True, False], ids=["resource_var", "ref_var"])
def test_two_adamw_steps_match_numpy_with_and_without_weight_decay(use_resource):
    initial = {
        "layer/kernel": np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32),
        "layer/bias": np.array([0.0, 1.0, -1.0], np.float32),
        "layer/LayerNorm/gamma": np.array([1.0, 1.0, 2.0], np.float32),
    }
    step_grads = [
        {
            "layer/kernel": np.array([[0.5, -1.0, 2.0], [0.1, 0.0, -3.0]], np.float32),
            "layer/bias": np.array([-2.0, 0.3, 0.0], np.float32),
            "layer/LayerNorm/gamma": np.array([0.2, -0.4, 1.5], np.float32),
        },
        {
            "layer/kernel": np.array([[-0.5, 0.2, 1.0], [0.4, -0.7, 0.0]], np.float32),
            "layer/bias": np.array([1.0, 0.3, -0.2], np.float32),
            "layer/LayerNorm/gamma": np.array([0.0, 0.4, -1.0], np.float32),
        },
    ]
    learning_rate, weight_decay_rate = 0.01, 0.1

    def build():
        variables = {
            name: tf.compat.v1.get_variable(
                name, initializer=tf.constant(value), use_resource=use_resource
            )
            for name, value in initial.items()
        }
        grads = {
            name: tf.compat.v1.placeholder(tf.float32, value.shape)
            for name, value in initial.items()
        }
        optimizer = optimization.AdamWeightDecayOptimizer(
            learning_rate=learning_rate,
            weight_decay_rate=weight_decay_rate,
            exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
        )
        train_op = optimizer.apply_gradients([(grads[n], variables[n]) for n in initial])
        slots = {
            n: (optimizer.get_slot(variables[n], "m"), optimizer.get_slot(variables[n], "v"))
            for n in initial
        }
        return variables, grads, slots, train_op

    session, (variables, grads, slots, train_op) = run_in_new_graph(build)
    expected = {n: (initial[n].astype(np.float64), 0.0, 0.0) for n in initial}
    for step, grads_by_name in enumerate(step_grads):
        session.run(train_op, {grads[n]: grads_by_name[n] for n in initial})
        for name in initial:
            decay = weight_decay_rate if name == "layer/kernel" else 0.0
            param, m, v = expected[name]
            expected[name] = numpy_adamw_step(
                param, grads_by_name[name], m, v, learning_rate, decay
            )
            param, m, v = session.run([variables[name], *slots[name]])
            np.testing.assert_allclose(param, expected[name][0], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(m, expected[name][1], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(v, expected[name][2], rtol=1e-6, atol=1e-12)
        if step == 0:
            # By hand: kernel[0,0] = 1 - 0.01 * (0.05 / (sqrt(0.00025) + 1e-6) + 0.1 * 1.0)
            # and the excluded bias[0] = 0 - 0.01 * (-0.2 / (sqrt(0.004) + 1e-6)).
            assert session.run(variables["layer/kernel"])[0, 0] == pytest.approx(0.96737922)
            assert session.run(variables["layer/bias"])[0] == pytest.approx(0.03162228)


@pytest.mark.parametrize("use_resource", [True, False], ids=["resource_var", "ref_var"])
def test_gathered_embedding_sparse_gradient_matches_dense_numpy_update(use_resource):
    # Row 1 is gathered twice (duplicate indices must add up) and row 2 never: it still
    # gets weight decay, and in step 2 rows with momentum keep moving, as in the original.
    initial = np.arange(8, dtype=np.float32).reshape(4, 2) / 4.0
    row_weights = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 1.0]], np.float32)
    step_ids = [np.array([1, 1, 3], np.int32), np.array([0, 3, 0], np.int32)]
    learning_rate, weight_decay_rate = 0.1, 0.05

    def build():
        table = tf.compat.v1.get_variable(
            "word_embeddings", initializer=tf.constant(initial), use_resource=use_resource
        )
        ids = tf.compat.v1.placeholder(tf.int32, [3])
        loss = tf.reduce_sum(tf.gather(table, ids) * row_weights)
        optimizer = optimization.AdamWeightDecayOptimizer(
            learning_rate=learning_rate, weight_decay_rate=weight_decay_rate
        )
        grads_and_vars = optimizer.compute_gradients(loss, var_list=[table])
        assert isinstance(grads_and_vars[0][0], tf.IndexedSlices)
        return table, ids, optimizer.apply_gradients(grads_and_vars)

    session, (table, ids, train_op) = run_in_new_graph(build)
    param, m, v = initial.astype(np.float64), 0.0, 0.0
    for ids_value in step_ids:
        dense_grad = np.zeros_like(param)
        np.add.at(dense_grad, ids_value, row_weights)
        param, m, v = numpy_adamw_step(param, dense_grad, m, v, learning_rate, weight_decay_rate)
        session.run(train_op, {ids: ids_value})
        np.testing.assert_allclose(session.run(table), param, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ the LAMB update

_LAMB_INITIAL = {
    "layer/kernel": np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32),
    "layer/zero_kernel": np.zeros([2], np.float32),  # ||w|| = 0: trust ratio 1
    "layer/bias": np.array([0.0, 1.0, -1.0], np.float32),
    "layer/LayerNorm/gamma": np.array([1.0, 1.0, 2.0], np.float32),
}
_LAMB_GRADS = [
    {
        "layer/kernel": np.array([[0.5, -1.0, 2.0], [0.1, 0.0, -3.0]], np.float32),
        "layer/zero_kernel": np.array([0.3, -0.2], np.float32),
        "layer/bias": np.array([-2.0, 0.3, 0.0], np.float32),
        "layer/LayerNorm/gamma": np.array([0.2, -0.4, 1.5], np.float32),
    },
    {
        "layer/kernel": np.array([[-0.5, 0.2, 1.0], [0.4, -0.7, 0.0]], np.float32),
        "layer/zero_kernel": np.array([0.1, 0.1], np.float32),
        "layer/bias": np.array([1.0, 0.3, -0.2], np.float32),
        "layer/LayerNorm/gamma": np.array([0.0, 0.4, -1.0], np.float32),
    },
]


@pytest.mark.parametrize("initial_global_step", [0, 9])
@pytest.mark.parametrize("use_resource", [True, False], ids=["resource_var", "ref_var"])
def test_two_lamb_steps_match_numpy(use_resource, initial_global_step):
    learning_rate, weight_decay_rate = 0.01, 0.1

    def build():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        variables = {
            name: tf.compat.v1.get_variable(
                name, initializer=tf.constant(value), use_resource=use_resource
            )
            for name, value in _LAMB_INITIAL.items()
        }
        grads = {
            name: tf.compat.v1.placeholder(tf.float32, value.shape)
            for name, value in _LAMB_INITIAL.items()
        }
        optimizer = optimization.LAMBOptimizer(
            learning_rate=learning_rate,
            weight_decay_rate=weight_decay_rate,
            exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"],
        )
        train_op = optimizer.apply_gradients(
            [(grads[n], variables[n]) for n in _LAMB_INITIAL], global_step=global_step
        )
        slots = {
            n: (optimizer.get_slot(variables[n], "m"), optimizer.get_slot(variables[n], "v"))
            for n in _LAMB_INITIAL
        }
        return global_step, variables, grads, slots, train_op

    session, (global_step, variables, grads, slots, train_op) = run_in_new_graph(build)
    with session.graph.as_default():
        global_step.load(initial_global_step, session)
    expected = {n: (_LAMB_INITIAL[n].astype(np.float64), 0.0, 0.0) for n in _LAMB_INITIAL}
    for step, grads_by_name in enumerate(_LAMB_GRADS, start=initial_global_step + 1):
        session.run(train_op, {grads[n]: grads_by_name[n] for n in _LAMB_INITIAL})
        for name in _LAMB_INITIAL:
            is_kernel = name.startswith("layer/kernel") or name == "layer/zero_kernel"
            param, m, v = expected[name]
            expected[name] = numpy_lamb_step(
                param,
                grads_by_name[name],
                m,
                v,
                step,
                learning_rate,
                weight_decay_rate if is_kernel else 0.0,
                adapt=is_kernel,
            )
            param, m, v = session.run([variables[name], *slots[name]])
            np.testing.assert_allclose(param, expected[name][0], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(m, expected[name][1], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(v, expected[name][2], rtol=1e-6, atol=1e-12)
    assert session.run(global_step) == initial_global_step + 2


def test_first_lamb_step_by_hand():
    # At t = 1 the bias-corrected m_hat = g and v_hat = g^2, so the Adam part of the update
    # is g / (|g| + eps), i.e. +-1 up to 1e-6 relative.
    def build():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        bias = tf.compat.v1.get_variable("out/bias", initializer=tf.constant([0.0, 5.0]))
        zero = tf.compat.v1.get_variable("out/kernel", initializer=tf.constant([0.0, 0.0]))
        kernel = tf.compat.v1.get_variable("mid/kernel", initializer=tf.constant([3.0, 4.0]))
        loss = tf.reduce_sum(bias * [-2.0, 0.5] + zero * [1.0, -1.0] + kernel * [2.0, 2.0])
        optimizer = optimization.LAMBOptimizer(
            learning_rate=0.1, weight_decay_rate=0.5, exclude_from_weight_decay=["bias"]
        )
        return (bias, zero, kernel), optimizer.minimize(loss, global_step=global_step)

    session, ((bias, zero, kernel), train_op) = run_in_new_graph(build)
    session.run(train_op)
    # bias: no decay, no trust ratio: moves by 0.1 against the sign of its gradient.
    np.testing.assert_allclose(session.run(bias), [0.1, 4.9], rtol=1e-6, atol=1e-7)
    # zero kernel: decay of 0 is 0 and ||w|| = 0, so the ratio is 1.
    np.testing.assert_allclose(session.run(zero), [-0.1, 0.1], rtol=1e-6, atol=1e-7)
    # kernel: update = [1, 1] + 0.5 * [3, 4] = [2.5, 3], ratio = 5 / sqrt(15.25).
    ratio = 5.0 / np.sqrt(2.5**2 + 3.0**2)
    np.testing.assert_allclose(
        session.run(kernel),
        [3.0 - 0.1 * ratio * 2.5, 4.0 - 0.1 * ratio * 3.0],
        rtol=1e-6,
        atol=1e-7,
    )


def test_lamb_without_a_global_step_says_what_it_needs():
    with tf.Graph().as_default():
        w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
        optimizer = optimization.LAMBOptimizer(learning_rate=0.1)
        with pytest.raises(ValueError, match="global step"):
            optimizer.minimize(tf.reduce_sum(w))


# ------------------------------------------------------------------ create_optimizer


def _build_two_variable_problem(grad_scale):
    """Loss with gradient `grad_scale * [3, 0]` on w1 and `grad_scale * [4]` on w2."""
    w1 = tf.compat.v1.get_variable("w1/bias", initializer=tf.constant([1.0, 1.0]))
    w2 = tf.compat.v1.get_variable("w2/bias", initializer=tf.constant([1.0]))
    loss = grad_scale * (tf.reduce_sum(w1 * [3.0, 0.0]) + tf.reduce_sum(w2 * 4.0))
    train_op = optimization.create_optimizer(
        loss, init_lr=0.1, num_train_steps=10, num_warmup_steps=0, use_tpu=False
    )
    return train_op


@pytest.mark.parametrize(
    "grad_scale, expected_grad",
    [
        # Global norm of ([30, 0], [40]) is 50: both are divided by 50, not each by its own.
        (10.0, ([0.6, 0.0], [0.8])),
        # Global norm 0.5 <= 1: left alone.
        (0.1, ([0.3, 0.0], [0.4])),
    ],
)
def test_create_optimizer_clips_gradients_to_global_norm_one(grad_scale, expected_grad):
    session, train_op = run_in_new_graph(lambda: _build_two_variable_problem(grad_scale))
    session.run(train_op)
    for name, grad in zip(["w1/bias", "w2/bias"], expected_grad, strict=True):
        # After one step m = (1 - beta_1) * g and v = (1 - beta_2) * g^2.
        m = read_variable(session, name + "/adam_m")
        v = read_variable(session, name + "/adam_v")
        # Some gradients are 0: an rtol alone would ask for an exact 0.
        np.testing.assert_allclose(m, 0.1 * np.array(grad), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(v, 0.001 * np.array(grad) ** 2, rtol=1e-5, atol=1e-12)


def test_create_optimizer_steps_global_step_once_and_uses_that_steps_learning_rate():
    def build():
        bias = tf.compat.v1.get_variable("output/bias", initializer=tf.constant([1.0, -1.0]))
        loss = tf.reduce_sum(bias * [0.3, -0.4])  # gradient norm 0.5: no clipping
        train_op = optimization.create_optimizer(
            loss, init_lr=0.1, num_train_steps=10, num_warmup_steps=2, use_tpu=False
        )
        return bias, tf.compat.v1.train.get_global_step(), train_op

    session, (bias, global_step, train_op) = run_in_new_graph(build)
    grad = np.array([0.3, -0.4])
    param, m, v = np.array([1.0, -1.0]), 0.0, 0.0
    # The update of step k uses the schedule at k (before the increment): 0, 0.05, 0.08.
    for step, learning_rate in enumerate([0.0, 0.05, 0.1 * (1 - 2 / 10)]):
        assert session.run(global_step) == step
        session.run(train_op)
        assert session.run(global_step) == step + 1
        param, m, v = numpy_adamw_step(param, grad, m, v, learning_rate, 0.0)
        np.testing.assert_allclose(session.run(bias), param, rtol=1e-6, atol=1e-7)
    # Step 0 is inside the warm-up with rate 0: the variable only moved from step 1 on.
    assert param[0] != 1.0


def test_create_optimizer_rejects_unknown_optimizer_name():
    with tf.Graph().as_default():
        w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
        with pytest.raises(ValueError, match="optimizer_name 'sgd'"):
            optimization.create_optimizer(
                tf.reduce_sum(w), 1e-4, 10, 1, use_tpu=False, optimizer_name="sgd"
            )


@pytest.mark.parametrize(
    "options, use_tpu, flag",
    [
        ({"gradient_accumulation_steps": 0}, False, "gradient_accumulation_steps"),
        ({"gradient_accumulation_steps": 2.0}, False, "gradient_accumulation_steps"),
        ({"gradient_accumulation_steps": 2}, True, "gradient_accumulation_steps.*use_tpu"),
        ({"loss_scaling": True}, True, "loss_scaling"),
        ({"loss_scaling": True, "initial_loss_scale": 0.5}, False, "initial_loss_scale"),
        ({"loss_scaling": True, "loss_scale_growth_interval": 0}, False, "growth_interval"),
    ],
)
def test_create_optimizer_rejects_options_that_cannot_work(options, use_tpu, flag):
    with tf.Graph().as_default():
        w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
        with pytest.raises(ValueError, match=flag):
            optimization.create_optimizer(tf.reduce_sum(w), 1e-4, 10, 1, use_tpu, **options)


@pytest.mark.parametrize(
    "options, expected_tags",
    [({}, {"learning_rate"}), ({"loss_scaling": True}, {"learning_rate", "loss_scale"})],
)
def test_create_optimizer_logs_learning_rate_and_loss_scale_summaries(options, expected_tags):
    with tf.Graph().as_default():
        w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
        optimization.create_optimizer(tf.reduce_sum(w), 0.5, 10, 0, use_tpu=False, **options)
        summaries = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SUMMARIES)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = {}
            for serialized in session.run(summaries):
                for value in tf.compat.v1.Summary.FromString(serialized).value:
                    values[value.tag] = value.simple_value
    assert set(values) == expected_tags
    assert values["learning_rate"] == pytest.approx(0.5)  # step 0 of no warm-up
    if "loss_scale" in values:
        assert values["loss_scale"] == 2.0**15


def test_create_optimizer_outside_a_replica_context_names_the_problem():
    with tf.Graph().as_default():
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        with strategy.scope():
            w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
            with pytest.raises(RuntimeError, match="replica context"):
                optimization.create_optimizer(tf.reduce_sum(w), 1e-4, 10, 1, use_tpu=False)


def test_create_optimizer_on_tpu_clips_before_the_cross_shard_sum():
    with tf.Graph().as_default() as graph:
        w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0, 2.0]))
        optimization.create_optimizer(tf.reduce_sum(w * w), 1e-4, 10, 1, use_tpu=True)
        sums = [op for op in graph.get_operations() if op.type == "CrossReplicaSum"]
    assert len(sums) == 1
    assert "clip_by_global_norm" in sums[0].inputs[0].name


# ------------------------------------------------------------------ checkpoint names

_BERT_NAMES = [
    "bert/embeddings/word_embeddings",
    "bert/encoder/layer_0/output/LayerNorm/gamma",
    "cls/predictions/output_bias",
]


def _build_bert_named_model(optimizer_name="adamw"):
    """Three variables with BERT's names and a train op from `create_optimizer`."""
    tf.compat.v1.train.get_or_create_global_step()  # as the Estimator does before model_fn
    variables = [
        tf.compat.v1.get_variable(name, shape=[3, 2] if "embeddings" in name else [2])
        for name in _BERT_NAMES
    ]
    loss = tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])
    # Called inside a variable scope, which must not prefix the slot names a second time.
    with tf.compat.v1.variable_scope("cls"):
        train_op = optimization.create_optimizer(
            loss, 1e-3, 10, 1, use_tpu=False, optimizer_name=optimizer_name
        )
        return variables, train_op


@pytest.mark.parametrize("optimizer_name, slot_prefix", [("adamw", "adam"), ("lamb", "lamb")])
def test_checkpoint_holds_slots_named_like_googles_checkpoints(
    tmp_path, optimizer_name, slot_prefix
):
    def build():
        _, train_op = _build_bert_named_model(optimizer_name)
        return train_op, tf.compat.v1.train.Saver()

    session, (train_op, saver) = run_in_new_graph(build)
    session.run(train_op)
    with session.graph.as_default():
        prefix = saver.save(session, str(tmp_path / "model.ckpt"))
    names = {name for name, _ in tf.train.list_variables(prefix)}
    expected = {"global_step"}
    for name in _BERT_NAMES:
        expected |= {name, f"{name}/{slot_prefix}_m", f"{name}/{slot_prefix}_v"}
    assert names == expected


def test_slots_restore_from_a_checkpoint_written_with_googles_names(tmp_path):
    # Write a checkpoint as Google's TF1 code did: plain variables named "<var>/adam_m".
    stored = {}
    with tf.Graph().as_default():
        rng = np.random.default_rng(0)
        for name in _BERT_NAMES:
            shape = [3, 2] if "embeddings" in name else [2]
            for suffix in ("", "/adam_m", "/adam_v"):
                stored[name + suffix] = rng.standard_normal(shape).astype(np.float32)
                tf.compat.v1.get_variable(name + suffix, initializer=stored[name + suffix])
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            prefix = tf.compat.v1.train.Saver().save(session, str(tmp_path / "google.ckpt"))

    def build():
        _build_bert_named_model()
        optimizer_state = [v for v in tf.compat.v1.global_variables() if v.op.name != "global_step"]
        return tf.compat.v1.train.Saver(var_list=optimizer_state)

    session, saver = run_in_new_graph(build)
    with session.graph.as_default():
        saver.restore(session, prefix)
    for name, value in stored.items():
        np.testing.assert_array_equal(read_variable(session, name), value)


# ------------------------------------------------------------------ replicas vs. one device

_NUM_STEPS = 4
_FEATURES = np.arange(16, dtype=np.float32).reshape(8, 2) / 4.0
_TOKEN_IDS = np.array([0, 1, 2, 3, 3, 2, 1, 0], np.int32)
# Large targets make every gradient norm > 100, so clipping is active on every step.
_TARGETS = np.arange(8, dtype=np.float32).reshape(8, 1) * 10.0
_INITIAL = {
    "dense/kernel": np.array([[1.0], [2.0]], np.float32),
    "dense/bias": np.array([0.5], np.float32),
    "embeddings/word_embeddings": np.arange(8, dtype=np.float32).reshape(4, 2),
}
_INIT_LR, _NUM_TRAIN_STEPS, _NUM_WARMUP_STEPS = 0.1, 10, 2
# One row of the first micro-batch in `train_tiny_estimator(poison_first_micro_batch=True)`:
# its loss stays finite in float32, but its kernel gradient times the loss scale 2**15 is not.
_OVERFLOWING_FEATURE = 3e17


def _tiny_loss(initial, x, ids, targets):
    """pred = (x + embedding[ids]) @ kernel + bias; returns the mean squared error `[]`."""
    variables = {
        name: tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        for name, value in initial.items()
    }
    embedded = tf.gather(variables["embeddings/word_embeddings"], ids)
    prediction = tf.matmul(x + embedded, variables["dense/kernel"]) + variables["dense/bias"]
    return tf.reduce_mean(tf.square(prediction - targets))


def _tiny_model_fn(features, labels, mode, params):
    """`_tiny_loss` trained by `create_optimizer` with the options in `params`."""
    loss = _tiny_loss(_INITIAL, features["x"], features["ids"], labels)
    train_op = optimization.create_optimizer(
        loss, _INIT_LR, _NUM_TRAIN_STEPS, _NUM_WARMUP_STEPS, use_tpu=False, **params
    )
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def _tiny_dataset(micro_batch_size, num_replicas, poison_first_micro_batch):
    """Micro-batches of `micro_batch_size` examples cut into one batch per replica.

    With a strategy, each replica takes its own consecutive batch from this dataset: with
    two replicas and no accumulation, replica 0 gets examples 0-3 and replica 1 examples
    4-7 of the same global batch. A poisoned micro-batch (its last example, which goes to
    the last replica, overflows) is put in front of the repeated data when asked.
    """
    per_replica = micro_batch_size // num_replicas
    examples = ({"x": _FEATURES, "ids": _TOKEN_IDS}, _TARGETS)
    dataset = tf.data.Dataset.from_tensor_slices(examples).batch(per_replica).repeat()
    if not poison_first_micro_batch:
        return dataset
    poisoned_x = _FEATURES[:micro_batch_size].copy()
    poisoned_x[-1] = _OVERFLOWING_FEATURE
    poisoned = (
        {"x": poisoned_x, "ids": _TOKEN_IDS[:micro_batch_size]},
        _TARGETS[:micro_batch_size],
    )
    return tf.data.Dataset.from_tensor_slices(poisoned).batch(per_replica).concatenate(dataset)


def train_tiny_estimator(
    num_replicas: int,
    model_dir: str,
    gradient_accumulation_steps: int = 1,
    loss_scaling: bool = False,
    poison_first_micro_batch: bool = False,
) -> None:
    """Entry point of the subprocess: trains on a global batch of 8 split over replicas.

    With accumulation the 8 examples of an optimizer step come in
    `gradient_accumulation_steps` micro-batches. Runs in its own process because the two
    logical CPU devices must be configured before TensorFlow initialises its devices.
    """
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    micro_batch_size = len(_TARGETS) // gradient_accumulation_steps

    def input_fn():
        return _tiny_dataset(micro_batch_size, num_replicas, poison_first_micro_batch)

    strategy = None
    if num_replicas > 1:
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # Blocking cross-device ops starve the default 2-thread pool of a 2-core machine.
    session_config = tf.compat.v1.ConfigProto(
        inter_op_parallelism_threads=8, device_count={"CPU": 2}
    )
    config = tf.estimator.RunConfig(
        model_dir=model_dir, train_distribute=strategy, session_config=session_config
    )
    params = {"gradient_accumulation_steps": gradient_accumulation_steps}
    if loss_scaling:
        params["loss_scaling"] = True
    estimator = tf.estimator.Estimator(_tiny_model_fn, config=config, params=params)
    estimator.train(input_fn, max_steps=_NUM_STEPS)


def _numpy_tiny_gradients(params, rows, merge_repeated_ids=False):
    """Gradients of the mean squared error over `rows`, and their squared global norm.

    Without accumulation the embedding gradient reaches clipping as IndexedSlices, one row
    per gathered token, so its contribution to the global norm is that of the un-merged
    rows (as in the original BERT code with tf.gather). An accumulator holds the dense sum,
    in which the rows of repeated ids are merged: `merge_repeated_ids`.
    """
    hidden = _FEATURES[rows] + params["embeddings/word_embeddings"][_TOKEN_IDS[rows]]
    residual = hidden @ params["dense/kernel"] + params["dense/bias"] - _TARGETS[rows]
    d_prediction = 2.0 * residual / len(rows)
    gathered_rows = d_prediction @ params["dense/kernel"].T
    embedding_grad = np.zeros_like(params["embeddings/word_embeddings"])
    np.add.at(embedding_grad, _TOKEN_IDS[rows], gathered_rows)
    grads = {
        "dense/kernel": hidden.T @ d_prediction,
        "dense/bias": d_prediction.sum(axis=0),
        "embeddings/word_embeddings": embedding_grad,
    }
    squared_norm = sum(np.sum(grads[n] ** 2) for n in ("dense/kernel", "dense/bias"))
    embedding_rows = embedding_grad if merge_repeated_ids else gathered_rows
    return grads, squared_norm + np.sum(embedding_rows**2)


def _numpy_tiny_training(clip_each_replica_separately: bool, merge_repeated_ids=False):
    """The whole run in NumPy; optionally with the per-replica clipping this code avoids."""
    params = {name: value.astype(np.float64) for name, value in _INITIAL.items()}
    m = {name: 0.0 for name in params}
    v = {name: 0.0 for name in params}
    halves = [np.arange(0, 4), np.arange(4, 8)]
    for step in range(_NUM_STEPS):
        if step < _NUM_WARMUP_STEPS:
            learning_rate = _INIT_LR * step / _NUM_WARMUP_STEPS
        else:
            learning_rate = _INIT_LR * (1.0 - step / _NUM_TRAIN_STEPS)
        if clip_each_replica_separately:
            grads = {name: 0.0 for name in params}
            for rows in halves:
                # Each replica's share is the gradient of its loss / 2.
                half_grads, squared_norm = _numpy_tiny_gradients(params, rows)
                scale = 0.5 / max(np.sqrt(squared_norm * 0.25), 1.0)
                for name in params:
                    grads[name] = grads[name] + scale * half_grads[name]
        else:
            grads, squared_norm = _numpy_tiny_gradients(params, np.arange(8), merge_repeated_ids)
            assert np.sqrt(squared_norm) > 100.0  # clipping is active
            grads = {n: g / max(np.sqrt(squared_norm), 1.0) for n, g in grads.items()}
        for name in params:
            decay = 0.0 if name == "dense/bias" else 0.01
            params[name], m[name], v[name] = numpy_adamw_step(
                params[name], grads[name], m[name], v[name], learning_rate, decay
            )
    return params, m, v


def _run_training_subprocess(num_replicas, model_dir, **options):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    environment["PYTHONPATH"] = os.pathsep.join([_REPO_ROOT, _TESTS_DIR])
    command = (
        "import test_optimization; "
        f"test_optimization.train_tiny_estimator({num_replicas}, {str(model_dir)!r}, "
        f"**{options!r})"
    )
    completed = subprocess.run(
        [sys.executable, "-c", command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return tf.train.load_checkpoint(str(model_dir))


@pytest.fixture(scope="module")
def trained_checkpoints(tmp_path_factory):
    """Readers of the checkpoints after training on one device and on two replicas."""
    root = tmp_path_factory.mktemp("replicas")
    return {n: _run_training_subprocess(n, root / f"replicas_{n}") for n in (1, 2)}


def _assert_same_variables_and_slots(actual, expected, rtol=1e-5, atol=1e-5):
    for name in _INITIAL:
        for suffix in ("", "/adam_m", "/adam_v"):
            np.testing.assert_allclose(
                actual.get_tensor(name + suffix),
                expected.get_tensor(name + suffix),
                rtol=rtol,
                atol=atol,
                err_msg=name + suffix,
            )


def _assert_matches_numpy(checkpoint, expected_params, expected_m, expected_v):
    for name in _INITIAL:
        np.testing.assert_allclose(checkpoint.get_tensor(name), expected_params[name], atol=1e-5)
        np.testing.assert_allclose(
            checkpoint.get_tensor(name + "/adam_m"), expected_m[name], atol=1e-6
        )
        np.testing.assert_allclose(
            checkpoint.get_tensor(name + "/adam_v"), expected_v[name], atol=1e-9
        )


@pytest.mark.slow
def test_two_replicas_take_the_same_clipped_steps_as_one_device(trained_checkpoints):
    one_device, two_replicas = trained_checkpoints[1], trained_checkpoints[2]
    assert one_device.get_tensor("global_step") == _NUM_STEPS
    assert two_replicas.get_tensor("global_step") == _NUM_STEPS
    _assert_same_variables_and_slots(two_replicas, one_device)
    _assert_matches_numpy(one_device, *_numpy_tiny_training(False))


def test_clipping_each_replica_separately_would_be_detected():
    # Guards the test above: had the replicas clipped their own gradients, the weights
    # would be far outside its 1e-5 tolerance.
    right, _, _ = _numpy_tiny_training(False)
    wrong, _, _ = _numpy_tiny_training(True)
    largest_difference = max(np.max(np.abs(right[n] - wrong[n])) for n in right)
    assert largest_difference > 1e-2


@pytest.fixture(scope="module")
def accumulated_checkpoints(tmp_path_factory):
    """Two micro-batches per step: on one device, and on two replicas with loss scaling
    and an overflowing first micro-batch in the last replica's share."""
    root = tmp_path_factory.mktemp("accumulation")
    one_device = _run_training_subprocess(1, root / "one", gradient_accumulation_steps=2)
    two_replicas = _run_training_subprocess(
        2,
        root / "two",
        gradient_accumulation_steps=2,
        loss_scaling=True,
        poison_first_micro_batch=True,
    )
    return one_device, two_replicas


@pytest.mark.slow
def test_two_replicas_accumulating_with_loss_scaling_match_one_device(accumulated_checkpoints):
    one_device, two_replicas = accumulated_checkpoints
    for checkpoint in accumulated_checkpoints:
        # max_steps counts optimizer steps: 4 steps took 8 micro-batches (9 with poison).
        assert checkpoint.get_tensor("global_step") == _NUM_STEPS
        assert checkpoint.get_tensor("gradient_accumulation_step") == 0
        for name in _INITIAL:
            accumulator = checkpoint.get_tensor(name + "/gradient_accumulator")
            np.testing.assert_array_equal(accumulator, np.zeros_like(accumulator))
    _assert_same_variables_and_slots(two_replicas, one_device)
    # Each step's 8 examples, however split, give the full batch's gradient (the sum an
    # accumulator holds merges repeated ids before clipping).
    _assert_matches_numpy(one_device, *_numpy_tiny_training(False, merge_repeated_ids=True))
    # The overflowing micro-batch was skipped on both replicas: the scale halved once and
    # only the 8 finite micro-batches count towards growth.
    assert two_replicas.get_tensor("loss_scale") == 2.0**14
    assert two_replicas.get_tensor("loss_scale_finite_steps") == 2 * _NUM_STEPS


def test_poisoned_micro_batch_overflows_only_when_scaled():
    # Guards the poisoned run above: the loss of the overflowing replica (2 examples) is
    # finite, so the Estimator's NaN check passes, and so is its kernel gradient (the
    # replica's share: loss / 2), but not once multiplied by the loss scale 2**15.
    x = np.array([_OVERFLOWING_FEATURE] * 2, np.float32)
    residual = np.float32(x @ _INITIAL["dense/kernel"][:, 0])  # target and bias negligible
    assert np.isfinite(np.float32(residual**2 / 2))
    unscaled_kernel_grad = np.float32(0.5 * 2.0 * residual / 2) * x
    assert np.all(np.isfinite(unscaled_kernel_grad))
    with np.errstate(over="ignore"):
        scaled_kernel_grad = np.float32(2.0**15) * unscaled_kernel_grad
    assert not np.any(np.isfinite(scaled_kernel_grad))


# ------------------------------------------------------------------ gradient accumulation

# Distinct ids: un-merged and merged embedding rows have the same norm, so a full batch
# and its accumulated halves are clipped alike.
_DISTINCT_IDS = np.array([5, 1, 7, 3, 0, 6, 2, 4], np.int32)
_DISTINCT_IDS_INITIAL = dict(
    _INITIAL, **{"embeddings/word_embeddings": np.arange(16, dtype=np.float32).reshape(8, 2)}
)


def _train_tiny_model_in_session(micro_batches, optimizer_steps, **options):
    """Trains `_tiny_loss` with `create_optimizer(**options)`, no warm-up, feeding the rows
    in `micro_batches` in turn; returns every variable's value and the graph's names."""

    def build():
        x = tf.compat.v1.placeholder(tf.float32, [None, 2])
        ids = tf.compat.v1.placeholder(tf.int32, [None])
        targets = tf.compat.v1.placeholder(tf.float32, [None, 1])
        loss = _tiny_loss(_DISTINCT_IDS_INITIAL, x, ids, targets)
        train_op = optimization.create_optimizer(
            loss, _INIT_LR, _NUM_TRAIN_STEPS, 0, use_tpu=False, **options
        )
        return (x, ids, targets), train_op

    session, ((x, ids, targets), train_op) = run_in_new_graph(build)
    for _ in range(optimizer_steps):
        for rows in micro_batches:
            session.run(
                train_op, {x: _FEATURES[rows], ids: _DISTINCT_IDS[rows], targets: _TARGETS[rows]}
            )
    with session.graph.as_default():
        variables = tf.compat.v1.global_variables()
    return dict(zip([v.op.name for v in variables], session.run(variables), strict=True))


@pytest.mark.parametrize("optimizer_name, slot_prefix", [("adamw", "adam"), ("lamb", "lamb")])
def test_two_accumulated_half_batches_take_the_step_of_the_full_batch(optimizer_name, slot_prefix):
    full_batch = _train_tiny_model_in_session(
        [np.arange(8)], optimizer_steps=3, optimizer_name=optimizer_name
    )
    accumulated = _train_tiny_model_in_session(
        [np.arange(4), np.arange(4, 8)],
        optimizer_steps=3,
        optimizer_name=optimizer_name,
        gradient_accumulation_steps=2,
    )
    assert full_batch["global_step"] == accumulated["global_step"] == 3
    for name in _INITIAL:
        for suffix in ("", f"/{slot_prefix}_m", f"/{slot_prefix}_v"):
            np.testing.assert_allclose(
                accumulated[name + suffix],
                full_batch[name + suffix],
                rtol=1e-5,
                atol=1e-5,
                err_msg=name + suffix,
            )
    # Guards the comparison: a step per half batch would have ended far away.
    per_half_batch = _train_tiny_model_in_session(
        [np.arange(4), np.arange(4, 8)], optimizer_steps=3, optimizer_name=optimizer_name
    )
    assert np.max(np.abs(per_half_batch["dense/kernel"] - full_batch["dense/kernel"])) > 1e-2


def _build_fed_gradient_problem(**options):
    """A bias whose gradient is whatever is fed to the returned placeholder."""
    bias = tf.compat.v1.get_variable("output/bias", initializer=tf.constant([1.0, -1.0]))
    grad = tf.compat.v1.placeholder(tf.float32, [2])
    loss = tf.reduce_sum(bias * grad)
    train_op = optimization.create_optimizer(loss, 0.1, 10, 0, use_tpu=False, **options)
    return grad, train_op


# Gradient norms <= 0.5: no clipping. Three optimizer steps of three micro-batches each.
_FED_GRADS = np.array(
    [
        [0.3, -0.4],
        [0.1, 0.2],
        [-0.2, 0.1],
        [0.0, 0.3],
        [0.4, 0.0],
        [-0.1, -0.1],
        [0.2, 0.2],
        [0.3, 0.1],
        [-0.3, 0.2],
    ],
    np.float32,
)


def _numpy_accumulated_bias(num_micro_batches, accumulation_steps):
    """The bias after AdamW steps on the averages of consecutive `_FED_GRADS`."""
    param, m, v = np.array([1.0, -1.0]), 0.0, 0.0
    for step in range(num_micro_batches // accumulation_steps):
        cycle = _FED_GRADS[step * accumulation_steps : (step + 1) * accumulation_steps]
        learning_rate = 0.1 * (1.0 - step / 10)
        param, m, v = numpy_adamw_step(param, cycle.mean(axis=0), m, v, learning_rate, 0.0)
    return param


def test_global_step_counts_optimizer_steps_of_three_micro_batches():
    session, (grad, train_op) = run_in_new_graph(
        lambda: _build_fed_gradient_problem(gradient_accumulation_steps=3)
    )
    for run, fed in enumerate(_FED_GRADS, start=1):
        session.run(train_op, {grad: fed})
        assert read_variable(session, "global_step") == run // 3
        assert read_variable(session, "gradient_accumulation_step") == run % 3
        in_cycle = _FED_GRADS[run - run % 3 : run]
        np.testing.assert_allclose(
            read_variable(session, "output/bias/gradient_accumulator"),
            in_cycle.sum(axis=0),
            atol=1e-7,
        )
        # The bias moves only on every third run, by the average of its cycle, with the
        # learning rate of the optimizer step (0.1, 0.09, 0.08).
        np.testing.assert_allclose(
            read_variable(session, "output/bias"),
            _numpy_accumulated_bias(run, 3),
            rtol=1e-6,
            atol=1e-7,
        )


def test_accumulation_resumes_mid_cycle_from_a_checkpoint(tmp_path):
    def build():
        grad, train_op = _build_fed_gradient_problem(gradient_accumulation_steps=3)
        return grad, train_op, tf.compat.v1.train.Saver()

    session, (grad, train_op, saver) = run_in_new_graph(build)
    for fed in _FED_GRADS[:4]:  # one optimizer step and one micro-batch of the next
        session.run(train_op, {grad: fed})
    with session.graph.as_default():
        prefix = saver.save(session, str(tmp_path / "model.ckpt"))

    session, (grad, train_op, saver) = run_in_new_graph(build)
    with session.graph.as_default():
        saver.restore(session, prefix)
    for fed in _FED_GRADS[4:6]:
        session.run(train_op, {grad: fed})
    assert read_variable(session, "global_step") == 2
    np.testing.assert_allclose(
        read_variable(session, "output/bias"),
        _numpy_accumulated_bias(6, 3),
        rtol=1e-6,
        atol=1e-7,
    )


# ------------------------------------------------------------------ dynamic loss scaling


def _build_scalable_problem(**options):
    """Two variables whose gradients are `multiplier * [3, 0]` and `[0.4]`."""
    multiplier = tf.compat.v1.placeholder(tf.float32, [])
    w1 = tf.compat.v1.get_variable("w1/kernel", initializer=tf.constant([1.0, 1.0]))
    w2 = tf.compat.v1.get_variable("w2/kernel", initializer=tf.constant([1.0]))
    loss = multiplier * tf.reduce_sum(w1 * [3.0, 0.0]) + tf.reduce_sum(w2 * 0.4)
    train_op = optimization.create_optimizer(loss, 0.1, 10, 0, use_tpu=False, **options)
    return multiplier, train_op


def _optimizer_state(session):
    """Every global variable but the loss-scale pair, by name."""
    with session.graph.as_default():
        variables = [
            v for v in tf.compat.v1.global_variables() if not v.op.name.startswith("loss_scale")
        ]
    return dict(zip([v.op.name for v in variables], session.run(variables), strict=True))


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_overflowing_gradient_skips_the_step_and_halves_the_scale(accumulation_steps):
    session, (multiplier, train_op) = run_in_new_graph(
        lambda: _build_scalable_problem(
            loss_scaling=True, gradient_accumulation_steps=accumulation_steps
        )
    )
    # Non-zero slots and, when accumulating, a micro-batch waiting in the accumulators.
    for _ in range(accumulation_steps + 1):
        session.run(train_op, {multiplier: 0.1})
    before = _optimizer_state(session)
    # 1e38 is finite, and so is the loss; 1e38 * 2**15 is not.
    session.run(train_op, {multiplier: 1e38})
    after = _optimizer_state(session)
    assert set(after) == set(before)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert after["global_step"] == (accumulation_steps + 1) // accumulation_steps
    if accumulation_steps > 1:
        assert after["gradient_accumulation_step"] == 1
        assert np.any(after["w1/kernel/gradient_accumulator"] != 0)
    assert read_variable(session, "loss_scale") == 2.0**14
    assert read_variable(session, "loss_scale_finite_steps") == 0


def test_loss_scale_never_drops_below_one():
    session, (multiplier, train_op) = run_in_new_graph(
        lambda: _build_scalable_problem(loss_scaling=True, initial_loss_scale=2.0)
    )
    for _ in range(3):
        session.run(train_op, {multiplier: np.inf})
    assert read_variable(session, "loss_scale") == 1.0
    assert read_variable(session, "global_step") == 0


def test_loss_scale_doubles_after_the_growth_interval_of_finite_steps():
    session, (multiplier, train_op) = run_in_new_graph(
        lambda: _build_scalable_problem(
            loss_scaling=True, initial_loss_scale=8.0, loss_scale_growth_interval=3
        )
    )
    # finite, finite, overflow (halves, restarts the count), then three finite: doubles.
    multipliers = [1.0, 1.0, np.inf, 1.0, 1.0, 1.0, 1.0]
    expected_scales = [8.0, 8.0, 4.0, 4.0, 4.0, 8.0, 8.0]
    expected_counts = [1, 2, 0, 1, 2, 0, 1]
    expected_global_steps = [1, 2, 2, 3, 4, 5, 6]
    for run, value in enumerate(multipliers):
        session.run(train_op, {multiplier: value})
        assert read_variable(session, "loss_scale") == expected_scales[run]
        assert read_variable(session, "loss_scale_finite_steps") == expected_counts[run]
        assert read_variable(session, "global_step") == expected_global_steps[run]


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_loss_scaling_does_not_change_finite_steps(accumulation_steps):
    # Tiny and large gradients alike: dividing by the power-of-two scale is exact.
    multipliers = [1e-6, 3.0, 0.5, 1e3] * accumulation_steps

    def train(loss_scaling):
        session, (multiplier, train_op) = run_in_new_graph(
            lambda: _build_scalable_problem(
                loss_scaling=loss_scaling, gradient_accumulation_steps=accumulation_steps
            )
        )
        for value in multipliers:
            session.run(train_op, {multiplier: value})
        return _optimizer_state(session)

    unscaled, scaled = train(False), train(True)
    assert scaled["global_step"] == 4
    for name, value in unscaled.items():
        np.testing.assert_allclose(scaled[name], value, rtol=1e-6, atol=1e-12, err_msg=name)
