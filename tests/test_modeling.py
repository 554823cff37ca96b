"""Tests for modeling.py: config handling, checkpoint names, and numerics against NumPy."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

import modeling

tf1 = tf.compat.v1

# Google's BERT-Base, Uncased bert_config.json, as published.
BERT_BASE_CONFIG = {
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "type_vocab_size": 2,
    "vocab_size": 30522,
}

TINY_CONFIG = dict(
    vocab_size=40,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=24,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=12,
    type_vocab_size=2,
    initializer_range=0.02,
)


# ------------------------------------------------------------------------------ config


def test_config_reads_googles_json_unchanged(tmp_path):
    path = tmp_path / "bert_config.json"
    # The multilingual release carries extra pooler/directionality keys; they must load.
    released = dict(BERT_BASE_CONFIG, directionality="bidi", pooler_type="first_token_transform")
    path.write_text(json.dumps(released))
    config = modeling.BertConfig.from_json_file(str(path))
    assert config.hidden_size == 768
    assert config.vocab_size == 30522
    assert config.type_vocab_size == 2
    assert config.directionality == "bidi"
    assert json.loads(config.to_json_string()) == released
    assert config.to_dict() == released


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hidden_size": 770}, "multiple of num_attention_heads"),
        ({"hidden_act": "swishy"}, "Unsupported activation"),
        ({"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer"),
        ({"vocab_size": -3}, "vocab_size must be a positive integer"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
    ],
)
def test_config_rejects_invalid_values_naming_the_file(tmp_path, change, message):
    path = tmp_path / "bad_config.json"
    path.write_text(json.dumps(dict(BERT_BASE_CONFIG, **change)))
    with pytest.raises(ValueError, match=message) as err:
        modeling.BertConfig.from_json_file(str(path))
    assert str(path) in str(err.value)


def test_config_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        modeling.BertConfig.from_json_file(str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        modeling.BertConfig.from_json_file(str(broken))


def test_config_that_is_not_utf8_or_is_an_lfs_pointer_is_named(tmp_path):
    latin1 = tmp_path / "latin1_config.json"
    latin1.write_bytes(b'{\n  "note": "caf\xe9",\n  "vocab_size": 30522\n}\n')
    with pytest.raises(ValueError) as err:
        modeling.BertConfig.from_json_file(str(latin1))
    assert str(err.value) == (
        f"{latin1}:2: not valid UTF-8 (byte 0xe9 at column 15); bert_config.json files are UTF-8"
    )
    pointer = tmp_path / "bert_config.json"
    pointer.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 313\n")
    with pytest.raises(ValueError, match="bert_config.json is a git-lfs pointer file"):
        modeling.BertConfig.from_json_file(str(pointer))


def test_checkpoint_of_git_lfs_pointers_is_named(tmp_path):
    prefix = tmp_path / "bert_model.ckpt"
    for suffix in (".index", ".data-00000-of-00001"):
        (tmp_path / f"bert_model.ckpt{suffix}").write_bytes(
            b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 440473133\n"
        )
    config = modeling.BertConfig(vocab_size=10, hidden_size=8, num_attention_heads=2)
    pointer_message = r"bert_model\.ckpt\.(data-00000-of-00001|index) is a git-lfs pointer"
    with pytest.raises(ValueError, match=pointer_message):
        modeling.check_checkpoint_fits(config, str(prefix))


# ------------------------------------------------------------------- variable names


def expected_bert_base_variables():
    """The variable list of Google's BERT-Base checkpoint (encoder part), by hand."""
    h, ff = 768, 3072
    names = {
        "bert/embeddings/word_embeddings": [30522, h],
        "bert/embeddings/token_type_embeddings": [2, h],
        "bert/embeddings/position_embeddings": [512, h],
        "bert/embeddings/LayerNorm/beta": [h],
        "bert/embeddings/LayerNorm/gamma": [h],
        "bert/pooler/dense/kernel": [h, h],
        "bert/pooler/dense/bias": [h],
    }
    for layer in range(12):
        prefix = f"bert/encoder/layer_{layer}/"
        for part in ("query", "key", "value"):
            names[prefix + f"attention/self/{part}/kernel"] = [h, h]
            names[prefix + f"attention/self/{part}/bias"] = [h]
        names[prefix + "attention/output/dense/kernel"] = [h, h]
        names[prefix + "attention/output/dense/bias"] = [h]
        names[prefix + "attention/output/LayerNorm/beta"] = [h]
        names[prefix + "attention/output/LayerNorm/gamma"] = [h]
        names[prefix + "intermediate/dense/kernel"] = [h, ff]
        names[prefix + "intermediate/dense/bias"] = [ff]
        names[prefix + "output/dense/kernel"] = [ff, h]
        names[prefix + "output/dense/bias"] = [h]
        names[prefix + "output/LayerNorm/beta"] = [h]
        names[prefix + "output/LayerNorm/gamma"] = [h]
    return names


def test_bert_base_variable_names_and_shapes_match_googles_checkpoint():
    config = modeling.BertConfig.from_dict(BERT_BASE_CONFIG)
    with tf.Graph().as_default():
        ids = tf1.placeholder(tf.int32, [None, 128])
        modeling.BertModel(config, is_training=True, input_ids=ids)
        built = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
    expected = expected_bert_base_variables()
    assert len(expected) == 199
    assert built == expected


# ------------------------------------------------------------------------- numerics
# An independent forward pass written from the BERT / Transformer papers in NumPy
# (float64), reading the weights by their checkpoint names.


def np_layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def np_gelu_erf(x):
    from math import erf

    return x * 0.5 * (1 + np.vectorize(erf)(x / math.sqrt(2)))


NP_ACTIVATIONS = {
    "gelu": np_gelu_tanh,
    "gelu_exact": np_gelu_erf,
    "relu": lambda x: np.maximum(x, 0),
}


def np_bert(w, cfg, ids, mask, types):
    """Returns (embedding_output, [layer outputs], pooled) for one batch."""
    seq = ids.shape[1]
    x = w["bert/embeddings/word_embeddings"][ids]
    x = x + w["bert/embeddings/token_type_embeddings"][types]
    x = x + w["bert/embeddings/position_embeddings"][:seq][None]
    x = np_layer_norm(x, w["bert/embeddings/LayerNorm/gamma"], w["bert/embeddings/LayerNorm/beta"])
    embedding = x
    heads = cfg["num_attention_heads"]
    head_size = cfg["hidden_size"] // heads
    act = NP_ACTIVATIONS[cfg["hidden_act"]]
    layers = []
    for layer in range(cfg["num_hidden_layers"]):
        p = f"bert/encoder/layer_{layer}/"

        def lin(v, name, p=p):
            return v @ w[p + name + "/kernel"] + w[p + name + "/bias"]

        def heads_of(v):
            b, s, _ = v.shape
            return v.reshape(b, s, heads, head_size).transpose(0, 2, 1, 3)

        q = heads_of(lin(x, "attention/self/query"))
        k = heads_of(lin(x, "attention/self/key"))
        v = heads_of(lin(x, "attention/self/value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_size)
        scores = scores + (1.0 - mask[:, None, None, :]) * -10000.0
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        attn = np_layer_norm(
            lin(context, "attention/output/dense") + x,
            w[p + "attention/output/LayerNorm/gamma"],
            w[p + "attention/output/LayerNorm/beta"],
        )
        inter = act(lin(attn, "intermediate/dense"))
        x = np_layer_norm(
            lin(inter, "output/dense") + attn,
            w[p + "output/LayerNorm/gamma"],
            w[p + "output/LayerNorm/beta"],
        )
        layers.append(x)
    pooled = np.tanh(x[:, 0] @ w["bert/pooler/dense/kernel"] + w["bert/pooler/dense/bias"])
    return embedding, layers, pooled


def make_inputs(batch=3, seq=9, vocab=40, seed=1):
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab, size=(batch, seq)).astype(np.int32)
    lengths = [seq, 5, 2][:batch]
    mask = np.array([[1] * n + [0] * (seq - n) for n in lengths], dtype=np.int32)
    types = np.array([[0] * (n // 2) + [1] * (seq - n // 2) for n in lengths], dtype=np.int32)
    return ids, mask, types


def run_tf_bert(cfg, ids, mask, types, use_one_hot=False, compute_type=tf.float32, seed=7):
    """Builds the model, gives every variable (biases and LayerNorm too) random values,
    and returns the outputs plus the weights by name."""
    config = modeling.BertConfig.from_dict(cfg)
    with tf.Graph().as_default():
        model = modeling.BertModel(
            config,
            is_training=False,
            input_ids=tf.constant(ids),
            input_mask=tf.constant(mask),
            token_type_ids=tf.constant(types),
            use_one_hot_embeddings=use_one_hot,
            compute_type=compute_type,
        )
        variables = tf1.global_variables()
        rng = np.random.RandomState(seed)
        values = {v.op.name: rng.normal(0, 0.3, v.shape.as_list()) for v in variables}
        with tf1.Session() as sess:
            for v in variables:
                v.load(values[v.op.name].astype(np.float32), sess)
            out = sess.run(
                {
                    "embedding": model.get_embedding_output(),
                    "layers": model.get_all_encoder_layers(),
                    "sequence": model.get_sequence_output(),
                    "pooled": model.get_pooled_output(),
                }
            )
    weights = {k: v.astype(np.float32).astype(np.float64) for k, v in values.items()}
    return out, weights


@pytest.mark.parametrize("act", ["gelu", "gelu_exact", "relu"])
def test_forward_pass_matches_independent_numpy_implementation(act):
    cfg = dict(TINY_CONFIG, hidden_act=act)
    ids, mask, types = make_inputs()
    out, weights = run_tf_bert(cfg, ids, mask, types)
    embedding, layers, pooled = np_bert(weights, cfg, ids, mask.astype(np.float64), types)
    assert out["sequence"].shape == (3, 9, 16)
    assert out["pooled"].shape == (3, 16)
    np.testing.assert_allclose(out["embedding"], embedding, atol=1e-4, rtol=0)
    for got, want in zip(out["layers"], layers, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["sequence"], layers[-1], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["pooled"], pooled, atol=1e-4, rtol=0)


def test_one_hot_embeddings_give_the_same_outputs():
    ids, mask, types = make_inputs()
    gathered, _ = run_tf_bert(TINY_CONFIG, ids, mask, types, use_one_hot=False)
    one_hot, _ = run_tf_bert(TINY_CONFIG, ids, mask, types, use_one_hot=True)
    np.testing.assert_allclose(gathered["sequence"], one_hot["sequence"], atol=1e-6)


def test_padding_does_not_leak_into_real_tokens():
    ids, mask, types = make_inputs()
    out, _ = run_tf_bert(TINY_CONFIG, ids, mask, types)
    changed = ids.copy()
    changed[1, 5:] = (changed[1, 5:] + 7) % 40  # only padded positions of row 1
    out2, _ = run_tf_bert(TINY_CONFIG, changed, mask, types)
    np.testing.assert_allclose(out["sequence"][1, :5], out2["sequence"][1, :5], atol=1e-4)


@pytest.mark.parametrize("dtype, tolerance", [(tf.float16, 0.05), (tf.bfloat16, 0.2)])
def test_reduced_precision_compute_tracks_float32(dtype, tolerance):
    ids, mask, types = make_inputs()
    full, _ = run_tf_bert(TINY_CONFIG, ids, mask, types)
    reduced, _ = run_tf_bert(TINY_CONFIG, ids, mask, types, compute_type=dtype)
    assert reduced["sequence"].dtype == dtype.as_numpy_dtype
    diff = np.abs(reduced["sequence"].astype(np.float32) - full["sequence"]).max()
    assert diff < tolerance


def test_dropout_only_when_training():
    config = modeling.BertConfig.from_dict(TINY_CONFIG)
    ids, mask, types = make_inputs()
    outputs = {}
    for training in (False, True):
        with tf.Graph().as_default():
            tf1.set_random_seed(3)
            model = modeling.BertModel(config, training, tf.constant(ids), tf.constant(mask))
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                outputs[training] = [sess.run(model.get_sequence_output()) for _ in range(2)]
    np.testing.assert_array_equal(outputs[False][0], outputs[False][1])
    assert np.abs(outputs[True][0] - outputs[True][1]).max() > 1e-3


def test_sequence_longer_than_position_table_is_a_clear_error():
    config = modeling.BertConfig.from_dict(TINY_CONFIG)
    with tf.Graph().as_default():
        ids = tf.zeros([2, 13], tf.int32)
        with pytest.raises(ValueError, match="max_position_embeddings"):
            modeling.BertModel(config, False, ids)


def test_activation_lookup():
    assert modeling.get_activation("linear") is None
    assert modeling.get_activation("") is None
    assert modeling.get_activation("ReLU") is tf.nn.relu
    assert modeling.get_activation(tf.tanh) is tf.tanh
    with pytest.raises(ValueError, match="swish"):
        modeling.get_activation("swish")
    x = np.linspace(-4, 4, 17).astype(np.float32)
    with tf.Graph().as_default(), tf1.Session() as sess:
        tanh_gelu, erf_gelu = sess.run([modeling.gelu(x), modeling.gelu_exact(x)])
    np.testing.assert_allclose(tanh_gelu, np_gelu_tanh(x.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(erf_gelu, np_gelu_erf(x.astype(np.float64)), atol=1e-6)
    # The two GELUs differ by a little; a config must say which one it was trained with.
    assert 1e-4 < np.abs(tanh_gelu - erf_gelu).max() < 1e-2


# ----------------------------------------------------------------- checkpoint loading


def save_tiny_checkpoint(path, cfg, extra_variable=False):
    with tf.Graph().as_default():
        modeling.BertModel(modeling.BertConfig.from_dict(cfg), False, tf.zeros([1, 4], tf.int32))
        if extra_variable:
            tf1.get_variable("cls/squad/output_weights", [2, cfg["hidden_size"]])
            tf1.get_variable("bert/pooler/dense/kernel/adam_m", [16, 16])
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return tf1.train.Saver().save(sess, str(path / "model.ckpt"))


def test_assignment_map_reports_unused_and_missing(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path, TINY_CONFIG, extra_variable=True)
    with tf.Graph().as_default():
        modeling.BertModel(
            modeling.BertConfig.from_dict(TINY_CONFIG), False, tf.zeros([1, 4], tf.int32)
        )
        head = tf1.get_variable("output_weights", [3, 16])
        tvars = tf1.trainable_variables()
        assignment, initialized = modeling.get_assignment_map_from_checkpoint(tvars, ckpt)
        report = modeling.checkpoint_report(tvars, ckpt, assignment)
    assert len(assignment) == len(tvars) - 1
    assert assignment["bert/pooler/dense/kernel"] == "bert/pooler/dense/kernel"
    assert "bert/pooler/dense/kernel:0" in initialized
    assert head.op.name not in assignment
    assert report.missing_in_checkpoint == ["output_weights"]
    # The optimizer slot is expected in a training checkpoint and not reported as unused.
    assert report.unused_in_checkpoint == ["cls/squad/output_weights"]


def test_checkpoint_with_other_shapes_is_a_clear_error(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path, TINY_CONFIG)
    bigger_vocab = dict(TINY_CONFIG, vocab_size=50)
    with tf.Graph().as_default():
        modeling.BertModel(
            modeling.BertConfig.from_dict(bigger_vocab), False, tf.zeros([1, 4], tf.int32)
        )
        with pytest.raises(
            ValueError, match=r"word_embeddings: checkpoint \[40, 16\] vs model \[50, 16\]"
        ):
            modeling.get_assignment_map_from_checkpoint(tf1.trainable_variables(), ckpt)


def test_a_dynamic_sequence_length_builds_the_same_variables_and_outputs():
    """Inputs of shape [None, None] (length bucketing, dynamic-length exports): the same
    variables, by name and shape, and each length gives what a static graph of it gives."""
    config = modeling.BertConfig.from_dict(TINY_CONFIG)
    ids, mask, types = make_inputs()
    static, weights = run_tf_bert(TINY_CONFIG, ids, mask, types)
    with tf.Graph().as_default():
        placeholders = [tf1.placeholder(tf.int32, [None, None]) for _ in range(3)]
        model = modeling.BertModel(config, False, *placeholders)
        variables = tf1.global_variables()
        assert {v.op.name: v.shape.as_list() for v in variables} == {
            name: list(value.shape) for name, value in weights.items()
        }
        outputs = [model.get_sequence_output(), model.get_pooled_output()]
        with tf1.Session() as sess:
            for v in variables:
                v.load(weights[v.op.name].astype(np.float32), sess)
            for length in (9, 5, 2):
                feed = dict(
                    zip(
                        placeholders,
                        (ids[:, :length], mask[:, :length], types[:, :length]),
                        strict=True,
                    )
                )
                sequence, pooled = sess.run(outputs, feed)
                assert sequence.shape == (3, length, 16)
                # Row 2 has 2 real tokens, row 1 has 5: cutting padding changes nothing.
                rows = [r for r, real in enumerate(mask.sum(axis=1)) if real <= length]
                np.testing.assert_allclose(pooled[rows], static["pooled"][rows], atol=1e-5, rtol=0)
                for r in rows:
                    real = int(mask[r].sum())
                    np.testing.assert_allclose(
                        sequence[r, :real], static["sequence"][r, :real], atol=1e-5, rtol=0
                    )
            too_long = np.zeros([1, 13], np.int32)
            with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
                sess.run(outputs, dict(zip(placeholders, (too_long,) * 3, strict=True)))
