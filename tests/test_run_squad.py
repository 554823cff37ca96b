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
