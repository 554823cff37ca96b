"""Length-bucketed batches (tfrecord_io.batch_by_length and --bucket_by_length): every
example read once per epoch, a seeded order, trimmed sequence features, and the same
evaluation numbers and predictions, in input order, as full-length padding."""

import random

import numpy as np
import pytest
import tensorflow as tf

import estimator_builder
import tfrecord_io
from helpers import FILLER, read_eval_results, run_script, write_csv, write_tiny_model

MAX_LENGTH = 32


def write_records(path, lengths, max_length=MAX_LENGTH, extra_length=None):
    """Records whose example i holds `lengths[i]` real tokens, each id i + 1 (so a batch
    shows which examples it holds), a label i, and optionally a non-per-position feature
    `positions` of `extra_length` values i, i+1, ..."""
    with tfrecord_io.RoundRobinRecordWriter([str(path)]) as writer:
        for index, length in enumerate(lengths):
            pad = max_length - length
            values = {
                "input_ids": [index + 1] * length + [0] * pad,
                "input_mask": [1] * length + [0] * pad,
                "segment_ids": [0] * (length // 2) + [1] * (length - length // 2) + [0] * pad,
                "label_ids": [index],
            }
            if extra_length:
                values["positions"] = [index + k for k in range(extra_length)]
            features = {name: tfrecord_io.create_int_feature(v) for name, v in values.items()}
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString())


def spec(max_length=MAX_LENGTH, extra_length=None):
    result = {
        name: tfrecord_io.int_feature_spec(max_length) for name in tfrecord_io.SEQUENCE_FEATURES
    }
    result["label_ids"] = tf.io.FixedLenFeature([], tf.int64)
    if extra_length:
        result["positions"] = tfrecord_io.int_feature_spec(extra_length)
    return result


def batches(input_fn, count=None, **params):
    dataset = input_fn(dict({"batch_size": 8}, **params))
    if count is not None:
        dataset = dataset.take(count)
    return [{name: value.numpy() for name, value in batch.items()} for batch in dataset]


_rng = random.Random(5)
LENGTHS = [_rng.choice([1, 3, 7, 15, 16, 17, 30, 32]) for _ in range(61)]
BUCKETED = {"bucket_by_length": True, "seed": 4}


def test_bucket_lengths_default_and_given():
    assert tfrecord_io.bucket_lengths(128) == [16, 32, 48, 64, 96, 128]
    assert tfrecord_io.bucket_lengths(384) == [48, 96, 144, 192, 288, 384]
    # Rounded down to multiples of 8; none shorter than 16.
    assert tfrecord_io.bucket_lengths(100) == [24, 32, 48, 72, 100]
    assert tfrecord_io.bucket_lengths(64) == [16, 24, 32, 48, 64]
    assert tfrecord_io.bucket_lengths(16) == [16]
    assert tfrecord_io.bucket_lengths(128, [64, 32, 256, 128]) == [32, 64, 128]
    with pytest.raises(ValueError, match="bucket_boundaries"):
        tfrecord_io.bucket_lengths(128, [0, 64])
    assert estimator_builder.parse_bucket_boundaries(["32", "64"]) == (32, 64)
    assert estimator_builder.parse_bucket_boundaries(None) is None
    with pytest.raises(ValueError, match="--bucket_boundaries=32,x"):
        estimator_builder.parse_bucket_boundaries(["32", "x"])


def test_each_batch_is_cut_to_the_shortest_bucket_that_holds_it(tmp_path):
    write_records(tmp_path / "r.tfrecord", LENGTHS, extra_length=MAX_LENGTH)
    input_fn = tfrecord_io.input_fn_builder(
        [str(tmp_path / "r.tfrecord")], spec(extra_length=MAX_LENGTH), False, True
    )
    seen = []
    for batch in batches(input_fn, bucket_by_length=True):
        width = batch["input_ids"].shape[1]
        labels = batch["label_ids"]
        real = [LENGTHS[i] for i in labels]
        # Buckets 16, 24 and 32 (3/8 and 4/8 of 32; 1/8 and 2/8 are below 16): every
        # example of a batch has the batch's bucket, the shortest that holds it.
        assert {min(b for b in (16, 24, 32) if b >= length) for length in real} == {width}
        for row, index in enumerate(labels):
            length = LENGTHS[index]
            assert list(batch["input_ids"][row]) == [index + 1] * length + [0] * (width - length)
            assert batch["input_mask"][row].sum() == length
            assert batch["segment_ids"][row].sum() == length - length // 2
            # Not a per-position feature, though as long as the records: never cut.
            assert list(batch["positions"][row]) == list(range(index, index + MAX_LENGTH))
        seen.extend(labels)
    # Evaluation input: nothing dropped (no partial batch lost), nothing repeated.
    assert sorted(seen) == list(range(len(LENGTHS)))


def test_training_reads_every_example_once_per_epoch_in_a_seeded_order(tmp_path):
    write_records(tmp_path / "r.tfrecord", LENGTHS)
    input_fn = tfrecord_io.input_fn_builder(
        [str(tmp_path / "r.tfrecord")], spec(), is_training=True, drop_remainder=True
    )
    stream = batches(input_fn, count=40, **BUCKETED)
    epochs, current = [], []
    for batch in stream:
        current.extend(batch["label_ids"])
        if len(current) >= len(LENGTHS):
            epochs.append(current)
            current = []
    assert len(epochs) >= 3
    for epoch in epochs:
        # Batches never straddle two epochs, and each epoch holds every example once.
        assert sorted(epoch) == list(range(len(LENGTHS)))
    assert epochs[0] != epochs[1]  # each epoch is shuffled anew
    assert {len(b["input_ids"][0]) for b in stream} == {16, 24, 32}
    again = batches(input_fn, count=40, **BUCKETED)
    assert all(
        np.array_equal(a[name], b[name]) for a, b in zip(stream, again, strict=True) for name in a
    )
    other_seed = batches(input_fn, count=40, bucket_by_length=True, seed=5)
    assert [list(b["label_ids"]) for b in other_seed] != [list(b["label_ids"]) for b in stream]


def test_without_bucketing_params_batches_keep_static_full_length_shapes(tmp_path):
    """The TPU path: TPUEstimator's params carry no bucketing settings, and the TPU needs
    static shapes."""
    write_records(tmp_path / "r.tfrecord", LENGTHS)
    for is_training in (True, False):
        input_fn = tfrecord_io.input_fn_builder(
            [str(tmp_path / "r.tfrecord")], spec(), is_training, drop_remainder=True
        )
        dataset = input_fn({"batch_size": 8})
        for name in tfrecord_io.SEQUENCE_FEATURES:
            assert dataset.element_spec[name].shape.as_list() == [8, MAX_LENGTH]
        assert dataset.element_spec["label_ids"].shape.as_list() == [8]


def test_prediction_input_carries_the_example_index(tmp_path):
    write_records(tmp_path / "r.tfrecord", LENGTHS)
    input_fn = tfrecord_io.input_fn_builder(
        [str(tmp_path / "r.tfrecord")], spec(), is_training=False, drop_remainder=False
    )
    found = batches(input_fn, bucket_by_length=True, example_index=True)
    for batch in found:
        np.testing.assert_array_equal(batch[tfrecord_io.EXAMPLE_INDEX], batch["label_ids"])
    order = np.concatenate([batch["label_ids"] for batch in found])
    assert list(order) != sorted(order)  # bucketing did reorder


def test_predictions_come_back_in_input_order():
    shuffled = [5, 0, 2, 1, 4, 3]
    predictions = [{"value": 10 * i, tfrecord_io.EXAMPLE_INDEX: np.int64(i)} for i in shuffled]
    ordered = list(estimator_builder.in_input_order(predictions))
    assert ordered == [{"value": 10 * i} for i in range(6)]
    lone = [{estimator_builder._SINGLE_PREDICTION: i, tfrecord_io.EXAMPLE_INDEX: i} for i in (1, 0)]
    assert list(estimator_builder.in_input_order(lone)) == [0, 1]
    # Without an index (an input_fn that does not bucket) they pass through unchanged.
    assert list(estimator_builder.in_input_order([{"value": 2}, {"value": 1}])) == [
        {"value": 2},
        {"value": 1},
    ]
    with pytest.raises(RuntimeError, match="No prediction for example 1"):
        list(estimator_builder.in_input_order(p for p in predictions if p["value"] != 10))
    with pytest.raises(RuntimeError, match="twice"):
        list(estimator_builder.in_input_order(predictions + predictions[:1]))


# ---------------------------------------------------------------- run_classifier end to end


KEYWORDS = {"a": "wonderful", "b": "terrible", "c": "similar"}


def varied_sentence(rng: random.Random, keyword: str | None = None) -> str:
    """1 to 80 filler words (mostly short, a tail longer than --max_seq_length=64), with
    `keyword` among the first few so that truncation keeps it."""
    words = [rng.choice(FILLER) for _ in range(rng.choice([1, 2, 3, 5, 8, 12, 20, 40, 80]))]
    if keyword:
        words.insert(rng.randint(0, min(len(words), 4)), keyword)
    return " ".join(words)


def write_varied_tasks(data_dir):
    """A 3-class single-sentence task (CSV; the class is told by a keyword) and an
    STS-B-style regression (TSV; "similar" or "different" in the second sentence tells
    a high or low score), with sentences of very different lengths."""
    rng = random.Random(9)
    classes = data_dir / "classes"
    classes.mkdir(parents=True)
    for split, count in (("train", 96), ("dev", 37), ("test", 29)):
        labels = [rng.choice("abc") for _ in range(count)]
        rows = [[varied_sentence(rng, KEYWORDS[label]), label] for label in labels]
        if split == "test":
            write_csv(classes / "test.csv", ["text"], [[text] for text, _ in rows])
        else:
            write_csv(classes / f"{split}.csv", ["text", "label"], rows)
    stsb = data_dir / "stsb"
    stsb.mkdir()
    header = "index genre filename year old_index source1 source2 sentence1 sentence2 score"
    for split, count in (("train", 96), ("dev", 21), ("test", 19)):
        names = header.split() if split != "test" else header.split()[:-1]
        lines = ["\t".join(names)]
        for index in range(count):
            similar = rng.random() < 0.5
            fields = [str(index), "g", "f", "2012", str(index), "s", "s"]
            fields += [
                varied_sentence(rng),
                varied_sentence(rng, "similar" if similar else "different"),
            ]
            if split != "test":
                fields.append(f"{rng.uniform(4, 5) if similar else rng.uniform(0, 1):.2f}")
            lines.append("\t".join(fields))
        (stsb / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return classes, stsb


@pytest.mark.slow
@pytest.mark.parametrize(
    "task", [dict(task_name="generic", labels="a,b,c"), dict(task_name="sts-b")], ids=str
)
def test_bucketed_eval_and_predict_match_full_length_padding(tmp_path_factory, task):
    root = tmp_path_factory.mktemp("bucketed")
    model = write_tiny_model(root, max_position_embeddings=64)
    classes, stsb = write_varied_tasks(root / "data")
    data = stsb if task["task_name"] == "sts-b" else classes
    out = root / "out"
    common = dict(
        model,
        **task,
        data_dir=str(data),
        output_dir=str(out),
        max_seq_length=64,
        train_batch_size=8,
        eval_batch_size=8,
        predict_batch_size=8,
        learning_rate=1e-3,
        random_seed=3,
    )
    run_script("run_classifier.py", dict(common, do_train=True, num_train_epochs=4))
    results = {}
    for bucketed in (False, True):
        log = run_script(
            "run_classifier.py",
            dict(common, do_eval=True, do_predict=True, bucket_by_length=bucketed),
        ).stdout
        grouped = "Batches grouped by length, padded to one of [16, 24, 32, 48, 64]"
        assert (grouped in log) == bucketed
        results[bucketed] = (
            read_eval_results(out / "eval_results.txt"),
            np.loadtxt(out / "test_results.tsv", ndmin=2),
            (out / "test_predictions.tsv").read_text().splitlines(),
        )
    (full_eval, full_values, full_rows), (eval_, values, rows) = results[False], results[True]
    # For sts-b the values are the raw regression outputs (logits); else probabilities.
    assert (
        values.shape
        == full_values.shape
        == (
            29 if task["task_name"] == "generic" else 19,
            3 if task["task_name"] == "generic" else 1,
        )
    )
    np.testing.assert_allclose(values, full_values, rtol=0, atol=1e-5)
    assert rows == full_rows  # same order: guids, labels and texts line by line
    assert full_eval.keys() == eval_.keys()
    # "loss" is the Estimator's mean of per-batch mean losses (padding examples included, as
    # in the original), so it depends on how examples are batched; the metrics do not.
    for key in sorted(set(full_eval) - {"loss"}):
        np.testing.assert_allclose(eval_[key], full_eval[key], rtol=0, atol=1e-5, err_msg=key)
    # The comparison is not vacuous: the outputs differ from example to example.
    assert np.ptp(full_values[:, 0]) > 0.1
