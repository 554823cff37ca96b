"""Tests for squad_evaluate.py against scores computed by hand from the official SQuAD rules."""

import json
import os
import random
import subprocess
import sys

import pytest

import squad_evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "text, expected",
    [
        # Lower case, punctuation deleted (not replaced by a space), articles dropped as words.
        ("The  Cat's-hat, an apple!", "catshat apple"),
        ("theater anthem", "theater anthem"),
        ("A", ""),
        ("  New\tYork  ", "new york"),
        ("1,000.", "1000"),
    ],
)
def test_normalize_answer(text, expected):
    assert squad_evaluate.normalize_answer(text) == expected


def test_compute_exact():
    assert squad_evaluate.compute_exact("The Cat", "cat.") == 1
    assert squad_evaluate.compute_exact("Denver Broncos", "Broncos") == 0
    assert squad_evaluate.compute_exact("", "") == 1


@pytest.mark.parametrize(
    "gold, prediction, expected",
    [
        # Shared: quick, fox. P = 2/3, R = 2/3 -> F1 = 2/3.
        ("the quick brown fox", "quick fox jumps", 2 / 3),
        # Gold [b, b, c], prediction [b, d]: one shared b. P = 1/2, R = 1/3 -> 2/5.
        ("b b c", "b d", 0.4),
        # Gold [new, york, city], prediction [new, york]: P = 1, R = 2/3 -> 0.8.
        ("New York City", "new york", 0.8),
        ("a cat", "the dog", 0.0),
        # No-answer on either side: 1 only when both are empty after normalization.
        ("", "", 1.0),
        ("", "Paris", 0.0),
        ("the", "", 1.0),
    ],
)
def test_compute_f1(gold, prediction, expected):
    assert squad_evaluate.compute_f1(gold, prediction) == pytest.approx(expected, rel=1e-12)


def squad_data():
    """Two answerable and two unanswerable questions (SQuAD 2.0 style)."""
    return [
        {
            "title": "t",
            "paragraphs": [
                {
                    "context": "c",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "?",
                            "answers": [
                                {"text": "Denver Broncos", "answer_start": 0},
                                {"text": "the Broncos", "answer_start": 0},
                            ],
                        },
                        {
                            "id": "q2",
                            "question": "?",
                            "answers": [{"text": "New York City", "answer_start": 0}],
                        },
                    ],
                },
                {
                    "context": "c",
                    "qas": [
                        {"id": "q3", "question": "?", "answers": [], "is_impossible": True},
                        {"id": "q4", "question": "?", "answers": [], "is_impossible": True},
                    ],
                },
            ],
        }
    ]


# q1: "Broncos" matches gold "the Broncos" exactly (best of two golds): EM 1, F1 1.
# q2: "New York" vs "New York City": EM 0, F1 0.8.
# q3: "" for an unanswerable question: EM 1, F1 1.   q4: "Paris" for one: EM 0, F1 0.
PREDICTIONS = {"q1": "Broncos", "q2": "New York", "q3": "", "q4": "Paris"}
NA_PROBS = {"q1": 0.1, "q2": 0.5, "q3": 0.9, "q4": 0.3}


def test_evaluate_v2_breakdown():
    result = squad_evaluate.evaluate(squad_data(), PREDICTIONS)
    assert list(result) == [
        "exact",
        "f1",
        "total",
        "HasAns_exact",
        "HasAns_f1",
        "HasAns_total",
        "NoAns_exact",
        "NoAns_f1",
        "NoAns_total",
    ]
    assert result == pytest.approx(
        {
            "exact": 100 * 2 / 4,
            "f1": 100 * 2.8 / 4,
            "total": 4,
            "HasAns_exact": 100 * 1 / 2,
            "HasAns_f1": 100 * 1.8 / 2,
            "HasAns_total": 2,
            "NoAns_exact": 100 * 1 / 2,
            "NoAns_f1": 100 * 1 / 2,
            "NoAns_total": 2,
        }
    )


def test_best_thresholds():
    # Walking up the no-answer scores from "everything answered ''" (2 correct no-answers):
    #   q1 (0.1): +EM 1 / +F1 1       -> EM 3, F1 3   (best for both, at 0.1)
    #   q4 (0.3): "Paris" for no-answer, -1 -> EM 2, F1 2
    #   q2 (0.5): +EM 0 / +F1 0.8     -> EM 2, F1 2.8 (still below 3)
    #   q3 (0.9): "" for no-answer, 0
    result = squad_evaluate.evaluate(squad_data(), PREDICTIONS, NA_PROBS)
    assert list(result)[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
    assert result["best_exact"] == pytest.approx(75.0)
    assert result["best_exact_thresh"] == 0.1
    assert result["best_f1"] == pytest.approx(75.0)
    assert result["best_f1_thresh"] == 0.1
    # The default threshold 1.0 is above every score: plain scores are unchanged.
    assert result["exact"] == pytest.approx(50.0)
    # Without q4's wrong answer the F1 walk would reach 3.8 at q2 (0.5).
    better = dict(PREDICTIONS, q4="")
    result = squad_evaluate.evaluate(squad_data(), better, NA_PROBS)
    assert result["best_f1"] == pytest.approx(95.0)
    assert result["best_f1_thresh"] == 0.5


def test_na_prob_thresh_answers_no_answer_above_it():
    # Above 0.2: q4 ("Paris" becomes "", now right), q2 ("New York" becomes "", now wrong)
    # and q3 (already ""). EM: q1 1, q2 0, q3 1, q4 1; F1 the same.
    result = squad_evaluate.evaluate(squad_data(), PREDICTIONS, NA_PROBS, na_prob_thresh=0.2)
    assert result["exact"] == pytest.approx(75.0)
    assert result["f1"] == pytest.approx(75.0)
    assert result["NoAns_exact"] == pytest.approx(100.0)
    assert result["HasAns_f1"] == pytest.approx(50.0)
    # Only scores strictly above the threshold count: at 0.3, q4 keeps "Paris".
    result = squad_evaluate.evaluate(squad_data(), PREDICTIONS, NA_PROBS, na_prob_thresh=0.3)
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(50.0)


def test_v2_rules_on_answerable_data_have_no_no_answer_keys_and_count_missing_as_wrong(caplog):
    data = squad_data()
    del data[0]["paragraphs"][1]
    with caplog.at_level("WARNING"):
        result = squad_evaluate.evaluate(data, {"q1": "Denver Broncos!"})
    assert dict(result) == {
        "exact": 50.0,
        "f1": 50.0,
        "total": 2,
        "HasAns_exact": 50.0,
        "HasAns_f1": 50.0,
        "HasAns_total": 2,
    }
    assert "Missing prediction for q2" in caplog.text


def write_json(tmp_path, name, value):
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ SQuAD 1.1 rules


def official_v1_scores(dataset, predictions):
    """The rules of the official evaluate-v1.1.py, re-implemented independently here: every
    question occurrence counts; a missing prediction adds 0 to the sum and 1 to the total;
    F1 is 0 whenever no normalized word is shared (even if both sides are empty)."""
    import re
    import string
    from collections import Counter

    def normalized(text):
        text = "".join(c for c in text.lower() if c not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())

    def f1(prediction, gold):
        shared = sum((Counter(normalized(prediction).split()) & Counter(normalized(gold).split()))
                     .values())
        if shared == 0:
            return 0.0
        precision = shared / len(normalized(prediction).split())
        recall = shared / len(normalized(gold).split())
        return 2 * precision * recall / (precision + recall)

    exact_sum = f1_sum = count = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                count += 1
                if qa["id"] in predictions:
                    golds = [answer["text"] for answer in qa["answers"]]
                    prediction = predictions[qa["id"]]
                    exact_sum += max(normalized(prediction) == normalized(g) for g in golds)
                    f1_sum += max(f1(prediction, g) for g in golds)
    return {"exact_match": 100.0 * exact_sum / count, "f1": 100.0 * f1_sum / count}


def v1_data():
    """SQuAD 1.1-style questions that the two versions' rules score differently: q1 appears
    twice (a duplicated id) with different golds, q2 has a gold answer that normalizes to
    the empty string next to a real one, q3 has only such a gold, q4 is not predicted."""

    def qa(qid, *golds):
        return {
            "id": qid,
            "question": "?",
            "answers": [{"text": gold, "answer_start": 0} for gold in golds],
        }

    return [
        {
            "title": "t",
            "paragraphs": [
                {"context": "c", "qas": [qa("q1", "Denver Broncos"), qa("q2", "The", "Paris")]},
                {"context": "c", "qas": [qa("q1", "Carolina Panthers"), qa("q3", "a")]},
                {"context": "c", "qas": [qa("q4", "London")]},
            ],
        }
    ]


V1_PREDICTIONS = {"q1": "Broncos", "q2": "the", "q3": "an", "q4_typo": "London"}


def test_v1_rules_score_every_occurrence_and_every_gold():
    # By hand, by the 1.1 rules (5 question occurrences):
    #   q1 #1 "Broncos" vs "Denver Broncos":    EM 0, F1 2*1*(1/2)/(3/2) = 2/3
    #   q1 #2 "Broncos" vs "Carolina Panthers": EM 0, F1 0
    #   q2 "the" vs {"The", "Paris"}: "The" normalizes to "" like "the": EM 1, F1 0
    #   q3 "an" vs {"a"}: both normalize to "": EM 1, F1 0
    #   q4 no prediction: 0, 0 (still counted)
    result = squad_evaluate.evaluate(v1_data(), V1_PREDICTIONS, squad_version="1.1")
    assert list(result) == ["exact_match", "f1"]
    assert result["exact_match"] == pytest.approx(100 * 2 / 5, rel=1e-12)
    assert result["f1"] == pytest.approx(100 * (2 / 3) / 5, rel=1e-12)
    assert dict(result) == pytest.approx(official_v1_scores(v1_data(), V1_PREDICTIONS), rel=1e-12)


def test_v2_rules_differ_on_the_same_data():
    # By hand, by the 2.0 rules (4 distinct ids, the last q1 wins):
    #   q1 vs "Carolina Panthers": 0, 0.   q2: "The" dropped, gold "Paris": EM 0, F1 0.
    #   q3: its only gold "a" dropped, so gold "" and answerable=True; "an" -> "": EM 1, F1 1.
    #   q4 missing: 0.
    result = squad_evaluate.evaluate(v1_data(), V1_PREDICTIONS, squad_version="2.0")
    assert result["total"] == 4
    assert result["exact"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(25.0)


def test_v1_rules_match_the_independent_implementation_on_mixed_cases():
    rng = random.Random(5)
    words = ["the", "a", "Denver", "Broncos", "new", "york", "city", "!", "an", "paris"]

    def phrase():
        return " ".join(rng.choice(words) for _ in range(rng.randint(0, 4)))

    qas = [
        {"id": f"q{rng.randint(0, 30)}", "answers": [{"text": phrase()} for _ in range(3)]}
        for _ in range(60)
    ]
    data = [{"paragraphs": [{"qas": qas}]}]
    predictions = {f"q{i}": phrase() for i in range(30) if i % 7}  # some are missing
    got = squad_evaluate.evaluate(data, predictions, squad_version="1.1")
    assert dict(got) == pytest.approx(official_v1_scores(data, predictions), rel=1e-12)
    # The cases are mixed enough for the two versions' rules to disagree.
    v2 = squad_evaluate.evaluate(data, predictions, squad_version="2.0")
    assert v2["exact"] != pytest.approx(got["exact_match"])


def test_v1_rules_refuse_no_answer_scores_and_unanswerable_questions():
    with pytest.raises(ValueError, match="no-answer scores are for SQuAD 2.0"):
        squad_evaluate.evaluate(v1_data(), V1_PREDICTIONS, {"q1": 0.0}, squad_version="1.1")
    with pytest.raises(ValueError, match="question 'q3' has no gold answer"):
        squad_evaluate.evaluate(squad_data(), PREDICTIONS, squad_version="1.1")
    with pytest.raises(ValueError, match="unknown SQuAD version '3'"):
        squad_evaluate.evaluate(v1_data(), V1_PREDICTIONS, squad_version="3")


@pytest.mark.parametrize(
    "version, override, expected_keys",
    [
        ("1.1", None, ["exact_match", "f1"]),
        ("v1.1", None, ["exact_match", "f1"]),
        ("1.1", "2.0", ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"]),
        (None, "1.1", ["exact_match", "f1"]),
        (None, None, ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"]),
    ],
)
def test_cli_takes_the_rules_from_the_data_version_unless_told(
    tmp_path, version, override, expected_keys
):
    data = {"data": v1_data()}
    if version:
        data["version"] = version
    data_file = write_json(tmp_path, "dev.json", data)
    pred_file = write_json(tmp_path, "predictions.json", V1_PREDICTIONS)
    out_file = str(tmp_path / "eval.json")
    args = [data_file, pred_file, "--out_file", out_file]
    if override:
        args += ["--squad_version", override]
    assert squad_evaluate.main(args) == 0
    with open(out_file) as reader:
        assert list(json.load(reader)) == expected_keys


def test_cli_writes_out_file(tmp_path):
    data_file = write_json(tmp_path, "dev.json", {"version": "v2.0", "data": squad_data()})
    pred_file = write_json(tmp_path, "predictions.json", PREDICTIONS)
    na_file = write_json(tmp_path, "null_odds.json", NA_PROBS)
    out_file = str(tmp_path / "eval.json")
    status = squad_evaluate.main(
        [
            data_file,
            pred_file,
            "--na_prob_file",
            na_file,
            "--na_prob_thresh",
            "0.2",
            "--out_file",
            out_file,
        ]
    )
    assert status == 0
    with open(out_file) as reader:
        result = json.load(reader)
    assert result["exact"] == pytest.approx(75.0)
    assert result["best_f1"] == pytest.approx(75.0)


def test_cli_runs_as_a_script(tmp_path):
    data_file = write_json(tmp_path, "dev.json", {"data": squad_data()})
    pred_file = write_json(tmp_path, "predictions.json", PREDICTIONS)
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "squad_evaluate.py"), data_file, pred_file],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(completed.stdout)
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(70.0)


@pytest.mark.parametrize(
    "files, message",
    [
        ({"data": {"version": "x"}}, "dev.json: not SQuAD JSON"),
        ({"predictions": ["a"]}, "predictions.json: the prediction must be a JSON object"),
        ({"predictions": {"q1": 3}}, "predictions.json: question 'q1': bad prediction value 3"),
        ({"na": {"q1": 0.5}}, "lack 3 predicted questions, e.g. 'q2'"),
    ],
)
def test_cli_reports_bad_files(tmp_path, capsys, files, message):
    data_file = write_json(tmp_path, "dev.json", files.get("data", {"data": squad_data()}))
    pred_file = write_json(tmp_path, "predictions.json", files.get("predictions", PREDICTIONS))
    args = [data_file, pred_file]
    if "na" in files:
        args += ["--na_prob_file", write_json(tmp_path, "null_odds.json", files["na"])]
    assert squad_evaluate.main(args) == 2
    assert message in capsys.readouterr().err


def test_unreadable_file_is_named(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json: cannot read the SQuAD data"):
        squad_evaluate.evaluate_files(str(broken), str(broken))
