"""End-to-end tests of run_ner.py: tiny taggers trained on English and Chinese data the tests
write, where an entity is a word of a known list (a rule a tiny model learns)."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FILLER, read_eval_results, run_script, write_bert_config, write_vocab_for_texts

PEOPLE = [["alice"], ["bob", "stone"], ["carol", "white"], ["dave"]]
PLACES = [["paris"], ["new", "york"], ["lima"], ["oslo"]]
ZH_PEOPLE = ["张三", "李四", "王小明"]
ZH_PLACES = ["北京", "上海", "广州"]
ZH_FILLER = list("我们在今天去工作学习看见了很好的地方")


def tagged(words, entity_type):
    return [(word, ("B-" if i == 0 else "I-") + entity_type) for i, word in enumerate(words)]


def insert_entity(rng: random.Random, pairs, entity) -> None:
    """Puts `entity` between two words, never inside another entity."""
    boundaries = [i for i in range(len(pairs) + 1) if i == len(pairs) or pairs[i][1][:2] != "I-"]
    at = rng.choice(boundaries)
    pairs[at:at] = entity


def english_sentence(rng: random.Random, length: int):
    """Filler words with people and places dropped in (tags: BIO)."""
    pairs = [(rng.choice(FILLER), "O") for _ in range(length)]
    for _ in range(rng.randint(1, 3)):
        entity = tagged(*rng.choice([(rng.choice(PEOPLE), "PER"), (rng.choice(PLACES), "LOC")]))
        insert_entity(rng, pairs, entity)
    return pairs


def chinese_sentence(rng: random.Random, length: int):
    pairs = [(rng.choice(ZH_FILLER), "O") for _ in range(length)]
    for _ in range(rng.randint(1, 2)):
        name, kind = rng.choice([(rng.choice(ZH_PEOPLE), "PER"), (rng.choice(ZH_PLACES), "LOC")])
        insert_entity(rng, pairs, tagged(list(name), kind))
    return pairs


def write_conll(path: Path, sentences, with_tags=True, docstart=True):
    lines = ["-DOCSTART- O", ""] if docstart else []
    for pairs in sentences:
        lines += [f"{word} {tag}" if with_tags else word for word, tag in pairs]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_task(root: Path, make_sentence, sizes, long_every=0, seed=3):
    """train/dev/test files; every `long_every`-th sentence is long enough to need several
    windows at the tests' --max_seq_length=16."""
    rng = random.Random(seed)
    data = root / "data"
    data.mkdir(parents=True)
    splits = {}
    for split, count in sizes.items():
        splits[split] = [
            make_sentence(rng, 30 if long_every and i % long_every == 0 else rng.randint(3, 9))
            for i in range(count)
        ]
        write_conll(data / f"{split}.txt", splits[split])
    return data, splits


def tiny_tagger(root: Path, texts, do_lower_case=True) -> dict:
    vocab = write_vocab_for_texts(root / "vocab.txt", texts, do_lower_case=do_lower_case)
    write_bert_config(
        root / "bert_config.json",
        len(vocab),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=32,
    )
    return {
        "vocab_file": str(root / "vocab.txt"),
        "bert_config_file": str(root / "bert_config.json"),
    }


def ner_flags(model, data, out, **extra):
    flags = dict(
        model,
        data_dir=str(data),
        output_dir=str(out),
        max_seq_length=16,
        doc_stride=6,
        train_batch_size=16,
        eval_batch_size=8,
        predict_batch_size=8,
        learning_rate=2e-3,
        num_train_epochs=6,
        random_seed=5,
    )
    flags.update(extra)
    return flags


def entities_of_pairs(pairs):
    """Gold entities of a tagged sentence, as (type, first word, end word) spans."""
    spans, start = [], None
    for index, (_, tag) in enumerate(pairs + [("", "O")]):
        if start is not None and not tag.startswith("I-"):
            spans.append((pairs[start][1][2:], start, index))
            start = None
        if tag.startswith("B-"):
            start = index
    return spans


def predicted_column(path: Path):
    """The predicted tags of test_predictions.txt, per sentence (`word gold predicted`)."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
        elif not line.startswith("-DOCSTART-"):
            current.append(line.split()[-1])
    if current:
        sentences.append(current)
    return sentences


def saved_model_tags(export_dir: Path, records: Path, tmp_path: Path):
    """Tags from the SavedModel's tf.Example signature, in a fresh process."""
    script = f"""
import json, sys
import numpy as np
import tensorflow as tf
import export
model = tf.saved_model.load(export.resolve_saved_model_dir({str(export_dir)!r}))
examples = [r.numpy() for r in tf.data.TFRecordDataset({str(records)!r})]
out = model.signatures["examples:serving_default"](examples=tf.constant(examples))
json.dump(out["tag_ids"].numpy().tolist(), open({str(tmp_path / "tags.json")!r}, "w"))
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parent.parent)
    return json.loads((tmp_path / "tags.json").read_text())


@pytest.mark.slow
def test_english_tagger_learns_entities_and_export_and_predictor_agree(tmp_path):
    data, splits = write_task(
        tmp_path, english_sentence, {"train": 160, "dev": 40, "test": 12}, long_every=5
    )
    model = tiny_tagger(tmp_path, [" ".join(w for w, _ in s) for s in splits["train"]])
    out, exported = tmp_path / "out", tmp_path / "exported"
    run_script(
        "run_ner.py",
        ner_flags(
            model,
            data,
            out,
            do_train=True,
            do_eval=True,
            do_predict=True,
            use_crf=True,
            export_dir=exported,
        ),
    )
    results = read_eval_results(out / "eval_results.txt")
    assert results["entity_f1"] >= 0.9
    assert 0.9 <= results["PER_f1"] <= 1.0 and 0.9 <= results["LOC_f1"] <= 1.0
    assert results["token_accuracy"] >= 0.95

    # test_predictions.txt: the test file line for line, with a predicted column; every
    # word of the long (windowed) sentences gets exactly one tag.
    original = (data / "test.txt").read_text().splitlines()
    written = (out / "test_predictions.txt").read_text().splitlines()
    assert len(written) == len(original)
    for before, after in zip(original, written, strict=True):
        if before.strip() and not before.startswith("-DOCSTART-"):
            assert after.startswith(before + " ") and len(after.split()) == 3
        else:
            assert after == before
    predicted = predicted_column(out / "test_predictions.txt")
    assert [len(tags) for tags in predicted] == [len(s) for s in splits["test"]]
    assert max(len(s) for s in splits["test"]) > 16

    entities = [json.loads(line) for line in (out / "test_entities.jsonl").read_text().splitlines()]
    assert len(entities) == len(splits["test"])
    for record, pairs in zip(entities, splits["test"], strict=True):
        assert record["text"] == " ".join(word for word, _ in pairs)
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
            words = [w for w, _ in pairs[entity["start_word"] : entity["end_word"]]]
            assert entity["text"] == " ".join(words)
    found = {(e["type"], e["start_word"], e["end_word"]) for r in entities for e in r["entities"]}
    gold = {span for pairs in splits["test"] for span in entities_of_pairs(pairs)}
    assert len(found & gold) >= 0.9 * len(gold)

    # The SavedModel gives the Estimator's tags on the same windows...
    records = out / "predict.tf_record"
    served = saved_model_tags(exported, records, tmp_path)
    by_word = _tags_by_word(list(_read_windows(records)), served)
    flat_predicted = [tag for tags in predicted for tag in tags]
    labels = json.loads(
        (next(exported.iterdir()) / "assets.extra" / "bert_export.json").read_text()
    )["labels"]
    assert [labels[i] for i in by_word] == flat_predicted

    # ... and the predictor finds the same entities in the raw text.
    texts = [record["text"] for record in entities]
    script = f"""
import json
import predictor
p = predictor.NerPredictor({str(exported)!r})
print(json.dumps(p.predict({texts!r})))
"""
    shown = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    ).stdout
    from_predictor = json.loads(shown.strip().splitlines()[-1])
    assert from_predictor == [record["entities"] for record in entities]


def _read_windows(records: Path):
    import tensorflow as tf

    for raw in tf.data.TFRecordDataset(str(records)):
        example = tf.train.Example.FromString(raw.numpy())
        yield {
            name: list(example.features.feature[name].int64_list.value)
            for name in ("prediction_mask", "is_real_example")
        }


def _tags_by_word(windows, tag_ids):
    """The tag id at each owned position, window after window (= word order)."""
    tags = []
    for window, ids in zip(windows, tag_ids, strict=True):
        if not window["is_real_example"][0]:
            continue
        tags += [ids[p] for p, owned in enumerate(window["prediction_mask"]) if owned]
    return tags


@pytest.mark.slow
def test_chinese_character_data_runs_end_to_end(tmp_path):
    data, splits = write_task(tmp_path, chinese_sentence, {"train": 120, "dev": 30, "test": 6})
    model = tiny_tagger(tmp_path, ["".join(w for w, _ in s) for s in splits["train"]])
    out, exported = tmp_path / "out", tmp_path / "exported"
    run_script(
        "run_ner.py",
        ner_flags(
            model,
            data,
            out,
            do_train=True,
            do_eval=True,
            do_predict=True,
            eval_every_steps=15,
            export_dir=exported,
        ),
    )
    results = read_eval_results(out / "eval_results.txt")
    assert results["entity_f1"] >= 0.9
    # Periodic evaluation kept the best checkpoint by entity F1; the export has the labels.
    best = read_eval_results(out / "best" / "eval_results.txt")
    assert best["entity_f1"] >= results["entity_f1"]
    exported_from = json.loads(
        (next(exported.iterdir()) / "assets.extra" / "bert_export.json").read_text()
    )
    assert exported_from["labels"] == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    entities = [json.loads(line) for line in (out / "test_entities.jsonl").read_text().splitlines()]
    for record, pairs in zip(entities, splits["test"], strict=True):
        assert record["text"] == "".join(word for word, _ in pairs)

    shown = (
        subprocess.run(
            [sys.executable, "predictor.py", f"--export_dir={exported}"],
            input="张三在北京工作\n\n李四去了上海\n",
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        .stdout.strip()
        .splitlines()
    )
    answers = [json.loads(line) for line in shown]
    assert [a["text"] for a in answers] == ["张三在北京工作", "李四去了上海"]
    first = {(e["type"], e["text"], e["start"], e["end"]) for e in answers[0]["entities"]}
    assert first == {("PER", "张三", 0, 2), ("LOC", "北京", 3, 5)}
    second = {(e["type"], e["text"], e["start"], e["end"]) for e in answers[1]["entities"]}
    assert second == {("PER", "李四", 0, 2), ("LOC", "上海", 4, 6)}


def test_a_word_without_a_tag_stops_before_training_naming_file_and_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("alice B-PER\nwent O\nhome\n\n", encoding="utf-8")
    model = tiny_tagger(tmp_path, ["alice went home"])
    result = run_script(
        "run_ner.py", ner_flags(model, data, tmp_path / "out", do_train=True), expect_failure=True
    )
    assert f"{data / 'train.txt'}:3: the word 'home' has no tag" in result.stdout
    assert not (tmp_path / "out" / "train.tf_record").exists()


def test_a_tag_outside_the_given_labels_is_named(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("alice B-PER\nparis B-LOC\n\n", encoding="utf-8")
    model = tiny_tagger(tmp_path, ["alice paris"])
    result = run_script(
        "run_ner.py",
        ner_flags(model, data, tmp_path / "out", do_train=True, labels="O,B-PER,I-PER"),
        expect_failure=True,
    )
    assert f"{data / 'train.txt'}:2: tag 'B-LOC' is not in the label list" in result.stdout
