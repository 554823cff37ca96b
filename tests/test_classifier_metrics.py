"""Tests for classifier_metrics against values worked out by hand (arithmetic in comments)."""

import math

import numpy as np
import pytest

import classifier_metrics as cm


def test_accuracy_and_positive_class_f1_from_scores():
    labels = [1, 1, 0, 0, 1]
    # argmax of each row: 1, 0, 0, 1, 1
    scores = [[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6]]
    # Class 1: TP = examples 0 and 4 = 2, FP = example 3 = 1, FN = example 1 = 1.
    # P = 2/3, R = 2/3, F1 = 2/3; correct = examples 0, 2, 4 -> accuracy 3/5.
    metrics = cm.task_metrics("accuracy_and_f1", labels, scores, ["0", "1"])
    assert metrics == pytest.approx(
        {"eval_accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3}
    )
    assert cm.task_metrics("accuracy", [0, 1, 1, 0], [0, 1, 0, 0], ["0", "1"]) == {
        "eval_accuracy": 0.75
    }


def test_matthews_correlation_binary_multiclass_and_constant():
    # TP = 2, FN = 1, TN = 2, FP = 1: (2*2 - 1*1) / sqrt(3 * 3 * 3 * 3) = 3/9.
    labels, predictions = [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1]
    metrics = cm.task_metrics("mcc", labels, predictions, ["0", "1"])
    assert metrics == pytest.approx({"eval_accuracy": 4 / 6, "mcc": 1 / 3})

    # Three classes: s = 4, c = 2 correct, t = p = [1, 1, 2], sum p_k t_k = 1 + 1 + 4 = 6;
    # (2*4 - 6) / sqrt((16 - 6) * (16 - 6)) = 2/10.
    assert cm.matthews_corrcoef([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(0.2)

    # Constant predictions: the denominator is 0, so MCC is defined as 0.
    assert cm.matthews_corrcoef([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0
    assert cm.matthews_corrcoef([1, 1], [1, 1]) == 0.0


def test_pearson_by_hand_and_constant_vectors():
    # x = [1, 2, 3], y = [2, 4, 7]: deviations [-1, 0, 1] and [-7/3, -1/3, 8/3];
    # sum of products 7/3 + 8/3 = 5, sums of squares 2 and 114/9 -> 5 / sqrt(2 * 114/9).
    assert cm.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    assert cm.pearson([1, 2, 3], [5, 5, 5]) == 0.0
    assert cm.pearson([4, 4], [4, 4]) == 0.0


def test_spearman_uses_average_ranks_for_ties():
    assert list(cm.average_ranks([10, 20, 20, 5])) == [2, 3.5, 3.5, 1]
    assert list(cm.average_ranks([7, 7, 7])) == [2, 2, 2]
    # Ranks [1, 2.5, 2.5, 4] and [1, 4, 2.5, 2.5], both of mean 2.5: deviations
    # [-1.5, 0, 0, 1.5] and [-1.5, 1.5, 0, 0] -> 2.25 / sqrt(4.5 * 4.5) = 0.5.
    metrics = cm.task_metrics("pearson_and_spearman", [1, 2, 2, 3], [10, 30, 20, 20], [])
    assert metrics["spearman"] == pytest.approx(0.5)
    assert set(metrics) == {"pearson", "spearman"}
    # A monotone but non-linear relation has Spearman 1 and Pearson below 1.
    assert cm.spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)
    assert cm.pearson([1, 2, 3, 4], [1, 10, 100, 1000]) < 0.9


def test_per_class_report_with_a_class_that_never_occurs():
    # Classes a, b, c; c occurs in neither labels nor predictions.
    # a: TP 1, predicted 1, actual 2 -> P 1, R 1/2, F1 2*1/(1+2) = 2/3.
    # b: TP 2, predicted 3, actual 2 -> P 2/3, R 1, F1 2*2/(3+2) = 4/5.
    # Macro over a and b: P (1 + 2/3)/2 = 5/6, R (1/2 + 1)/2 = 3/4, F1 (2/3 + 4/5)/2 = 11/15.
    metrics = cm.task_metrics("per_class", [0, 0, 1, 1], [0, 1, 1, 1], ["a", "b", "c"])
    assert metrics == pytest.approx(
        {
            "eval_accuracy": 0.75,
            "precision_a": 1.0, "recall_a": 0.5, "f1_a": 2 / 3,
            "precision_b": 2 / 3, "recall_b": 1.0, "f1_b": 0.8,
            "precision_c": 0.0, "recall_c": 0.0, "f1_c": 0.0,
            "macro_precision": 5 / 6, "macro_recall": 0.75, "macro_f1": 11 / 15,
        }
    )  # fmt: skip


def test_per_class_report_when_classes_are_never_predicted():
    # Everything predicted as class 0. Class 0: TP 1, predicted 3, actual 1 -> P 1/3, R 1,
    # F1 2/(3+1) = 1/2. Classes 1 and 2 are never predicted: precision 0/0 -> 0, R 0, F1 0.
    metrics = cm.per_class_report([0, 1, 2], [0, 0, 0], ["x", "y", "z"])
    assert metrics["precision_y"] == 0.0 and metrics["f1_z"] == 0.0
    assert metrics["macro_precision"] == pytest.approx((1 / 3) / 3)
    assert metrics["macro_recall"] == pytest.approx(1 / 3)
    assert metrics["macro_f1"] == pytest.approx(0.5 / 3)
    assert all(np.isfinite(value) for value in metrics.values())


def test_multi_label_micro_macro_and_subset_accuracy():
    labels = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    scores = [[0.9, 0.2, 0.4], [0.1, 0.7, 0.6], [0.8, 0.5, 0.1]]
    # At 0.5 (inclusive) the predictions are [1,0,0], [0,1,1], [1,1,0]: only row 2 matches
    # exactly. TP = 1 + 1 + 2 = 4, predicted 5, actual 5 -> micro P = R = F1 = 4/5.
    # x: 2/2/2 -> 1, 1, 1; y: 2/2/2 -> 1, 1, 1; z: TP 0, predicted 1, actual 1 -> 0, 0, 0.
    metrics = cm.task_metrics("multi_label", labels, scores, ["x", "y", "z"])
    assert metrics == pytest.approx(
        {
            "subset_accuracy": 1 / 3,
            "micro_precision": 0.8, "micro_recall": 0.8, "micro_f1": 0.8,
            "precision_x": 1.0, "recall_x": 1.0, "f1_x": 1.0,
            "precision_y": 1.0, "recall_y": 1.0, "f1_y": 1.0,
            "precision_z": 0.0, "recall_z": 0.0, "f1_z": 0.0,
            "macro_precision": 2 / 3, "macro_recall": 2 / 3, "macro_f1": 2 / 3,
        }
    )  # fmt: skip
    # At 0.7: predictions [1,0,0], [0,1,0], [1,0,0]; TP 3, predicted 3, actual 5:
    # P 1, R 3/5, F1 2*3/(3+5) = 3/4; row 1 matches exactly.
    strict = cm.multi_label_report(labels, scores, ["x", "y", "z"], threshold=0.7)
    assert strict["micro_precision"] == 1.0
    assert strict["micro_recall"] == pytest.approx(0.6)
    assert strict["micro_f1"] == pytest.approx(0.75)
    assert strict["subset_accuracy"] == pytest.approx(1 / 3)


def test_main_metric_keys_name_a_returned_metric():
    assert cm.main_metric_key("accuracy_and_f1") == "f1"
    assert cm.main_metric_key("mcc") == "mcc"
    assert cm.main_metric_key("pearson_and_spearman") == "spearman"
    assert cm.main_metric_key("accuracy") == "eval_accuracy"
    assert cm.main_metric_key("per_class") == "macro_f1"
    assert cm.main_metric_key("multi_label") == "micro_f1"
    single = {"labels": [0, 1], "predictions_or_scores": [0, 1], "label_list": ["0", "1"]}
    for name in ("accuracy", "accuracy_and_f1", "mcc", "per_class"):
        assert cm.main_metric_key(name) in cm.task_metrics(name, **single)
    assert "spearman" in cm.task_metrics("pearson_and_spearman", [1.0, 2.0], [1.0, 3.0], [])
    multi = cm.task_metrics("multi_label", [[1, 0]], [[0.9, 0.1]], ["a", "b"])
    assert "micro_f1" in multi


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="Unknown metric 'bleu'"):
        cm.task_metrics("bleu", [0], [0], ["0"])
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        cm.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="zero examples"):
        cm.accuracy([], [])
    with pytest.raises(ValueError, match="Class ids must lie in"):
        cm.per_class_report([0, 3], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="num_labels = 3"):
        cm.multi_label_report([[1, 0]], [[0.5, 0.5]], ["a", "b", "c"])
