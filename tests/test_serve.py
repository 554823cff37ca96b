"""Tests for serve.py and serving.py: the batching runner on real signatures of fixed and
unknown length, then the HTTP server in its own process on a port the system picks, checked
against the predictors run here in-process: TF Serving's shapes, the raw-text routes, the
errors and limits, batching under 16 concurrent clients, a full queue, and SIGTERM under
load."""

from __future__ import annotations

import asyncio
import re
import signal
import threading

import aiohttp
import numpy as np
import pytest
import tensorflow as tf
from serve_helpers import export_tiny_models, running_server

import predictor
import serving

SEQ_LENGTH = 32
TEXTS = [
    "river stone garden",
    "a wonderful music window",
    "terrible paper candle silver forest cloud table orange river",
    "我爱北京",
    "b c d e f g h",
    "wonderful",
]


# ---------------------------------------------------------------------- the batching runner


def masked_sum_signature(sequence_length, directory):
    """A real SavedModel signature, saved and loaded back: per row the sum of ids over the
    mask, and the ids times two (a per-token output)."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, sequence_length], tf.int32, name=name)
            for name in ("input_ids", "input_mask", "segment_ids")
        ]
    )
    def run(input_ids, input_mask, segment_ids):
        del segment_ids
        return {
            "total": tf.reduce_sum(input_ids * input_mask, axis=1),
            "doubled": input_ids * 2,
        }

    module = tf.Module()
    module.run = run
    tf.saved_model.save(module, str(directory), signatures={"serving_default": run})
    return tf.saved_model.load(str(directory)).signatures["serving_default"]


def job(rows):
    width = max(len(row) for row in rows)
    ids = np.zeros([len(rows), width], np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return {"input_ids": ids, "input_mask": (ids > 0).astype(np.int32), "segment_ids": ids * 0}


@pytest.mark.parametrize("sequence_length", [None, 12])
def test_runner_batches_concurrent_jobs_and_gives_each_its_own_rows(sequence_length, tmp_path):
    metrics = serving.Metrics()
    signature = masked_sum_signature(sequence_length, tmp_path)
    runner = serving.BatchingRunner("toy", signature, 8, 0.05, metrics)
    assert runner.sequence_length == sequence_length
    runner.start()
    rng = np.random.default_rng(0)
    jobs = [
        job([rng.integers(1, 9, size=rng.integers(1, 11)) for _ in range(rng.integers(1, 4))])
        for _ in range(40)
    ]
    futures = [None] * len(jobs)

    def submit(start):
        for index in range(start, len(jobs), 4):
            futures[index] = runner.submit(jobs[index])

    threads = [threading.Thread(target=submit, args=(start,)) for start in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for features, future in zip(jobs, futures, strict=True):
        result = future.result(timeout=60)
        np.testing.assert_array_equal(result["total"], features["input_ids"].sum(axis=1))
        expected_doubled = features["input_ids"] * 2
        if sequence_length is not None:
            expected_doubled = serving.fit_width(expected_doubled, sequence_length)
        np.testing.assert_array_equal(result["doubled"], expected_doubled)
    runner.stop()
    text = metrics.render({"toy": 0}, {"toy": runner.queued()})
    count = int(re.search(r'bert_serve_batch_size_count\{model="toy"\} (\d+)', text).group(1))
    rows = int(re.search(r'bert_serve_batch_size_sum\{model="toy"\} (\d+)', text).group(1))
    assert rows == sum(len(j["input_ids"]) for j in jobs)
    assert count < len(jobs)  # jobs shared model calls


def test_a_batch_is_padded_to_its_longest_member_when_the_length_is_dynamic():
    short, long = job([[3, 4]]), job([[1, 2, 3, 4, 5, 6, 7], [5]])
    stacked, width = serving.stack_jobs([short, long], None)
    assert width == 7 and stacked["input_ids"].shape == (3, 7)
    stacked, width = serving.stack_jobs([short, long], 12)
    assert width == 12 and stacked["input_mask"].shape == (3, 12)
    # Columns past the last real token of every row are cut.
    padded = {name: serving.fit_width(value, 20) for name, value in short.items()}
    assert serving.stack_jobs([padded], None)[1] == 2
    # [rows, choices, tokens] inputs (multiple choice): the tokens are the last axis.
    choices = {name: np.stack([value] * 3, axis=1) for name, value in long.items()}
    choices["input_mask"][:, 2, 5:] = 0
    stacked, width = serving.stack_jobs(
        [choices, {k: v[:1, :, :4] for k, v in choices.items()}], None
    )
    assert width == 7 and stacked["input_ids"].shape == (3, 3, 7)
    np.testing.assert_array_equal(stacked["input_ids"][2, 0], [1, 2, 3, 4, 0, 0, 0])


def test_predict_bodies_are_checked_and_padded():
    names = ["input_ids", "input_mask", "segment_ids"]
    fixed, dynamic = dict.fromkeys(names, (4,)), dict.fromkeys(names, (None,))
    limits = serving.Limits(max_request_batch_size=2)
    rows = {"input_ids": [5, 6], "input_mask": [1, 1], "segment_ids": [0, 0]}
    features, kind = serving.parse_predict_request({"instances": [rows]}, fixed, limits)
    assert kind == "instances"
    np.testing.assert_array_equal(features["input_ids"], [[5, 6, 0, 0]])
    columns = {name: [value, value[:1]] for name, value in rows.items()}
    features, kind = serving.parse_predict_request({"inputs": columns}, dynamic, limits)
    assert kind == "inputs"
    np.testing.assert_array_equal(features["input_mask"], [[1, 1], [1, 0]])
    # A dynamic-length export pads to the request's longest row, up to its max_seq_length.
    long_row = {name: [1] * 3 for name in names}
    features, _ = serving.parse_predict_request({"instances": [long_row]}, dynamic, limits, 3)
    assert features["segment_ids"].shape == (1, 3)
    with pytest.raises(
        serving.RequestError,
        match=re.escape("has 3 positions; this export takes at most 2 (its max_seq_length)"),
    ):
        serving.parse_predict_request({"instances": [long_row]}, dynamic, limits, 2)
    for body, message in [
        ({"instances": [dict(rows, input_idz=[1])]}, "unknown input 'input_idz'"),
        ({"instances": [{"input_ids": [1]}]}, "missing input 'input_mask'"),
        ({"instances": [rows] * 3}, "--max_request_batch_size is 2"),
        (
            {"instances": [dict(rows, input_ids=[1] * 5, input_mask=[1] * 5, segment_ids=[0] * 5)]},
            "takes at most 4",
        ),
        ({"inputs": columns, "instances": []}, 'exactly one of "instances" or "inputs"'),
        ({"instances": [dict(rows, input_ids=["a", "b"])]}, "expected a list of integers"),
        ({"instances": [dict(rows, input_ids=[5])]}, "the inputs differ in length"),
        ({"signature_name": "other", "instances": [rows]}, "'other' not found"),
        ([1, 2], "must be a JSON object"),
    ]:
        with pytest.raises(serving.RequestError, match=re.escape(message)):
            serving.parse_predict_request(body, fixed, limits)


def test_multiple_choice_bodies_are_padded_to_the_exports_choices_and_length():
    # [num_choices, seq] rows and a [num_choices] choice_mask per example, as
    # run_multiple_choice.py exports them (3 choices of 4 positions here).
    shapes = {name: (3, 4) for name in ("input_ids", "input_mask", "segment_ids")}
    shapes["choice_mask"] = (3,)
    limits = serving.Limits(max_request_batch_size=4)
    two_choices = {
        "input_ids": [[5, 6, 7], [5, 8]],
        "input_mask": [[1, 1, 1], [1, 1]],
        "segment_ids": [[0, 0, 1], [0, 1]],
        "choice_mask": [1, 1],
    }
    features, _ = serving.parse_predict_request({"instances": [two_choices]}, shapes, limits)
    np.testing.assert_array_equal(features["input_ids"], [[[5, 6, 7, 0], [5, 8, 0, 0], [0] * 4]])
    np.testing.assert_array_equal(features["choice_mask"], [[1, 1, 0]])
    columns = {name: [value, value] for name, value in two_choices.items()}
    features, kind = serving.parse_predict_request({"inputs": columns}, shapes, limits)
    assert kind == "inputs" and features["segment_ids"].shape == (2, 3, 4)
    np.testing.assert_array_equal(features["segment_ids"][1, 1], [0, 1, 0, 0])
    four = {name: [*value, *value] for name, value in two_choices.items()}
    for body, message in [
        ({"instances": [four]}, "an example has 4 choices; this export takes at most 3"),
        (
            {
                "instances": [
                    dict(
                        two_choices,
                        input_ids=[[1] * 5, [1, 1]],
                        input_mask=[[1] * 5, [1, 1]],
                        segment_ids=[[0] * 5, [0, 0]],
                    )
                ]
            },
            "has 5 positions; this export takes at most 4 (its max_seq_length)",
        ),
        ({"instances": [dict(two_choices, choice_mask=[1, 1, 1])]}, "differ in length"),
        (
            {"instances": [dict(two_choices, input_ids=[1, 2])]},
            "input_ids[0]: expected a list of integers",
        ),
    ]:
        with pytest.raises(serving.RequestError, match=re.escape(message)):
            serving.parse_predict_request(body, shapes, limits)


# --------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return export_tiny_models(
        tmp_path_factory.mktemp("serve_exports"),
        SEQ_LENGTH,
        ("vectors", "sentiment", "ner", "qa", "choice"),
    )


@pytest.fixture(scope="module")
def local(exports):
    """The predictors the server's answers must equal, run here."""
    return {
        "vectors": predictor.EncoderPredictor(exports["vectors"]),
        "sentiment": predictor.ClassifierPredictor(exports["sentiment"]),
        "ner": predictor.NerPredictor(exports["ner"]),
        "qa": predictor.SquadPredictor(exports["qa"], doc_stride=8, max_query_length=8),
        "choice": predictor.MultipleChoicePredictor(exports["choice"]),
    }


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    with running_server(
        exports,
        tmp_path_factory.mktemp("serve"),
        "--max_batch_size=16",
        "--batch_timeout_ms=20",
        "--max_text_length=200",
        "--max_request_batch_size=8",
    ) as process:
        yield process


async def post(session, url, body=None, data=None):
    async with session.post(url, json=body, data=data) as response:
        return response.status, await response.json(content_type=None)


def run(coroutine):
    return asyncio.run(coroutine)


async def _session_calls(calls):
    async with aiohttp.ClientSession() as session:
        return [await call(session) for call in calls]


@pytest.mark.slow
def test_tf_serving_predict_rows_and_columns_equal_the_predictor(server, local):
    features = local["sentiment"].featurize(TEXTS[:3])
    expected = local["sentiment"].run(features)
    lengths = features["input_mask"].sum(axis=1)
    instances = [
        {name: features[name][i, : lengths[i]].tolist() for name in features} for i in range(3)
    ]
    columns = {name: features[name].tolist() for name in features}
    url = f"{server.url}/v1/models/sentiment:predict"
    (rows_status, rows), (columns_status, cols), (status_code, status) = run(
        _session_calls(
            [
                lambda s: post(s, url, {"instances": instances}),
                lambda s: post(s, url, {"signature_name": "serving_default", "inputs": columns}),
                lambda s: _get(s, f"{server.url}/v1/models/sentiment"),
            ]
        )
    )
    assert rows_status == columns_status == status_code == 200
    assert sorted(rows["predictions"][0]) == sorted(expected)
    for key, value in expected.items():
        served = np.array([row[key] for row in rows["predictions"]])
        np.testing.assert_allclose(served, value, rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.array(cols["outputs"][key]), value, rtol=0, atol=1e-5)
    (version,) = status["model_version_status"]
    assert version["state"] == "AVAILABLE" and version["status"]["error_code"] == "OK"
    assert version["version"] == exports_version(local["sentiment"])


def exports_version(local_predictor):
    return local_predictor.export_path.rstrip("/").rsplit("/", 1)[-1]


async def _get(session, url):
    async with session.get(url) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.slow
def test_raw_text_routes_equal_the_predictors(server, local):
    pairs_and_texts = TEXTS[:4] + [["river stone", "我爱北京"]]
    (encode_status, encoded), (classify_status, classified), (tag_status, tagged) = run(
        _session_calls(
            [
                lambda s: post(s, f"{server.url}/encode", {"texts": pairs_and_texts}),
                lambda s: post(s, f"{server.url}/classify", {"texts": TEXTS}),
                lambda s: post(s, f"{server.url}/tag", {"texts": TEXTS}),
            ]
        )
    )
    assert encode_status == classify_status == 200
    expected_vectors = local["vectors"].encode(
        [tuple(t) if isinstance(t, list) else t for t in pairs_and_texts]
    )
    np.testing.assert_allclose(np.array(encoded["vectors"]), expected_vectors, rtol=0, atol=1e-5)
    expected = local["sentiment"].predict(TEXTS)
    assert [p["label"] for p in classified["predictions"]] == expected.labels
    served = np.array(
        [[p["probabilities"][k] for k in ("happy", "sad")] for p in classified["predictions"]]
    )
    np.testing.assert_allclose(served, expected.probabilities, rtol=0, atol=1e-5)
    assert tag_status == 200
    assert tagged["entities"] == local["ner"].predict(TEXTS)


@pytest.mark.slow
def test_answer_route_reads_long_passages_in_windows_like_the_predictor(server, local):
    passage = " ".join(TEXTS)  # 28 tokens: two windows of 32 with the question
    questions = [("where is the river", passage), ("what is wonderful", TEXTS[1])]
    status, body = run(
        _session_calls(
            [
                lambda s: post(
                    s,
                    f"{server.url}/answer",
                    {"questions": [{"question": q, "context": c} for q, c in questions]},
                )
            ]
        )
    )[0]
    assert status == 200
    expected = local["qa"].answer(questions)
    assert [a["text"] for a in body["answers"]] == [a.text for a in expected]
    for served, answer in zip(body["answers"], expected, strict=True):
        assert served["probability"] == pytest.approx(answer.nbest[0]["probability"], abs=1e-5)


@pytest.mark.slow
def test_bad_requests_get_400_with_a_message_naming_the_fault(server):
    url = f"{server.url}/v1/models/sentiment:predict"
    rows = {"input_ids": [2, 5], "input_mask": [1, 1], "segment_ids": [0, 0]}
    answers = run(
        _session_calls(
            [
                lambda s: post(s, url, data=b'{"instances": [1, 2'),
                lambda s: post(s, url, {"instances": [dict(rows, token_ids=[1])]}),
                lambda s: post(s, f"{server.url}/encode", {"texts": ["x" * 201]}),
                lambda s: post(s, f"{server.url}/classify", {"texts": ["a"] * 9}),
                lambda s: post(s, f"{server.url}/classify", {"texts": [7]}),
                lambda s: post(s, f"{server.url}/v1/models/nope:predict", {"instances": [rows]}),
                lambda s: post(s, url, {"instances": [dict(rows, input_ids=[2, 10**6])]}),
                lambda s: post(
                    s, url, {"instances": [{name: [1] * (SEQ_LENGTH + 1) for name in rows}]}
                ),
            ]
        )
    )
    expected = [
        (400, "not valid JSON"),
        (400, "unknown input 'token_ids'; the signature takes input_ids, input_mask"),
        (400, "texts[0] has 201 characters; --max_text_length is 200"),
        (400, "holds 9 examples; --max_request_batch_size is 8"),
        (400, "texts[0]: expected a string"),
        (404, "Servable not found for request: Latest(nope)"),
        (400, "indices"),  # an id outside the vocabulary: TensorFlow's own message
        # The export takes any length, but was trained at (and truncates texts to) 32.
        (400, f"has {SEQ_LENGTH + 1} positions; this export takes at most {SEQ_LENGTH}"),
    ]
    for (status, body), (want_status, message) in zip(answers, expected, strict=True):
        assert status == want_status and message in body["error"], (status, body)


@pytest.mark.slow
def test_sixteen_concurrent_clients_get_every_answer_once_and_right(server, local):
    sentences = [f"{TEXTS[i % len(TEXTS)]} {' '.join(['b'] * (i % 9))}" for i in range(64)]
    expected = local["vectors"].encode(sentences)
    per_client = 20
    answers: dict[int, list] = {}

    async def client(session, number):
        for k in range(per_client):
            index = (number * per_client + k) % len(sentences)
            status, body = await post(
                session, f"{server.url}/encode", {"texts": [sentences[index]]}
            )
            answers.setdefault(index, []).append((status, body))

    async def load():
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session, n) for n in range(16)))
            return await _text(session, f"{server.url}/metrics")

    metrics = run(load())
    assert sum(len(a) for a in answers.values()) == 16 * per_client
    for index, replies in answers.items():
        for status, body in replies:
            assert status == 200
            np.testing.assert_allclose(body["vectors"][0], expected[index], rtol=0, atol=1e-5)
    batches = int(re.search(r'bert_serve_batch_size_count\{model="vectors"\} (\d+)', metrics)[1])
    assert batches < 16 * per_client  # requests of different callers shared model calls
    assert 'bert_serve_request_latency_seconds{model="vectors",quantile="0.99"}' in metrics
    assert 'bert_serve_queue_depth{model="vectors"} 0' in metrics
    assert 'route="/encode",code="200"' in metrics


async def _text(session, url):
    async with session.get(url) as response:
        return await response.text()


@pytest.mark.slow
def test_a_full_queue_answers_503_and_recovers(exports, tmp_path):
    # The first two requests wait 3 s for a batch to fill: the other 10, sent at once,
    # find the queue (of two) full.
    with running_server(
        {"vectors": exports["vectors"]},
        tmp_path,
        "--max_queue_size=2",
        "--batch_timeout_ms=3000",
        "--noeager_batches",
        "--max_batch_size=64",
    ) as process:
        url = f"{process.url}/encode"

        async def burst():
            async with aiohttp.ClientSession() as session:
                first = await asyncio.gather(
                    *(post(session, url, {"texts": ["b c"]}) for _ in range(12))
                )
                after = await post(session, url, {"texts": ["b c"]})
                return first, after

        first, after = run(burst())
        statuses = sorted(status for status, _ in first)
        assert statuses == [200] * 2 + [503] * 10
        assert "--max_queue_size" in next(b["error"] for s, b in first if s == 503)
        assert after[0] == 200


@pytest.mark.slow
def test_sigterm_under_load_answers_every_accepted_request(exports, tmp_path):
    with running_server({"vectors": exports["vectors"]}, tmp_path, "--batch_timeout_ms=10") as p:
        url = f"{p.url}/encode"
        received = []
        failures = []

        async def client(session, stop_at):
            # Bounded: a server that ignored SIGTERM would end the test, not hang it.
            for _ in range(1000):
                try:
                    status, _ = await post(session, url, {"texts": ["river stone b c"]})
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as err:
                    failures.append(type(err).__name__)
                    return
                received.append(status)
                if len(received) == stop_at:
                    p.process.send_signal(signal.SIGTERM)

        async def load():
            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(client(session, 200) for _ in range(16)))

        run(load())
        assert p.process.wait(timeout=120) == 0
        log = p.log()
    match = re.search(r"model vectors: (\d+) requests accepted, (\d+) answered", log)
    assert match, log[-3000:]
    accepted, answered = int(match[1]), int(match[2])
    assert set(received) == {200}
    assert accepted == answered == len(received) >= 200
    assert len(failures) == 16  # every client ended on the closed server, none on an error


# ------------------------------------------------------------------------ multiple choice

QUESTIONS = [
    ("小明去了北京。", "小明去了哪里？", ["上海", "北京", "广州"]),
    ("river stone garden", "where is the _", ["river", "window"]),
    ("a wonderful music window", "", ["music", "paper", "candle silver forest cloud"]),
]


def _choose_body(questions):
    return {"instances": [{"context": c, "question": q, "choices": a} for c, q, a in questions]}


async def _gather_posts(calls):
    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(post(session, url, body) for url, body in calls))


@pytest.mark.slow
def test_choose_route_equals_the_multiple_choice_predictor(server, local):
    # Sent at once: questions of different requests may share a model call, and each
    # request must still get its own records back.
    answers = run(
        _gather_posts(
            [(f"{server.url}/choose", _choose_body([question])) for question in QUESTIONS]
            + [(f"{server.url}/choose", _choose_body(QUESTIONS))]
        )
    )
    assert [status for status, _ in answers] == [200] * 4
    expected = local["choice"].predict(QUESTIONS)
    alone = [body["predictions"][0] for _, body in answers[:-1]]
    together = answers[-1][1]["predictions"]
    assert [record["id"] for record in together] == ["0", "1", "2"]
    for records in (alone, together):
        for record, want, (_, _, choices) in zip(records, expected, QUESTIONS, strict=True):
            # Only the real choices: the export's third, a dummy for the second question,
            # is left out.
            assert len(record["probabilities"]) == len(choices)
            np.testing.assert_allclose(
                record["probabilities"], want["probabilities"], rtol=0, atol=1e-5
            )
            assert record["prediction"] == int(np.argmax(record["probabilities"]))
            assert record["choice"] == choices[record["prediction"]]


@pytest.mark.slow
def test_predict_route_takes_choice_rows_and_pads_missing_choices(server, local):
    _, features = local["choice"].featurize(QUESTIONS)
    expected = local["choice"].run(features)
    instances = []
    for i, (_, _, choices) in enumerate(QUESTIONS):
        # Each choice row cut to its own length, only the real choices sent: the server
        # pads both back to the export's [3, 32].
        lengths = features["input_mask"][i].sum(axis=1)
        rows = {
            name: [features[name][i, c, : lengths[c]].tolist() for c in range(len(choices))]
            for name in ("input_ids", "input_mask", "segment_ids")
        }
        instances.append(dict(rows, choice_mask=[1] * len(choices)))
    columns = {name: features[name].tolist() for name in features}
    url = f"{server.url}/v1/models/choice:predict"
    (rows_status, rows), (columns_status, cols) = run(
        _gather_posts([(url, {"instances": instances}), (url, {"inputs": columns})])
    )
    assert rows_status == columns_status == 200
    for key in ("probabilities", "logits"):
        served = np.array([row[key] for row in rows["predictions"]])
        np.testing.assert_allclose(served, expected[key], rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.array(cols["outputs"][key]), expected[key], rtol=0, atol=1e-5)
    # The second question's dummy third choice gets probability zero either way.
    assert rows["predictions"][1]["probabilities"][2] == pytest.approx(0, abs=1e-6)


@pytest.mark.slow
def test_choice_limits_answer_400_naming_the_limit(server):
    four_choices = [("context", "question", ["a", "b", "c", "d"])]
    long_context = [("x" * 190, "question", ["river", "stone"])]
    rows = {name: [[2, 5]] * 4 for name in ("input_ids", "input_mask", "segment_ids")}
    answers = run(
        _gather_posts(
            [
                (f"{server.url}/choose", _choose_body(four_choices)),
                (f"{server.url}/choose", _choose_body(long_context)),
                (f"{server.url}/choose", {"instances": [{"context": "a", "choices": "b"}]}),
                (f"{server.url}/choose", _choose_body(QUESTIONS[:1] * 9)),
                (
                    f"{server.url}/v1/models/choice:predict",
                    {"instances": [dict(rows, choice_mask=[1] * 4)]},
                ),
            ]
        )
    )
    expected = [
        "instances[0] has 4 choices; this export takes at most 3 (its num_choices)",
        "instances[0] has 208 characters; --max_text_length is 200",
        'instances[0]: expected {"context": str, "question": str, "choices": [str, ...]}',
        "holds 9 examples; --max_request_batch_size is 8",
        "an example has 4 choices; this export takes at most 3 (its num_choices)",
    ]
    for (status, body), message in zip(answers, expected, strict=True):
        assert status == 400 and message in body["error"], (status, body)


# -------------------------------------------------------------------- dynamic-length exports


class RecordingSignature:
    """A loaded signature, called through, noting each call's `[rows, width]`."""

    def __init__(self, signature):
        self._signature = signature
        self.structured_input_signature = signature.structured_input_signature
        self.structured_outputs = signature.structured_outputs
        self.calls = []

    def __call__(self, **inputs):
        self.calls.append(tuple(inputs["input_ids"].shape.as_list()))
        return self._signature(**inputs)


@pytest.mark.slow
def test_a_dynamic_length_export_runs_each_batch_at_its_longest_member(exports, local):
    encoder = local["vectors"]
    assert encoder.signature.structured_input_signature[1]["input_ids"].shape.as_list() == [
        None,
        None,
    ]
    recording = RecordingSignature(encoder.signature)
    runner = serving.BatchingRunner("vectors", recording, 8, 0.5, serving.Metrics())
    # The texts featurized at the export's max_seq_length (32), as the predictor makes them,
    # one job each, all queued before the runner starts: they make one batch.
    features = encoder.featurize(TEXTS)
    lengths = features["input_mask"].sum(axis=1)
    assert features["input_ids"].shape[1] == SEQ_LENGTH > lengths.max()
    futures = [
        runner.submit({name: value[i : i + 1] for name, value in features.items()})
        for i in range(len(TEXTS))
    ]
    runner.start()
    results = [future.result(timeout=120)["encodes"][0] for future in futures]
    runner.stop()
    # One call of all six (the 0.5 s window holds them), at the longest text's length.
    assert recording.calls == [(len(TEXTS), lengths.max())]
    np.testing.assert_allclose(np.array(results), encoder.encode(TEXTS), rtol=0, atol=1e-5)
    # Each text alone, at its own length, gives the same vector (padding is inert).
    alone = [encoder.encode([text])[0] for text in TEXTS]
    np.testing.assert_allclose(np.array(results), np.array(alone), rtol=0, atol=1e-5)
