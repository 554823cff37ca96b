"""Small builders shared by the tests: vocabularies, tiny configs, running scripts."""

from __future__ import annotations

import collections
import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab_for_texts(path: Path, texts, do_lower_case: bool = True, min_count: int = 1):
    """Writes a WordPiece vocab covering `texts`: special tokens, every word seen at least
    `min_count` times, and every character alone and as a `##` continuation."""
    import tokenization

    basic = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    counts = collections.Counter()
    chars = set()
    for text in texts:
        for word in basic.tokenize(text):
            counts[word] += 1
            chars.update(word)
    words = sorted(word for word, count in counts.items() if count >= min_count)
    pieces = sorted(chars) + ["##" + char for char in sorted(chars)]
    vocab = list(dict.fromkeys(SPECIAL_TOKENS + words + pieces))
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


def write_bert_config(path: Path, vocab_size: int, **overrides) -> dict:
    """Writes a tiny bert_config.json (2 layers, hidden 32) and returns its values."""
    config = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 128,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
    }
    config.update(overrides)
    path.write_text(json.dumps(config, indent=2))
    return config


def run_script(
    script: str,
    flags: dict,
    timeout: float = 600,
    env: dict | None = None,
    expect_failure: bool = False,
):
    """Runs a top-level script in a fresh Python process, as a user would, and returns the
    CompletedProcess (stdout and stderr merged). Fails the test when the exit status is not
    the expected one (zero, or non-zero with `expect_failure`)."""
    command = [sys.executable, str(REPO_ROOT / script)]
    for name, value in flags.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        command.append(f"--{name}={value}")
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    full_env.update(env or {})
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if expect_failure:
        if result.returncode == 0:
            raise AssertionError(f"{script} should have failed:\n{result.stdout[-6000:]}")
    elif result.returncode != 0:
        raise AssertionError(f"{script} exited with {result.returncode}:\n{result.stdout[-6000:]}")
    return result


def read_eval_results(path: Path) -> dict[str, float]:
    """Parses an eval_results.txt of `key = value` lines."""
    results = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" = ")
        results[key] = float(value)
    return results


FILLER = "river stone garden window paper candle music silver forest cloud table orange".split()


def keyword_sentence(rng: random.Random, label: str) -> str:
    """A sentence of filler words holding one keyword that decides its label ("happy" or
    "sad"): a task a tiny model learns in a few epochs."""
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
    words.insert(rng.randint(0, len(words)), "wonderful" if label == "happy" else "terrible")
    return " ".join(words)


def write_csv(path: Path, header, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def write_keyword_task(data_dir: Path, sizes: dict[str, int], seed: int = 0) -> dict:
    """Writes train/dev (and test, without labels) CSV files of the keyword task; returns
    the labels of each split."""
    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    labels = {}
    for split, count in sizes.items():
        labels[split] = [rng.choice(["happy", "sad"]) for _ in range(count)]
        rows = [[keyword_sentence(rng, label), label] for label in labels[split]]
        if split == "test":
            write_csv(data_dir / "test.csv", ["text"], [[text] for text, _ in rows])
        else:
            write_csv(data_dir / f"{split}.csv", ["text", "label"], rows)
    return labels


def write_tiny_model(root: Path, **config_overrides) -> dict:
    """A vocab covering the keyword task's words and a tiny, dropout-free BERT config;
    returns the flags that point at them."""
    texts = FILLER + ["wonderful terrible similar different", "a b c d e f g h"]
    vocab = write_vocab_for_texts(root / "vocab.txt", texts)
    overrides = dict(
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=32
    )
    overrides.update(config_overrides)
    write_bert_config(root / "bert_config.json", len(vocab), **overrides)
    return {
        "vocab_file": str(root / "vocab.txt"),
        "bert_config_file": str(root / "bert_config.json"),
    }


def load_variables(checkpoint_dir: Path) -> dict:
    """Every variable of the latest checkpoint in `checkpoint_dir`, by name."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(checkpoint_dir))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def max_difference(left: dict, right: dict, skip=("global_step",)) -> float:
    """Largest absolute difference between two checkpoints' float variables."""
    import numpy as np

    assert set(left) == set(right)
    return max(
        float(np.abs(left[name].astype("float64") - right[name]).max())
        for name in left
        if name not in skip and left[name].dtype.kind == "f"
    )


def write_tiny_albert_model(root: Path, texts, vocab_size: int = 120, **config_overrides) -> dict:
    """An ALBERT-style model directory: a SentencePiece model trained on `texts` (<pad> 0,
    <unk> 1, then [CLS], [SEP], [MASK], as ALBERT's 30k-clean.model), a tiny dropout-free
    albert_config.json (factorized embeddings, 3 layers sharing one group), and a random
    checkpoint model.ckpt-best of the encoder and the pre-training heads (ALBERT's names,
    which tests/test_albert_modeling.py checks). Returns the flags that point at them."""
    import sentencepiece

    import modeling

    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "spm_corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(root / "spiece"),
        vocab_size=vocab_size,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(root / "spiece.model"))
    config = {
        "vocab_size": pieces.get_piece_size(),
        "embedding_size": 8,
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "num_hidden_groups": 1,
        "inner_group_num": 1,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "net_structure_type": 0,
        "gap_size": 0,
        "num_memory_blocks": 0,
        "down_scale_factor": 1,
    }
    config.update(config_overrides)
    (root / "albert_config.json").write_text(json.dumps(config, indent=2))
    write_pretraining_checkpoint(
        modeling.BertConfig.from_dict(config), root / "model.ckpt-best", seed=3
    )
    return {
        "spm_model_file": str(root / "spiece.model"),
        "bert_config_file": str(root / "albert_config.json"),
        "init_checkpoint": str(root / "model.ckpt-best"),
    }


def write_pretraining_checkpoint(bert_config, prefix: Path, seed: int) -> None:
    """A randomly initialised checkpoint of BertModel with the masked-LM and next-sentence
    (ALBERT: sentence-order) heads, `cls/...`: the variables of Google's released
    checkpoints."""
    import tensorflow as tf

    import modeling
    import run_pretraining

    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        tf1.set_random_seed(seed)
        model = modeling.BertModel(bert_config, False, tf1.placeholder(tf.int32, [2, 8]))
        positions = tf.zeros([2, 2], tf.int32)
        run_pretraining.get_masked_lm_output(
            bert_config,
            model.get_sequence_output(),
            model.get_embedding_table(),
            positions,
            positions,
            tf.ones([2, 2]),
        )
        run_pretraining.get_next_sentence_output(
            bert_config, model.get_pooled_output(), tf.zeros([2, 1], tf.int32)
        )
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, str(prefix))
