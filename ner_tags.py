"""Named-entity tag schemes: parsing tags, reading chunks, re-encoding and allowed transitions.

A tag is `O` or `PREFIX-TYPE` (`B-PER`, `I-LOC`; the type may itself contain `-`). Schemes and
the prefixes they use:

| scheme | prefixes | a chunk is |
|---|---|---|
| `IOB1` | I, B | a run of I-X; B-X only starts a chunk right after another X chunk |
| `BIO` (IOB2) | B, I | B-X then any I-X |
| `IOBES` (BIOES) | B, I, E, S | B-X I-X... E-X, or a single S-X |
| `BMES` | B, M, E, S | as IOBES with M for I (Chinese NER sets) |

Chunks are read by the conlleval rules whatever the scheme (an I-X after O or after another
type starts a chunk, a type change ends one, E and S end one), so that a sequence that breaks
its scheme, as a softmax head may predict, still has one well-defined reading; BMES's M is read
as I. `encode_chunks` writes chunks back in a scheme, and `repair` (reading then re-encoding)
turns any tag sequence into a valid one with the same chunks. `tag_constraints` gives which
transitions a valid sequence may take, for a CRF's decoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

OUTSIDE = "O"
IOB1 = "IOB1"
BIO = "BIO"
IOBES = "IOBES"
BMES = "BMES"
SCHEMES = (IOB1, BIO, IOBES, BMES)
_ALIASES = {"IOB2": BIO, "BIOES": IOBES}
_PREFIXES = {IOB1: "IB", BIO: "BI", IOBES: "BIES", BMES: "BMES"}


class TagError(ValueError):
    """A tag that is not well formed for its scheme (the message names the tag)."""


class Chunk(NamedTuple):
    """An entity: its type and its words `start` to `end` inclusive."""

    type: str
    start: int
    end: int


def canonical_scheme(scheme: str) -> str:
    """The scheme's canonical name (`IOB2` -> `BIO`, `BIOES` -> `IOBES`), case-insensitive."""
    name = _ALIASES.get(scheme.upper(), scheme.upper())
    if name not in SCHEMES:
        raise ValueError(
            f"Unknown tag scheme {scheme!r}: expected one of {SCHEMES} (or IOB2, BIOES)"
        )
    return name


def _tag_form_hint(scheme: str) -> str:
    prefixes = " / ".join(f"{prefix}-TYPE" for prefix in _PREFIXES[scheme])
    return f"expected O or {prefixes}"


def parse_tag(tag: str, scheme: str) -> tuple[str, str]:
    """Splits a tag into (prefix, type); `O` gives ("O", "").

    Raises TagError for a tag the scheme does not have, e.g. `X-PER`, `B_PER`, `B-`, or `M-PER`
    under BIO.
    """
    scheme = canonical_scheme(scheme)
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, entity_type = tag.partition("-")
    if not dash or not entity_type or prefix not in _PREFIXES[scheme]:
        raise TagError(f"tag {tag!r} is not a {scheme} tag ({_tag_form_hint(scheme)})")
    return prefix, entity_type


def labels_for_types(entity_types: Sequence[str], scheme: str) -> list[str]:
    """Every tag of `scheme` for the given entity types, sorted, with `O` first.

    All prefixes are listed even for a type whose training data lacked some (say no S-X), so
    that re-encoded windows and any decoded sequence can always be expressed.
    """
    scheme = canonical_scheme(scheme)
    tags = {
        f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in _PREFIXES[scheme]
    }
    return [OUTSIDE, *sorted(tags)]


def check_label_list(label_list: Sequence[str], scheme: str) -> list[str]:
    """Checks a given label list and returns its entity types, sorted.

    Raises TagError if a label is ill-formed or repeated, `O` is missing, or a type lacks one of
    the scheme's prefixes (a valid sequence could then not be written with the list).
    """
    scheme = canonical_scheme(scheme)
    if len(set(label_list)) != len(label_list):
        raise TagError(f"the label list repeats a label: {list(label_list)}")
    if OUTSIDE not in label_list:
        raise TagError(f"the label list has no {OUTSIDE!r}: {list(label_list)}")
    types = sorted({parse_tag(label, scheme)[1] for label in label_list} - {""})
    missing = sorted(set(labels_for_types(types, scheme)) - set(label_list))
    if missing:
        raise TagError(
            f"the label list lacks {missing}, which the {scheme} scheme needs for its types"
        )
    return types


# ---------------------------------------------------------------------------------------------
# Reading chunks (the conlleval rules)


def _conll_prefix(prefix: str) -> str:
    """conlleval knows B, I, E, S and O; BMES's M plays the part of I."""
    return "I" if prefix == "M" else prefix


def _ends_chunk(prev_prefix: str, prev_type: str, prefix: str, entity_type: str) -> bool:
    """Whether a chunk ends with the previous word (the conlleval `endOfChunk`)."""
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I"):
        return prefix in ("B", "S", OUTSIDE) or entity_type != prev_type
    return False


def _starts_chunk(prev_prefix: str, prev_type: str, prefix: str, entity_type: str) -> bool:
    """Whether a chunk starts at this word (the conlleval `startOfChunk`)."""
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E"):
        return prev_prefix in ("E", "S", OUTSIDE) or entity_type != prev_type
    return False


def get_chunks(tags: Sequence[str], scheme: str) -> list[Chunk]:
    """The entities of one sentence's tags, in order, read by the conlleval rules.

    Raises TagError for a tag the scheme does not have.
    """
    chunks = []
    prev_prefix, prev_type = OUTSIDE, ""
    start = None
    for index, tag in enumerate(tags):
        prefix, entity_type = parse_tag(tag, scheme)
        prefix = _conll_prefix(prefix)
        if start is not None and _ends_chunk(prev_prefix, prev_type, prefix, entity_type):
            chunks.append(Chunk(prev_type, start, index - 1))
            start = None
        if _starts_chunk(prev_prefix, prev_type, prefix, entity_type):
            start = index
        prev_prefix, prev_type = prefix, entity_type
    if start is not None:
        chunks.append(Chunk(prev_type, start, len(tags) - 1))
    return chunks


# ---------------------------------------------------------------------------------------------
# Writing chunks


def _chunk_tags(chunk: Chunk, follows_same_type: bool, scheme: str) -> list[str]:
    length = chunk.end - chunk.start + 1
    if scheme == BIO:
        prefixes = ["B"] + ["I"] * (length - 1)
    elif scheme == IOB1:
        prefixes = ["B" if follows_same_type else "I"] + ["I"] * (length - 1)
    else:
        inside = "I" if scheme == IOBES else "M"
        prefixes = ["S"] if length == 1 else ["B"] + [inside] * (length - 2) + ["E"]
    return [f"{prefix}-{chunk.type}" for prefix in prefixes]


def encode_chunks(chunks: Sequence[Chunk], length: int, scheme: str) -> list[str]:
    """The tags of a sentence of `length` words holding `chunks` (sorted, not overlapping)."""
    scheme = canonical_scheme(scheme)
    tags = [OUTSIDE] * length
    previous: Chunk | None = None
    for chunk in chunks:
        # IOB1 marks with B only the chunk that directly follows one of the same type.
        follows_same_type = (
            previous is not None and previous.end + 1 == chunk.start and previous.type == chunk.type
        )
        tags[chunk.start : chunk.end + 1] = _chunk_tags(chunk, follows_same_type, scheme)
        previous = chunk
    return tags


def repair(tags: Sequence[str], scheme: str) -> list[str]:
    """`tags` rewritten as a valid sequence of `scheme` with the same chunks (conlleval reading).

    E.g. under BIO `O I-PER I-PER` becomes `O B-PER I-PER`; under IOBES `B-LOC O` becomes
    `S-LOC O`. A valid sequence comes back unchanged.
    """
    return encode_chunks(get_chunks(tags, scheme), len(tags), scheme)


# ---------------------------------------------------------------------------------------------
# Allowed transitions


@dataclasses.dataclass(frozen=True)
class TagConstraints:
    """Which tag sequences are valid, as boolean arrays over label ids.

    Attributes:
      transitions: `[num_tags, num_tags]`; `transitions[i, j]` is True when tag j may follow
        tag i.
      start: `[num_tags]`; True when a sequence may begin with the tag.
      end: `[num_tags]`; True when a sequence may end with the tag.
    """

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _may_follow(prev: tuple[str, str] | None, cur: tuple[str, str], scheme: str) -> bool:
    """Whether tag `cur` may come after `prev` (None: at the start) in a valid sequence."""
    prefix, entity_type = cur
    prev_prefix, prev_type = prev if prev is not None else (OUTSIDE, "")
    if scheme == BIO:
        return prefix != "I" or (prev_prefix in "BI" and prev_type == entity_type)
    if scheme == IOB1:
        return prefix != "B" or (prev_prefix in "BI" and prev_type == entity_type)
    # IOBES / BMES: an open chunk (B or inside) must go on with inside or E of its own type.
    inside = "I" if scheme == IOBES else "M"
    continues = prefix in (inside, "E")
    if prev_prefix in ("B", inside):
        return continues and prev_type == entity_type
    return not continues


def _may_end(tag: tuple[str, str], scheme: str) -> bool:
    if scheme in (BIO, IOB1):
        return True
    return tag[0] in (OUTSIDE, "E", "S")


def tag_constraints(label_list: Sequence[str], scheme: str) -> TagConstraints:
    """The valid transitions, starts and ends of `scheme` over `label_list`'s ids.

    Under BIO: no I-X at the start, and I-X only after B-X or I-X. Under IOB1: B-X only after
    B-X or I-X. Under IOBES / BMES: after B-X or I-X (M-X) only I-X (M-X) or E-X; elsewhere no
    I/M/E; no start with I/M/E and no end with B or I/M. Exactly the sequences `repair` leaves
    unchanged are allowed.
    """
    scheme = canonical_scheme(scheme)
    parsed = [parse_tag(label, scheme) for label in label_list]
    transitions = np.array([[_may_follow(a, b, scheme) for b in parsed] for a in parsed], bool)
    start = np.array([_may_follow(None, tag, scheme) for tag in parsed], bool)
    end = np.array([_may_end(tag, scheme) for tag in parsed], bool)
    return TagConstraints(transitions.reshape(len(parsed), len(parsed)), start, end)
