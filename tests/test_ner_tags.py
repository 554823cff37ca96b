"""Tests of ner_tags: tag parsing, conlleval chunks, re-encoding and allowed transitions."""

import itertools
import random

import numpy as np
import pytest

import ner_tags
from ner_tags import Chunk

PREFIXES = {"IOB1": "IB", "BIO": "BI", "IOBES": "BIES", "BMES": "BMES"}


def split(text):
    return text.split()


@pytest.mark.parametrize(
    "tag, scheme",
    [("X-PER", "BIO"), ("B_PER", "BIO"), ("B-", "BIO"), ("PER", "BIO"), ("M-PER", "BIO"),
     ("E-PER", "IOB1"), ("I-PER", "BMES"), ("O-PER", "IOBES"), ("b-PER", "BIO")],
)  # fmt: skip
def test_ill_formed_tags_are_rejected(tag, scheme):
    with pytest.raises(ner_tags.TagError, match=repr(tag)):
        ner_tags.parse_tag(tag, scheme)


def test_parse_tag_and_scheme_aliases():
    assert ner_tags.parse_tag("B-ORG-CORP", "iob2") == ("B", "ORG-CORP")
    assert ner_tags.parse_tag("O", "BIOES") == ("O", "")
    assert ner_tags.parse_tag("M-地名", "BMES") == ("M", "地名")
    with pytest.raises(ValueError, match="Unknown tag scheme"):
        ner_tags.canonical_scheme("BILOU")


# Hand-worked readings by the conlleval rules.
@pytest.mark.parametrize(
    "scheme, tags, chunks",
    [
        ("BIO", "B-PER I-PER O B-LOC", [("PER", 0, 1), ("LOC", 3, 3)]),
        # An entity that starts with I- (IOB1 style, or a broken BIO prediction).
        ("BIO", "O I-PER I-PER O", [("PER", 1, 2)]),
        ("IOB1", "I-PER I-PER B-PER O I-LOC", [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
        # A type change inside a chunk ends it and starts another.
        ("BIO", "B-PER I-LOC I-LOC", [("PER", 0, 0), ("LOC", 1, 2)]),
        ("BIO", "B-PER B-PER I-PER", [("PER", 0, 0), ("PER", 1, 2)]),
        # IOBES singletons, an unclosed B, a lone E, E followed by E.
        ("IOBES", "S-PER S-PER B-LOC E-LOC", [("PER", 0, 0), ("PER", 1, 1), ("LOC", 2, 3)]),
        ("IOBES", "B-LOC I-LOC", [("LOC", 0, 1)]),
        ("IOBES", "O E-LOC O", [("LOC", 1, 1)]),
        ("IOBES", "B-X E-X E-X", [("X", 0, 1), ("X", 2, 2)]),
        ("IOBES", "I-X S-X I-X", [("X", 0, 0), ("X", 1, 1), ("X", 2, 2)]),
        ("IOBES", "B-X I-Y E-Y", [("X", 0, 0), ("Y", 1, 2)]),
        # BMES reads M as I.
        ("BMES", "B-PER M-PER E-PER S-LOC O", [("PER", 0, 2), ("LOC", 3, 3)]),
        ("BMES", "M-PER E-PER B-LOC", [("PER", 0, 1), ("LOC", 2, 2)]),
        ("BIO", "O O", []),
        ("BIO", "", []),
    ],
)
def test_get_chunks_hand_worked(scheme, tags, chunks):
    assert ner_tags.get_chunks(split(tags), scheme) == [Chunk(*chunk) for chunk in chunks]


@pytest.mark.parametrize(
    "scheme, tags, repaired",
    [
        ("BIO", "O I-PER I-PER O I-LOC", "O B-PER I-PER O B-LOC"),
        ("BIO", "B-PER I-LOC", "B-PER B-LOC"),
        ("IOB1", "B-PER I-PER B-PER O B-LOC", "I-PER I-PER B-PER O I-LOC"),
        ("IOBES", "B-LOC O I-PER I-PER", "S-LOC O B-PER E-PER"),
        ("BMES", "M-PER O B-LOC M-LOC", "S-PER O B-LOC E-LOC"),
        ("BMES", "B-LOC M-LOC E-LOC S-PER", "B-LOC M-LOC E-LOC S-PER"),
    ],
)
def test_repair_hand_worked(scheme, tags, repaired):
    assert ner_tags.repair(split(tags), scheme) == split(repaired)


def random_tags(rng, scheme, length, types=("PER", "LOC")):
    tags = ["O"] + [f"{p}-{t}" for p in PREFIXES[scheme] for t in types]
    return [rng.choice(tags) for _ in range(length)]


def is_valid_by_hand(tags, scheme):
    """Validity written per scheme from its definition, independently of tag_constraints."""
    parsed = [("O", "") if t == "O" else tuple(t.split("-", 1)) for t in tags]
    for index, (prefix, kind) in enumerate(parsed):
        prev = parsed[index - 1] if index else ("O", "")
        nxt = parsed[index + 1] if index + 1 < len(parsed) else ("O", "")
        if scheme == "BIO" and prefix == "I" and (prev[0] == "O" or prev[1] != kind):
            return False
        if scheme == "IOB1" and prefix == "B" and (prev[0] == "O" or prev[1] != kind):
            return False
        if scheme in ("IOBES", "BMES"):
            inside = "I" if scheme == "IOBES" else "M"
            opens = prefix in ("B", inside)
            closes_next = nxt[0] in (inside, "E") and nxt[1] == kind
            if opens and not closes_next:
                return False
            if prefix in (inside, "E") and not (prev[0] in ("B", inside) and prev[1] == kind):
                return False
    return True


def allowed_by(constraints, label_list, tags):
    ids = [label_list.index(tag) for tag in tags]
    if not ids:
        return True
    return (
        constraints.start[ids[0]]
        and constraints.end[ids[-1]]
        and all(constraints.transitions[a, b] for a, b in itertools.pairwise(ids))
    )


@pytest.mark.parametrize("scheme", ner_tags.SCHEMES)
def test_repair_constraints_and_validity_agree_on_random_sequences(scheme):
    rng = random.Random(7)
    label_list = ner_tags.labels_for_types(["LOC", "PER"], scheme)
    constraints = ner_tags.tag_constraints(label_list, scheme)
    num_valid = 0
    for _ in range(2000):
        tags = random_tags(rng, scheme, rng.randint(0, 6))
        repaired = ner_tags.repair(tags, scheme)
        valid = is_valid_by_hand(tags, scheme)
        num_valid += valid
        # Repair keeps the chunks, gives a valid sequence, and changes only invalid ones.
        assert ner_tags.get_chunks(repaired, scheme) == ner_tags.get_chunks(tags, scheme)
        assert is_valid_by_hand(repaired, scheme)
        assert (repaired == tags) == valid
        assert allowed_by(constraints, label_list, tags) == valid
    assert 50 < num_valid < 2000


def test_tag_constraints_bio_by_hand():
    labels = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    constraints = ner_tags.tag_constraints(labels, "BIO")
    expected = np.array(
        [  # to: O  B-LOC B-PER I-LOC I-PER
            [1, 1, 1, 0, 0],  # from O
            [1, 1, 1, 1, 0],  # from B-LOC
            [1, 1, 1, 0, 1],  # from B-PER
            [1, 1, 1, 1, 0],  # from I-LOC
            [1, 1, 1, 0, 1],  # from I-PER
        ],
        bool,
    )
    np.testing.assert_array_equal(constraints.transitions, expected)
    np.testing.assert_array_equal(constraints.start, [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(constraints.end, [1, 1, 1, 1, 1])


def test_tag_constraints_iobes_ends():
    labels = ner_tags.labels_for_types(["PER"], "IOBES")
    assert labels == ["O", "B-PER", "E-PER", "I-PER", "S-PER"]
    constraints = ner_tags.tag_constraints(labels, "IOBES")
    np.testing.assert_array_equal(constraints.start, [1, 1, 0, 0, 1])
    np.testing.assert_array_equal(constraints.end, [1, 0, 1, 0, 1])


def test_label_list_checks():
    assert ner_tags.check_label_list(["O", "B-PER", "I-PER"], "BIO") == ["PER"]
    with pytest.raises(ner_tags.TagError, match="no 'O'"):
        ner_tags.check_label_list(["B-PER", "I-PER"], "BIO")
    with pytest.raises(ner_tags.TagError, match="lacks \\['S-PER'\\]"):
        ner_tags.check_label_list(["O", "B-PER", "I-PER", "E-PER"], "IOBES")
    with pytest.raises(ner_tags.TagError, match="repeats"):
        ner_tags.check_label_list(["O", "O"], "BIO")
    with pytest.raises(ner_tags.TagError, match="'B_PER'"):
        ner_tags.check_label_list(["O", "B_PER"], "BIO")
