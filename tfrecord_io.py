"""Reading and writing TFRecord files of `tf.train.Example`s.

The writing half: feature helpers and `RoundRobinRecordWriter`, which spreads records over
several files in turn and makes them appear only once they are complete (written under a
temporary name in the same directory, then renamed), so a crashed run never leaves a truncated
file that a later training job would happily read.
"""

from __future__ import annotations

import bert_logging

from collections.abc import Iterable, Sequence

import tensorflow as tf

import atomic_files
import input_files


def create_int_feature(values: Iterable[int]) -> tf.train.Feature:
    """Wraps integers as an int64_list feature."""
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def create_float_feature(values: Iterable[float]) -> tf.train.Feature:
    """Wraps numbers as a float_list feature (stored as 32-bit floats)."""
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


class RoundRobinRecordWriter:
    """Writes serialized records to `output_files` in turn: record i goes to file i % len(files).

    Use it as a context manager: on a normal exit every file is closed and renamed into place;
    if the block raises (KeyboardInterrupt included), the temporary files are deleted and no
    output file is created or replaced.
    """

    def __init__(self, output_files: Sequence[str]) -> None:
        if not output_files:
            raise ValueError("RoundRobinRecordWriter needs at least one output file.")
        if len(set(output_files)) != len(output_files):
            raise ValueError(f"Output files are listed more than once: {list(output_files)}")
        for path in output_files:
            atomic_files.make_parent_directory(path)
        self.output_files = list(output_files)
        self.num_written = 0
        self._temp_paths = [atomic_files.temporary_path_for(path) for path in self.output_files]
        self._writers: list[tf.io.TFRecordWriter] = []
        self._finished = False
        try:
            for temp_path in self._temp_paths:
                self._writers.append(tf.io.TFRecordWriter(temp_path))
        except BaseException:
            self.abort()
            raise

    def write(self, record: bytes) -> None:
        """Appends one serialized record to the next file in turn."""
        self._writers[self.num_written % len(self._writers)].write(record)
        self.num_written += 1

    def commit(self) -> None:
        """Closes every file and renames it to its final name."""
        if self._finished:
            return
        try:
            for writer in self._writers:
                writer.close()
            for temp_path, final_path in zip(self._temp_paths, self.output_files, strict=True):
                tf.io.gfile.rename(temp_path, final_path, overwrite=True)
        except BaseException:
            self.abort()
            raise
        self._finished = True

    def abort(self) -> None:
        """Discards everything written so far; final files are left untouched."""
        self._finished = True
        for writer in self._writers:
            try:
                writer.close()
            except (OSError, tf.errors.OpError):
                pass
        for temp_path in self._temp_paths:
            atomic_files.remove_quietly(temp_path)

    def __enter__(self) -> RoundRobinRecordWriter:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_tf_examples(
    tf_examples: Iterable[tf.train.Example], output_files: Sequence[str], what: str = "examples"
) -> int:
    """Writes `tf_examples` in turn over `output_files` (each file appearing only once
    complete) and says where they went; returns how many were written."""
    with RoundRobinRecordWriter(output_files) as writer:
        for tf_example in tf_examples:
            writer.write(tf_example.SerializeToString())
    tf.compat.v1.logging.info(
        "Features: %d %s written to %s", writer.num_written, what, ", ".join(output_files)
    )
    return writer.num_written


# ---------------------------------------------------------------------------------------
# Reading


def glob_input_files(patterns: str, flag_name: str = "input_file") -> list[str]:
    """Expands comma-separated glob patterns; a pattern matching nothing is an error."""
    files: list[str] = []
    for pattern in (part.strip() for part in patterns.split(",")):
        if not pattern:
            continue
        matches = sorted(tf.io.gfile.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"--{flag_name}: no file matches {pattern!r}")
        files.extend(matches)
    if not files:
        raise ValueError(f"--{flag_name} names no files")
    return files


def int_feature_spec(length: int) -> tf.io.FixedLenFeature:
    return tf.io.FixedLenFeature([length], tf.int64)


def float_feature_spec(length: int) -> tf.io.FixedLenFeature:
    return tf.io.FixedLenFeature([length], tf.float32)


def first_record(path: str) -> bytes | None:
    """The first serialized record of a TFRecord file (None if it has none).

    Raises:
      input_files.InputFileError: `path` is not a TFRecord file (a text corpus given where
        its TFRecords belong, a git-lfs pointer, ...); the message says what it is instead.
        Otherwise the input pipeline would stop later, mid-training, with a DataLossError
        that does not name the file.
    """
    try:
        return next(iter(tf.compat.v1.io.tf_record_iterator(path)), None)
    except tf.errors.DataLossError:
        raise input_files.InputFileError(
            f"{path} is not a TFRecord file: it is {input_files.describe_content(path)}"
        ) from None


def check_record_files(
    paths: Sequence[str], name_to_features: dict[str, tf.io.FixedLenFeature], flag_hint: str = ""
) -> None:
    """Before any training: checks that every file of `paths` starts with a readable record,
    and the first file's features against the spec (`check_record_lengths`)."""
    for path in paths[1:]:
        first_record(path)
    check_record_lengths(paths[0], name_to_features, flag_hint)


def check_record_lengths(
    path: str, name_to_features: dict[str, tf.io.FixedLenFeature], flag_hint: str = ""
) -> None:
    """Reads the first record of `path` and checks each feature's length against the spec.

    A mismatch (say, records written with --max_seq_length=128 read with 256) would otherwise
    surface as a shape error deep inside the input pipeline; here it names the file and feature.
    """
    first = first_record(path)
    if first is None:
        raise ValueError(f"{path} holds no records")
    example = tf.train.Example.FromString(first)
    for name, spec in name_to_features.items():
        feature = example.features.feature.get(name)
        if feature is None:
            raise ValueError(f"{path}: records have no feature {name!r}")
        kind = feature.WhichOneof("kind")
        found = len(getattr(feature, kind).value) if kind else 0
        wanted = spec.shape[0] if spec.shape else 1
        if found != wanted:
            raise ValueError(
                f"{path}: feature {name!r} has length {found} but {wanted} was expected"
                + (f"; {flag_hint}" if flag_hint else "")
            )


def decode_record(record: tf.Tensor, name_to_features: dict) -> dict[str, tf.Tensor]:
    """Parses one serialized Example; int64 features become int32 (TPUs only take int32)."""
    example = tf.io.parse_single_example(record, name_to_features)
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in example.items()
    }


# Per-position features: the ones a bucketed batch trims to its bucket length. Others of
# the same records (labels, masked_lm_positions of pre-training...) keep their shapes.
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")
# Added to every example of a bucketed prediction input, so the predictions (which come
# out grouped by length) can be put back into input order.
EXAMPLE_INDEX = "example_index"

# Derived bucket lengths, as fractions of max_seq_length (rounded down to a multiple of 8,
# none below 16). Finer steps at the short end, where most real text is: on text with a
# median of 28 WordPieces these pad 128-token records to 49 positions on average (16/32/64:
# 54; 32/64: 59), with few enough shapes that every bucket fills its batches quickly.
_BUCKET_FRACTIONS = (1 / 8, 2 / 8, 3 / 8, 4 / 8, 6 / 8)
_SHORTEST_DERIVED_BUCKET = 16


def bucket_lengths(max_seq_length: int, boundaries: Sequence[int] | None = None) -> list[int]:
    """The padded lengths of the buckets, ascending, the last always `max_seq_length`.

    `boundaries` (e.g. `[32, 64]`) gives the shorter ones; lengths at or above
    `max_seq_length` are left out, since records are never longer. Without `boundaries`:
    1/8, 2/8, 3/8, 4/8 and 6/8 of `max_seq_length`, rounded down to a multiple of 8, none
    shorter than 16 (16, 32, 48, 64, 96 at 128).
    """
    if boundaries:
        bad = [b for b in boundaries if isinstance(b, bool) or not isinstance(b, int) or b < 1]
        if bad:
            raise ValueError(f"--bucket_boundaries must be positive integers, got {bad}")
        shorter = {b for b in boundaries if b < max_seq_length}
    else:
        derived = (int(max_seq_length * fraction) // 8 * 8 for fraction in _BUCKET_FRACTIONS)
        shorter = {
            length for length in derived if _SHORTEST_DERIVED_BUCKET <= length < max_seq_length
        }
    return sorted(shorter) + [max_seq_length]


def sequence_length(input_mask: tf.Tensor) -> tf.Tensor:
    """int64 scalar: one past the last non-zero position of a `[seq_length]` mask (0 for an
    all-zero mask). Everything after it is padding, which the attention mask makes inert."""
    positions = tf.range(1, tf.size(input_mask, out_type=tf.int64) + 1)
    return tf.reduce_max(tf.where(tf.not_equal(input_mask, 0), positions, tf.zeros_like(positions)))


def batch_sequence_lengths(input_mask: tf.Tensor) -> tf.Tensor:
    """`sequence_length` of each row of a `[batch_size, seq_length]` mask: `[batch_size]`."""
    positions = tf.range(1, tf.shape(input_mask, out_type=tf.int64)[1] + 1)
    return tf.reduce_max(
        tf.where(tf.not_equal(input_mask, 0), positions, tf.zeros_like(positions)), axis=1
    )


def batch_by_length(
    dataset: tf.data.Dataset,
    batch_size: int,
    lengths: Sequence[int],
    drop_remainder: bool,
    sequence_features: Sequence[str] = SEQUENCE_FEATURES,
) -> tf.data.Dataset:
    """Batches examples of similar length together: each example goes to the shortest
    bucket of `lengths` that holds its `input_mask`, and each batch of a bucket has its
    `sequence_features` cut to the bucket length (`[batch_size, bucket_length]`).

    The order is deterministic for a deterministic input. Without `drop_remainder`, the
    partial batch of every bucket comes out at the end of the input, so no example is lost.
    """
    sizes = tf.constant(list(lengths), tf.int64)

    def bucket_of(features):
        length = tf.reshape(sequence_length(features["input_mask"]), [1])
        return tf.searchsorted(sizes, length, side="left", out_type=tf.int64)[0]

    def trimmed(bucket):
        length = sizes[bucket]
        return lambda features: {
            name: value[:, :length] if name in sequence_features else value
            for name, value in features.items()
        }

    def batches_of(bucket, window):
        return window.batch(batch_size, drop_remainder=drop_remainder).map(trimmed(bucket))

    return dataset.group_by_window(bucket_of, batches_of, window_size=batch_size)


def input_fn_builder(
    input_files: Sequence[str],
    name_to_features: dict,
    is_training: bool,
    drop_remainder: bool,
    repeat: bool | None = None,
    num_cpu_threads: int = 4,
    shuffle_buffer: int = 100,
    sequence_features: Sequence[str] = SEQUENCE_FEATURES,
):
    """Returns `input_fn(params)` reading batches of `params["batch_size"]` examples.

    Training reads the files in a shuffled, repeated order with several files interleaved
    and a shuffle buffer over records; otherwise the files are read once, in order (or
    repeated when `repeat` is True, as pre-training's step-bounded eval does).
    Each batch is a dict of `[batch_size, length]` tensors.

    Length bucketing (`params["bucket_by_length"]`, set by `estimator_builder.BertEstimator`
    off TPU; see `bucket_lengths` for `params["bucket_boundaries"]`): batches are grouped
    by length and `sequence_features` cut to their bucket (`[batch_size, bucket_length]`),
    the records staying as written. Training then shuffles each epoch on its own and
    flushes the partial batch of every bucket at the end of it, so every example is read
    once per epoch; evaluation and prediction never drop a partial batch; with
    `params["example_index"]` every example carries its int64 position in the input as
    `EXAMPLE_INDEX`. A step-bounded repeated evaluation keeps full-length batches, so that
    it scores the same examples. Without those params (TPUEstimator), or with empty
    `sequence_features`, nothing changes.
    """
    input_files = list(input_files)
    repeat = is_training if repeat is None else repeat
    max_seq_length = _record_length(name_to_features)

    def input_fn(params):
        batch_size = params["batch_size"]
        # With --random_seed the shuffles are seeded and interleaving is ordered, so that
        # two runs (say on one device and on two) read the same batches.
        seed = params.get("seed")
        bucketing = (
            bool(params.get("bucket_by_length"))
            and bool(sequence_features)
            and max_seq_length is not None
            and (is_training or not repeat)
        )
        # Set by a multi-worker strategy: each worker reads its own share of the data.
        context = params.get("input_context")
        shards = context.num_input_pipelines if context else 1
        shard_id = context.input_pipeline_id if context else 0
        shard_files = shards > 1 and len(input_files) >= shards
        files = tf.data.Dataset.from_tensor_slices(tf.constant(input_files))
        if shard_files:
            files = files.shard(shards, shard_id)
        if is_training:
            if not bucketing:
                files = files.repeat()
            files = files.shuffle(buffer_size=len(input_files), seed=seed)
            records = files.interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(num_cpu_threads, len(input_files)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=seed is not None,
            )
        else:
            records = files.flat_map(tf.data.TFRecordDataset)
        if shards > 1 and not shard_files:
            records = records.shard(shards, shard_id)
        if is_training:
            records = records.shuffle(buffer_size=shuffle_buffer, seed=seed)
        elif repeat:
            records = records.repeat()
        if bucketing and not is_training and params.get("example_index"):
            examples = records.enumerate().map(
                lambda index, record: dict(
                    decode_record(record, name_to_features), **{EXAMPLE_INDEX: index}
                ),
                num_parallel_calls=num_cpu_threads,
            )
        else:
            examples = records.map(
                lambda record: decode_record(record, name_to_features),
                num_parallel_calls=num_cpu_threads,
            )
        if not bucketing:
            batches = examples.batch(batch_size, drop_remainder=drop_remainder)
        else:
            lengths = bucket_lengths(max_seq_length, params.get("bucket_boundaries"))
            bert_logging.info_once(
                f"buckets {lengths}", "Batches grouped by length, padded to one of %s", lengths
            )
            batches = batch_by_length(
                examples,
                batch_size,
                lengths,
                # Off TPU a partial batch costs nothing, while dropping it loses examples.
                drop_remainder=False,
                sequence_features=sequence_features,
            )
            if is_training and repeat:
                batches = batches.repeat()
        return batches.prefetch(tf.data.AUTOTUNE)

    return input_fn


def _record_length(name_to_features: dict) -> int | None:
    """The records' sequence length (that of `input_ids`), or None when the records have
    no `input_ids` and `input_mask` to bucket by."""
    if "input_ids" not in name_to_features or "input_mask" not in name_to_features:
        return None
    shape = name_to_features["input_ids"].shape
    # Only one sequence per record can be bucketed (not, say, one per answer choice).
    return int(shape[0]) if len(shape) == 1 else None
