"""Tests of crf.py against brute-force enumeration of every tag path on tiny cases."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import crf
import ner_tags

tf1 = tf.compat.v1


def masked_positions(mask_row):
    return [position for position, on in enumerate(mask_row) if on]


def allowed_paths(num_tags, length, constraints):
    for path in itertools.product(range(num_tags), repeat=length):
        if constraints is not None and length:
            if not constraints.start[path[0]] or not constraints.end[path[-1]]:
                continue
            if not all(constraints.transitions[a, b] for a, b in itertools.pairwise(path)):
                continue
        yield path


def path_score(logits_row, positions, path, transitions):
    unary = sum(logits_row[p, tag] for p, tag in zip(positions, path, strict=True))
    return unary + sum(transitions[a, b] for a, b in itertools.pairwise(path))


def brute_force(logits_row, mask_row, transitions, constraints):
    """Every allowed path over the masked positions: their scores, the best one, log Z, and
    the marginal probability of each tag at each position."""
    num_tags = logits_row.shape[-1]
    positions = masked_positions(mask_row)
    paths = list(allowed_paths(num_tags, len(positions), constraints))
    scores = np.array([path_score(logits_row, positions, p, transitions) for p in paths])
    log_z = np.logaddexp.reduce(scores)
    marginals = np.zeros_like(logits_row)
    for path, score in zip(paths, scores, strict=True):
        for position, tag in zip(positions, path, strict=True):
            marginals[position, tag] += np.exp(score - log_z)
    best = paths[int(np.argmax(scores))]
    return paths, log_z, best, float(np.max(scores)), marginals


def run_crf(logits, tags, mask, transitions, constraints, logits_dtype=tf.float32):
    with tf.Graph().as_default():
        logits_t = tf.constant(logits, dtype=logits_dtype)
        transitions_t = tf.constant(transitions, dtype=tf.float32)
        log_likelihood = crf.crf_log_likelihood(
            logits_t, tf.constant(tags), tf.constant(mask), transitions_t, constraints
        )
        gradient = tf.gradients(tf.reduce_sum(log_likelihood), logits_t)[0]
        decoded, best_scores = crf.crf_decode(
            logits_t, tf.constant(mask), transitions_t, constraints
        )
        with tf1.Session() as session:
            return session.run([log_likelihood, gradient, decoded, best_scores])


def random_case(rng, batch, seq_length, num_tags, constraints):
    logits = rng.normal(size=(batch, seq_length, num_tags)).astype(np.float32)
    transitions = rng.normal(size=(num_tags, num_tags)).astype(np.float32)
    mask = (rng.random((batch, seq_length)) < 0.6).astype(np.int32)
    mask[0] = 0  # a padding row: empty chain
    mask[1] = 1  # a full row
    tags = np.zeros((batch, seq_length), np.int32)
    for row in range(batch):
        positions = masked_positions(mask[row])
        paths = list(allowed_paths(num_tags, len(positions), constraints))
        path = paths[rng.integers(len(paths))]
        tags[row, positions] = path
        # Values outside the chain must not matter.
        off = [p for p in range(seq_length) if not mask[row, p]]
        tags[row, off] = rng.integers(num_tags, size=len(off))
    return logits, tags, mask, transitions


def check_against_brute_force(logits, tags, mask, transitions, constraints, results):
    log_likelihood, gradient, decoded, best_scores = results
    for row in range(logits.shape[0]):
        positions = masked_positions(mask[row])
        if not positions:
            assert log_likelihood[row] == 0.0 and best_scores[row] == 0.0
            np.testing.assert_array_equal(decoded[row], 0)
            np.testing.assert_array_equal(gradient[row], 0)
            continue
        _, log_z, best, best_score, marginals = brute_force(
            logits[row], mask[row], transitions, constraints
        )
        gold = [tags[row, p] for p in positions]
        expected = path_score(logits[row], positions, gold, transitions) - log_z
        np.testing.assert_allclose(log_likelihood[row], expected, rtol=1e-5, atol=1e-5)
        expected_tags = np.zeros(mask.shape[1], np.int32)
        expected_tags[positions] = best
        np.testing.assert_array_equal(decoded[row], expected_tags)
        np.testing.assert_allclose(best_scores[row], best_score, rtol=1e-5, atol=1e-5)
        # d log p(gold) / d logits = one-hot(gold) - marginals, and 0 off the chain.
        expected_gradient = -marginals
        expected_gradient[positions, gold] += 1.0
        np.testing.assert_allclose(gradient[row], expected_gradient, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_unconstrained_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    case = random_case(rng, batch=4, seq_length=5, num_tags=3, constraints=None)
    check_against_brute_force(*case, None, run_crf(*case, None))


@pytest.mark.parametrize("scheme", ["BIO", "IOBES"])
def test_scheme_constraints_match_brute_force_over_allowed_paths(scheme):
    rng = np.random.default_rng(len(scheme))
    labels = ner_tags.labels_for_types(["X", "Y"], scheme)[: 5 if scheme == "BIO" else 9]
    constraints = ner_tags.tag_constraints(labels, scheme)
    case = random_case(rng, batch=3, seq_length=4, num_tags=len(labels), constraints=constraints)
    results = run_crf(*case, constraints)
    check_against_brute_force(*case, constraints, results)
    # The decoded paths are valid sequences of the scheme.
    decoded, mask = results[2], case[2]
    for row in range(decoded.shape[0]):
        tags = [labels[decoded[row, p]] for p in masked_positions(mask[row])]
        assert ner_tags.repair(tags, scheme) == tags


def test_random_constraints_match_brute_force():
    rng = np.random.default_rng(11)
    num_tags = 4
    constraints = ner_tags.TagConstraints(
        transitions=rng.random((num_tags, num_tags)) < 0.6,
        start=np.array([True, False, True, True]),
        end=np.array([True, True, False, True]),
    )
    # Makes sure every chain length has an allowed path: 0 -> 0 is allowed.
    constraints.transitions[0, 0] = True
    case = random_case(rng, batch=4, seq_length=4, num_tags=num_tags, constraints=constraints)
    check_against_brute_force(*case, constraints, run_crf(*case, constraints))


def test_constraints_change_the_decoded_path():
    # Unconstrained, the best path is O I-X (id 2 after id 0); BIO forbids it.
    labels = ["O", "B-X", "I-X"]
    logits = np.array([[[3.0, 0.0, 0.0], [0.0, 1.0, 2.0]]], np.float32)
    mask = np.ones((1, 2), np.int32)
    tags = np.zeros((1, 2), np.int32)
    transitions = np.zeros((3, 3), np.float32)
    free = run_crf(logits, tags, mask, transitions, None)
    constraints = ner_tags.tag_constraints(labels, "BIO")
    constrained = run_crf(logits, tags, mask, transitions, constraints)
    np.testing.assert_array_equal(free[2], [[0, 2]])
    np.testing.assert_array_equal(constrained[2], [[0, 1]])


def test_single_position_and_float16_logits():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 1, 3)).astype(np.float16)
    mask = np.array([[1], [0]], np.int32)
    tags = np.array([[2], [0]], np.int32)
    transitions = rng.normal(size=(3, 3)).astype(np.float32)
    log_likelihood, _, decoded, _ = run_crf(
        logits, tags, mask, transitions, None, logits_dtype=tf.float16
    )
    assert log_likelihood.dtype == np.float32
    row = logits[0, 0].astype(np.float64)
    expected = row[2] - np.logaddexp.reduce(row)
    np.testing.assert_allclose(log_likelihood, [expected, 0.0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(decoded, [[int(np.argmax(row))], [0]])


def test_transition_params_variable():
    with tf.Graph().as_default():
        with tf1.variable_scope("ner_head"):
            inner = crf.transition_params(5)
        outer = crf.transition_params(7)
        assert inner.name == "ner_head/crf/transitions:0"
        assert outer.name == "crf/transitions:0"
        assert outer.shape.as_list() == [7, 7] and outer.dtype.base_dtype == tf.float32
