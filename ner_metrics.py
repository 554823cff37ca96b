"""Entity-level precision, recall and F1 by the conlleval rules, and token accuracy.

An entity counts as correct when the predicted sentence has a chunk of the same type over
exactly the same words as the gold one. Chunks are read by `ner_tags.get_chunks` (the conlleval
rules, which seqeval's default mode follows too), so a prediction that breaks its scheme (an I-X
after O) is still scored the way conlleval would. Scores are fractions in [0, 1], not the
percentages conlleval prints; a ratio with a zero denominator is 0.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import ner_tags


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _scores(correct: int, num_gold: int, num_predicted: int) -> dict[str, float]:
    precision = _ratio(correct, num_predicted)
    recall = _ratio(correct, num_gold)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def entity_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: str
) -> dict[str, float]:
    """Scores per-sentence tag sequences against the gold ones.

    Args:
      gold: one tag list per sentence.
      predicted: as many tag lists, each as long as its gold sentence.
      scheme: the tag scheme (`ner_tags.SCHEMES`); it decides which prefixes are valid tags.

    Returns:
      A flat dict: `precision`, `recall`, `f1` (micro-averaged over all entities),
      `token_accuracy` (over every word, O included), the counts `num_gold`, `num_predicted`,
      `num_correct`, and per entity type X `X/precision`, `X/recall`, `X/f1` and `X/support`
      (its number of gold entities). Types seen only in the predictions are listed too.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    gold_counts: collections.Counter[str] = collections.Counter()
    predicted_counts: collections.Counter[str] = collections.Counter()
    correct_counts: collections.Counter[str] = collections.Counter()
    num_tokens = num_correct_tokens = 0
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted, strict=True)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"sentence {index}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted"
            )
        gold_chunks = set(ner_tags.get_chunks(gold_tags, scheme))
        predicted_chunks = set(ner_tags.get_chunks(predicted_tags, scheme))
        gold_counts.update(chunk.type for chunk in gold_chunks)
        predicted_counts.update(chunk.type for chunk in predicted_chunks)
        correct_counts.update(chunk.type for chunk in gold_chunks & predicted_chunks)
        num_tokens += len(gold_tags)
        num_correct_tokens += sum(a == b for a, b in zip(gold_tags, predicted_tags, strict=True))

    num_gold, num_predicted = sum(gold_counts.values()), sum(predicted_counts.values())
    num_correct = sum(correct_counts.values())
    result = _scores(num_correct, num_gold, num_predicted)
    result["token_accuracy"] = _ratio(num_correct_tokens, num_tokens)
    result.update(num_gold=num_gold, num_predicted=num_predicted, num_correct=num_correct)
    for entity_type in sorted(gold_counts | predicted_counts):
        type_scores = _scores(
            correct_counts[entity_type], gold_counts[entity_type], predicted_counts[entity_type]
        )
        for name, value in type_scores.items():
            result[f"{entity_type}/{name}"] = value
        result[f"{entity_type}/support"] = gold_counts[entity_type]
    return result
