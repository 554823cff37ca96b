"""Serves exported models over HTTP: TensorFlow Serving's REST API plus raw-text routes.

  python serve.py --model=vectors=/tmp/encoder_export --model=sentiment=/tmp/classifier_export

Each `--model=NAME=EXPORT_DIR` is an export of extract_features.py / run_pretraining.py
(encoder), run_classifier.py, run_ner.py, run_squad.py or run_multiple_choice.py (the newest
version under the directory; its kind is read from its metadata). Routes:

  POST /v1/models/NAME:predict  TF Serving's predict: {"instances": [{"input_ids": [...],
                                "input_mask": [...], "segment_ids": [...]}, ...]} (row
                                format, answered {"predictions": [...]}) or {"inputs":
                                {"input_ids": [[...], ...], ...}} (columnar, answered
                                {"outputs": {...}}). Rows may be shorter than the export's
                                length: they are zero-padded. A multiple-choice export takes
                                per instance [choices, seq] rows and a [choices] choice_mask;
                                fewer choices than its num_choices are padded (masked).
  GET  /v1/models/NAME          TF Serving's model status.
  GET  /v1/models/NAME/metadata the signature's inputs and outputs, and the export's settings.
  POST /encode    {"texts": ["...", ["text a", "text b"]]} -> {"vectors": [[...], ...]}
  POST /classify  {"texts": [...]} -> {"predictions": [{"label", "probabilities"}]}
  POST /tag       {"texts": [...]} -> {"entities": [[{"type", "text", "start", "end"}]]}
  POST /answer    {"questions": [{"question", "context"}]} -> {"answers": [{"text", ...}]}
  POST /choose    {"instances": [{"context", "question", "choices": [...]}]} ->
                  {"predictions": [{"id", "prediction", "choice", "probabilities"}]}
                  (each takes "model": NAME when several exports of its kind are served)
  GET  /healthz   {"status": "ok", "models": {...}}
  GET  /metrics   Prometheus text: requests, latency quantiles, batch sizes, queue depth.

Errors are TF Serving's `{"error": "..."}`: 400 for a request the server cannot take (bad
JSON, unknown inputs, a limit exceeded: the message names the flag), 404 for an unknown
model or route, 503 when the model's queue is full. Concurrent requests are batched per
model (--max_batch_size, --batch_timeout_ms); on an export taking any length ([batch, None]
inputs) each batch is cut to its longest member, on a fixed-length one padded to it.
SIGTERM or SIGINT stops accepting, answers everything accepted, then exits. The server
binds 127.0.0.1 unless told otherwise; --port=0 lets the system pick a free port, which is
printed (and written to --port_file).
"""

from __future__ import annotations

import bert_logging  # noqa: F401  (imports TensorFlow without its start-up noise)

import asyncio
import logging
import signal
import socket
import sys

from absl import app, flags
from aiohttp import web

import atomic_files
import flag_help
import serving

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_string(
        "model", [], "NAME=EXPORT_DIR of a model to serve; repeat for several."
    )
    flags.DEFINE_string("host", "127.0.0.1", "The address to listen on.")
    flags.DEFINE_integer("port", 8501, "The port (TF Serving's REST port); 0 picks a free one.")
    flags.DEFINE_string(
        "port_file", None, "Write the port listened on to this file once serving (for --port=0)."
    )
    flags.DEFINE_integer("max_batch_size", 32, "Most examples per model call.")
    flags.DEFINE_float(
        "batch_timeout_ms",
        5.0,
        "How long the first request of a batch waits for others to join it.",
    )
    flags.DEFINE_bool(
        "eager_batches",
        True,
        "Run a batch as soon as every request the model holds has joined it, rather than "
        "always waiting --batch_timeout_ms (TF Serving's way).",
    )
    flags.DEFINE_integer(
        "max_queue_size",
        256,
        "Most requests a model holds at once (accepted, not yet answered); more get 503.",
    )
    flags.DEFINE_integer(
        "max_request_batch_size", 64, "Most examples (instances, texts) in one request."
    )
    flags.DEFINE_integer(
        "max_text_length", 10000, "Most characters in one text (a pair's two texts together)."
    )
    flags.DEFINE_integer("max_request_bytes", 8 << 20, "Largest request body accepted (413).")
    flags.DEFINE_float(
        "shutdown_timeout", 60.0, "Seconds a shutdown waits for the requests in flight."
    )
    flags.DEFINE_bool(
        "squad_version_2_with_negative", False, "SQuAD exports: allow the null answer."
    )
    flags.DEFINE_float(
        "squad_null_score_diff_threshold", 0.0, "SQuAD 2.0: predict null above this."
    )


def parse_model_flags(values: list[str]) -> dict[str, str]:
    """`--model` values as {name: export_dir}; names are unique."""
    if not values:
        raise ValueError("--model: give at least one NAME=EXPORT_DIR")
    models = {}
    for value in values:
        name, equals, path = value.partition("=")
        if not equals or not name or not path or "/" in name or ":" in name:
            raise ValueError(f"--model={value!r}: expected NAME=EXPORT_DIR (NAME without / or :)")
        if name in models:
            raise ValueError(f"--model: the name {name!r} is given twice")
        models[name] = path
    return models


def load_models(metrics: serving.Metrics) -> dict[str, serving.ServedModel]:
    squad = {
        "version_2_with_negative": FLAGS.squad_version_2_with_negative,
        "null_score_diff_threshold": FLAGS.squad_null_score_diff_threshold,
    }
    models = {}
    for name, path in parse_model_flags(FLAGS.model).items():
        kind, predictor = serving.load_predictor(path, squad)
        models[name] = serving.ServedModel(
            name,
            kind,
            predictor,
            FLAGS.max_batch_size,
            FLAGS.batch_timeout_ms / 1000.0,
            FLAGS.max_queue_size,
            metrics,
            eager_batches=FLAGS.eager_batches,
        )
        logging.info("model %r: %s export %s", name, kind, predictor.export_path)
    return models


async def serve(models: dict[str, serving.ServedModel], metrics: serving.Metrics) -> None:
    server = serving.Server(
        models,
        serving.Limits(FLAGS.max_request_batch_size, FLAGS.max_text_length),
        metrics,
    )
    runner = web.AppRunner(
        server.application(FLAGS.max_request_bytes),
        shutdown_timeout=FLAGS.shutdown_timeout,
        access_log=None,
        handle_signals=False,
    )
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in FLAGS.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((FLAGS.host, FLAGS.port))
    site = web.SockSite(runner, sock)
    await site.start()
    port = sock.getsockname()[1]
    for model in models.values():
        model.runner.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if FLAGS.port_file:
        atomic_files.write_text(FLAGS.port_file, f"{port}\n")
    print(f"serve.py: listening on http://{FLAGS.host}:{port}", flush=True)
    await stop.wait()
    print("serve.py: stopping; answering the requests accepted", flush=True)
    server.draining = True
    # Stops listening, then waits for every handler in progress to answer.
    await runner.cleanup()
    for model in models.values():
        await loop.run_in_executor(None, model.close)
        print(
            f"serve.py: model {model.name}: {model.accepted} requests accepted, "
            f"{model.answered} answered",
            flush=True,
        )


def main(_) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    metrics = serving.Metrics()
    try:
        models = load_models(metrics)
    except (ValueError, FileNotFoundError) as err:
        print(f"serve.py: {err}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(serve(models, metrics))


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help()
    app.run(main)
