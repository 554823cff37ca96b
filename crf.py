"""A linear-chain CRF over masked positions: log-likelihood and Viterbi decoding in the graph.

Token classification labels only some positions (the first WordPiece of each word), so the
chain here links the positions where `mask` is 1, in order, and skips every other position:
a word's later pieces, [CLS], [SEP], context and padding. Internally each row's masked
positions are gathered to the front, the usual forward / Viterbi recursions run over them, and
decoded tags are scattered back; a position outside the chain gets tag 0.

The model's parameters are the per-position `logits` (from the encoder) and one
`[num_tags, num_tags]` variable `crf/transitions` (`transitions[i, j]`: the score of tag j right
after tag i), created by `transition_params`. Optional `ner_tags.TagConstraints` forbid
transitions, starts and ends (an I-X after O in BIO): forbidden paths get a score 10000 lower,
which makes their probability exactly 0 in float32 while a forbidden gold path still gives a
finite loss. All arithmetic is in float32, whatever the dtype of the logits.
"""

from __future__ import annotations

import numpy as np
import tensorflow.compat.v1 as tf

import ner_tags

TRANSITIONS_SCOPE = "crf"
TRANSITIONS_NAME = "transitions"
# Added to the score of a forbidden transition, start or end. exp(-10000) is 0 in float32, so
# the log-partition is over the allowed paths alone.
_FORBIDDEN_SCORE = -10000.0


def transition_params(num_tags: int) -> tf.Variable:
    """Creates (or reuses, under a reusing scope) the `[num_tags, num_tags]` float32 variable
    `crf/transitions` (below any enclosing variable scope), initialized to zeros."""
    with tf.variable_scope(TRANSITIONS_SCOPE):
        return tf.get_variable(
            TRANSITIONS_NAME,
            shape=[num_tags, num_tags],
            dtype=tf.float32,
            initializer=tf.zeros_initializer(),
        )


def _penalties(
    constraints: ner_tags.TagConstraints | None, num_tags: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Additive scores `[T, T]`, `[T]`, `[T]`: 0 where allowed, -10000 where forbidden."""
    if constraints is None:
        return (tf.zeros([num_tags, num_tags]), tf.zeros([num_tags]), tf.zeros([num_tags]))

    def penalty(allowed: np.ndarray, shape: tuple[int, ...]) -> tf.Tensor:
        allowed = np.asarray(allowed, bool)
        if allowed.shape != shape:
            raise ValueError(f"constraints of shape {allowed.shape}, expected {shape}")
        return tf.constant(np.where(allowed, 0.0, _FORBIDDEN_SCORE).astype(np.float32))

    return (
        penalty(constraints.transitions, (num_tags, num_tags)),
        penalty(constraints.start, (num_tags,)),
        penalty(constraints.end, (num_tags,)),
    )


def _compact(mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """For each row, the positions with mask 1 in order, then the others; and their count.

    Returns `order` `[batch, seq]` int32 and `lengths` `[batch]` int32.
    """
    mask = tf.cast(mask, tf.int32)
    seq_length = tf.shape(mask)[1]
    positions = tf.range(seq_length)[tf.newaxis, :]
    # Unmasked positions sort after every masked one, each group keeping its order.
    keys = positions + (1 - mask) * seq_length
    order = tf.argsort(keys, axis=1, stable=True)
    return tf.cast(order, tf.int32), tf.reduce_sum(mask, axis=1)


def _gather_rows(values: tf.Tensor, order: tf.Tensor) -> tf.Tensor:
    return tf.gather(values, order, axis=1, batch_dims=1)


def _time_major(values: tf.Tensor) -> tf.Tensor:
    """`[batch, seq, ...]` -> `[seq, batch, ...]`."""
    rank = len(values.shape)
    return tf.transpose(values, [1, 0] + list(range(2, rank)))


def _chain_inputs(logits: tf.Tensor, mask: tf.Tensor):
    logits = tf.cast(logits, tf.float32)
    order, lengths = _compact(mask)
    return _gather_rows(logits, order), order, lengths


def _effective_transitions(transitions, constraints, num_tags):
    transition_penalty, start_penalty, end_penalty = _penalties(constraints, num_tags)
    return tf.cast(transitions, tf.float32) + transition_penalty, start_penalty, end_penalty


def _log_partition(chain_logits, lengths, transitions, start_penalty, end_penalty):
    """log of the sum of exp(score) over all paths (all allowed paths): `[batch]`."""
    seq_length = tf.shape(chain_logits)[1]
    alpha0 = chain_logits[:, 0, :] + start_penalty
    steps = tf.range(1, seq_length)
    logits_rest = _time_major(chain_logits[:, 1:, :])

    def step(alpha, inputs):
        position, position_logits = inputs
        candidate = (
            tf.reduce_logsumexp(alpha[:, :, tf.newaxis] + transitions[tf.newaxis], axis=1)
            + position_logits
        )
        # Rows whose chain has already ended keep their last alpha.
        in_chain = (position < lengths)[:, tf.newaxis]
        return tf.where(tf.broadcast_to(in_chain, tf.shape(alpha)), candidate, alpha)

    alphas = tf.scan(step, (steps, logits_rest), initializer=alpha0)
    final_alpha = tf.concat([alpha0[tf.newaxis], alphas], axis=0)[-1]
    return tf.reduce_logsumexp(final_alpha + end_penalty, axis=1)


def _path_score(chain_logits, chain_tags, lengths, transitions, start_penalty, end_penalty):
    """The score of the given tags along each chain: `[batch]`."""
    seq_length = tf.shape(chain_logits)[1]
    in_chain = tf.sequence_mask(lengths, seq_length, dtype=tf.float32)
    unary = tf.gather(chain_logits, chain_tags, axis=2, batch_dims=2)
    unary_score = tf.reduce_sum(unary * in_chain, axis=1)
    pair_indices = tf.stack([chain_tags[:, :-1], chain_tags[:, 1:]], axis=2)
    pair_scores = tf.gather_nd(transitions, pair_indices)
    binary_score = tf.reduce_sum(pair_scores * in_chain[:, 1:], axis=1)
    first_tags = chain_tags[:, 0]
    last_tags = tf.gather(chain_tags, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
    boundary_score = tf.gather(start_penalty, first_tags) + tf.gather(end_penalty, last_tags)
    return unary_score + binary_score + boundary_score


def crf_log_likelihood(
    logits: tf.Tensor,
    tag_ids: tf.Tensor,
    mask: tf.Tensor,
    transitions: tf.Tensor,
    constraints: ner_tags.TagConstraints | None = None,
) -> tf.Tensor:
    """The log-probability of the gold tags under the CRF, per sequence.

    Args:
      logits: `[batch, seq_length, num_tags]` unary scores (any float dtype; cast to float32).
      tag_ids: `[batch, seq_length]` int gold tags; read only where `mask` is 1.
      mask: `[batch, seq_length]` 1 at the positions in the chain (`label_mask`), else 0.
      transitions: `[num_tags, num_tags]` transition scores (`transition_params`).
      constraints: optional allowed transitions / starts / ends (`ner_tags.tag_constraints`);
        the normalizer then runs over the allowed paths only.

    Returns:
      `[batch]` float32 log-likelihoods; 0 for a row whose mask is all 0 (a padding example).
    """
    num_tags = logits.shape[-1]
    chain_logits, order, lengths = _chain_inputs(logits, mask)
    chain_tags = _gather_rows(tf.cast(tag_ids, tf.int32), order)
    # Tags outside the chain are arbitrary; zeroing them keeps every gather in range.
    chain_tags *= tf.sequence_mask(lengths, tf.shape(chain_tags)[1], dtype=tf.int32)
    transitions, start_penalty, end_penalty = _effective_transitions(
        transitions, constraints, num_tags
    )
    score = _path_score(chain_logits, chain_tags, lengths, transitions, start_penalty, end_penalty)
    log_norm = _log_partition(chain_logits, lengths, transitions, start_penalty, end_penalty)
    return tf.where(lengths > 0, score - log_norm, tf.zeros_like(score))


def crf_decode(
    logits: tf.Tensor,
    mask: tf.Tensor,
    transitions: tf.Tensor,
    constraints: ner_tags.TagConstraints | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The highest-scoring tag path (Viterbi) along each row's masked positions.

    Args: as `crf_log_likelihood`, without tags.

    Returns:
      tags: `[batch, seq_length]` int32, the best path at the masked positions and 0 elsewhere.
      scores: `[batch]` float32, the (unnormalized) score of that path; 0 for an empty chain.
    """
    num_tags = logits.shape[-1]
    chain_logits, order, lengths = _chain_inputs(logits, mask)
    transitions, start_penalty, end_penalty = _effective_transitions(
        transitions, constraints, num_tags
    )
    seq_length = tf.shape(chain_logits)[1]
    delta0 = chain_logits[:, 0, :] + start_penalty
    identity = tf.broadcast_to(tf.range(num_tags)[tf.newaxis], tf.shape(delta0))

    def step(carry, inputs):
        delta, _ = carry
        position, position_logits = inputs
        candidates = delta[:, :, tf.newaxis] + transitions[tf.newaxis]
        best_previous = tf.argmax(candidates, axis=1, output_type=tf.int32)
        new_delta = tf.reduce_max(candidates, axis=1) + position_logits
        in_chain = tf.broadcast_to((position < lengths)[:, tf.newaxis], tf.shape(delta))
        # Past a chain's end the backpointers are the identity, so the backtrack carries the
        # last real tag unchanged down to the chain's end.
        return tf.where(in_chain, new_delta, delta), tf.where(in_chain, best_previous, identity)

    deltas, backpointers = tf.scan(
        step,
        (tf.range(1, seq_length), _time_major(chain_logits[:, 1:, :])),
        initializer=(delta0, identity),
    )
    final_delta = tf.concat([delta0[tf.newaxis], deltas], axis=0)[-1] + end_penalty
    last_tags = tf.argmax(final_delta, axis=1, output_type=tf.int32)
    best_scores = tf.reduce_max(final_delta, axis=1)

    def backtrack(tags, pointers):
        return tf.gather(pointers, tags, axis=1, batch_dims=1)

    earlier_tags = tf.scan(backtrack, backpointers, initializer=last_tags, reverse=True)
    chain_tags = tf.concat([_time_major(earlier_tags), last_tags[:, tf.newaxis]], axis=1)
    # Scatter back: original position p holds the chain tag at its rank in `order`.
    rank = tf.argsort(order, axis=1)
    tags = _gather_rows(chain_tags, rank) * tf.cast(mask, tf.int32)
    best_scores = tf.where(lengths > 0, best_scores, tf.zeros_like(best_scores))
    return tags, best_scores
