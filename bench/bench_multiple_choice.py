"""run_multiple_choice.py's speed with a real pretrained BERT (all-MiniLM-L6-v2, 6 layers,
hidden 384, converted as bench_ner.py converts it): training and prediction examples/s at
N=4 choices and sequence length 128.

The data is generated (JSON lines: a context of about 90 words, a short question and four
options of 5-15 words), so every choice's sequence fills most of the 128 positions; the
cost of a step does not depend on the words, since every sequence is padded to
--max_seq_length. Each example is 4 sequences through the encoder.

- training: the real script in a fresh process (--do_train --export_dir); examples/s is
  training examples x epochs / the training phase's wall time (from the log's "Running
  training" line to its "Loss for final step" line, so reading data and building features
  are left out, checkpoint loading and the first step's graph optimization are in; the
  lines are timed by their arrival, see script_logs.py);
- prediction: `predictor.MultipleChoicePredictor` on that export, best of 3 timed calls over
  the test examples after one warm-up call.

    .venv/bin/python bench/bench_multiple_choice.py
    .venv/bin/python bench/bench_multiple_choice.py --train_examples=128 --epochs=1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

import bench_ner
import script_logs

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
WORK_DIR = os.path.join(BENCH_DIR, "data", "multiple_choice")
WORDS = (
    "the a river stone garden window paper candle music silver forest cloud table orange "
    "walked quickly under over bright dark morning evening small large city village "
    "teacher student friend mother father book letter song road train house"
).split()


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def write_data(path: str, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    examples = [
        {
            "id": f"q{index}",
            "context": sentence(rng, 80, 100),
            "question": sentence(rng, 4, 8) + " ?",
            "choices": [sentence(rng, 5, 15) for _ in range(4)],
            "label": rng.randrange(4),
        }
        for index in range(count)
    ]
    with open(path, "w", encoding="utf-8") as writer:
        writer.writelines(json.dumps(example) + "\n" for example in examples)
    return examples


def train_and_export(args, model_dir: str, data_dir: str) -> tuple[float, str]:
    output_dir = os.path.join(WORK_DIR, "run")
    export_dir = os.path.join(WORK_DIR, "export")
    subprocess.run(["rm", "-rf", output_dir, export_dir], check=True)
    flags = [
        "--task_name=jsonl",
        f"--data_dir={data_dir}",
        f"--vocab_file={model_dir}/vocab.txt",
        f"--bert_config_file={model_dir}/bert_config.json",
        f"--init_checkpoint={model_dir}/bert_model.ckpt",
        "--do_lower_case=true",
        "--do_train",
        f"--export_dir={export_dir}",
        f"--max_seq_length={args.max_seq_length}",
        "--max_qa_length=32",
        f"--train_batch_size={args.batch_size}",
        f"--num_train_epochs={args.epochs}",
        "--learning_rate=2e-5",
        "--save_checkpoints_steps=100000",
        "--random_seed=12345",
        f"--output_dir={output_dir}",
        *args.extra_flags.split(),
    ]
    run = script_logs.run_stamped(
        [sys.executable, "run_multiple_choice.py", *flags],
        os.path.join(WORK_DIR, "train.log"),
        cwd=REPO_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if run.returncode != 0:
        raise SystemExit(f"run_multiple_choice.py failed:\n{run.text[-4000:]}")
    seconds = script_logs.phase_seconds(run, "***** Running training *****", "Loss for final step")
    examples = bench_ner.count_windows(
        [line for _, line in run.lines], "***** Running training *****"
    )
    return examples * args.epochs / seconds, export_dir


def predictor_examples_per_sec(export_dir: str, examples: list[dict], batch_size: int) -> float:
    sys.path.insert(0, REPO_ROOT)
    import predictor

    model = predictor.MultipleChoicePredictor(export_dir)
    questions = [(e["context"], e["question"], e["choices"]) for e in examples]
    model.predict(questions[:batch_size], batch_size=batch_size)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        model.predict(questions, batch_size=batch_size)
        best = min(best, time.perf_counter() - started)
    return len(questions) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_examples", type=int, default=64)
    parser.add_argument("--predict_examples", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--predict_batch_size", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--extra_flags", default="", help="more flags for the script")
    args = parser.parse_args()
    data_dir = os.path.join(WORK_DIR, "data")
    os.makedirs(data_dir, exist_ok=True)
    write_data(os.path.join(data_dir, "train.jsonl"), args.train_examples, seed=1)
    test = write_data(os.path.join(data_dir, "test.jsonl"), args.predict_examples, seed=2)
    model_dir = bench_ner.minilm_checkpoint()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    train_rate, export_dir = train_and_export(args, model_dir, data_dir)
    print(f"load average after training: {os.getloadavg()[0]:.2f}", flush=True)
    predict_rate = predictor_examples_per_sec(export_dir, test, args.predict_batch_size)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("| phase | N | seq | batch | examples/s | sequences/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for phase, rate, batch in (
        ("training", train_rate, args.batch_size),
        ("prediction (predictor)", predict_rate, args.predict_batch_size),
    ):
        print(f"| {phase} | 4 | {args.max_seq_length} | {batch} | {rate:.2f} | {4 * rate:.2f} |")


if __name__ == "__main__":
    main()
