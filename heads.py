"""Task heads on the encoder's outputs, with their losses, eval metrics and Estimator specs.

The encoder (`modeling.BertModel`, or a TF Hub model) is the same for every task; what a task
adds is a head. Each head keeps the variable names of the original's scripts, so fine-tuned
checkpoints of the original load here and the other way round:

- sentence classification, regression and multi-label (`classifier_head`): `output_weights`
  `[num_labels, hidden_size]` and `output_bias` `[num_labels]`, as run_classifier.py.
"""

from __future__ import annotations

import tensorflow as tf

import classifier_data
import modeling

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
    hidden_size = pooled_output.shape[-1]
    output_weights = tf1.get_variable(
        "output_weights",
        [num_labels, hidden_size],
        initializer=tf1.truncated_normal_initializer(stddev=0.02),
    )
    output_bias = tf1.get_variable("output_bias", [num_labels], initializer=tf1.zeros_initializer())
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


def classifier_spec(
    mode, head_outputs, label_ids, is_real_example, task_kind, train_op_fn, scaffold_fn=None
):
    """The TPUEstimatorSpec of each mode from `classifier_head`'s outputs: the train op,
    the eval metrics, or the predictions (and the serving signature's outputs)."""
    total_loss, per_example_loss, logits, probabilities = head_outputs
    Spec = tf1.estimator.tpu.TPUEstimatorSpec
    if mode == tf.estimator.ModeKeys.TRAIN:
        return Spec(
            mode=mode, loss=total_loss, train_op=train_op_fn(total_loss), scaffold_fn=scaffold_fn
        )
    if mode == tf.estimator.ModeKeys.EVAL:
        metric_fn = classification_metrics if task_kind == CLASSIFICATION else loss_only_metrics
        metric_inputs = [per_example_loss, label_ids, logits, is_real_example]
        return Spec(
            mode=mode,
            loss=total_loss,
            eval_metrics=(metric_fn, metric_inputs),
            scaffold_fn=scaffold_fn,
        )
    outputs = {"probabilities": probabilities, "logits": logits}
    return Spec(
        mode=mode,
        predictions=dict(outputs, label_ids=label_ids),
        export_outputs={"serving_default": tf.estimator.export.PredictOutput(outputs)},
        scaffold_fn=scaffold_fn,
    )


def placeholder_labels(input_ids: tf.Tensor, num_labels: int, task_kind: str) -> tf.Tensor:
    """Zero labels of the right dtype and shape for `[batch_size, seq_length]` inputs."""
    batch_size = tf.shape(input_ids)[0]
    if task_kind == REGRESSION:
        return tf.zeros([batch_size], tf.float32)
    if task_kind == MULTI_LABEL:
        return tf.zeros([batch_size, num_labels], tf.int32)
    return tf.zeros([batch_size], tf.int32)
