"""Speed and memory of create_pretraining_data.py with 1 and 2 worker processes.

Generates (once) a deterministic pseudo-English corpus of at least --corpus_mb megabytes and a
WordPiece vocab covering it in bench/data/ (git-ignored), then runs the script on it once per
worker count and reports wall time, instances written, instances per second and peak memory:
the peaks of the summed RSS and of the summed PSS of the script and its worker processes
(sampled from /proc every 0.2 s), and the largest peak RSS of one process (VmHWM).

    .venv/bin/python bench/bench_create_pretraining_data.py --dupe_factor=2
"""

import argparse
import itertools
import os
import random
import re
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
DATA_DIR = os.path.join(BENCH_DIR, "data")
SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
NUM_WORDS = 30_000
NUM_WHOLE_WORDS_IN_VOCAB = 12_000


def make_words(rng: random.Random) -> list[str]:
    """Distinct pseudo-words of 1 to 4 syllables, most frequent first."""
    words: dict[str, None] = {}
    while len(words) < NUM_WORDS:
        words["".join(rng.choices(SYLLABLES, k=rng.choice([1, 2, 2, 3, 3, 4])))] = None
    return list(words)


def write_vocab(path: str, words: list[str]) -> None:
    """Frequent words whole; every other word is covered by syllable and letter pieces."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "!"]
    tokens += words[:NUM_WHOLE_WORDS_IN_VOCAB]
    tokens += SYLLABLES + ["##" + s for s in SYLLABLES]
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens += list(letters) + ["##" + c for c in letters]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(dict.fromkeys(tokens)) + "\n")


def sentence(rng: random.Random, words: list[str], cum_weights: list[float]) -> str:
    chosen = rng.choices(words, cum_weights=cum_weights, k=rng.randint(6, 25))
    if rng.random() < 0.3:
        chosen[rng.randrange(len(chosen) - 1)] += ","
    chosen[0] = chosen[0].capitalize()
    return " ".join(chosen) + rng.choice([".", ".", ".", "?", "!"])


def write_corpus(path: str, size_bytes: int, words: list[str]) -> None:
    """Documents of 3 to 40 sentences with Zipfian word frequencies, blank line between."""
    rng = random.Random(20240602)
    cum_weights = list(itertools.accumulate(1.0 / (rank + 2.7) for rank in range(len(words))))
    written = 0
    temp_path = path + ".partial"
    with open(temp_path, "w", encoding="utf-8") as f:
        while written < size_bytes:
            lines = [sentence(rng, words, cum_weights) for _ in range(rng.randint(3, 40))]
            document = "\n".join(lines) + "\n\n"
            f.write(document)
            written += len(document.encode("utf-8"))
    os.replace(temp_path, path)


def memory_of_tree_kb(root_pid: int) -> tuple[int, int, int]:
    """Memory of `root_pid` and all its descendants, in kB, from /proc: (summed RSS, summed
    PSS, largest peak RSS of one process so far).

    RSS counts shared pages (TensorFlow's libraries, loaded by every worker) once per
    process; PSS splits them among the processes sharing them, so its sum is the real total.
    """
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # The command name may hold spaces; the parent pid follows its ')'.
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family = {root_pid}
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in family} - family
        family |= children
        grew = bool(children)
    rss = pss = peak_one = 0
    for pid in family:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_one = max(peak_one, int(line.split()[1]))
        except OSError:
            continue
    return rss, pss, peak_one


def run(num_workers: int, args: argparse.Namespace, corpus: str) -> dict:
    output = os.path.join(DATA_DIR, f"cpd-out-w{num_workers}.tfrecord")
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "create_pretraining_data.py"),
        f"--input_file={corpus}",
        f"--output_file={output}",
        f"--vocab_file={os.path.join(DATA_DIR, 'cpd-vocab.txt')}",
        f"--dupe_factor={args.dupe_factor}",
        f"--max_seq_length={args.max_seq_length}",
        f"--max_predictions_per_seq={args.max_predictions_per_seq}",
        f"--num_workers={num_workers}",
        f"--shard_size_mb={args.shard_size_mb}",
    ]
    log_path = os.path.join(DATA_DIR, f"cpd-log-w{num_workers}.txt")
    start = time.monotonic()
    peak_rss_kb = peak_pss_kb = peak_one_kb = 0
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        while process.poll() is None:
            rss_kb, pss_kb, one_kb = memory_of_tree_kb(process.pid)
            peak_rss_kb, peak_pss_kb = max(peak_rss_kb, rss_kb), max(peak_pss_kb, pss_kb)
            peak_one_kb = max(peak_one_kb, one_kb)
            time.sleep(0.2)
    seconds = time.monotonic() - start
    if process.returncode != 0:
        raise SystemExit(f"run with {num_workers} worker(s) failed; see {log_path}")
    with open(log_path) as log:
        instances = int(re.findall(r"Wrote (\d+) total instances", log.read())[-1])
    return dict(
        workers=num_workers,
        seconds=seconds,
        instances=instances,
        instances_per_second=instances / seconds,
        peak_rss_sum_mb=peak_rss_kb / 1024,
        peak_pss_sum_mb=peak_pss_kb / 1024,
        max_single_process_mb=peak_one_kb / 1024,
        output_mb=os.path.getsize(output) / 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus_mb", type=float, default=50.0)
    parser.add_argument(
        "--dupe_factor", type=int, default=2, help="Passed to the script (its own default is 10)."
    )
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--shard_size_mb", type=float, default=8.0)
    parser.add_argument("--workers", default="1,2", help="Comma-separated worker counts.")
    args = parser.parse_args()

    os.makedirs(DATA_DIR, exist_ok=True)
    words = make_words(random.Random(20240601))
    write_vocab(os.path.join(DATA_DIR, "cpd-vocab.txt"), words)
    corpus = os.path.join(DATA_DIR, f"cpd-corpus-{args.corpus_mb:g}mb.txt")
    if not os.path.exists(corpus):
        print(f"Generating {corpus} ...", flush=True)
        write_corpus(corpus, int(args.corpus_mb * 1e6), words)
    print(
        f"corpus {os.path.getsize(corpus) / 1e6:.1f} MB, dupe_factor={args.dupe_factor}, "
        f"max_seq_length={args.max_seq_length}, shard_size_mb={args.shard_size_mb}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    print(
        "workers  seconds  instances  instances/s  peak RSS sum  peak PSS sum  max 1 process  (MB)"
    )
    for num_workers in (int(w) for w in args.workers.split(",")):
        result = run(num_workers, args, corpus)
        print(
            f"{result['workers']:>7}  {result['seconds']:>7.1f}  {result['instances']:>9}  "
            f"{result['instances_per_second']:>11.0f}  {result['peak_rss_sum_mb']:>12.0f}  "
            f"{result['peak_pss_sum_mb']:>12.0f}  {result['max_single_process_mb']:>13.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
