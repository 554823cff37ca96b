"""Tests of tools/make_ner_data.py and the NER data sets it wrote into data/."""

import importlib.util

import pytest

import ner_data
import tokenization
from helpers import DATA_DIR, REPO_ROOT

SIZES = {"train": 500, "dev": 150, "test": 150}


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "make_ner_data", REPO_ROOT / "tools" / "make_ner_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_gives_the_committed_files(tmp_path):
    load_tool().write_data(str(tmp_path), seed=12345)
    for language in ("en", "zh"):
        for split in SIZES:
            name = f"ner_{language}/{split}.txt"
            assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_another_seed_gives_other_sentences(tmp_path):
    load_tool().write_data(str(tmp_path), seed=1)
    assert (tmp_path / "ner_en/dev.txt").read_bytes() != (DATA_DIR / "ner_en/dev.txt").read_bytes()


@pytest.mark.parametrize(
    "language, types", [("en", {"PER", "LOC", "ORG", "MISC"}), ("zh", {"PER", "LOC", "ORG"})]
)
def test_data_sets_are_valid_varied_and_hold_out_names(language, types):
    basic = tokenization.BasicTokenizer(do_lower_case=True)
    splits = {}
    for split, size in SIZES.items():
        # invalid_sequence="error": the generated tags are valid BIO as written.
        sentences = ner_data.read_conll(
            str(DATA_DIR / f"ner_{language}/{split}.txt"), "BIO", invalid_sequence="error"
        )
        assert len(sentences) == size
        labels = ner_data.label_list_from(sentences, "BIO")
        assert {label[2:] for label in labels if label != "O"} == types
        lengths = [sum(len(basic.tokenize(w)) for w in s.words) for s in sentences]
        assert min(lengths) < 16 and sum(length > 62 for length in lengths) >= 10
        splits[split] = sentences
    if language == "en":
        assert len({s.document for s in splits["train"]}) > 50
    texts = {split: {" ".join(s.words) for s in sentences} for split, sentences in splits.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]

    def entities(sentences):
        found = set()
        for s in sentences:
            for tag_index, tag in enumerate(s.tags):
                if tag.startswith("B-") and tag != "B-PER":
                    end = tag_index + 1
                    while end < len(s.tags) and s.tags[end] == "I-" + tag[2:]:
                        end += 1
                    found.add(" ".join(s.words[tag_index:end]))
        return found

    assert entities(splits["test"]) - entities(splits["train"])
