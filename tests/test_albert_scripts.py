"""Every script with an ALBERT model: --bert_config_file pointing at an albert_config.json,
SentencePiece through --spm_model_file, and a checkpoint under google-research/albert's
names. Short runs: each must build its model on ALBERT, restore every encoder variable and
write its outputs."""

import json
import random
import re

import numpy as np
import pytest
import tensorflow as tf
from test_run_squad import squad_json

import modeling
import tfhub
import tokenization
from helpers import (
    DATA_DIR,
    FILLER,
    read_eval_results,
    run_script,
    write_keyword_task,
    write_tiny_albert_model,
)

tf1 = tf.compat.v1

# The encoder of write_tiny_albert_model's config: 5 embedding variables, the projection
# to hidden_size (2), one shared block (16) and the pooler (2).
ENCODER_VARIABLES = 25
CHINESE_LINES = [
    "今年厦门的春天来得很早。",
    "蓝海航空公司在北京开了新的办公室。",
    "朱平说他明天去上海看朋友。",
]


def conll_sentences(path, count):
    """The first `count` sentences of a character-per-line file."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line)
        elif current:
            sentences.append(current)
            current = []
            if len(sentences) == count:
                break
    return sentences


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    root = tmp_path_factory.mktemp("albert")
    rng = random.Random(0)
    squad = squad_json(False)["data"][0]["paragraphs"]
    texts = [" ".join(rng.choice(FILLER) for _ in range(8)) for _ in range(50)]
    texts += ["wonderful terrible similar different"] * 5 + CHINESE_LINES
    texts += [p["context"] for p in squad] + [q["question"] for p in squad for q in p["qas"]]
    for sentence in conll_sentences(DATA_DIR / "ner_zh" / "train.txt", 200):
        texts.append("".join(line.split()[0] for line in sentence))
    return write_tiny_albert_model(root, texts, vocab_size=600)


def restored_everything(stdout, checkpoint, count):
    """The scripts log what they restore and which model variables the checkpoint lacks."""
    source = re.escape(str(checkpoint))
    loaded = re.findall(rf"Initialized (\d+) of \d+ model variables from {source}", stdout)
    assert loaded and all(int(n) == count for n in loaded), loaded
    missing = re.findall(r"new, trained from scratch: (.*)", stdout)
    assert not any("bert/" in line for line in missing), missing


@pytest.mark.slow
def test_classifier_fine_tunes_albert_and_exports(albert, tmp_path):
    data = tmp_path / "data"
    write_keyword_task(data, {"train": 64, "dev": 16})
    out = tmp_path / "out"
    result = run_script(
        "run_classifier.py",
        dict(
            albert,
            task_name="generic",
            data_dir=data,
            output_dir=out,
            do_train=True,
            do_eval=True,
            max_seq_length=16,
            train_batch_size=16,
            num_train_epochs=1,
            learning_rate=1e-3,
            export_dir=tmp_path / "exported",
            random_seed=1,
        ),
    )
    restored_everything(result.stdout, albert["init_checkpoint"], ENCODER_VARIABLES)
    results = read_eval_results(out / "eval_results.txt")
    assert results["global_step"] == 4
    assert 0.0 <= results["eval_accuracy"] <= 1.0
    reader = tf.train.load_checkpoint(str(out))
    shapes = reader.get_variable_to_shape_map()
    assert shapes["bert/embeddings/word_embeddings"][1] == 8
    assert "bert/encoder/transformer/group_0/inner_group_0/LayerNorm_1/gamma" in shapes
    assert not any("layer_1" in name for name in shapes)
    assert any((tmp_path / "exported").rglob("saved_model.pb"))


@pytest.mark.slow
def test_squad_runs_on_albert(albert, tmp_path):
    data_file = tmp_path / "squad.json"
    data_file.write_text(json.dumps(squad_json(False)))
    out = tmp_path / "out"
    result = run_script(
        "run_squad.py",
        dict(
            albert,
            output_dir=out,
            train_file=data_file,
            predict_file=data_file,
            do_train=True,
            do_predict=True,
            max_seq_length=48,
            doc_stride=16,
            max_query_length=16,
            train_batch_size=4,
            num_train_epochs=2,
        ),
    )
    restored_everything(result.stdout, albert["init_checkpoint"], ENCODER_VARIABLES)
    predictions = json.loads((out / "predictions.json").read_text())
    questions = [q["id"] for p in squad_json(False)["data"][0]["paragraphs"] for q in p["qas"]]
    assert sorted(predictions) == sorted(questions)


@pytest.mark.slow
def test_ner_tags_chinese_with_albert(albert, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split, count in (("train", 48), ("dev", 16)):
        sentences = conll_sentences(DATA_DIR / "ner_zh" / f"{split}.txt", count)
        text = "\n\n".join("\n".join(sentence) for sentence in sentences) + "\n\n"
        (data / f"{split}.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = run_script(
        "run_ner.py",
        dict(
            albert,
            data_dir=data,
            output_dir=out,
            do_train=True,
            do_eval=True,
            max_seq_length=32,
            train_batch_size=16,
            num_train_epochs=1,
            learning_rate=1e-3,
        ),
    )
    restored_everything(result.stdout, albert["init_checkpoint"], ENCODER_VARIABLES)
    assert "entity_f1" in read_eval_results(out / "eval_results.txt")


@pytest.mark.slow
def test_multiple_choice_runs_on_albert(albert, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = random.Random(1)
    for split, count in (("train", 32), ("dev", 8)):
        lines = []
        for index in range(count):
            choices = [" ".join(rng.choice(FILLER) for _ in range(3)) for _ in range(3)]
            context = " ".join(rng.choice(FILLER) for _ in range(6))
            record = {"context": context, "question": "which", "choices": choices}
            lines.append(json.dumps(dict(record, label=index % 3)))
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_script(
        "run_multiple_choice.py",
        dict(
            albert,
            task_name="jsonl",
            data_dir=data,
            output_dir=out,
            do_train=True,
            do_eval=True,
            max_seq_length=32,
            max_qa_length=16,
            train_batch_size=8,
            eval_batch_size=8,
            num_train_epochs=1,
        ),
    )
    # The ALBERT encoder is restored whole under the multiple-choice head, and trained.
    restored_everything(result.stdout, albert["init_checkpoint"], ENCODER_VARIABLES)
    results = read_eval_results(out / "eval_results.txt")
    assert results["global_step"] == 4 and "eval_accuracy" in results


def direct_albert_outputs(albert, ids, mask, segments):
    config = modeling.BertConfig.from_json_file(albert["bert_config_file"])
    with tf.Graph().as_default():
        model = modeling.BertModel(
            config, False, tf.constant(ids), tf.constant(mask), tf.constant(segments)
        )
        saver = tf1.train.Saver(
            [v for v in tf1.global_variables() if v.op.name.startswith("bert/")]
        )
        with tf1.Session() as session:
            saver.restore(session, albert["init_checkpoint"])
            return session.run(
                {"layers": model.get_all_encoder_layers(), "pooled": model.get_pooled_output()}
            )


@pytest.mark.slow
def test_extract_features_reads_chinese_through_sentencepiece(albert, tmp_path):
    input_file = tmp_path / "input.txt"
    input_file.write_text("\n".join(CHINESE_LINES) + "\n", encoding="utf-8")
    result = run_script(
        "extract_features.py",
        dict(
            albert,
            input_file=input_file,
            output_file=tmp_path / "features.jsonl",
            layers="-1,-3",
            max_seq_length=24,
            batch_size=2,
        ),
    )
    restored_everything(result.stdout, albert["init_checkpoint"], ENCODER_VARIABLES)
    lines = [json.loads(line) for line in (tmp_path / "features.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    tokenizer = tokenization.SentencePieceTokenizer(albert["spm_model_file"])
    first = lines[0]["features"]
    tokens = [entry["token"] for entry in first]
    assert tokens == ["[CLS]", *tokenizer.tokenize(CHINESE_LINES[0]), "[SEP]"]
    ids = np.zeros([1, 24], np.int32)
    ids[0, : len(tokens)] = tokenizer.convert_tokens_to_ids(tokens)
    mask = (np.arange(24) < len(tokens)).astype(np.int32)[None]
    direct = direct_albert_outputs(albert, ids, mask, np.zeros_like(ids))
    # Three layers sharing one set of weights: --layers=-3 is the first of them.
    for layer_index in (-1, -3):
        written = [
            next(layer["values"] for layer in entry["layers"] if layer["index"] == layer_index)
            for entry in first
        ]
        want = direct["layers"][layer_index][0, : len(tokens)]
        np.testing.assert_allclose(written, want, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_pretraining_continues_albert_with_its_heads(albert, tmp_path):
    corpus = tmp_path / "corpus.txt"
    rng = random.Random(2)
    documents = []
    for _ in range(12):
        documents += [" ".join(rng.choice(FILLER) for _ in range(7)) + "." for _ in range(4)]
        documents.append("")
    corpus.write_text("\n".join(documents) + "\n", encoding="utf-8")
    records = tmp_path / "records.tfrecord"
    run_script(
        "create_pretraining_data.py",
        {
            "input_file": corpus,
            "output_file": records,
            "spm_model_file": albert["spm_model_file"],
            "max_seq_length": 32,
            "max_predictions_per_seq": 5,
            "dupe_factor": 2,
        },
    )
    out = tmp_path / "out"
    result = run_script(
        "run_pretraining.py",
        dict(
            bert_config_file=albert["bert_config_file"],
            init_checkpoint=albert["init_checkpoint"],
            input_file=records,
            output_dir=out,
            do_train=True,
            do_eval=True,
            max_seq_length=32,
            max_predictions_per_seq=5,
            train_batch_size=4,
            eval_batch_size=4,
            num_train_steps=3,
            num_warmup_steps=1,
            max_eval_steps=2,
        ),
    )
    # Encoder and both heads (masked LM projecting to embedding_size, sentence order).
    restored_everything(result.stdout, albert["init_checkpoint"], ENCODER_VARIABLES + 7)
    results = read_eval_results(out / "eval_results.txt")
    assert {"masked_lm_accuracy", "next_sentence_accuracy"} <= set(results)
    shapes = tf.train.load_checkpoint(str(out)).get_variable_to_shape_map()
    assert shapes["cls/predictions/transform/dense/kernel"] == [32, 8]
    assert shapes["cls/seq_relationship/output_weights"] == [2, 32]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tf1", "tf2"])
def test_hub_export_of_albert_carries_its_sentencepiece_model(albert, tmp_path, fmt):
    handle = tmp_path / "hub"
    run_script(
        "tfhub.py",
        dict(albert, format=fmt, output_dir=handle, do_lower_case=True),
    )
    tokenizer_file, do_lower_case = tfhub.tokenization_info(str(handle))
    assert tokenizer_file.endswith("spiece.model") and do_lower_case
    tokenizer = tfhub.create_tokenizer_from_hub_module(str(handle))
    assert isinstance(tokenizer, tokenization.SentencePieceTokenizer)

    ids = np.array([[2, 10, 11, 12, 3], [2, 20, 3, 0, 0]], np.int32)
    mask = (ids != 0).astype(np.int32)
    segments = np.zeros_like(ids)
    direct = direct_albert_outputs(albert, ids, mask, segments)
    with tf.Graph().as_default():
        outputs = tfhub.encoder_outputs(
            str(handle), False, tf.constant(ids), tf.constant(mask), tf.constant(segments)
        )
        with tf1.Session() as session:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            pooled = session.run(outputs["pooled_output"])
    np.testing.assert_allclose(pooled, direct["pooled"], atol=1e-5, rtol=0)


def test_hub_export_needs_exactly_one_tokenizer_file(albert, tmp_path):
    failed = run_script(
        "tfhub.py",
        dict(albert, vocab_file=albert["spm_model_file"], output_dir=tmp_path / "hub"),
        expect_failure=True,
    )
    assert "exactly one of --vocab_file and --spm_model_file" in failed.stdout


@pytest.mark.slow
def test_extract_features_counts_every_block_of_inner_groups(tmp_path):
    albert = write_tiny_albert_model(tmp_path / "model", CHINESE_LINES * 5, inner_group_num=2)
    input_file = tmp_path / "input.txt"
    input_file.write_text(CHINESE_LINES[1] + "\n", encoding="utf-8")
    # 3 layers of 2 blocks: --layers reaches back 6 outputs, not 3.
    run_script(
        "extract_features.py",
        dict(
            albert,
            input_file=input_file,
            output_file=tmp_path / "features.jsonl",
            layers="-6",
            max_seq_length=24,
            batch_size=1,
        ),
    )
    line = json.loads((tmp_path / "features.jsonl").read_text())
    tokenizer = tokenization.SentencePieceTokenizer(albert["spm_model_file"])
    tokens = ["[CLS]", *tokenizer.tokenize(CHINESE_LINES[1]), "[SEP]"]
    ids = np.zeros([1, 24], np.int32)
    ids[0, : len(tokens)] = tokenizer.convert_tokens_to_ids(tokens)
    mask = (np.arange(24) < len(tokens)).astype(np.int32)[None]
    direct = direct_albert_outputs(albert, ids, mask, np.zeros_like(ids))
    assert len(direct["layers"]) == 6
    written = [entry["layers"][0]["values"] for entry in line["features"]]
    np.testing.assert_allclose(written, direct["layers"][0][0, : len(tokens)], atol=1e-5, rtol=0)
