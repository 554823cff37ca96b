"""Training throughput (examples/s, steps/s) of run_classifier.py and run_pretraining.py on
the GPU/CPU path, at two model sizes and for the fp32, mixed-precision, XLA and
gradient-accumulation variants.

Inputs are built once, deterministically, in bench/data/ (git-ignored): a pseudo-English
vocab and corpus from bench_create_pretraining_data.py's generator; pre-training TFRecords
written by the repo's own create_pretraining_data.py from that corpus; and a TSV of sentence
pairs with random labels that run_classifier.py reads with its generic processor and
tokenizes itself. Every configuration runs the real script in a fresh subprocess for a
fixed number of steps with --log_every_steps=--report_every; the figures come from its
training-progress lines (`step n/N (p%): loss = x, s steps/s, e examples/s, ETA t`): the
steps they name, over the time between their arrivals, which this process stamps
(script_logs.py says why that and not the speed in the line). The first line's interval,
from the hook's first step, holds the graph's warm-up and is dropped. A run makes
report_every x (reports + 1) steps, so the last step is a report too.
The summaries TensorBoard shows are written at the same interval (--log_every_steps sets
both); they are a few scalars, a negligible cost.

    .venv/bin/python bench/bench_training.py                       # everything, auto device
    .venv/bin/python bench/bench_training.py --models=small --variants=fp32,xla --tasks=pretraining
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import subprocess
import sys

import bench_create_pretraining_data as corpus_generator
import script_logs

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
DATA_DIR = os.path.join(BENCH_DIR, "data")
LOG_DIR = os.path.join(DATA_DIR, "training-logs")
RUNS_DIR = os.path.join(DATA_DIR, "training-runs")

TASKS = ("classifier", "pretraining")
VARIANTS = ("fp32", "mixed", "xla", "accum")
MAX_PREDICTIONS_PER_SEQ = 20
CORPUS_BYTES = 1_000_000
NUM_CLASSIFIER_EXAMPLES = 1024

MODEL_SIZES = {
    "small": dict(
        num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024
    ),
    "base": dict(
        num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072
    ),
}
COMMON_CONFIG = dict(
    vocab_size=30522,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=512,
    type_vocab_size=2,
    initializer_range=0.02,
)

# Per device and model size: (optimizer steps between hook reports, measured reports).
# On a 2-core CPU a step at batch 8 x 128 tokens takes 0.3-0.8 s for the small model and
# 5-10 s for BERT-Base (depending on other jobs), whose first three steps are slower still
# (graph optimization, allocation): its first report, at step 3 (covering steps 2-3, the
# hook's clock starts after step 1), is dropped and steps 4-6 are measured.
# On a GPU both sizes are fast enough for the original's interval of 100.
DEFAULT_SCHEDULE = {
    ("cpu", "small"): (10, 3),
    ("cpu", "base"): (3, 1),
    ("gpu", "small"): (100, 3),
    ("gpu", "base"): (100, 3),
}
DEFAULT_BATCH_SIZE = {"cpu": 8, "gpu": 32}


@dataclasses.dataclass
class Result:
    task: str
    model: str
    variant: str
    flags: str
    steps_per_sec: float | None = None
    examples_per_sec: float | None = None
    spread: str = ""
    measured_steps: int = 0
    wall_seconds: float = 0.0
    load_average: float = 0.0
    error: str = ""


# ---------------------------------------------------------------------------------- device


def detect_device() -> str:
    """'gpu' when TensorFlow in the repo's venv sees a GPU, else 'cpu' (asked in a
    subprocess so that this process never initializes a device)."""
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return "gpu" if int(output.strip().splitlines()[-1]) > 0 else "cpu"


def mixed_precision_for(device: str) -> str:
    """float16 on GPUs (tensor cores); bfloat16 on CPUs, where float16 matmuls have no fast
    kernels and TensorFlow falls back to slow or unsupported ones."""
    return "float16" if device == "gpu" else "bfloat16"


# ------------------------------------------------------------------------------------ data


def write_bert_config(model: str) -> str:
    path = os.path.join(DATA_DIR, f"training-bert-config-{model}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({**COMMON_CONFIG, **MODEL_SIZES[model]}, f, indent=2)
    return path


def write_vocab_and_corpus() -> tuple[str, str]:
    """The pseudo-English vocab and a ~1 MB corpus of bench_create_pretraining_data.py's
    generator (same words, same seeds), so every machine trains on the same text."""
    words = corpus_generator.make_words(random.Random(20240601))
    vocab = os.path.join(DATA_DIR, "training-vocab.txt")
    if not os.path.exists(vocab):
        corpus_generator.write_vocab(vocab, words)
    corpus = os.path.join(DATA_DIR, "training-corpus.txt")
    if not os.path.exists(corpus):
        corpus_generator.write_corpus(corpus, CORPUS_BYTES, words)
    return vocab, corpus


def write_pretraining_records(vocab: str, corpus: str, max_seq_length: int) -> str:
    """Runs create_pretraining_data.py (dupe_factor 1) once per sequence length."""
    output = os.path.join(DATA_DIR, f"training-pretraining-s{max_seq_length}.tfrecord")
    if os.path.exists(output):
        return output
    print(f"Writing {output} with create_pretraining_data.py ...", flush=True)
    command = [
        sys.executable,
        "create_pretraining_data.py",
        f"--input_file={corpus}",
        f"--output_file={output}",
        f"--vocab_file={vocab}",
        f"--max_seq_length={max_seq_length}",
        f"--max_predictions_per_seq={MAX_PREDICTIONS_PER_SEQ}",
        "--dupe_factor=1",
    ]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"create_pretraining_data.py failed:\n{completed.stderr[-2000:]}")
    return output


def write_classifier_tsv() -> str:
    """NUM_CLASSIFIER_EXAMPLES sentence pairs (2-3 generated sentences a side, so most pairs
    fill 128 tokens) with random 0/1 labels, as a TSV with a header. The labels carry no
    signal: only the speed of a step matters here, and a step costs the same whatever the
    text, since every sequence is padded to --max_seq_length."""
    data_dir = os.path.join(DATA_DIR, "training-classifier")
    path = os.path.join(data_dir, "train.tsv")
    if os.path.exists(path):
        return data_dir
    os.makedirs(data_dir, exist_ok=True)
    words = corpus_generator.make_words(random.Random(20240601))
    cum_weights = [1.0 / (rank + 2.7) for rank in range(len(words))]
    for index in range(1, len(cum_weights)):
        cum_weights[index] += cum_weights[index - 1]
    rng = random.Random(20240603)

    def text() -> str:
        count = rng.randint(2, 3)
        return " ".join(corpus_generator.sentence(rng, words, cum_weights) for _ in range(count))

    rows = ["sentence1\tsentence2\tlabel\n"]
    rows += [f"{text()}\t{text()}\t{rng.randint(0, 1)}\n" for _ in range(NUM_CLASSIFIER_EXAMPLES)]
    with open(path + ".partial", "w", encoding="utf-8") as f:
        f.writelines(rows)
    os.replace(path + ".partial", path)
    return data_dir


# ----------------------------------------------------------------------------------- runs


def variant_flags(variant: str, mixed_precision: str, accumulation_steps: int) -> list[str]:
    if variant == "fp32":
        return ["--precision=float32"]
    if variant == "mixed":
        return [f"--precision={mixed_precision}"]
    if variant == "xla":
        return ["--precision=float32", "--use_xla"]
    if variant == "accum":
        return ["--precision=float32", f"--gradient_accumulation_steps={accumulation_steps}"]
    raise ValueError(f"unknown variant {variant!r}")


def task_command(task: str, num_steps: int, inputs: dict, args: argparse.Namespace) -> list[str]:
    """The script and its task flags for a run of exactly `num_steps` optimizer steps."""
    if task == "pretraining":
        return [
            "run_pretraining.py",
            f"--input_file={inputs['pretraining_records']}",
            f"--max_predictions_per_seq={MAX_PREDICTIONS_PER_SEQ}",
            f"--num_train_steps={num_steps}",
            "--num_warmup_steps=1",
        ]
    # run_classifier.py derives its steps from the data: int(examples / batch * epochs);
    # half a step more than wanted keeps float rounding from losing one.
    epochs = (num_steps + 0.5) * args.train_batch_size / NUM_CLASSIFIER_EXAMPLES
    return [
        "run_classifier.py",
        "--task_name=generic",
        f"--data_dir={inputs['classifier_dir']}",
        "--file_format=tsv",
        "--train_file=train.tsv",
        "--text_a_column=sentence1",
        "--text_b_column=sentence2",
        "--label_column=label",
        f"--vocab_file={inputs['vocab']}",
        f"--num_train_epochs={epochs!r}",
    ]


def last_error_line(log_text: str) -> str:
    """The most telling line of a failed run: the exception that ended it."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception)\b", line):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def run_one(task: str, model: str, variant: str, inputs: dict, args: argparse.Namespace) -> Result:
    default_every, default_reports = DEFAULT_SCHEDULE[(args.device, model)]
    report_every = args.report_every or default_every
    reports = args.reports or default_reports
    # The hook's clock starts after step 1; its first report (at step report_every) is
    # warm-up; then --reports measured intervals, the last ending at the last step.
    num_steps = report_every * (reports + 1)
    name = f"{task}-{model}-{variant}"
    output_dir = os.path.join(RUNS_DIR, name)
    shutil.rmtree(output_dir, ignore_errors=True)
    extra = variant_flags(variant, args.mixed_precision, args.accumulation_steps)
    script_and_task_flags = task_command(task, num_steps, inputs, args)
    common = [
        f"--bert_config_file={inputs['configs'][model]}",
        f"--output_dir={output_dir}",
        "--do_train",
        f"--train_batch_size={args.train_batch_size}",
        f"--max_seq_length={args.max_seq_length}",
        f"--save_checkpoints_steps={10 * num_steps}",
        "--random_seed=1",
        f"--log_every_steps={report_every}",
    ]
    script_command = [*script_and_task_flags, *common, *extra, *args.extra_flags.split()]
    command = [sys.executable, *script_command]
    result = Result(task, model, variant, " ".join(extra))
    log_path = os.path.join(LOG_DIR, f"{name}.log")
    run = script_logs.run_stamped(
        command, log_path, cwd=REPO_ROOT, timeout=args.timeout, header="# " + " ".join(command)
    )
    result.wall_seconds = run.seconds
    # Other jobs share the machine; the 1-minute load average at the end tells how much.
    result.load_average = os.getloadavg()[0]
    if not args.keep_outputs:
        shutil.rmtree(output_dir, ignore_errors=True)
    if run.timed_out:
        result.error = f"killed after --timeout={args.timeout:g} s; see {log_path}"
        return result
    if run.returncode != 0:
        result.error = last_error_line(run.text)
        return result
    reports = script_logs.hook_reports(run)
    if len(reports) < 2:
        result.error = f"no training-progress line after the warm-up one; see {log_path}"
        return result
    intervals = script_logs.measured_intervals(reports)
    result.measured_steps = sum(steps for steps, _ in intervals)
    result.steps_per_sec = result.measured_steps / sum(seconds for _, seconds in intervals)
    result.examples_per_sec = result.steps_per_sec * args.train_batch_size
    rates = [steps / seconds * args.train_batch_size for steps, seconds in intervals]
    result.spread = f"{min(rates):.1f}-{max(rates):.1f}"
    return result


# ---------------------------------------------------------------------------------- table


def format_table(results: list[Result]) -> str:
    """A Markdown table; 'vs fp32' compares examples/s with the same task and model."""
    baseline = {
        (r.task, r.model): r.examples_per_sec
        for r in results
        if r.variant == "fp32" and r.examples_per_sec
    }
    lines = [
        "| task | model | variant | flags | examples/s | steps/s | vs fp32 | "
        "range of intervals (ex/s) | measured steps | wall s | load |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error:
            lines.append(
                f"| {r.task} | {r.model} | {r.variant} | `{r.flags}` | failed: {r.error} "
                f"| | | | | {r.wall_seconds:.0f} | {r.load_average:.1f} |"
            )
            continue
        reference = baseline.get((r.task, r.model))
        ratio = f"{r.examples_per_sec / reference:.2f}" if reference else ""
        lines.append(
            f"| {r.task} | {r.model} | {r.variant} | `{r.flags}` | {r.examples_per_sec:.2f} "
            f"| {r.steps_per_sec:.3f} | {ratio} | {r.spread} | {r.measured_steps} "
            f"| {r.wall_seconds:.0f} | {r.load_average:.1f} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- main


def comma_list(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(allowed)}, got {text!r}"
            )
        return items

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=comma_list(TASKS), default=list(TASKS))
    parser.add_argument("--models", type=comma_list(tuple(MODEL_SIZES)), default=["small", "base"])
    parser.add_argument("--variants", type=comma_list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="Sets the defaults below; 'auto' asks TensorFlow whether a GPU is present.",
    )
    parser.add_argument(
        "--train_batch_size",
        type=int,
        default=None,
        help="Global batch of one optimizer step (default 8 on a CPU, 32 on a GPU).",
    )
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument(
        "--mixed_precision",
        choices=("auto", "float16", "bfloat16"),
        default="auto",
        help="--precision of the 'mixed' variant; auto: float16 on a GPU, bfloat16 on a CPU.",
    )
    parser.add_argument(
        "--accumulation_steps",
        type=int,
        default=2,
        help="--gradient_accumulation_steps of the 'accum' variant (same global batch).",
    )
    parser.add_argument(
        "--report_every",
        type=int,
        default=None,
        help="--log_every_steps of the runs: steps between the progress lines measured "
        "(default per device and model size: CPU small 10, CPU base 3, GPU 100).",
    )
    parser.add_argument(
        "--reports",
        type=int,
        default=None,
        help="Measured reports per run, after the dropped warm-up one (default: CPU base 1, "
        "else 3); a run makes report_every x (reports + 1) steps.",
    )
    parser.add_argument(
        "--extra_flags",
        default="",
        help="Flags added to every run, e.g. '--distribution_strategy=mirrored'.",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per run.")
    parser.add_argument("--keep_outputs", action="store_true", help="Keep each run's output_dir.")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = detect_device()
    if args.train_batch_size is None:
        args.train_batch_size = DEFAULT_BATCH_SIZE[args.device]
    if args.mixed_precision == "auto":
        args.mixed_precision = mixed_precision_for(args.device)
    if "accum" in args.variants and args.train_batch_size % args.accumulation_steps:
        parser.error(
            f"--train_batch_size={args.train_batch_size} does not split into "
            f"--accumulation_steps={args.accumulation_steps} micro-batches"
        )
    if any(value is not None and value < 1 for value in (args.reports, args.report_every)):
        parser.error("--reports and --report_every must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    for directory in (DATA_DIR, LOG_DIR, RUNS_DIR):
        os.makedirs(directory, exist_ok=True)
    vocab, corpus = write_vocab_and_corpus()
    inputs = {
        "vocab": vocab,
        "configs": {model: write_bert_config(model) for model in args.models},
    }
    if "pretraining" in args.tasks:
        inputs["pretraining_records"] = write_pretraining_records(
            vocab, corpus, args.max_seq_length
        )
    if "classifier" in args.tasks:
        inputs["classifier_dir"] = write_classifier_tsv()
    print(
        f"device={args.device} batch={args.train_batch_size} seq={args.max_seq_length} "
        f"mixed={args.mixed_precision} accumulation={args.accumulation_steps} "
        f"cpus={os.cpu_count()}",
        flush=True,
    )
    results = []
    for task in args.tasks:
        for model in args.models:
            for variant in args.variants:
                result = run_one(task, model, variant, inputs, args)
                results.append(result)
                status = result.error or (
                    f"{result.examples_per_sec:.2f} examples/s, {result.steps_per_sec:.3f} steps/s"
                )
                print(
                    f"{task:<11} {model:<5} {variant:<5} {result.wall_seconds:6.0f} s  {status}",
                    flush=True,
                )
    print()
    print(format_table(results))


if __name__ == "__main__":
    main()
