"""Tests for ALBERT in modeling.py: configs, google-research/albert's checkpoint names,
weight sharing, and numerics against an independent NumPy implementation."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from test_modeling import BERT_BASE_CONFIG, make_inputs, np_gelu_tanh, np_layer_norm, run_tf_bert

import modeling
import run_pretraining

tf1 = tf.compat.v1

# config/base/albert_config.json of google-research/albert (ALBERT-base v2), as published.
ALBERT_BASE_CONFIG = {
    "attention_probs_dropout_prob": 0,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0,
    "embedding_size": 128,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "num_hidden_groups": 1,
    "net_structure_type": 0,
    "gap_size": 0,
    "num_memory_blocks": 0,
    "inner_group_num": 1,
    "down_scale_factor": 1,
    "type_vocab_size": 2,
    "vocab_size": 30000,
}

TINY_ALBERT = dict(
    vocab_size=40,
    embedding_size=6,
    hidden_size=16,
    num_hidden_layers=3,
    num_hidden_groups=1,
    inner_group_num=1,
    num_attention_heads=4,
    intermediate_size=24,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=12,
    type_vocab_size=2,
    initializer_range=0.02,
)


# ------------------------------------------------------------------------------ config


def test_albert_config_reads_unchanged_and_selects_albert(tmp_path):
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(ALBERT_BASE_CONFIG))
    config = modeling.BertConfig.from_json_file(str(path))
    assert config.is_albert()
    assert (config.embedding_width, config.hidden_groups, config.inner_groups) == (128, 1, 1)
    assert config.to_dict() == ALBERT_BASE_CONFIG
    bert = modeling.BertConfig.from_dict(BERT_BASE_CONFIG)
    assert not bert.is_albert()
    assert (bert.embedding_width, bert.hidden_groups, bert.inner_groups) == (768, 1, 1)
    assert bert.to_dict() == BERT_BASE_CONFIG


@pytest.mark.parametrize(
    "change, message",
    [
        ({"net_structure_type": 1}, "net_structure_type=1 is an ALBERT variant"),
        ({"down_scale_factor": 2}, "down_scale_factor=2"),
        ({"gap_size": 3}, "gap_size=3"),
        ({"num_memory_blocks": 4}, "num_memory_blocks=4"),
        ({"layers_to_keep": [0, 1]}, "layers_to_keep"),
        ({"num_hidden_groups": 13}, r"num_hidden_groups \(13\) must not exceed"),
        ({"inner_group_num": 0}, "inner_group_num must be a positive integer"),
        ({"embedding_size": "128"}, "embedding_size must be a positive integer"),
    ],
)
def test_unsupported_albert_values_are_refused_naming_the_file(tmp_path, change, message):
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(dict(ALBERT_BASE_CONFIG, **change)))
    with pytest.raises(ValueError, match=message) as err:
        modeling.BertConfig.from_json_file(str(path))
    assert str(path) in str(err.value)


# ------------------------------------------------------------------- variable names


def expected_albert_base_variables():
    """The variable list of google-research/albert's ALBERT-base checkpoint, written out
    by hand (albert's modeling.py and run_pretraining.py; transformers' name map in
    load_tf_weights_in_albert agrees): 25 encoder variables and 7 of the pre-training
    heads, whatever the number of layers."""
    e, h, ff, vocab = 128, 768, 3072, 30000
    block = "bert/encoder/transformer/group_0/inner_group_0/"
    encoder = {
        "bert/embeddings/word_embeddings": [vocab, e],
        "bert/embeddings/token_type_embeddings": [2, e],
        "bert/embeddings/position_embeddings": [512, e],
        "bert/embeddings/LayerNorm/beta": [e],
        "bert/embeddings/LayerNorm/gamma": [e],
        "bert/encoder/embedding_hidden_mapping_in/kernel": [e, h],
        "bert/encoder/embedding_hidden_mapping_in/bias": [h],
        block + "attention_1/self/query/kernel": [h, h],
        block + "attention_1/self/query/bias": [h],
        block + "attention_1/self/key/kernel": [h, h],
        block + "attention_1/self/key/bias": [h],
        block + "attention_1/self/value/kernel": [h, h],
        block + "attention_1/self/value/bias": [h],
        block + "attention_1/output/dense/kernel": [h, h],
        block + "attention_1/output/dense/bias": [h],
        block + "LayerNorm/beta": [h],
        block + "LayerNorm/gamma": [h],
        block + "ffn_1/intermediate/dense/kernel": [h, ff],
        block + "ffn_1/intermediate/dense/bias": [ff],
        block + "ffn_1/intermediate/output/dense/kernel": [ff, h],
        block + "ffn_1/intermediate/output/dense/bias": [h],
        block + "LayerNorm_1/beta": [h],
        block + "LayerNorm_1/gamma": [h],
        "bert/pooler/dense/kernel": [h, h],
        "bert/pooler/dense/bias": [h],
    }
    heads = {
        "cls/predictions/transform/dense/kernel": [h, e],
        "cls/predictions/transform/dense/bias": [e],
        "cls/predictions/transform/LayerNorm/beta": [e],
        "cls/predictions/transform/LayerNorm/gamma": [e],
        "cls/predictions/output_bias": [vocab],
        "cls/seq_relationship/output_weights": [2, h],
        "cls/seq_relationship/output_bias": [2],
    }
    return encoder, heads


def build_with_pretraining_heads(config, seq_length=16, predictions=4):
    """Builds the encoder and run_pretraining.py's heads; returns {name: shape}."""
    ids = tf1.placeholder(tf.int32, [2, seq_length])
    model = modeling.BertModel(config, is_training=True, input_ids=ids)
    positions = tf.zeros([2, predictions], tf.int32)
    run_pretraining.get_masked_lm_output(
        config,
        model.get_sequence_output(),
        model.get_embedding_table(),
        positions,
        positions,
        tf.ones([2, predictions]),
    )
    run_pretraining.get_next_sentence_output(
        config, model.get_pooled_output(), tf.zeros([2, 1], tf.int32)
    )
    return {v.op.name: v.shape.as_list() for v in tf1.global_variables()}


def test_albert_base_variable_names_and_shapes_match_the_released_checkpoint():
    config = modeling.BertConfig.from_dict(ALBERT_BASE_CONFIG)
    encoder, heads = expected_albert_base_variables()
    assert (len(encoder), len(heads)) == (25, 7)
    with tf.Graph().as_default():
        modeling.BertModel(config, True, tf1.placeholder(tf.int32, [None, 128]))
        built = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
    assert built == encoder
    with tf.Graph().as_default():
        assert build_with_pretraining_heads(config) == dict(encoder, **heads)


def tiny_albert_variables(cfg):
    """{name: shape} of a tiny ALBERT under google-research/albert's names."""
    e, h, ff = cfg["embedding_size"], cfg["hidden_size"], cfg["intermediate_size"]
    names = {
        "bert/embeddings/word_embeddings": [cfg["vocab_size"], e],
        "bert/embeddings/token_type_embeddings": [cfg["type_vocab_size"], e],
        "bert/embeddings/position_embeddings": [cfg["max_position_embeddings"], e],
        "bert/embeddings/LayerNorm/beta": [e],
        "bert/embeddings/LayerNorm/gamma": [e],
        "bert/pooler/dense/kernel": [h, h],
        "bert/pooler/dense/bias": [h],
    }
    if e != h:
        names["bert/encoder/embedding_hidden_mapping_in/kernel"] = [e, h]
        names["bert/encoder/embedding_hidden_mapping_in/bias"] = [h]
    for group in range(cfg["num_hidden_groups"]):
        for inner in range(cfg["inner_group_num"]):
            p = f"bert/encoder/transformer/group_{group}/inner_group_{inner}/"
            for part in ("query", "key", "value"):
                names[p + f"attention_1/self/{part}/kernel"] = [h, h]
                names[p + f"attention_1/self/{part}/bias"] = [h]
            names[p + "attention_1/output/dense/kernel"] = [h, h]
            names[p + "attention_1/output/dense/bias"] = [h]
            names[p + "ffn_1/intermediate/dense/kernel"] = [h, ff]
            names[p + "ffn_1/intermediate/dense/bias"] = [ff]
            names[p + "ffn_1/intermediate/output/dense/kernel"] = [ff, h]
            names[p + "ffn_1/intermediate/output/dense/bias"] = [h]
            for norm in ("LayerNorm", "LayerNorm_1"):
                names[p + f"{norm}/beta"] = [h]
                names[p + f"{norm}/gamma"] = [h]
    return names


def built_variables(cfg):
    with tf.Graph().as_default():
        modeling.BertModel(modeling.BertConfig.from_dict(cfg), True, tf.zeros([2, 5], tf.int32))
        return {v.op.name: v.shape.as_list() for v in tf1.global_variables()}


@pytest.mark.parametrize("layers", [1, 3, 12])
def test_one_group_holds_one_set_of_weights_however_many_layers(layers):
    built = built_variables(dict(TINY_ALBERT, num_hidden_layers=layers))
    block = [name for name in built if "/transformer/" in name]
    # 16 variables make one attention+FFN block; 12 layers share them.
    assert len(block) == 16
    assert all(name.startswith("bert/encoder/transformer/group_0/inner_group_0/") for name in block)
    assert len(built) == 25


@pytest.mark.parametrize(
    "groups, inner, embedding",
    [(2, 1, 6), (4, 1, 6), (1, 2, 6), (2, 2, 16)],
)
def test_groups_inner_groups_and_equal_widths_give_albert_layouts(groups, inner, embedding):
    cfg = dict(
        TINY_ALBERT,
        num_hidden_layers=4,
        num_hidden_groups=groups,
        inner_group_num=inner,
        embedding_size=embedding,
    )
    built = built_variables(cfg)
    assert built == tiny_albert_variables(cfg)
    assert sum("/transformer/" in name for name in built) == 16 * groups * inner


# ------------------------------------------------------------------------- numerics


def np_albert(w, cfg, ids, mask, types):
    """An independent ALBERT forward pass (float64) from the ALBERT paper and
    google-research/albert: factorized embeddings, a projection to hidden_size when the
    widths differ, layer l using group l * G // L, post-LN attention and FFN blocks.
    Returns (embedding output, [every block's output], pooled)."""
    seq = ids.shape[1]
    x = w["bert/embeddings/word_embeddings"][ids]
    x = x + w["bert/embeddings/token_type_embeddings"][types]
    x = x + w["bert/embeddings/position_embeddings"][:seq][None]
    x = np_layer_norm(x, w["bert/embeddings/LayerNorm/gamma"], w["bert/embeddings/LayerNorm/beta"])
    embedding = x
    if cfg["embedding_size"] != cfg["hidden_size"]:
        mapping = "bert/encoder/embedding_hidden_mapping_in/"
        x = x @ w[mapping + "kernel"] + w[mapping + "bias"]
    heads = cfg["num_attention_heads"]
    size = cfg["hidden_size"] // heads
    batch = ids.shape[0]
    blocks = []
    for layer in range(cfg["num_hidden_layers"]):
        group = layer * cfg["num_hidden_groups"] // cfg["num_hidden_layers"]
        for inner in range(cfg["inner_group_num"]):
            p = f"bert/encoder/transformer/group_{group}/inner_group_{inner}/"

            def lin(v, name, p=p):
                return v @ w[p + name + "/kernel"] + w[p + name + "/bias"]

            def split(v):
                return v.reshape(batch, seq, heads, size).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention_1/self/query"))
            k = split(lin(x, "attention_1/self/key"))
            v = split(lin(x, "attention_1/self/value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
            scores = scores + (1.0 - mask[:, None, None, :]) * -10000.0
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            probs = probs / probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, -1)
            attended = np_layer_norm(
                lin(context, "attention_1/output/dense") + x,
                w[p + "LayerNorm/gamma"],
                w[p + "LayerNorm/beta"],
            )
            inner_out = np_gelu_tanh(lin(attended, "ffn_1/intermediate/dense"))
            x = np_layer_norm(
                lin(inner_out, "ffn_1/intermediate/output/dense") + attended,
                w[p + "LayerNorm_1/gamma"],
                w[p + "LayerNorm_1/beta"],
            )
            blocks.append(x)
    pooled = np.tanh(x[:, 0] @ w["bert/pooler/dense/kernel"] + w["bert/pooler/dense/bias"])
    return embedding, blocks, pooled


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"num_hidden_layers": 4, "num_hidden_groups": 2},
        {"num_hidden_layers": 2, "inner_group_num": 2},
        {"embedding_size": 16, "num_hidden_layers": 2, "num_hidden_groups": 2},
    ],
)
def test_forward_pass_matches_independent_numpy_albert(overrides):
    cfg = dict(TINY_ALBERT, **overrides)
    ids, mask, types = make_inputs()
    out, weights = run_tf_bert(cfg, ids, mask, types)
    embedding, blocks, pooled = np_albert(weights, cfg, ids, mask.astype(np.float64), types)
    assert out["embedding"].shape == (3, 9, cfg["embedding_size"])
    assert len(out["layers"]) == cfg["num_hidden_layers"] * cfg["inner_group_num"]
    np.testing.assert_allclose(out["embedding"], embedding, atol=1e-4, rtol=0)
    for got, want in zip(out["layers"], blocks, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["pooled"], pooled, atol=1e-4, rtol=0)
    # Shared weights applied again still change the states: the layers are not copies.
    assert np.abs(out["layers"][0] - out["layers"][-1]).max() > 1e-2


def test_albert_group_of_layer_follows_albert_arithmetic():
    three_groups = [modeling.albert_group_of_layer(i, 12, 3) for i in range(12)]
    assert three_groups == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert [modeling.albert_group_of_layer(i, 12, 1) for i in range(12)] == [0] * 12
    # google-research/albert computes int(15 / 22 * 22) = 14 in floating point.
    assert modeling.albert_group_of_layer(15, 22, 22) == 14


# ----------------------------------------------------------------- checkpoint loading


def write_albert_named_checkpoint(path, names_and_shapes, seed=0):
    """A checkpoint made directly from google-research/albert's names (not by building our
    model), with random values, plus training state as its releases carry."""
    rng = np.random.RandomState(seed)
    values = {
        name: rng.normal(0, 0.3, shape).astype(np.float32)
        for name, shape in names_and_shapes.items()
    }
    with tf.Graph().as_default():
        variables = [tf1.Variable(value, name=name) for name, value in values.items()]
        variables.append(tf1.Variable(np.int64(125000), name="global_step"))
        variables.append(
            tf1.Variable(values["bert/pooler/dense/bias"], name="bert/pooler/dense/bias/adam_m")
        )
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            prefix = tf1.train.Saver(variables).save(sess, str(path / "model.ckpt-best"))
    return prefix, values


@pytest.mark.parametrize("overrides", [{}, {"num_hidden_groups": 3, "inner_group_num": 2}])
def test_checkpoint_with_albert_names_loads_with_nothing_unmatched(tmp_path, overrides):
    cfg = dict(TINY_ALBERT, **overrides)
    encoder = tiny_albert_variables(cfg)
    e, h = cfg["embedding_size"], cfg["hidden_size"]
    heads = {
        "cls/predictions/transform/dense/kernel": [h, e],
        "cls/predictions/transform/dense/bias": [e],
        "cls/predictions/transform/LayerNorm/beta": [e],
        "cls/predictions/transform/LayerNorm/gamma": [e],
        "cls/predictions/output_bias": [cfg["vocab_size"]],
        "cls/seq_relationship/output_weights": [2, h],
        "cls/seq_relationship/output_bias": [2],
    }
    prefix, values = write_albert_named_checkpoint(tmp_path, dict(encoder, **heads))
    config = modeling.BertConfig.from_dict(cfg)
    modeling.check_checkpoint_fits(config, prefix)
    with tf.Graph().as_default():
        build_with_pretraining_heads(config, seq_length=8)
        tvars = tf1.trainable_variables()
        assignment, _ = modeling.get_assignment_map_from_checkpoint(tvars, prefix)
        report = modeling.checkpoint_report(tvars, prefix, assignment)
        tf1.train.init_from_checkpoint(prefix, assignment)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            loaded = {v.op.name: value for v, value in zip(tvars, sess.run(tvars), strict=True)}
    assert report.missing_in_checkpoint == []
    assert report.unused_in_checkpoint == []
    assert len(report.loaded) == len(values)
    for name, value in values.items():
        np.testing.assert_array_equal(loaded[name], value)


def test_albert_checkpoint_does_not_fit_a_bert_config(tmp_path):
    prefix, _ = write_albert_named_checkpoint(tmp_path, tiny_albert_variables(TINY_ALBERT))
    bert = {k: v for k, v in TINY_ALBERT.items() if k not in modeling.ALBERT_CONFIG_KEYS}
    with tf.Graph().as_default():
        modeling.BertModel(modeling.BertConfig.from_dict(bert), False, tf.zeros([1, 4], tf.int32))
        with pytest.raises(ValueError, match=r"word_embeddings: checkpoint \[40, 6\] vs model"):
            modeling.get_assignment_map_from_checkpoint(tf1.trainable_variables(), prefix)


def test_float16_albert_tracks_float32():
    cfg = dict(TINY_ALBERT, num_hidden_layers=2)
    ids, mask, types = make_inputs()
    full, _ = run_tf_bert(cfg, ids, mask, types)
    half, _ = run_tf_bert(cfg, ids, mask, types, compute_type=tf.float16)
    assert half["sequence"].dtype == np.float16
    assert np.abs(half["sequence"].astype(np.float32) - full["sequence"]).max() < 0.05
