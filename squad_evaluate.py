"""Exact match and F1 of SQuAD 1.1 / 2.0 predictions, by the official evaluation rules.

Usage:
  python squad_evaluate.py data.json predictions.json [--na_prob_file null_odds.json]
      [--na_prob_thresh 1.0] [--squad_version 1.1|2.0] [--out_file eval.json]

Answers are compared after normalization (lower case, ASCII punctuation removed, the articles
a / an / the removed, whitespace collapsed); F1 is over the normalized words. Each question takes
its best score over its gold answers. Scores are percentages. The two official scripts
(evaluate-v1.1.py and evaluate-v2.0.py) differ, and each version is scored by its own:

SQuAD 1.1 (data whose "version" is "1.1", or `--squad_version 1.1`):
  - every question in the file counts, so a question id that appears twice is scored twice;
  - every gold answer counts, even one that normalizes to "" (it matches a prediction that
    normalizes to "" exactly, with F1 0: there is no word to share);
  - a question without a prediction scores 0 and still counts in the total;
  - no-answer scores do not apply; the output keys are `exact_match` and `f1`.

SQuAD 2.0 (any other data, or `--squad_version 2.0`):
  - questions are keyed by id, so of a duplicated id only the last occurrence counts;
  - gold answers that normalize to "" are dropped; a question left with none (unanswerable)
    has the single gold answer "", and F1 against "" is 1 when the prediction is empty too;
  - a question without a prediction scores 0 (the official script stops instead);
  - with a file of no-answer scores (`null_odds.json` from run_squad.py, or probabilities), a
    question whose score exceeds `--na_prob_thresh` counts as answered "", and the best
    achievable scores over all thresholds are reported as well;
  - the output keys are the official script's (`exact`, `f1`, `total`, `HasAns_*`,
    `NoAns_*`, `best_*`).

A question without a prediction is logged.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import string
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import input_files

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)

logger = logging.getLogger(__name__)


def normalize_answer(text: str) -> str:
    """Lower-cases, then drops punctuation and articles, then collapses whitespace."""
    text = text.lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """The normalized words of an answer ([] for the empty answer)."""
    return normalize_answer(text).split() if text else []


def compute_exact(gold_answer: str, predicted_answer: str) -> int:
    """1 if the two answers are equal after normalization, else 0."""
    return int(normalize_answer(gold_answer) == normalize_answer(predicted_answer))


def compute_f1(gold_answer: str, predicted_answer: str) -> float:
    """Harmonic mean of word precision and recall (counting repeated words as often as shared).

    If either answer is empty (no answer), F1 is 1 when both are, else 0.
    """
    gold_tokens = answer_tokens(gold_answer)
    predicted_tokens = answer_tokens(predicted_answer)
    if not gold_tokens or not predicted_tokens:
        return float(gold_tokens == predicted_tokens)
    num_same = sum((collections.Counter(gold_tokens) & collections.Counter(predicted_tokens))
                   .values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(predicted_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def compute_f1_v1(gold_answer: str, predicted_answer: str) -> float:
    """F1 by the SQuAD 1.1 rules: as `compute_f1`, but a gold answer with no words scores 0
    whatever the prediction (the 1.1 script counts shared words and has no empty case)."""
    if not answer_tokens(gold_answer):
        return 0.0
    return compute_f1(gold_answer, predicted_answer)


def _questions(dataset: Sequence[Any]) -> list[dict[str, Any]]:
    """The question objects of a SQuAD "data" list, in order, after checking their shape."""
    questions = []
    for article_index, article in enumerate(dataset):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise ValueError(f"data[{article_index}]: no \"paragraphs\" list")
        for paragraph_index, paragraph in enumerate(paragraphs):
            where = f"data[{article_index}].paragraphs[{paragraph_index}]"
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                raise ValueError(f"{where}: no \"qas\" list")
            for qa in qas:
                if not isinstance(qa, dict) or "id" not in qa:
                    raise ValueError(f"{where}: a question without an \"id\"")
                answers = qa.get("answers")
                if not isinstance(answers, list) or not all(
                    isinstance(answer, dict) and isinstance(answer.get("text"), str)
                    for answer in answers
                ):
                    raise ValueError(
                        f"{where}: question {qa['id']!r} needs an \"answers\" list of "
                        "{\"text\": ...} objects"
                    )
                questions.append(qa)
    return questions


def gold_answers(qa: Mapping[str, Any]) -> list[str]:
    """The gold answer texts of a question by the SQuAD 2.0 rules: those that normalize to
    something; [""] when none do (unanswerable)."""
    answers = [answer["text"] for answer in qa["answers"] if normalize_answer(answer["text"])]
    return answers or [""]


def get_raw_scores(
    questions: Sequence[Mapping[str, Any]], predictions: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per question id, the best exact match and F1 of its prediction over its gold answers
    (SQuAD 2.0 rules: the last occurrence of a duplicated id wins).

    Questions without a prediction are left out (and logged).
    """
    exact_scores = {}
    f1_scores = {}
    for qa in questions:
        qas_id = qa["id"]
        if qas_id not in predictions:
            logger.warning("Missing prediction for %s", qas_id)
            continue
        golds = gold_answers(qa)
        exact_scores[qas_id] = max(compute_exact(gold, predictions[qas_id]) for gold in golds)
        f1_scores[qas_id] = max(compute_f1(gold, predictions[qas_id]) for gold in golds)
    return exact_scores, f1_scores


def apply_no_answer_threshold(
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    qid_to_has_ans: Mapping[str, bool],
    na_prob_thresh: float,
) -> dict[str, float]:
    """Scores after answering "" wherever the no-answer score exceeds `na_prob_thresh`."""
    thresholded = {}
    for qas_id, score in scores.items():
        if na_probs[qas_id] > na_prob_thresh:
            thresholded[qas_id] = float(not qid_to_has_ans[qas_id])
        else:
            thresholded[qas_id] = score
    return thresholded


def _summary(
    exact_scores: Mapping[str, float], f1_scores: Mapping[str, float], qids: Sequence[str]
) -> collections.OrderedDict:
    """Mean exact / F1 in percent over `qids`; a question without a score counts as 0."""
    total = len(qids)
    return collections.OrderedDict(
        [
            ("exact", 100.0 * sum(exact_scores.get(qid, 0) for qid in qids) / total),
            ("f1", 100.0 * sum(f1_scores.get(qid, 0) for qid in qids) / total),
            ("total", total),
        ]
    )


def find_best_thresh(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    qid_to_has_ans: Mapping[str, bool],
) -> tuple[float, float]:
    """The best total score (percent) over no-answer thresholds, and the threshold reaching it.

    Start with a threshold below every no-answer score (all questions answered "", so each
    unanswerable question scores 1), then raise it past the questions one at a time in order of
    their no-answer score, letting each keep its prediction: an answerable question gains its
    score, an unanswerable one loses 1 if its prediction is not "". Ties keep the lower
    threshold.
    """
    current = sum(1 for qid in scores if not qid_to_has_ans[qid])
    best_score = current
    best_thresh = 0.0
    for qid in sorted(na_probs, key=na_probs.__getitem__):
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best_score:
            best_score = current
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(qid_to_has_ans), best_thresh


SQUAD_VERSIONS = ("1.1", "2.0")


def data_version(squad_json: Mapping[str, Any]) -> str:
    """The rules a SQuAD JSON file asks for: "1.1" when its "version" says so, else "2.0"."""
    return "1.1" if str(squad_json.get("version", "")).lstrip("v") == "1.1" else "2.0"


def evaluate_v1(
    questions: Sequence[Mapping[str, Any]], predictions: Mapping[str, str]
) -> collections.OrderedDict:
    """exact_match and f1 (percent) by the SQuAD 1.1 rules, over every question occurrence.

    Raises:
      ValueError: a question has no gold answer (the 1.1 rules cannot score it).
    """
    exact_total = f1_total = 0.0
    for qa in questions:
        golds = [answer["text"] for answer in qa["answers"]]
        if not golds:
            raise ValueError(
                f"question {qa['id']!r} has no gold answer: the SQuAD 1.1 rules need one "
                "(unanswerable questions are scored by the 2.0 rules)"
            )
        if qa["id"] not in predictions:
            logger.warning("Missing prediction for %s: it scores 0", qa["id"])
            continue
        prediction = predictions[qa["id"]]
        exact_total += max(compute_exact(gold, prediction) for gold in golds)
        f1_total += max(compute_f1_v1(gold, prediction) for gold in golds)
    return collections.OrderedDict(
        [
            ("exact_match", 100.0 * exact_total / len(questions)),
            ("f1", 100.0 * f1_total / len(questions)),
        ]
    )


def evaluate(
    dataset: Sequence[Any],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
    squad_version: str = "2.0",
) -> collections.OrderedDict:
    """Scores `predictions` ({qas_id: answer}) against a SQuAD "data" list.

    Args:
      dataset: the "data" list of a SQuAD 1.1 / 2.0 JSON file.
      predictions: the answer to each question, "" for no answer.
      na_probs: optional no-answer score per question (e.g. null_odds.json); enables the
        `best_*` keys. SQuAD 2.0 only.
      na_prob_thresh: a question whose no-answer score exceeds this is answered "".
      squad_version: "1.1" or "2.0": whose official rules score the data (module docstring).

    Returns:
      1.1: exact_match, f1.
      2.0: exact, f1, total; HasAns_* and NoAns_* for whichever kinds of question the data
      has; best_exact, best_exact_thresh, best_f1, best_f1_thresh when `na_probs` is given.

    Raises:
      ValueError: the data has no questions, `na_probs` lacks a predicted question, or does
        not apply (1.1), or the version is unknown.
    """
    if squad_version not in SQUAD_VERSIONS:
        raise ValueError(f"unknown SQuAD version {squad_version!r}: use one of {SQUAD_VERSIONS}")
    questions = _questions(dataset)
    if not questions:
        raise ValueError("the data file has no questions to evaluate")
    if squad_version == "1.1":
        if na_probs is not None:
            raise ValueError("no-answer scores are for SQuAD 2.0; SQuAD 1.1 rules ignore them")
        return evaluate_v1(questions, predictions)
    qid_to_has_ans = {qa["id"]: bool(qa["answers"]) for qa in questions}
    exact_raw, f1_raw = get_raw_scores(questions, predictions)
    if na_probs is None:
        scored_na_probs = {qid: 0.0 for qid in predictions}
    else:
        missing = [qid for qid in exact_raw if qid not in na_probs]
        if missing:
            raise ValueError(
                f"the no-answer scores lack {len(missing)} predicted questions, e.g. {missing[0]!r}"
            )
        scored_na_probs = dict(na_probs)
    exact = apply_no_answer_threshold(exact_raw, scored_na_probs, qid_to_has_ans, na_prob_thresh)
    f1 = apply_no_answer_threshold(f1_raw, scored_na_probs, qid_to_has_ans, na_prob_thresh)

    result = _summary(exact, f1, list(qid_to_has_ans))
    for prefix, has_answer in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has_ans in qid_to_has_ans.items() if has_ans == has_answer]
        if qids:
            for key, value in _summary(exact, f1, qids).items():
                result[f"{prefix}_{key}"] = value
    if na_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = find_best_thresh(
            predictions, exact_raw, scored_na_probs, qid_to_has_ans
        )
        result["best_f1"], result["best_f1_thresh"] = find_best_thresh(
            predictions, f1_raw, scored_na_probs, qid_to_has_ans
        )
    return result


def _load_json(path: str, what: str) -> Any:
    try:
        text = input_files.read_text(
            path, what=what, hint="SQuAD files are UTF-8", error_type=ValueError
        )
        return json.loads(text)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the {what} ({error})") from error


def _load_string_map(path: str, what: str, value_type: type | tuple[type, ...]) -> dict[str, Any]:
    """A JSON object of question id -> value, with every value checked."""
    values = _load_json(path, what)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the {what} must be a JSON object keyed by question id")
    for qas_id, value in values.items():
        if isinstance(value, bool) or not isinstance(value, value_type):
            raise ValueError(f"{path}: question {qas_id!r}: bad {what} value {value!r}")
    return values


def evaluate_files(
    data_file: str,
    prediction_file: str,
    na_prob_file: str | None = None,
    na_prob_thresh: float = 1.0,
    out_file: str | None = None,
    squad_version: str | None = None,
) -> collections.OrderedDict:
    """`evaluate` on files: SQuAD JSON, predictions.json and optionally null_odds.json.

    The rules are `squad_version`'s, else those the data file's "version" names
    (`data_version`). Writes the result as JSON to `out_file` when given, and returns it.

    Raises:
      ValueError: a file cannot be read or has the wrong shape; the message names it.
    """
    data = _load_json(data_file, "SQuAD data")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{data_file}: not SQuAD JSON: expected an object with a \"data\" list")
    predictions = _load_string_map(prediction_file, "prediction", str)
    na_probs = None
    if na_prob_file:
        na_probs = _load_string_map(na_prob_file, "no-answer score", (int, float))
    try:
        result = evaluate(
            data["data"], predictions, na_probs, na_prob_thresh, squad_version or data_version(data)
        )
    except ValueError as error:
        raise ValueError(f"evaluating {prediction_file} on {data_file}: {error}") from error
    if out_file:
        with open(out_file, "w", encoding="utf-8") as writer:
            json.dump(result, writer)
    return result


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate SQuAD 1.1 / 2.0 predictions.")
    parser.add_argument("data_file", help="SQuAD JSON with gold answers, e.g. dev-v2.0.json")
    parser.add_argument("pred_file", help="predictions.json: {question id: answer}")
    parser.add_argument(
        "--na_prob_file", "--na-prob-file", "-n",
        help="no-answer score per question id, e.g. null_odds.json",
    )
    parser.add_argument(
        "--na_prob_thresh", "--na-prob-thresh", "-t", type=float, default=1.0,
        help="predict no answer when the no-answer score is above this (default 1.0)",
    )
    parser.add_argument(
        "--squad_version", choices=SQUAD_VERSIONS,
        help="score by this version's official rules (default: the data file's \"version\")",
    )
    parser.add_argument(
        "--out_file", "--out-file", "-o", help="write the scores as JSON here, not to stdout"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    logging.basicConfig(format="%(levelname)s: %(message)s")
    args = _parse_args(argv)
    try:
        result = evaluate_files(
            args.data_file,
            args.pred_file,
            args.na_prob_file,
            args.na_prob_thresh,
            args.out_file,
            args.squad_version,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.out_file:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
