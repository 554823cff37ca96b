"""Task heads on the encoder's outputs, with their losses, eval metrics and Estimator specs.

The encoder (`modeling.BertModel`, or a TF Hub model) is the same for every task; what a task
adds is a head. Each head keeps the variable names of the original's scripts, so fine-tuned
checkpoints of the original load here and the other way round:

- sentence classification, regression and multi-label (`classifier_head`): `output_weights`
  `[num_labels, hidden_size]` and `output_bias` `[num_labels]`, as run_classifier.py;
- token classification (`token_classifier_head`, run_ner.py): the same two variables applied
  at every position, and with a CRF `crf/transitions` `[num_labels, num_labels]`;
- multiple choice (`multiple_choice_head`, run_multiple_choice.py): one score per choice from
  its sequence's pooled output, `output_weights` `[1, hidden_size]` and `output_bias` `[1]`
  (the BERT paper's single vector; transformers' BertForMultipleChoice `classifier.weight`
  and `classifier.bias`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

import classifier_data
import crf
import modeling
import ner_tags

tf1 = tf.compat.v1

CLASSIFICATION = classifier_data.CLASSIFICATION
REGRESSION = classifier_data.REGRESSION
MULTI_LABEL = classifier_data.MULTI_LABEL


def classifier_head(
    pooled_output: tf.Tensor,
    labels: tf.Tensor,
    num_labels: int,
    is_training: bool,
    dropout_prob: float,
    task_kind: str = CLASSIFICATION,
):
    """One dense layer (`output_weights`, `output_bias`) and the task's loss.

    Args:
      pooled_output: float32 `[batch_size, hidden_size]`.
      labels: `[batch_size]` int class ids, `[batch_size]` floats for regression, or
        `[batch_size, num_labels]` multi-hot ints for multi-label.

    Returns:
      `(loss, per_example_loss [batch_size], logits [batch_size, num_labels],
      probabilities [batch_size, num_labels])`; for regression "probabilities" holds the
      predicted value.
    """
    output_weights, output_bias = _output_layer(num_labels, pooled_output.shape[-1])
    with tf1.variable_scope("loss"):
        if is_training:
            pooled_output = modeling.dropout(pooled_output, dropout_prob)
        logits = tf.nn.bias_add(
            tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias
        )
        if task_kind == REGRESSION:
            probabilities = logits
            per_example_loss = tf.square(logits[:, 0] - tf.cast(labels, tf.float32))
        elif task_kind == MULTI_LABEL:
            probabilities = tf.sigmoid(logits)
            per_example_loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(
                    labels=tf.cast(labels, tf.float32), logits=logits
                ),
                axis=-1,
            )
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            one_hot = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
            per_example_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)
        loss = tf.reduce_mean(per_example_loss)
    return loss, per_example_loss, logits, probabilities


def _output_layer(num_labels: int, hidden_size: int) -> tuple[tf.Variable, tf.Variable]:
    """`output_weights` `[num_labels, hidden_size]` and `output_bias` `[num_labels]`, with
    the original's initializers."""
    output_weights = tf1.get_variable(
        "output_weights",
        [num_labels, hidden_size],
        initializer=tf1.truncated_normal_initializer(stddev=0.02),
    )
    output_bias = tf1.get_variable("output_bias", [num_labels], initializer=tf1.zeros_initializer())
    return output_weights, output_bias


def classification_metrics(per_example_loss, label_ids, logits, is_real_example):
    """Streaming eval_accuracy and eval_loss over the real (not padding) examples."""
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return {
        "eval_accuracy": tf1.metrics.accuracy(
            labels=label_ids, predictions=predictions, weights=is_real_example
        ),
        "eval_loss": tf1.metrics.mean(values=per_example_loss, weights=is_real_example),
    }


def loss_only_metrics(per_example_loss, label_ids, logits, is_real_example):
    """eval_loss for regression and multi-label tasks (their other metrics need every
    prediction and are computed from a predict pass)."""
    del label_ids, logits
    return {"eval_loss": tf1.metrics.mean(values=per_example_loss, weights=is_real_example)}


def labels_of(features: dict, num_labels: int, task_kind: str) -> tuple[tf.Tensor, tf.Tensor]:
    """`(label_ids, is_real_example as float)` of a batch; a served model gets neither, and
    stand-ins keep the graph the same."""
    label_ids = features.get("label_ids")
    if label_ids is None:
        label_ids = placeholder_labels(features["input_ids"], num_labels, task_kind)
    return label_ids, tf.cast(features.get("is_real_example", 1), tf.float32)


def task_spec(
    mode: str,
    loss: tf.Tensor,
    train_op_fn: Callable[[tf.Tensor], tf.Operation],
    eval_metrics_fn: Callable[[], tuple],
    served: dict[str, tf.Tensor],
    scaffold_fn: Callable | None = None,
    extra_predictions: dict[str, tf.Tensor] | None = None,
) -> tf1.estimator.tpu.TPUEstimatorSpec:
    """The TPUEstimatorSpec of `mode` for a task head: TRAIN runs `train_op_fn(loss)`; EVAL
    computes `eval_metrics_fn()`, a TPUEstimator `(metric_fn, tensors)` pair built only in
    that mode (it may read labels a served model never gets); PREDICT returns `served`, which
    are also the serving signature's outputs, and `extra_predictions` (labels, say)."""
    Spec = tf1.estimator.tpu.TPUEstimatorSpec
    if mode == tf.estimator.ModeKeys.TRAIN:
        return Spec(mode=mode, loss=loss, train_op=train_op_fn(loss), scaffold_fn=scaffold_fn)
    if mode == tf.estimator.ModeKeys.EVAL:
        return Spec(mode=mode, loss=loss, eval_metrics=eval_metrics_fn(), scaffold_fn=scaffold_fn)
    return Spec(
        mode=mode,
        predictions=dict(served, **(extra_predictions or {})),
        export_outputs={"serving_default": tf.estimator.export.PredictOutput(served)},
        scaffold_fn=scaffold_fn,
    )


def classifier_spec(
    mode, head_outputs, label_ids, is_real_example, task_kind, train_op_fn, scaffold_fn=None
):
    """The TPUEstimatorSpec of each mode from `classifier_head`'s outputs: the train op,
    the eval metrics, or the predictions (and the serving signature's outputs)."""
    total_loss, per_example_loss, logits, probabilities = head_outputs
    metric_fn = classification_metrics if task_kind == CLASSIFICATION else loss_only_metrics
    return task_spec(
        mode,
        total_loss,
        train_op_fn,
        lambda: (metric_fn, [per_example_loss, label_ids, logits, is_real_example]),
        {"probabilities": probabilities, "logits": logits},
        scaffold_fn,
        extra_predictions={"label_ids": label_ids},
    )


def placeholder_labels(input_ids: tf.Tensor, num_labels: int, task_kind: str) -> tf.Tensor:
    """Zero labels of the right dtype and shape for `[batch_size, seq_length]` inputs."""
    batch_size = tf.shape(input_ids)[0]
    if task_kind == REGRESSION:
        return tf.zeros([batch_size], tf.float32)
    if task_kind == MULTI_LABEL:
        return tf.zeros([batch_size, num_labels], tf.int32)
    return tf.zeros([batch_size], tf.int32)


# ------------------------------------------------------------------ token classification


@dataclasses.dataclass
class TokenClassifierOutputs:
    """What `token_classifier_head` returns.

    Attributes:
      loss: the scalar training loss.
      per_example_loss: `[batch_size]`, each window's mean loss over its labelled words
        (its negative log-likelihood with a CRF); 0 for a window without labelled words.
      logits: float32 `[batch_size, seq_length, num_labels]`.
      probabilities: `[batch_size, seq_length, num_labels]`, softmax of the logits.
      tag_ids: int32 `[batch_size, seq_length]`, the decoded tag of each labelled position
        (argmax, or Viterbi with a CRF or constraints), 0 elsewhere.
    """

    loss: tf.Tensor
    per_example_loss: tf.Tensor
    logits: tf.Tensor
    probabilities: tf.Tensor
    tag_ids: tf.Tensor


def token_classifier_head(
    sequence_output: tf.Tensor,
    label_ids: tf.Tensor,
    label_mask: tf.Tensor,
    num_labels: int,
    is_training: bool,
    dropout_prob: float,
    use_crf: bool = False,
    constraints: ner_tags.TagConstraints | None = None,
) -> TokenClassifierOutputs:
    """One dense layer per position (`output_weights` `[num_labels, hidden_size]`,
    `output_bias` `[num_labels]`), optionally a linear-chain CRF (`crf/transitions`).

    Only the positions of `label_mask` (the first piece of each word) take part: the
    softmax loss averages over them, the CRF chains them; other pieces, [CLS], [SEP] and
    padding weigh nothing (there is no "X" label).

    Args:
      sequence_output: float32 `[batch_size, seq_length, hidden_size]`.
      label_ids: int `[batch_size, seq_length]` gold tag ids (read where `label_mask` is 1).
      label_mask: int `[batch_size, seq_length]`, 1 at the positions to tag.
      constraints: allowed tag transitions (`ner_tags.tag_constraints`); decoding then never
        produces an invalid sequence, with or without a CRF.
    """
    output_weights, output_bias = _output_layer(num_labels, sequence_output.shape[-1])
    if use_crf:
        transitions = crf.transition_params(num_labels)
    with tf1.variable_scope("loss"):
        if is_training:
            sequence_output = modeling.dropout(sequence_output, dropout_prob)
        logits = tf.nn.bias_add(
            tf.einsum("bsh,nh->bsn", sequence_output, output_weights), output_bias
        )
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_ids = tf.cast(label_ids, tf.int32)
        mask = tf.cast(label_mask, tf.float32)
        if use_crf:
            log_likelihood = crf.crf_log_likelihood(
                logits, label_ids, label_mask, transitions, constraints
            )
            per_example_loss = -log_likelihood
            loss = tf.reduce_mean(per_example_loss)
            tag_ids, _ = crf.crf_decode(logits, label_mask, transitions, constraints)
        else:
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            one_hot = tf.one_hot(label_ids, depth=num_labels, dtype=tf.float32)
            token_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1) * mask
            per_example_loss = tf.reduce_sum(token_loss, axis=-1) / tf.maximum(
                tf.reduce_sum(mask, axis=-1), 1.0
            )
            loss = tf.reduce_sum(token_loss) / tf.maximum(tf.reduce_sum(mask), 1.0)
            tag_ids = _decode_without_crf(log_probs, label_mask, num_labels, constraints)
    return TokenClassifierOutputs(loss, per_example_loss, logits, probabilities, tag_ids)


def _decode_without_crf(log_probs, label_mask, num_labels, constraints) -> tf.Tensor:
    """Argmax per position; under constraints, the best valid sequence of the per-position
    log-probabilities (Viterbi with no learnt transitions)."""
    mask = tf.cast(label_mask, tf.int32)
    if constraints is None:
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32) * mask
    no_transitions = tf.zeros([num_labels, num_labels], tf.float32)
    tag_ids, _ = crf.crf_decode(log_probs, label_mask, no_transitions, constraints)
    return tag_ids


# ------------------------------------------------------------------------ multiple choice

# The score of a dummy choice (one padding an example to the run's number of choices): its
# softmax probability underflows to exactly 0 in float32 and it never wins an argmax.
MASKED_CHOICE_LOGIT = -1e9


@dataclasses.dataclass
class MultipleChoiceOutputs:
    """What `multiple_choice_head` returns.

    Attributes:
      loss: the scalar training loss, the mean of `per_example_loss`.
      per_example_loss: `[batch_size]`, minus the log-probability of the right choice.
      logits: float32 `[batch_size, num_choices]`, `MASKED_CHOICE_LOGIT` at dummy choices.
      probabilities: `[batch_size, num_choices]`, softmax over the choices (0 at dummies).
    """

    loss: tf.Tensor
    per_example_loss: tf.Tensor
    logits: tf.Tensor
    probabilities: tf.Tensor


def multiple_choice_head(
    pooled_output: tf.Tensor,
    choice_mask: tf.Tensor,
    label_ids: tf.Tensor,
    is_training: bool,
    dropout_prob: float,
) -> MultipleChoiceOutputs:
    """One logit per choice (`output_weights` `[1, hidden_size]`, `output_bias` `[1]`) and
    a softmax over the choices of each example.

    Args:
      pooled_output: float32 `[batch_size * num_choices, hidden_size]`, the pooled outputs
        of the `[CLS] context [SEP] question option [SEP]` sequences, example by example.
      choice_mask: int `[batch_size, num_choices]`, 1 for a real choice, 0 for a dummy.
      label_ids: int `[batch_size]`, the index of the right choice.
    """
    num_choices = tf.shape(choice_mask)[1]
    output_weights, output_bias = _output_layer(1, pooled_output.shape[-1])
    with tf1.variable_scope("loss"):
        if is_training:
            pooled_output = modeling.dropout(pooled_output, dropout_prob)
        scores = tf.nn.bias_add(
            tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias
        )
        scores = tf.reshape(scores, [-1, num_choices])
        # Masked in float32, after any float16 compute: -1e9 does not fit in float16.
        logits = tf.where(
            tf.cast(choice_mask, tf.bool),
            tf.cast(scores, tf.float32),
            tf.fill(tf.shape(scores), MASKED_CHOICE_LOGIT),
        )
        probabilities = tf.nn.softmax(logits, axis=-1)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        one_hot = tf.one_hot(tf.cast(label_ids, tf.int32), depth=num_choices, dtype=tf.float32)
        per_example_loss = -tf.reduce_sum(one_hot * log_probs, axis=-1)
        loss = tf.reduce_mean(per_example_loss)
    return MultipleChoiceOutputs(loss, per_example_loss, logits, probabilities)
