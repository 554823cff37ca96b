"""End-to-end tests of run_squad.py: a tiny model memorises a few questions and answers them."""

import json

import pytest
import tensorflow as tf

from helpers import read_eval_results, run_script, write_bert_config, write_vocab_for_texts

PARAGRAPHS = [
    (
        "The Thames flows through London and reaches the North Sea after 346 kilometres.",
        [
            ("q1", "Which city does the Thames flow through?", "London"),
            ("q2", "How long is the Thames?", "346 kilometres"),
            ("q3", "Where does the Thames end?", "the North Sea"),
        ],
    ),
    (
        "Honey bees live in colonies ruled by a single queen, who can lay 2000 eggs a day.",
        [
            ("q4", "Who rules a colony of honey bees?", "a single queen"),
            ("q5", "How many eggs can the queen lay a day?", "2000"),
        ],
    ),
]
UNANSWERABLE = [
    ("n1", "Which river flows through Paris?", 0),
    ("n2", "What colour are the queen's wings?", 1),
]


def squad_json(with_unanswerable: bool) -> dict:
    paragraphs = []
    for index, (context, questions) in enumerate(PARAGRAPHS):
        qas = []
        for qid, question, answer in questions:
            entry = {
                "id": qid,
                "question": question,
                "answers": [{"text": answer, "answer_start": context.index(answer)}],
            }
            if with_unanswerable:
                entry["is_impossible"] = False
            qas.append(entry)
        if with_unanswerable:
            for qid, question, paragraph in UNANSWERABLE:
                if paragraph == index:
                    qas.append(
                        {"id": qid, "question": question, "answers": [], "is_impossible": True}
                    )
        paragraphs.append({"context": context, "qas": qas})
    return {
        "version": "2.0" if with_unanswerable else "1.1",
        "data": [{"title": "tiny", "paragraphs": paragraphs}],
    }


def train_and_predict(tmp_path, with_unanswerable: bool):
    data = squad_json(with_unanswerable)
    data_file = tmp_path / "squad.json"
    data_file.write_text(json.dumps(data))
    texts = [p["context"] for p in data["data"][0]["paragraphs"]]
    texts += [qa["question"] for p in data["data"][0]["paragraphs"] for qa in p["qas"]]
    vocab = write_vocab_for_texts(tmp_path / "vocab.txt", texts)
    write_bert_config(
        tmp_path / "bert_config.json",
        len(vocab),
        hidden_size=64,
        intermediate_size=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    out = tmp_path / "out"
    num_questions = sum(len(p["qas"]) for p in data["data"][0]["paragraphs"])
    run_script(
        "run_squad.py",
        {
            "vocab_file": tmp_path / "vocab.txt",
            "bert_config_file": tmp_path / "bert_config.json",
            "output_dir": out,
            "train_file": data_file,
            "predict_file": data_file,
            "do_train": True,
            "do_predict": True,
            "do_eval": True,
            "max_seq_length": 48,
            "doc_stride": 16,
            "max_query_length": 16,
            "train_batch_size": num_questions,
            "num_train_epochs": 600,
            "learning_rate": 1e-3,
            "warmup_proportion": 0.05,
            "version_2_with_negative": with_unanswerable,
            "export_dir": out / "exported",
            "random_seed": 1,
        },
    )
    return out


@pytest.mark.slow
def test_squad_v1_memorises_its_questions(tmp_path):
    out = train_and_predict(tmp_path, with_unanswerable=False)
    predictions = json.loads((out / "predictions.json").read_text())
    expected = {qid: answer for _, questions in PARAGRAPHS for qid, _, answer in questions}
    assert predictions == expected
    results = read_eval_results(out / "eval_results.txt")
    # Scored by the SQuAD 1.1 rules, under the 1.1 script's keys.
    assert results == {"exact_match": 100.0, "f1": 100.0}
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert nbest["q1"][0]["text"] == "London"
    assert set(nbest["q1"][0]) == {"text", "probability", "start_logit", "end_logit"}
    assert not (out / "null_odds.json").exists()
    (export_path,) = [path for path in (out / "exported").iterdir() if path.is_dir()]
    serving = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    assert set(serving.structured_outputs) == {"start_logits", "end_logits"}
    assert set(serving.structured_input_signature[1]) == {"input_ids", "input_mask", "segment_ids"}


@pytest.mark.slow
def test_squad_v2_answers_empty_where_the_null_wins(tmp_path):
    out = train_and_predict(tmp_path, with_unanswerable=True)
    predictions = json.loads((out / "predictions.json").read_text())
    null_odds = json.loads((out / "null_odds.json").read_text())
    assert set(null_odds) == set(predictions)
    for qid, _, _ in UNANSWERABLE:
        assert predictions[qid] == ""
        assert null_odds[qid] > 0.0  # the null score beat the best span
    for _, questions in PARAGRAPHS:
        for qid, _, answer in questions:
            assert predictions[qid] == answer
            assert null_odds[qid] < 0.0
    results = read_eval_results(out / "eval_results.txt")
    assert results["HasAns_exact"] == 100.0 and results["NoAns_exact"] == 100.0


# ------------------------------------------------------------------------- bad input


def tiny_squad_model(tmp_path, data, vocab_size_change=0):
    """Vocab and config for `data`; `vocab_size_change` < 0 makes the config's vocab_size
    smaller than the vocab (a vocab and a config of different models)."""
    texts = [p["context"] for p in data["data"][0]["paragraphs"]]
    texts += [qa["question"] for p in data["data"][0]["paragraphs"] for qa in p["qas"]]
    vocab = write_vocab_for_texts(tmp_path / "vocab.txt", texts)
    write_bert_config(tmp_path / "bert_config.json", len(vocab) + vocab_size_change)
    return len(vocab)


def failing_squad_run(tmp_path, data_file, **extra):
    """Runs run_squad.py expecting a failure before any work; an output file of an earlier
    run must survive it. Returns the output."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.json").write_text('{"earlier": "run"}')
    flags = {
        "vocab_file": tmp_path / "vocab.txt",
        "bert_config_file": tmp_path / "bert_config.json",
        "output_dir": out,
        "train_file": data_file,
        "do_train": True,
        "max_seq_length": 48,
        "max_query_length": 16,
    }
    flags.update(extra)
    result = run_script("run_squad.py", flags, expect_failure=True)
    assert (out / "predictions.json").read_text() == '{"earlier": "run"}'
    assert sorted(path.name for path in out.iterdir()) == ["predictions.json"]
    return result.stdout


def test_squad_v2_training_data_without_the_flag_says_to_add_it(tmp_path):
    data = squad_json(with_unanswerable=True)
    data_file = tmp_path / "train-v2.0.json"
    data_file.write_text(json.dumps(data))
    tiny_squad_model(tmp_path, data)
    output = failing_squad_run(tmp_path, data_file)
    assert (
        f"{data_file}: question 'n1' is marked \"is_impossible\": this is SQuAD 2.0 training "
        "data; pass --version_2_with_negative to train on it"
    ) in output


def test_vocab_larger_than_the_config_is_rejected_naming_both(tmp_path):
    data = squad_json(with_unanswerable=False)
    data_file = tmp_path / "train.json"
    data_file.write_text(json.dumps(data))
    num_tokens = tiny_squad_model(tmp_path, data, vocab_size_change=-3)
    output = failing_squad_run(tmp_path, data_file)
    assert (
        f"{tmp_path / 'vocab.txt'} holds {num_tokens} tokens but "
        f"{tmp_path / 'bert_config.json'} has vocab_size={num_tokens - 3}"
    ) in output


def test_gbk_squad_file_names_file_line_and_flag(tmp_path):
    data = squad_json(with_unanswerable=False)
    data["data"][0]["title"] = "北京"  # b1 b1 in GBK, and 0xb1 cannot start UTF-8
    data_file = tmp_path / "train.json"
    data_file.write_bytes(json.dumps(data, ensure_ascii=False, indent=1).encode("gbk"))
    tiny_squad_model(tmp_path, data)
    output = failing_squad_run(tmp_path, data_file)
    lines = json.dumps(data, ensure_ascii=False, indent=1).split("\n")
    line = next(number for number, text in enumerate(lines, 1) if "北" in text)
    column = lines[line - 1].index("北") + 1
    assert f"{data_file}:{line}: not valid UTF-8 (byte 0xb1 at column {column})" in output
    assert "--input_encoding=gbk" in output
