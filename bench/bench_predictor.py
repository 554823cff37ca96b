"""Prediction latency (batch 1) and throughput (batch 32): `Estimator.predict` against
`predictor.ClassifierPredictor` and a frozen `.pb` run in a `tf.compat.v1.Session`, on the
same texts and the same model.

The model is run_classifier.py's (BERT plus a 2-label softmax head) with a random-init
checkpoint (weights do not change the cost): by default 4 layers, hidden size 256, 4 heads,
intermediate 1024, sequence length 128. A pseudo-word vocab and texts long enough to fill
the 128 tokens are generated deterministically. Every path tokenizes the raw texts itself,
so each figure is raw text in, probabilities out.

Estimator.predict is timed as a user calls it: once per request, which builds the graph and
restores the checkpoint each time.

    .venv/bin/python bench/bench_predictor.py
    .venv/bin/python bench/bench_predictor.py --layers=12 --hidden=768 --heads=12
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
WORK_DIR = os.path.join(BENCH_DIR, "data", "predictor")
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import classifier_task  # noqa: E402
import estimator_builder  # noqa: E402
import export  # noqa: E402
import modeling  # noqa: E402
import predictor  # noqa: E402

tf1 = tf.compat.v1
LABELS = ["negative", "positive"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def pseudo_words(rng: random.Random, count: int) -> list[str]:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def write_vocab_and_texts(num_texts: int) -> tuple[str, list[str]]:
    """A vocab of 5,000 pseudo-words (plus letters and `##` letters) and texts of 60-120
    of its words, so that every text fills a 128-token sequence."""
    rng = random.Random(0)
    words = pseudo_words(rng, 5000)
    letters = sorted(set("".join(words)))
    vocab_file = os.path.join(WORK_DIR, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(SPECIAL_TOKENS + words + letters + ["##" + c for c in letters]) + "\n")
    texts = [
        " ".join(rng.choice(words) for _ in range(rng.randint(60, 120))) for _ in range(num_texts)
    ]
    return vocab_file, texts


def bert_config(args, vocab_file: str) -> modeling.BertConfig:
    with open(vocab_file, encoding="utf-8") as f:
        vocab_size = len(f.read().splitlines())
    return modeling.BertConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden,
        max_position_embeddings=max(512, args.seq_length),
    )


def classifier_model_fn(config: modeling.BertConfig):
    return classifier_task.model_fn_builder(
        bert_config=config,
        num_labels=len(LABELS),
        init_checkpoint=None,
        learning_rate=1e-5,
        num_train_steps=1,
        num_warmup_steps=0,
        use_tpu=False,
        use_one_hot_embeddings=False,
    )


def write_random_checkpoint(model_fn, seq_length: int) -> str:
    """Saves the freshly initialized variables of the PREDICT graph as a checkpoint."""
    model_dir = os.path.join(WORK_DIR, "model")
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        features = {
            name: tf1.placeholder(tf.int32, [None, seq_length], name=name)
            for name in export.INPUT_NAMES
        }
        model_fn(features, None, tf.estimator.ModeKeys.PREDICT, {})
        tf1.train.get_or_create_global_step()
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            return tf1.train.Saver().save(session, os.path.join(model_dir, "model.ckpt"))


def estimator_predict(estimator, features: dict, batch_size: int) -> np.ndarray:
    """One Estimator.predict call over in-memory features: what every request costs."""

    def input_fn(params):
        del params
        return tf.data.Dataset.from_tensor_slices(features).batch(batch_size)

    return np.array([row["probabilities"] for row in estimator.predict(input_fn)])


def best_time(function, calls: int = 1) -> tuple[float, object]:
    """Seconds per call of the fastest of `calls` calls, and the last call's result. The
    fastest is the figure least disturbed by other jobs on a shared machine."""
    best, result = float("inf"), None
    for _ in range(calls):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


class FrozenGraph:
    """The frozen `.pb` in a Session of its own."""

    def __init__(self, pb_file: str):
        graph_def = tf1.GraphDef()
        with open(pb_file, "rb") as f:
            graph_def.ParseFromString(f.read())
        graph = tf.Graph()
        with graph.as_default():
            tf1.import_graph_def(graph_def, name="")
        self.session = tf1.Session(graph=graph)

    def run(self, features: dict) -> np.ndarray:
        feed = {name + ":0": values for name, values in features.items()}
        return self.session.run("probabilities:0", feed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--num_texts", type=int, default=256, help="texts of the batch-32 runs")
    parser.add_argument("--rounds", type=int, default=5, help="times each figure is measured")
    parser.add_argument(
        "--single_calls", type=int, default=30, help="batch-1 calls per round of the fast paths"
    )
    args = parser.parse_args()
    tf1.logging.set_verbosity(tf1.logging.ERROR)
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    os.makedirs(WORK_DIR)

    vocab_file, texts = write_vocab_and_texts(args.num_texts)
    config = bert_config(args, vocab_file)
    model_fn = classifier_model_fn(config)
    checkpoint = write_random_checkpoint(model_fn, args.seq_length)
    export_path = export.export_saved_model(
        model_fn,
        checkpoint,
        os.path.join(WORK_DIR, "exported"),
        args.seq_length,
        assets_extra=export.tokenizer_assets(vocab_file, None),
        metadata={"labels": LABELS, "task_kind": "classification", "do_lower_case": True},
    )
    pb_file = os.path.join(WORK_DIR, "frozen.pb")
    export.freeze_saved_model(export_path, pb_file)

    start = time.perf_counter()
    fast = predictor.ClassifierPredictor(export_path)
    load_seconds = time.perf_counter() - start
    estimator = tf.estimator.Estimator(
        estimator_builder.as_estimator_model_fn(model_fn), model_dir=os.path.dirname(checkpoint)
    )
    frozen = FrozenGraph(pb_file)
    one, batch = texts[:1], 32

    paths = {
        "estimator": lambda chunk, size: estimator_predict(estimator, fast.featurize(chunk), size),
        "predictor": lambda chunk, size: fast.predict(chunk, batch_size=size).probabilities,
        "frozen": lambda chunk, size: np.concatenate(
            [frozen.run(fast.featurize(chunk[i : i + size])) for i in range(0, len(chunk), size)]
        ),
    }
    for run in paths.values():
        run(one, 1)  # The first call of a signature or a Session traces or prunes its graph.
    # Rounds interleave the paths so that a burst of load from other jobs hits all of them.
    results, outputs = {}, {}
    for _ in range(args.rounds):
        for name, run in paths.items():
            # One Estimator call costs seconds; a fast path's one example, milliseconds.
            single_calls = 1 if name == "estimator" else args.single_calls
            for size, chunk, calls in ((1, one, single_calls), (batch, texts, 1)):
                seconds, outputs[name, size] = best_time(functools.partial(run, chunk, size), calls)
                results[name, size] = min(results.get((name, size), seconds), seconds)
    difference = max(
        float(np.abs(outputs[name, size] - outputs["estimator", size]).max())
        for name in ("predictor", "frozen")
        for size in (1, batch)
    )

    report = {
        "model": f"{args.layers} layers, hidden {args.hidden}, seq {args.seq_length}",
        "predictor_load_seconds": round(load_seconds, 2),
        "max_probability_difference": float(difference),
    }
    for name in paths:
        report[f"{name}_batch1_latency_ms"] = round(1000 * results[name, 1], 2)
        report[f"{name}_batch32_examples_per_s"] = round(len(texts) / results[name, batch], 1)
    for name in ("predictor", "frozen"):
        report[f"{name}_latency_speedup"] = round(results["estimator", 1] / results[name, 1], 1)
        report[f"{name}_throughput_speedup"] = round(
            results["estimator", batch] / results[name, batch], 2
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
