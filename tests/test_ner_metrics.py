"""Tests of ner_metrics: hand-worked conlleval scores and a streaming conlleval written here."""

import collections
import random

import pytest

import ner_metrics

PREFIXES = {"IOB1": "IB", "BIO": "BI", "IOBES": "BIES", "BMES": "BMES"}


def sentences(*texts):
    return [text.split() for text in texts]


def test_hand_worked_bio_scores():
    gold = sentences("B-PER I-PER O B-LOC", "O I-ORG I-ORG")
    # PER right; LOC predicted as ORG; the I-ORG chunk (started by I-) found as B-ORG I-ORG.
    predicted = sentences("B-PER I-PER O B-ORG", "O B-ORG I-ORG")
    scores = ner_metrics.entity_scores(gold, predicted, "BIO")
    assert scores["num_gold"] == 3 and scores["num_predicted"] == 3
    assert scores["num_correct"] == 2
    assert scores["precision"] == pytest.approx(2 / 3, rel=1e-12)
    assert scores["recall"] == pytest.approx(2 / 3, rel=1e-12)
    assert scores["f1"] == pytest.approx(2 / 3, rel=1e-12)
    assert scores["token_accuracy"] == pytest.approx(5 / 7, rel=1e-12)
    assert scores["PER/f1"] == 1.0 and scores["PER/support"] == 1
    assert scores["LOC/recall"] == 0.0 and scores["LOC/precision"] == 0.0
    assert scores["ORG/precision"] == pytest.approx(1 / 2, rel=1e-12)
    assert scores["ORG/recall"] == 1.0
    assert scores["ORG/f1"] == pytest.approx(2 / 3, rel=1e-12)


def test_hand_worked_partial_and_type_change():
    # Gold: PER(0,1) LOC(3,3). Predicted: PER(0,0) LOC(1,1) (type change) and LOC(3,3).
    scores = ner_metrics.entity_scores(
        sentences("B-PER I-PER O B-LOC"), sentences("B-PER I-LOC O B-LOC"), "BIO"
    )
    assert (scores["num_gold"], scores["num_predicted"], scores["num_correct"]) == (2, 3, 1)
    assert scores["recall"] == 0.5
    assert scores["precision"] == pytest.approx(1 / 3, rel=1e-12)
    assert scores["f1"] == pytest.approx(0.4, rel=1e-12)


def test_hand_worked_iobes_and_bmes():
    # IOBES: S-PER S-PER are two entities; an unclosed B-LOC I-LOC is still LOC(2,3).
    iobes = ner_metrics.entity_scores(
        sentences("S-PER S-PER B-LOC E-LOC"), sentences("B-PER E-PER B-LOC I-LOC"), "IOBES"
    )
    assert (iobes["num_gold"], iobes["num_predicted"], iobes["num_correct"]) == (3, 2, 1)
    # BMES: 北京大学 as ORG (B M M E), 张 as PER (S).
    bmes = ner_metrics.entity_scores(
        sentences("B-ORG M-ORG M-ORG E-ORG O S-PER"),
        sentences("B-ORG M-ORG E-ORG S-ORG O S-PER"),
        "BMES",
    )
    assert (bmes["num_gold"], bmes["num_predicted"], bmes["num_correct"]) == (2, 3, 1)
    assert bmes["ORG/recall"] == 0.0 and bmes["PER/f1"] == 1.0
    assert bmes["token_accuracy"] == pytest.approx(4 / 6, rel=1e-12)


def test_no_entities_and_bad_input():
    scores = ner_metrics.entity_scores(sentences("O O"), sentences("O O"), "BIO")
    assert scores["f1"] == 0.0 and scores["token_accuracy"] == 1.0
    with pytest.raises(ValueError, match="sentence 0"):
        ner_metrics.entity_scores(sentences("O O"), sentences("O"), "BIO")
    with pytest.raises(ValueError, match="'X-PER'"):
        ner_metrics.entity_scores(sentences("X-PER"), sentences("O"), "BIO")


# --- conlleval's streaming algorithm, written independently --------------------------------


def _split(tag):
    return ("O", "") if tag == "O" else tuple(tag.split("-", 1))


def _continues(prev, cur):
    """Whether word `cur` extends the chunk of the word before it (conlleval's reading)."""
    inside = ("I", "M")
    return prev[0] in ("B", *inside) and cur[0] in (*inside, "E") and prev[1] == cur[1]


def conlleval_counts(gold_sentences, predicted_sentences):
    """The counts conlleval's main loop accumulates, one word at a time with a boundary (O O)
    after each sentence, tracking whether the current chunks can still be correct."""
    found_gold = collections.Counter()
    found_predicted = collections.Counter()
    correct = collections.Counter()
    correct_tags = num_tags = 0
    in_correct = False
    last_gold = last_predicted = ("O", "")
    stream = []
    for gold, predicted in zip(gold_sentences, predicted_sentences, strict=True):
        stream += [(_split(g), _split(p), True) for g, p in zip(gold, predicted, strict=True)]
        stream.append((("O", ""), ("O", ""), False))
    for gold, predicted, is_word in stream:
        gold_continues = _continues(last_gold, gold)
        predicted_continues = _continues(last_predicted, predicted)
        end_gold = last_gold[0] != "O" and not gold_continues
        end_predicted = last_predicted[0] != "O" and not predicted_continues
        start_gold = gold[0] != "O" and not gold_continues
        start_predicted = predicted[0] != "O" and not predicted_continues
        if in_correct:
            if end_gold and end_predicted and last_gold[1] == last_predicted[1]:
                in_correct = False
                correct[last_gold[1]] += 1
            elif end_gold != end_predicted or gold[1] != predicted[1]:
                in_correct = False
        if start_gold and start_predicted and gold[1] == predicted[1]:
            in_correct = True
        if start_gold:
            found_gold[gold[1]] += 1
        if start_predicted:
            found_predicted[predicted[1]] += 1
        if is_word:
            num_tags += 1
            correct_tags += gold == predicted
        last_gold, last_predicted = gold, predicted
    return found_gold, found_predicted, correct, correct_tags, num_tags


@pytest.mark.parametrize("scheme", ["IOB1", "BIO", "IOBES", "BMES"])
def test_matches_streaming_conlleval_on_random_sequences(scheme):
    rng = random.Random(scheme)
    tags = ["O"] * 4 + [f"{p}-{t}" for p in PREFIXES[scheme] for t in ("PER", "LOC", "ORG")]
    for _ in range(200):
        gold, predicted = [], []
        for _ in range(rng.randint(1, 6)):
            sentence = [rng.choice(tags) for _ in range(rng.randint(1, 10))]
            gold.append(sentence)
            # Mostly right, as a model's predictions are, so that many chunks match.
            predicted.append([t if rng.random() < 0.7 else rng.choice(tags) for t in sentence])
        scores = ner_metrics.entity_scores(gold, predicted, scheme)
        found_gold, found_predicted, correct, correct_tags, num_tags = conlleval_counts(
            gold, predicted
        )
        assert scores["num_gold"] == sum(found_gold.values())
        assert scores["num_predicted"] == sum(found_predicted.values())
        assert scores["num_correct"] == sum(correct.values())
        assert scores["token_accuracy"] == correct_tags / num_tags
        for kind in set(found_gold) | set(found_predicted):
            assert scores[f"{kind}/support"] == found_gold[kind]
            precision = correct[kind] / found_predicted[kind] if found_predicted[kind] else 0.0
            recall = correct[kind] / found_gold[kind] if found_gold[kind] else 0.0
            assert scores[f"{kind}/precision"] == pytest.approx(precision, rel=1e-12, abs=0)
            assert scores[f"{kind}/recall"] == pytest.approx(recall, rel=1e-12, abs=0)
        total_correct = sum(correct.values())
        precision = total_correct / max(sum(found_predicted.values()), 1)
        recall = total_correct / max(sum(found_gold.values()), 1)
        f1 = 2 * precision * recall / (precision + recall) if total_correct else 0.0
        assert scores["f1"] == pytest.approx(f1, rel=1e-12, abs=0)
