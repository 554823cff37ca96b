"""heads.token_classifier_head: the loss covers exactly the labelled positions, decoding
respects the tag constraints, and the variables have the documented names."""

import numpy as np
import pytest
import tensorflow as tf

import heads
import ner_tags

tf1 = tf.compat.v1
LABELS = ["O", "B-PER", "I-PER"]


def run_head(sequence_output, label_ids, label_mask, use_crf=False, constraints=None):
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        outputs = heads.token_classifier_head(
            tf.constant(sequence_output, tf.float32),
            tf.constant(label_ids),
            tf.constant(label_mask),
            num_labels=len(LABELS),
            is_training=False,
            dropout_prob=0.1,
            use_crf=use_crf,
            constraints=constraints,
        )
        names = sorted(v.op.name for v in tf1.global_variables())
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            values = session.run(
                {
                    "loss": outputs.loss,
                    "per_example": outputs.per_example_loss,
                    "logits": outputs.logits,
                    "tags": outputs.tag_ids,
                }
            )
    return values, names


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    sequence_output = rng.normal(size=[2, 5, 8])
    label_ids = np.array([[0, 1, 0, 2, 0], [0, 2, 1, 0, 0]], np.int32)
    # Row 0 labels positions 1 and 3 (say, two words, the second split in two pieces);
    # row 1 positions 1, 2 and 3.
    label_mask = np.array([[0, 1, 0, 1, 0], [0, 1, 1, 1, 0]], np.int32)
    return sequence_output, label_ids, label_mask


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_the_softmax_loss_averages_over_labelled_positions_only(batch):
    sequence_output, label_ids, label_mask = batch
    values, names = run_head(sequence_output, label_ids, label_mask)
    assert names == ["output_bias", "output_weights"]
    log_probs = log_softmax(values["logits"].astype(np.float64))
    token_loss = -np.take_along_axis(log_probs, label_ids[..., None], -1)[..., 0]
    expected = (token_loss * label_mask).sum() / label_mask.sum()
    np.testing.assert_allclose(values["loss"], expected, rtol=1e-5, atol=1e-6)
    per_example = (token_loss * label_mask).sum(-1) / label_mask.sum(-1)
    np.testing.assert_allclose(values["per_example"], per_example, rtol=1e-5, atol=1e-6)
    # Unconstrained decoding is the argmax at labelled positions and 0 elsewhere.
    np.testing.assert_array_equal(values["tags"], values["logits"].argmax(-1) * label_mask)


def test_constrained_decoding_never_puts_an_inside_tag_after_outside(batch):
    sequence_output, label_ids, label_mask = batch
    constraints = ner_tags.tag_constraints(LABELS, "BIO")
    for use_crf in (False, True):
        for seed in range(5):
            rng = np.random.default_rng(seed)
            noisy = sequence_output + rng.normal(scale=3.0, size=sequence_output.shape)
            values, _ = run_head(noisy, label_ids, label_mask, use_crf, constraints)
            for row, mask in zip(values["tags"], label_mask, strict=True):
                chain = [LABELS[tag] for tag, m in zip(row, mask, strict=True) if m]
                assert ner_tags.repair(chain, "BIO") == chain


def test_a_crf_adds_its_transitions_variable(batch):
    _, names = run_head(*batch, use_crf=True)
    assert names == ["crf/transitions", "output_bias", "output_weights"]
