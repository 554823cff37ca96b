"""Shared pytest set-up: quiet TensorFlow and deterministic, small CPU runs."""

import os

import pytest

from helpers import DATA_DIR, run_script, write_bert_config, write_vocab_for_texts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


CORPUS = DATA_DIR / "pretraining_corpus.txt"
SEQ_LENGTH = 64
MAX_PREDICTIONS = 10


@pytest.fixture(scope="session")
def pretraining_data(tmp_path_factory):
    """Vocab, tiny config and TFRecords made from data/pretraining_corpus.txt by
    create_pretraining_data.py."""
    root = tmp_path_factory.mktemp("pretraining")
    vocab = write_vocab_for_texts(root / "vocab.txt", CORPUS.read_text().splitlines())
    write_bert_config(
        root / "bert_config.json",
        len(vocab),
        hidden_size=64,
        intermediate_size=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    run_script(
        "create_pretraining_data.py",
        {
            "input_file": CORPUS,
            "output_file": f"{root}/a.tfrecord,{root}/b.tfrecord",
            "vocab_file": root / "vocab.txt",
            "max_seq_length": SEQ_LENGTH,
            "max_predictions_per_seq": MAX_PREDICTIONS,
            "dupe_factor": 4,
        },
    )
    return root
