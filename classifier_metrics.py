"""Evaluation metrics for sentence classification, in plain NumPy.

`run_classifier.py` gathers the model's predictions for the real (non-padding) dev examples and
calls `task_metrics`, which returns a flat `{name: float}` dict. Which metrics are computed
depends on the task's metric family, one of:

- `accuracy` (MNLI, XNLI, SST-2, QNLI, RTE, WNLI): `eval_accuracy`.
- `accuracy_and_f1` (MRPC, QQP): `eval_accuracy`, and `precision`, `recall`, `f1` of the
  class at index 1 of the label list ("1": paraphrase, duplicate).
- `mcc` (CoLA): `eval_accuracy`, `mcc`.
- `pearson_and_spearman` (STS-B, generic regression): `pearson`, `spearman`.
- `per_class` (generic single-label): `eval_accuracy`; `precision_<label>`, `recall_<label>`,
  `f1_<label>` for every label; `macro_precision`, `macro_recall`, `macro_f1`.
- `multi_label` (generic multi-label): `subset_accuracy` (exact match), `micro_precision`,
  `micro_recall`, `micro_f1`, and the per-label and macro keys of `per_class`.

`MAIN_METRIC_KEYS` names the one key per family that ranks checkpoints, higher being better: the
metric the BERT paper reports for the GLUE task (F1 for MRPC/QQP, Spearman for STS-B, MCC for
CoLA, accuracy otherwise), `macro_f1` for generic single-label data (so that a rare class
counts) and `micro_f1` for multi-label data.

Conventions for undefined values: a ratio whose denominator is 0 (precision of a class that is
never predicted, MCC or Pearson of a constant vector) is 0.0, never NaN and never an error.
Macro averages run over the classes that occur in the labels or the predictions; a class that
occurs in neither has no meaningful precision or recall and would only drag the average down.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACCURACY = "accuracy"
ACCURACY_AND_F1 = "accuracy_and_f1"
MCC = "mcc"
PEARSON_AND_SPEARMAN = "pearson_and_spearman"
PER_CLASS = "per_class"
MULTI_LABEL = "multi_label"

MAIN_METRIC_KEYS = {
    ACCURACY: "eval_accuracy",
    ACCURACY_AND_F1: "f1",
    MCC: "mcc",
    PEARSON_AND_SPEARMAN: "spearman",
    PER_CLASS: "macro_f1",
    MULTI_LABEL: "micro_f1",
}
METRIC_NAMES = tuple(MAIN_METRIC_KEYS)

# The class whose F1 MRPC and QQP report: "1" (paraphrase / duplicate) in their label lists.
POSITIVE_CLASS_INDEX = 1


def main_metric_key(task_metric_name: str) -> str:
    """The key of `task_metrics`' result that decides which checkpoint is best (higher wins)."""
    _check_metric_name(task_metric_name)
    return MAIN_METRIC_KEYS[task_metric_name]


def _check_metric_name(task_metric_name: str) -> None:
    if task_metric_name not in MAIN_METRIC_KEYS:
        raise ValueError(
            f"Unknown metric {task_metric_name!r}; expected one of {', '.join(METRIC_NAMES)}"
        )


def _safe_divide(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _as_vectors(labels, predictions, dtype) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=dtype).reshape(-1)
    predictions = np.asarray(predictions, dtype=dtype).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"{labels.shape[0]} labels but {predictions.shape[0]} predictions; they must match"
        )
    if labels.size == 0:
        raise ValueError("Cannot compute metrics on zero examples")
    return labels, predictions


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Fraction of `predictions` equal to `labels` (both `[num_examples]` class ids)."""
    labels, predictions = _as_vectors(labels, predictions, np.int64)
    return float(np.mean(labels == predictions))


def precision_recall_f1(
    labels: Sequence[int], predictions: Sequence[int], positive_class: int
) -> tuple[float, float, float]:
    """Precision, recall and F1 of one class, the others counting as negatives.

    Args:
      labels: `[num_examples]` true class ids.
      predictions: `[num_examples]` predicted class ids.
      positive_class: the class id scored.
    """
    labels, predictions = _as_vectors(labels, predictions, np.int64)
    is_label = labels == positive_class
    is_predicted = predictions == positive_class
    true_positives = int(np.sum(is_label & is_predicted))
    return _precision_recall_f1_from_counts(
        true_positives,
        num_predicted=int(np.sum(is_predicted)),
        num_actual=int(np.sum(is_label)),
    )


def _precision_recall_f1_from_counts(
    true_positives: int, num_predicted: int, num_actual: int
) -> tuple[float, float, float]:
    precision = _safe_divide(true_positives, num_predicted)
    recall = _safe_divide(true_positives, num_actual)
    # 2PR / (P + R) simplifies to 2TP / (predicted + actual), which needs no special case
    # when P + R is 0.
    f1 = _safe_divide(2 * true_positives, num_predicted + num_actual)
    return precision, recall, f1


def matthews_corrcoef(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Matthews correlation coefficient, multi-class form (Gorodkin 2004); 0.0 when undefined.

    With the `[K, K]` confusion matrix C, s its total, c its trace, t_k the count of class k
    in `labels` and p_k in `predictions`:
        MCC = (c * s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2)),
    which for two classes equals (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
    """
    labels, predictions = _as_vectors(labels, predictions, np.int64)
    num_classes = int(max(labels.max(), predictions.max())) + 1
    label_counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    predicted_counts = np.bincount(predictions, minlength=num_classes).astype(np.float64)
    num_correct = float(np.sum(labels == predictions))
    total = float(labels.size)
    covariance = num_correct * total - float(np.dot(predicted_counts, label_counts))
    predicted_spread = total**2 - float(np.dot(predicted_counts, predicted_counts))
    label_spread = total**2 - float(np.dot(label_counts, label_counts))
    return _safe_divide(covariance, np.sqrt(predicted_spread * label_spread))


def pearson(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Pearson correlation of two `[num_examples]` vectors; 0.0 if either is constant."""
    labels, predictions = _as_vectors(labels, predictions, np.float64)
    label_deviations = labels - labels.mean()
    prediction_deviations = predictions - predictions.mean()
    denominator = np.sqrt(
        np.dot(label_deviations, label_deviations)
        * np.dot(prediction_deviations, prediction_deviations)
    )
    return _safe_divide(np.dot(label_deviations, prediction_deviations), denominator)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks of `values` (`[n]`), tied values sharing the mean of their ranks.

    E.g. [10, 20, 20, 5] -> [2, 3.5, 3.5, 1].
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start of every run of equal values in sorted order, and the run each element belongs to.
    run_starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    run_ends = np.r_[run_starts[1:], values.size]
    run_of_sorted = np.repeat(np.arange(run_starts.size), run_ends - run_starts)
    # Positions start..end-1 hold ranks start+1..end, whose mean is (start + 1 + end) / 2.
    mean_rank_of_run = (run_starts + 1 + run_ends) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank_of_run[run_of_sorted]
    return ranks


def spearman(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson of the average ranks (ties share a rank)."""
    labels, predictions = _as_vectors(labels, predictions, np.float64)
    return pearson(average_ranks(labels), average_ranks(predictions))


def per_class_report(
    labels: Sequence[int], predictions: Sequence[int], label_list: Sequence[str]
) -> dict[str, float]:
    """Accuracy, precision/recall/F1 of every class in `label_list`, and their macro averages.

    Args:
      labels: `[num_examples]` true class ids, indexes into `label_list`.
      predictions: `[num_examples]` predicted class ids.
      label_list: class names; key `f1_<name>` holds the F1 of `label_list[i]`.
    """
    labels, predictions = _as_vectors(labels, predictions, np.int64)
    one_hot_labels = _one_hot(labels, len(label_list))
    one_hot_predictions = _one_hot(predictions, len(label_list))
    report = {"eval_accuracy": float(np.mean(labels == predictions))}
    report.update(_per_column_report(one_hot_labels, one_hot_predictions, label_list))
    return report


def _one_hot(class_ids: np.ndarray, num_classes: int) -> np.ndarray:
    if class_ids.min() < 0 or class_ids.max() >= num_classes:
        raise ValueError(
            f"Class ids must lie in [0, {num_classes}) for {num_classes} labels; got "
            f"{int(class_ids.min())}..{int(class_ids.max())}"
        )
    return np.eye(num_classes, dtype=bool)[class_ids]


def _per_column_report(
    label_matrix: np.ndarray, prediction_matrix: np.ndarray, label_list: Sequence[str]
) -> dict[str, float]:
    """Per-column and macro precision/recall/F1 of `[num_examples, num_labels]` 0/1 matrices."""
    report: dict[str, float] = {}
    macro_columns = []
    for column, name in enumerate(label_list):
        actual = label_matrix[:, column]
        predicted = prediction_matrix[:, column]
        scores = _precision_recall_f1_from_counts(
            int(np.sum(actual & predicted)), int(np.sum(predicted)), int(np.sum(actual))
        )
        report[f"precision_{name}"], report[f"recall_{name}"], report[f"f1_{name}"] = scores
        if actual.any() or predicted.any():
            macro_columns.append(scores)
    macro = np.mean(macro_columns, axis=0) if macro_columns else np.zeros(3)
    report["macro_precision"], report["macro_recall"], report["macro_f1"] = map(float, macro)
    return report


def multi_label_report(
    labels: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
    label_list: Sequence[str],
    threshold: float = 0.5,
) -> dict[str, float]:
    """Subset accuracy, micro and macro precision/recall/F1 for multi-label predictions.

    Args:
      labels: `[num_examples, num_labels]` multi-hot true labels.
      scores: `[num_examples, num_labels]` per-label probabilities; a label is predicted when
        its score is >= `threshold`.
      label_list: the label names, one per column.
      threshold: decision threshold on `scores`.
    """
    label_matrix = np.asarray(labels).astype(bool)
    prediction_matrix = np.asarray(scores, dtype=np.float64) >= threshold
    expected_shape = (label_matrix.shape[0], len(label_list))
    if (
        label_matrix.shape != expected_shape
        or prediction_matrix.shape != expected_shape
        or not label_matrix.size
    ):
        raise ValueError(
            f"Multi-label labels {label_matrix.shape} and scores {prediction_matrix.shape} "
            "must both have shape [num_examples, num_labels] with num_examples > 0 and "
            f"num_labels = {len(label_list)}"
        )
    true_positives = int(np.sum(label_matrix & prediction_matrix))
    micro = _precision_recall_f1_from_counts(
        true_positives, int(np.sum(prediction_matrix)), int(np.sum(label_matrix))
    )
    report = {
        "subset_accuracy": float(np.mean(np.all(label_matrix == prediction_matrix, axis=1))),
        "micro_precision": micro[0],
        "micro_recall": micro[1],
        "micro_f1": micro[2],
    }
    report.update(_per_column_report(label_matrix, prediction_matrix, label_list))
    return report


def _class_ids(predictions_or_scores) -> np.ndarray:
    """Class ids from either `[n]` predicted ids or `[n, num_labels]` scores (argmax)."""
    array = np.asarray(predictions_or_scores)
    return np.argmax(array, axis=-1) if array.ndim == 2 else array


def task_metrics(
    task_metric_name: str,
    labels,
    predictions_or_scores,
    label_list: Sequence[str],
    threshold: float = 0.5,
) -> dict[str, float]:
    """All metrics of one metric family, as a flat `{key: float}` dict (see the module doc).

    Args:
      task_metric_name: one of `METRIC_NAMES`, e.g. a processor's `metric_name`.
      labels: `[num_examples]` class ids or regression targets, or, for `multi_label`,
        `[num_examples, num_labels]` multi-hot rows.
      predictions_or_scores: `[num_examples]` predicted class ids or regression values, or
        `[num_examples, num_labels]` scores (probabilities or logits; classes are picked by
        argmax, multi-label columns by `score >= threshold`).
      label_list: the class names (unused for regression).
      threshold: the multi-label decision threshold.
    """
    _check_metric_name(task_metric_name)
    if task_metric_name == PEARSON_AND_SPEARMAN:
        return {
            "pearson": pearson(labels, predictions_or_scores),
            "spearman": spearman(labels, predictions_or_scores),
        }
    if task_metric_name == MULTI_LABEL:
        return multi_label_report(labels, predictions_or_scores, label_list, threshold)
    predictions = _class_ids(predictions_or_scores)
    if task_metric_name == PER_CLASS:
        return per_class_report(labels, predictions, label_list)
    metrics = {"eval_accuracy": accuracy(labels, predictions)}
    if task_metric_name == ACCURACY_AND_F1:
        scores = precision_recall_f1(labels, predictions, POSITIVE_CLASS_INDEX)
        metrics["precision"], metrics["recall"], metrics["f1"] = scores
    elif task_metric_name == MCC:
        metrics["mcc"] = matthews_corrcoef(labels, predictions)
    return metrics
