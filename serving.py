"""The pieces of serve.py: cross-caller batching, metrics, TF Serving's REST shapes, routes.

A served export is a `ServedModel`: its predictor (for the tokenizer and the task's
post-processing) and a `BatchingRunner`, the one thread that runs the model. Every request,
whether tensors in TensorFlow Serving's JSON or raw texts, becomes a job of `[rows, length]`
int arrays (`[rows, choices, length]` and a `[rows, choices]` choice_mask for multiple
choice) on the runner's queue; the runner takes the first job, gathers more until
`max_batch_size` rows or `batch_timeout_s` has passed, pads them to one length (the longest
member when the export takes any length, else the export's fixed length), runs them in one
call and hands each job its own rows back. TensorFlow's eager calls release the GIL, so the
event loop and the tokenizing threads keep going while the model runs.

The raw-text routes reuse the predictors' own code end to end: a predictor's `run` (what
its `predict` / `tag` / `answer` / `encode` call between featurizing and post-processing)
is pointed at the runner, and the predictor call itself runs in a thread of the model's
pool, so tokenization and post-processing stay the predictors' and only the model call is
shared between callers.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from aiohttp import web

import export
import predictor as predictor_lib

ENCODER, CLASSIFIER, NER, SQUAD = "encoder", "classifier", "ner", "squad"
CHOICE = "multiple_choice"
KINDS = (ENCODER, CLASSIFIER, NER, SQUAD, CHOICE)
# The raw-text route of each kind.
TEXT_ROUTES = {
    ENCODER: "/encode",
    CLASSIFIER: "/classify",
    NER: "/tag",
    SQUAD: "/answer",
    CHOICE: "/choose",
}
DEFAULT_SIGNATURE = "serving_default"
LATENCY_WINDOW = 10000
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

logger = logging.getLogger("serve")


class RequestError(Exception):
    """A request the server cannot take as it is: answered 400 with the message."""

    status = 400


class NotFound(RequestError):
    status = 404


class Overloaded(RequestError):
    """The model's queue is full: answered 503, the client may retry."""

    status = 503


@dataclasses.dataclass
class Limits:
    """Per-request limits, each answered 400 naming its flag when exceeded."""

    max_request_batch_size: int = 64
    max_text_length: int = 10000


# ------------------------------------------------------------------------------- batching


def real_length(features: dict[str, np.ndarray]) -> int:
    """The number of leading positions (along the last axis, the tokens) holding a real
    token in any row (at least 1): the width a job needs once its padding is cut."""
    mask = features.get("input_mask")
    if mask is None:
        return next(iter(features.values())).shape[-1]
    columns = np.flatnonzero(mask.reshape(-1, mask.shape[-1]).any(axis=0))
    return int(columns[-1]) + 1 if columns.size else 1


def fit_width(array: np.ndarray, width: int, axis: int = -1) -> np.ndarray:
    """`array` cut or zero-padded along `axis` (the tokens) to `width`."""
    axis = axis % array.ndim
    length = array.shape[axis]
    if length == width:
        return array
    if length > width:
        return np.take(array, np.arange(width), axis=axis)
    padding = [(0, 0)] * array.ndim
    padding[axis] = (0, width - length)
    return np.pad(array, padding)


def stack_jobs(
    jobs: Sequence[dict[str, np.ndarray]],
    sequence_length: int | None,
    token_inputs: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """One batch of the jobs' inputs (each `[rows_i, length_i]`, or `[rows_i, choices,
    length_i]`: the tokens are the last axis), padded to
    `sequence_length` when the export has a fixed one, else to the longest real length
    among the jobs; returns it and its width. Only the `token_inputs` (all inputs when None)
    have a token axis: the others (multiple choice's `choice_mask`, `[rows_i, choices]`)
    are stacked as they are."""
    width = sequence_length or max(real_length(job) for job in jobs)
    token_inputs = set(jobs[0] if token_inputs is None else token_inputs)
    stacked = {
        name: np.concatenate(
            [fit_width(job[name], width) if name in token_inputs else job[name] for job in jobs]
        )
        for name in jobs[0]
    }
    return stacked, width


@dataclasses.dataclass
class _Job:
    features: dict[str, np.ndarray]
    rows: int
    width: int
    future: concurrent.futures.Future


_STOP = object()


class BatchingRunner:
    """Runs a signature on the jobs of all callers, batched, in one thread.

    `submit` returns a `concurrent.futures.Future` of the job's outputs (every output of
    the signature, `[rows, ...]`; outputs whose sequence axis is dynamic come back at the
    job's own width). `run` is the blocking form, shaped like `Predictor.run`.

    `requests_in_flight`, when given, counts the requests that may still bring a job: a
    batch stops waiting once every one of them has joined it, so a lone caller does not
    pay `batch_timeout_s` for companions who are not coming.
    """

    def __init__(
        self,
        name: str,
        signature,
        max_batch_size: int,
        batch_timeout_s: float,
        metrics: Metrics,
        requests_in_flight: Callable[[], int] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError(f"--max_batch_size must be at least 1, got {max_batch_size}")
        self.name = name
        self._signature = signature
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self._metrics = metrics
        self._requests_in_flight = requests_in_flight
        self.sequence_length = predictor_lib.signature_sequence_length(signature)
        inputs = signature.structured_input_signature[1]
        self.input_names = sorted(inputs)
        self.input_dtypes = {name: inputs[name].dtype for name in inputs}
        # One example's shape per input (None where any size goes): `[seq]`, or multiple
        # choice's `[num_choices, seq]` and `[num_choices]` (choice_mask).
        self.example_shapes = {name: tuple(inputs[name].shape[1:]) for name in inputs}
        # The inputs with a token axis (the last), those shaped like input_ids.
        self.token_inputs = [
            name
            for name in self.input_names
            if inputs[name].shape.rank == inputs["input_ids"].shape.rank
        ]
        outputs = signature.structured_outputs
        # Outputs with a per-token axis (axis 1 of a model on [batch, tokens] inputs) of
        # unknown size: resized to each job's width.
        token_inputs = inputs["input_ids"].shape.rank == 2
        self._per_token_outputs = {
            key
            for key, spec in outputs.items()
            if token_inputs
            and spec.shape.rank is not None
            and spec.shape.rank >= 2
            and spec.shape[1] is None
        }
        self.output_names = sorted(outputs)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve_forever, name=f"model-{name}")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finishes every job already submitted, then ends the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, features: dict[str, np.ndarray]) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        rows = len(next(iter(features.values())))
        if rows == 0:
            future.set_result({key: np.zeros([0]) for key in self.output_names})
            return future
        width = features["input_ids"].shape[-1]
        self._queue.put(_Job(features, rows, width, future))
        return future

    def run(self, features: dict[str, np.ndarray], batch_size: int | None = None) -> dict:
        """`Predictor.run`'s contract through the shared queue (`batch_size` is the
        runner's own)."""
        del batch_size
        features = {name: np.asarray(value, np.int32) for name, value in features.items()}
        return self.submit(features).result()

    def _serve_forever(self) -> None:
        waiting = None
        while True:
            job = waiting if waiting is not None else self._queue.get()
            waiting = None
            if job is _STOP:
                return
            batch, rows, stopping = [job], job.rows, False
            deadline = time.monotonic() + self.batch_timeout_s
            while rows < self.max_batch_size and not self._all_joined(len(batch)):
                try:
                    following = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if following is _STOP:
                    stopping = True
                    break
                if rows + following.rows > self.max_batch_size:
                    waiting = following
                    break
                batch.append(following)
                rows += following.rows
            self._run_jobs(batch)
            if stopping:
                # Nothing is queued behind the stop: the server stopped taking requests.
                return

    def _all_joined(self, batch_jobs: int) -> bool:
        if self._requests_in_flight is None or not self._queue.empty():
            return False
        return self._requests_in_flight() <= batch_jobs

    def _run_jobs(self, jobs: list[_Job]) -> None:
        try:
            outputs = self._run_stacked([job.features for job in jobs])
        except Exception as err:  # noqa: BLE001 - answered to the callers, not raised here
            if len(jobs) > 1:
                # One bad request (an id outside the vocabulary, say) must not fail the
                # others it was batched with: run each alone.
                for job in jobs:
                    self._run_jobs([job])
                return
            jobs[0].future.set_exception(err)
            return
        start = 0
        for job in jobs:
            result = {}
            for key, value in outputs.items():
                rows = value[start : start + job.rows]
                if key in self._per_token_outputs:
                    rows = fit_width(rows, job.width, axis=1)
                result[key] = rows
            start += job.rows
            job.future.set_result(result)

    def _run_stacked(self, jobs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        stacked, _ = stack_jobs(jobs, self.sequence_length, self.token_inputs)
        total = len(next(iter(stacked.values())))
        parts = []
        # A single job larger than a batch (a long SQuAD passage) runs in slices.
        for begin in range(0, total, self.max_batch_size):
            inputs = {
                name: tf.constant(
                    value[begin : begin + self.max_batch_size], self.input_dtypes[name]
                )
                for name, value in stacked.items()
            }
            started = time.monotonic()
            outputs = self._signature(**inputs)
            parts.append({key: value.numpy() for key, value in outputs.items()})
            self._metrics.observe_batch(
                self.name, len(inputs["input_ids"]), time.monotonic() - started
            )
        if len(parts) == 1:
            return parts[0]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


# -------------------------------------------------------------------------------- metrics


class Metrics:
    """Counters, a latency window and batch-size buckets, rendered in Prometheus' text
    format. Updated from the event loop and the model threads, hence the lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self._latencies: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=LATENCY_WINDOW)
        )
        self._latency_sum: collections.Counter = collections.Counter()
        self._batch_buckets: dict[str, list[int]] = collections.defaultdict(
            lambda: [0] * (len(BATCH_BUCKETS) + 1)
        )
        self._batch_rows: collections.Counter = collections.Counter()
        self._batches: collections.Counter = collections.Counter()
        self._model_seconds: collections.Counter = collections.Counter()

    def observe_request(self, model: str, route: str, code: int, seconds: float) -> None:
        """Counts every request; the latency window holds only those of a model."""
        with self._lock:
            self.requests[(model, route, code)] += 1
            if model:
                self._latencies[model].append(seconds)
                self._latency_sum[model] += seconds

    def observe_batch(self, model: str, rows: int, seconds: float) -> None:
        with self._lock:
            self._batch_buckets[model][bisect.bisect_left(BATCH_BUCKETS, rows)] += 1
            self._batch_rows[model] += rows
            self._batches[model] += 1
            self._model_seconds[model] += seconds

    def latency_quantiles(self, model: str, quantiles=(0.5, 0.9, 0.99)) -> dict[float, float]:
        with self._lock:
            window = np.array(self._latencies.get(model, ()), np.float64)
        if not window.size:
            return {}
        return {q: float(np.quantile(window, q)) for q in quantiles}

    def render(self, queue_depths: dict[str, int], queued_jobs: dict[str, int]) -> str:
        lines = [
            "# HELP bert_serve_requests_total Requests answered, by model, route and status.",
            "# TYPE bert_serve_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self.requests.items())
            latency_count = {model: len(window) for model, window in self._latencies.items()}
            latency_sum = dict(self._latency_sum)
            buckets = {model: list(counts) for model, counts in self._batch_buckets.items()}
            batch_rows, batches = dict(self._batch_rows), dict(self._batches)
            model_seconds = dict(self._model_seconds)
        for (model, route, code), count in requests:
            lines.append(
                f'bert_serve_requests_total{{model="{model}",route="{route}",code="{code}"}} '
                f"{count}"
            )
        lines += [
            "# HELP bert_serve_request_latency_seconds Request latency over the last "
            f"{LATENCY_WINDOW} requests of each model.",
            "# TYPE bert_serve_request_latency_seconds summary",
        ]
        for model in sorted(latency_count):
            for q, value in self.latency_quantiles(model).items():
                lines.append(
                    f'bert_serve_request_latency_seconds{{model="{model}",quantile="{q}"}} '
                    f"{value:.6f}"
                )
            lines.append(
                f'bert_serve_request_latency_seconds_sum{{model="{model}"}} '
                f"{latency_sum[model]:.6f}"
            )
            lines.append(
                f'bert_serve_request_latency_seconds_count{{model="{model}"}} '
                f"{latency_count[model]}"
            )
        lines += [
            "# HELP bert_serve_batch_size Examples per model call.",
            "# TYPE bert_serve_batch_size histogram",
        ]
        for model in sorted(buckets):
            cumulative = 0
            for bound, count in zip([*BATCH_BUCKETS, "+Inf"], buckets[model], strict=True):
                cumulative += count
                lines.append(
                    f'bert_serve_batch_size_bucket{{model="{model}",le="{bound}"}} {cumulative}'
                )
            lines.append(f'bert_serve_batch_size_sum{{model="{model}"}} {batch_rows[model]}')
            lines.append(f'bert_serve_batch_size_count{{model="{model}"}} {batches[model]}')
            lines.append(
                f'bert_serve_model_seconds_total{{model="{model}"}} {model_seconds[model]:.6f}'
            )
        lines += [
            "# HELP bert_serve_queue_depth Requests accepted and not yet answered.",
            "# TYPE bert_serve_queue_depth gauge",
        ]
        for model in sorted(queue_depths):
            lines.append(f'bert_serve_queue_depth{{model="{model}"}} {queue_depths[model]}')
        lines += [
            "# HELP bert_serve_queued_jobs Jobs waiting for the model thread.",
            "# TYPE bert_serve_queued_jobs gauge",
        ]
        for model in sorted(queued_jobs):
            lines.append(f'bert_serve_queued_jobs{{model="{model}"}} {queued_jobs[model]}')
        return "\n".join(lines) + "\n"


# -------------------------------------------------------------------- TF Serving's REST API


def _as_int_array(value, rank: int, where: str) -> np.ndarray:
    """One example's value of an input, nested lists `rank` deep, as int64; ragged inner
    lists (choices of different lengths) are zero-padded to the longest."""
    if rank == 0:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestError(f"{where}: expected an integer, got {value!r:.80}")
        return np.asarray(value, np.int64)
    if not isinstance(value, list):
        expected = "a list of integers" if rank == 1 else f"a list nested {rank} deep"
        raise RequestError(f"{where}: expected {expected}, got {value!r:.80}")
    if rank == 1:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise RequestError(f"{where}: expected a list of integers, got {value!r:.80}")
        return np.asarray(value, np.int64).reshape([len(value)])
    parts = [_as_int_array(v, rank - 1, f"{where}[{i}]") for i, v in enumerate(value)]
    inner = np.max([part.shape for part in parts], axis=0) if parts else [0] * (rank - 1)
    array = np.zeros([len(parts), *inner], np.int64)
    for index, part in enumerate(parts):
        array[(index, *(slice(0, size) for size in part.shape))] = part
    return array


def _kind(value) -> str:
    return type(value).__name__ if value is not None else "null"


def _axis_limit(shape: tuple, axis: int, token_rank: int) -> tuple[str, str]:
    """What an example's axis is, for the 400 of a value too long along it: the last axis
    of the inputs shaped like input_ids (rank `token_rank`) holds tokens, any other the
    choices."""
    if len(shape) == token_rank and axis == token_rank - 1:
        return "positions", "its max_seq_length"
    return "choices", "its num_choices"


def pad_examples(
    examples_by_input: dict[str, list[np.ndarray]],
    example_shapes: dict[str, tuple],
    max_seq_length: int | None = None,
) -> dict[str, np.ndarray]:
    """int32 `[rows, *example_shape]` per input: every example zero-padded to the export's
    fixed sizes (which none may exceed: 400 naming the limit) and, along axes of any size,
    to the longest of the request; the token axis of a dynamic-length export may not exceed
    its `max_seq_length` (the length it was trained at) either."""
    token_rank = max(len(shape) for shape in example_shapes.values())
    out = {}
    for name, examples in examples_by_input.items():
        shape = example_shapes[name]
        target = []
        for axis, fixed in enumerate(shape):
            longest = max((example.shape[axis] for example in examples), default=0)
            what, limit = _axis_limit(shape, axis, token_rank)
            most = fixed if fixed is not None else max_seq_length if what == "positions" else None
            if most is not None and longest > most:
                raise RequestError(
                    f"{name}: an example has {longest} {what}; this export takes at most "
                    f"{most} ({limit})"
                )
            target.append(max(fixed or longest, 1))
        array = np.zeros([len(examples), *target], np.int64)
        for index, example in enumerate(examples):
            array[(index, *(slice(0, size) for size in example.shape))] = example
        if array.size and (array.min() < -(2**31) or array.max() >= 2**31):
            raise RequestError(f"{name}: values must fit in int32")
        out[name] = array.astype(np.int32)
    return out


def _check_example_shapes(example: dict[str, np.ndarray], where: str) -> None:
    """The inputs of one example agree on their common leading axes (multiple choice's
    choice_mask has one entry per choice row of input_ids)."""
    deepest = max(example.values(), key=lambda array: array.ndim)
    for name, array in example.items():
        if array.shape != deepest.shape[: array.ndim]:
            raise RequestError(f"{where}: the inputs differ in length ({name})")


def parse_predict_request(
    body, example_shapes: dict[str, tuple], limits: Limits, max_seq_length: int | None = None
) -> tuple[dict[str, np.ndarray], str]:
    """A TF Serving `:predict` body as int32 inputs, and its format (`"instances"`, the
    row format, or `"inputs"`, the columnar one). `example_shapes` holds one example's
    shape per input (`BatchingRunner.example_shapes`); `max_seq_length` bounds the token
    axis where the export takes any length (see `pad_examples`)."""
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, got {_kind(body)}")
    signature = body.get("signature_name", DEFAULT_SIGNATURE)
    if signature != DEFAULT_SIGNATURE:
        raise RequestError(
            f"Serving signature name: {signature!r} not found in signature def; this server "
            f"serves {DEFAULT_SIGNATURE!r}"
        )
    unknown = set(body) - {"signature_name", "instances", "inputs"}
    if unknown:
        raise RequestError(f"unknown request field(s) {sorted(unknown)}")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError('the request must have exactly one of "instances" or "inputs"')
    input_names = sorted(example_shapes)
    expected = ", ".join(input_names)
    examples_by_input: dict[str, list] = {name: [] for name in input_names}
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RequestError(f'"instances" must be a list, got {_kind(instances)}')
        _check_count(len(instances), limits)
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise RequestError(
                    f"instances[{index}]: expected an object with the inputs {expected}"
                )
            _check_names(instance, input_names, f"instances[{index}]")
            example = {
                name: _as_int_array(
                    instance[name], len(example_shapes[name]), f"instances[{index}].{name}"
                )
                for name in input_names
            }
            _check_example_shapes(example, f"instances[{index}]")
            for name in input_names:
                examples_by_input[name].append(example[name])
        return pad_examples(examples_by_input, example_shapes, max_seq_length), "instances"
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
        raise RequestError(f'"inputs" must be an object of the inputs {expected}')
    _check_names(inputs, input_names, '"inputs"')
    for name in input_names:
        if not isinstance(inputs[name], list):
            raise RequestError(f"inputs.{name}: expected a list of rows, got {_kind(inputs[name])}")
    counts = {len(inputs[name]) for name in input_names}
    if len(counts) != 1:
        raise RequestError('"inputs": the inputs have different numbers of rows')
    _check_count(counts.pop(), limits)
    for index in range(len(inputs[input_names[0]])):
        example = {
            name: _as_int_array(
                inputs[name][index], len(example_shapes[name]), f"inputs.{name}[{index}]"
            )
            for name in input_names
        }
        _check_example_shapes(example, f'"inputs": row {index}')
        for name in input_names:
            examples_by_input[name].append(example[name])
    return pad_examples(examples_by_input, example_shapes, max_seq_length), "inputs"


def _check_names(given: dict, input_names: Sequence[str], where: str) -> None:
    unknown = sorted(set(given) - set(input_names))
    missing = [name for name in input_names if name not in given]
    if unknown:
        raise RequestError(
            f"{where}: unknown input {unknown[0]!r}; the signature takes {', '.join(input_names)}"
        )
    if missing:
        raise RequestError(f"{where}: missing input {missing[0]!r}")


def _check_count(count: int, limits: Limits) -> None:
    if count == 0:
        raise RequestError("the request holds no example")
    if count > limits.max_request_batch_size:
        raise RequestError(
            f"the request holds {count} examples; --max_request_batch_size is "
            f"{limits.max_request_batch_size}"
        )


def predict_response(outputs: dict[str, np.ndarray], request_format: str) -> dict:
    """TF Serving's answer: `{"predictions": [row, ...]}` for the row format (each row an
    object of the outputs, or the bare value when there is one output), `{"outputs": ...}`
    (an object of `[rows, ...]` lists, or the bare list) for the columnar one."""
    names = sorted(outputs)
    if request_format == "instances":
        count = len(outputs[names[0]])
        if len(names) == 1:
            return {"predictions": outputs[names[0]].tolist()}
        columns = {name: outputs[name].tolist() for name in names}
        return {"predictions": [{name: columns[name][i] for name in names} for i in range(count)]}
    if len(names) == 1:
        return {"outputs": outputs[names[0]].tolist()}
    return {"outputs": {name: outputs[name].tolist() for name in names}}


def model_status(version: str) -> dict:
    """TF Serving's `GetModelStatusResponse` for one available version."""
    return {
        "model_version_status": [
            {
                "version": version,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


# ------------------------------------------------------------------------ the served models


def export_kind(metadata: dict, output_names: Sequence[str]) -> str:
    """Which predictor an export's metadata and outputs call for."""
    if metadata.get("task") == "ner":
        return NER
    if metadata.get("task") == "multiple_choice":
        return CHOICE
    if metadata.get("task") == "encoder" or "encodes" in output_names:
        return ENCODER
    if "labels" in metadata:
        return CLASSIFIER
    if "start_logits" in output_names:
        return SQUAD
    raise ValueError(
        f"cannot tell what kind of export this is (metadata {sorted(metadata)}, outputs "
        f"{sorted(output_names)}); serve.py serves encoder, classifier, NER, SQuAD and "
        "multiple-choice exports"
    )


def load_predictor(export_dir: str, squad_settings: dict | None = None):
    """The predictor of an export, by `export_kind`."""
    path = export.resolve_saved_model_dir(export_dir)
    metadata = export.read_export_metadata(path)
    outputs = tf.saved_model.load(path).signatures[DEFAULT_SIGNATURE].structured_outputs
    kind = export_kind(metadata, list(outputs))
    if kind == NER:
        return kind, predictor_lib.NerPredictor(path)
    if kind == ENCODER:
        return kind, predictor_lib.EncoderPredictor(path)
    if kind == CLASSIFIER:
        return kind, predictor_lib.ClassifierPredictor(path)
    if kind == CHOICE:
        return kind, predictor_lib.MultipleChoicePredictor(path)
    settings = dict(squad_settings or {})
    for key in ("doc_stride", "max_query_length"):
        if key in metadata:
            settings.setdefault(key, int(metadata[key]))
    return kind, predictor_lib.SquadPredictor(path, **settings)


class ServedModel:
    """One export: its predictor, its runner, and how many requests it holds.

    With `eager_batches` a batch runs as soon as every request held has joined it (see
    `BatchingRunner`); without, it always waits out the batch timeout, as TF Serving does.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        predictor,
        max_batch_size: int,
        batch_timeout_s: float,
        max_queue_size: int,
        metrics: Metrics,
        eager_batches: bool = True,
    ):
        self.name = name
        self.kind = kind
        self.predictor = predictor
        self.version = predictor.export_path.rstrip("/").rsplit("/", 1)[-1]
        self.in_flight = 0
        self.runner = BatchingRunner(
            name,
            predictor.signature,
            max_batch_size,
            batch_timeout_s,
            metrics,
            requests_in_flight=(lambda: self.in_flight) if eager_batches else None,
        )
        # The predictor's texts-to-answers code now runs its model through the shared queue.
        predictor.run = self.runner.run
        self.max_queue_size = max_queue_size
        self.accepted = 0
        self.answered = 0
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_queue_size, thread_name_prefix=f"text-{name}"
        )

    @contextlib.contextmanager
    def admitted(self):
        """Holds a place in the model's bounded queue for one request (event loop only)."""
        if self.in_flight >= self.max_queue_size:
            raise Overloaded(
                f"model {self.name!r} has {self.in_flight} requests waiting (--max_queue_size); "
                "retry later"
            )
        self.in_flight += 1
        self.accepted += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.answered += 1

    def close(self) -> None:
        self.runner.stop()
        self.pool.shutdown(wait=True)


# ------------------------------------------------------------------------------ raw texts


def checked_texts(body, field: str, limits: Limits, pairs: bool) -> list:
    """`body[field]`: a list of strings (or, with `pairs`, of `[text_a, text_b]`), within
    the limits."""
    if not isinstance(body, dict) or field not in body:
        raise RequestError(f'the request body must be a JSON object with a "{field}" list')
    texts = body[field]
    if not isinstance(texts, list):
        raise RequestError(f'"{field}" must be a list, got {_kind(texts)}')
    _check_count(len(texts), limits)
    checked = []
    for index, text in enumerate(texts):
        parts = text if pairs and isinstance(text, list) else [text]
        if not parts or len(parts) > 2 or not all(isinstance(part, str) for part in parts):
            expected = "a string or a [text_a, text_b] pair" if pairs else "a string"
            raise RequestError(f"{field}[{index}]: expected {expected}, got {text!r:.80}")
        length = sum(len(part) for part in parts)
        if length > limits.max_text_length:
            raise RequestError(
                f"{field}[{index}] has {length} characters; --max_text_length is "
                f"{limits.max_text_length}"
            )
        checked.append(tuple(parts) if len(parts) == 2 else parts[0])
    return checked


def encode_texts(model: ServedModel, texts: list) -> dict:
    return {"vectors": model.predictor.encode(texts).tolist()}


def classify_texts(model: ServedModel, texts: list) -> dict:
    result = model.predictor.predict(texts)
    labels = model.predictor.label_list
    return {
        "predictions": [
            {"label": label, "probabilities": dict(zip(labels, row.tolist(), strict=False))}
            for label, row in zip(result.labels, result.probabilities, strict=True)
        ]
    }


def tag_texts(model: ServedModel, texts: list) -> dict:
    return {"entities": model.predictor.predict(texts)}


def answer_questions(model: ServedModel, pairs: list) -> dict:
    answers = model.predictor.answer(pairs)
    return {
        "answers": [
            {
                "text": answer.text,
                "probability": answer.nbest[0].get("probability") if answer.nbest else None,
                "null_score_diff": answer.null_score_diff,
            }
            for answer in answers
        ]
    }


def checked_choice_questions(body, limits: Limits, num_choices: int) -> list:
    """`body["instances"]`: `{"context", "question", "choices"}` objects, each within the
    text limit and with at most the export's `num_choices` choices, as
    `MultipleChoicePredictor.predict` takes them."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise RequestError(
            'the request body must be a JSON object with an "instances" list of '
            '{"context": ..., "question": ..., "choices": [...]}'
        )
    instances = body["instances"]
    _check_count(len(instances), limits)
    questions = []
    for index, item in enumerate(instances):
        question = item.get("question", "") if isinstance(item, dict) else None
        choices = item.get("choices") if isinstance(item, dict) else None
        if not (
            isinstance(item, dict)
            and isinstance(item.get("context"), str)
            and isinstance(question, str)
            and isinstance(choices, list)
            and choices
            and all(isinstance(choice, str) for choice in choices)
        ):
            raise RequestError(
                f'instances[{index}]: expected {{"context": str, "question": str, '
                '"choices": [str, ...]}'
            )
        if len(choices) > num_choices:
            raise RequestError(
                f"instances[{index}] has {len(choices)} choices; this export takes at most "
                f"{num_choices} (its num_choices)"
            )
        length = len(item["context"]) + len(question) + sum(len(choice) for choice in choices)
        if length > limits.max_text_length:
            raise RequestError(
                f"instances[{index}] has {length} characters; --max_text_length is "
                f"{limits.max_text_length}"
            )
        questions.append((item["context"], question, choices))
    return questions


def choose_answers(model: ServedModel, questions: list) -> dict:
    return {"predictions": model.predictor.predict(questions)}


# ---------------------------------------------------------------------------------- routes


@dataclasses.dataclass
class _TextRoute:
    kind: str
    # (body, limits, the model) -> the items `call` takes.
    parse: Callable[[object, Limits, ServedModel], list]
    call: Callable[[ServedModel, list], dict]


_TEXT_ROUTES = {
    "/encode": _TextRoute(
        ENCODER, lambda body, limits, _: checked_texts(body, "texts", limits, True), encode_texts
    ),
    "/classify": _TextRoute(
        CLASSIFIER,
        lambda body, limits, _: checked_texts(body, "texts", limits, True),
        classify_texts,
    ),
    "/tag": _TextRoute(
        NER, lambda body, limits, _: checked_texts(body, "texts", limits, False), tag_texts
    ),
    "/answer": _TextRoute(
        SQUAD, lambda body, limits, _: checked_questions(body, limits), answer_questions
    ),
    "/choose": _TextRoute(
        CHOICE,
        lambda body, limits, model: checked_choice_questions(
            body, limits, model.predictor.num_choices
        ),
        choose_answers,
    ),
}


class Server:
    """The aiohttp application over the served models."""

    def __init__(self, models: dict[str, ServedModel], limits: Limits, metrics: Metrics):
        self.models = models
        self.limits = limits
        self.metrics = metrics
        self.draining = False

    def application(self, client_max_size: int) -> web.Application:
        app = web.Application(client_max_size=client_max_size, middlewares=[self._middleware])
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/metrics", self._render_metrics)
        app.router.add_get("/v1/models/{name}", self._status)
        app.router.add_get("/v1/models/{name}/metadata", self._metadata)
        app.router.add_post("/v1/models/{target}", self._predict)
        for path in _TEXT_ROUTES:
            app.router.add_post(path, self._text)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        started = time.monotonic()
        request["model"] = ""
        try:
            response = await handler(request)
        except RequestError as err:
            response = web.json_response({"error": str(err)}, status=err.status)
        except web.HTTPException as err:
            if err.status < 400:
                raise
            response = web.json_response({"error": err.reason}, status=err.status)
        except tf.errors.InvalidArgumentError as err:
            response = web.json_response({"error": err.message}, status=400)
        except Exception as err:  # noqa: BLE001 - a JSON 500, and the trace in the log
            logger.exception("request %s %s failed", request.method, request.path)
            response = web.json_response({"error": f"internal error: {err}"}, status=500)
        route = request.get("route")
        if route is None:
            resource = request.match_info.route.resource
            route = resource.canonical if resource else "(unknown)"
        self.metrics.observe_request(
            request["model"], route, response.status, time.monotonic() - started
        )
        return response

    async def _health(self, request: web.Request) -> web.Response:
        status = "draining" if self.draining else "ok"
        body = {
            "status": status,
            "models": {name: model.kind for name, model in self.models.items()},
        }
        return web.json_response(body, status=503 if self.draining else 200)

    async def _render_metrics(self, request: web.Request) -> web.Response:
        text = self.metrics.render(
            {name: model.in_flight for name, model in self.models.items()},
            {name: model.runner.queued() for name, model in self.models.items()},
        )
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    def _model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise NotFound(f"Servable not found for request: Latest({name})")
        return self.models[name]

    async def _status(self, request: web.Request) -> web.Response:
        model = self._model(request.match_info["name"])
        request["model"] = model.name
        return web.json_response(model_status(model.version))

    async def _metadata(self, request: web.Request) -> web.Response:
        model = self._model(request.match_info["name"])
        request["model"] = model.name
        runner = model.runner
        return web.json_response(
            {
                "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
                "metadata": {
                    "kind": model.kind,
                    "inputs": {
                        name: {
                            "dtype": runner.input_dtypes[name].name,
                            "shape": [
                                -1,
                                *(
                                    -1 if size is None else size
                                    for size in runner.example_shapes[name]
                                ),
                            ],
                        }
                        for name in runner.input_names
                    },
                    "outputs": runner.output_names,
                    "export": model.predictor.metadata,
                },
            }
        )

    async def _predict(self, request: web.Request) -> web.Response:
        target = request.match_info["target"]
        name, _, verb = target.rpartition(":")
        if verb != "predict" or not name:
            raise NotFound(f"{request.path}: this server answers POST /v1/models/<name>:predict")
        model = self._model(name)
        request["model"] = model.name
        request["route"] = "/v1/models/{name}:predict"
        body = await _json_body(request)
        runner = model.runner
        features, request_format = parse_predict_request(
            body, runner.example_shapes, self.limits, model.predictor.max_seq_length
        )
        with model.admitted():
            outputs = await asyncio.wrap_future(runner.submit(features))
        return web.json_response(predict_response(outputs, request_format))

    async def _text(self, request: web.Request) -> web.Response:
        route = _TEXT_ROUTES[request.path]
        body = await _json_body(request)
        model = self._model_of_kind(route.kind, body, request.path)
        request["model"] = model.name
        items = route.parse(body, self.limits, model)
        with model.admitted():
            result = await asyncio.get_running_loop().run_in_executor(
                model.pool, route.call, model, items
            )
        return web.json_response(result, dumps=_dumps)

    def _model_of_kind(self, kind: str, body, path: str) -> ServedModel:
        candidates = [model for model in self.models.values() if model.kind == kind]
        wanted = body.get("model") if isinstance(body, dict) else None
        if wanted is not None:
            model = self._model(wanted)
            if model.kind != kind:
                raise RequestError(
                    f"model {wanted!r} is a {model.kind} export; {path} needs a {kind} one"
                )
            return model
        if not candidates:
            raise NotFound(f"{path}: no {kind} export is served")
        if len(candidates) > 1:
            raise RequestError(
                f"{path}: several {kind} exports are served "
                f'({", ".join(m.name for m in candidates)}); name one with "model"'
            )
        return candidates[0]


def checked_questions(body, limits: Limits) -> list[tuple[str, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("questions"), list):
        raise RequestError(
            'the request body must be a JSON object with a "questions" list of '
            '{"question": ..., "context": ...}'
        )
    questions = body["questions"]
    _check_count(len(questions), limits)
    pairs = []
    for index, item in enumerate(questions):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("question"), str)
            and isinstance(item.get("context"), str)
        ):
            raise RequestError(f'questions[{index}]: expected {{"question": str, "context": str}}')
        length = len(item["question"]) + len(item["context"])
        if length > limits.max_text_length:
            raise RequestError(
                f"questions[{index}] has {length} characters; --max_text_length is "
                f"{limits.max_text_length}"
            )
        pairs.append((item["question"], item["context"]))
    return pairs


async def _json_body(request: web.Request):
    text = await request.text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(f"the request body is not valid JSON: {err}") from None


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
