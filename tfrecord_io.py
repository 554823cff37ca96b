"""Reading and writing TFRecord files of `tf.train.Example`s.

The writing half: feature helpers and `RoundRobinRecordWriter`, which spreads records over
several files in turn and makes them appear only once they are complete (written under a
temporary name in the same directory, then renamed), so a crashed run never leaves a truncated
file that a later training job would happily read.
"""

from __future__ import annotations

import os
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


def _require_local_directory(path: str) -> None:
    """Fails before any work when the directory of a local output path does not exist."""
    if "://" in path:
        # Object stores have no real directories; the write itself reports problems there.
        return
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Output directory {directory!r} of {path!r} does not exist.")


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
            _require_local_directory(path)
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


def input_fn_builder(
    input_files: Sequence[str],
    name_to_features: dict,
    is_training: bool,
    drop_remainder: bool,
    repeat: bool | None = None,
    num_cpu_threads: int = 4,
    shuffle_buffer: int = 100,
):
    """Returns `input_fn(params)` reading batches of `params["batch_size"]` examples.

    Training reads the files in a shuffled, repeated order with several files interleaved
    and a shuffle buffer over records; otherwise the files are read once, in order (or
    repeated when `repeat` is True, as pre-training's step-bounded eval does).
    Each batch is a dict of `[batch_size, length]` tensors.
    """
    input_files = list(input_files)
    repeat = is_training if repeat is None else repeat

    def input_fn(params):
        batch_size = params["batch_size"]
        # With --random_seed the shuffles are seeded and interleaving is ordered, so that
        # two runs (say on one device and on two) read the same batches.
        seed = params.get("seed")
        # Set by a multi-worker strategy: each worker reads its own share of the data.
        context = params.get("input_context")
        shards = context.num_input_pipelines if context else 1
        shard_id = context.input_pipeline_id if context else 0
        shard_files = shards > 1 and len(input_files) >= shards
        files = tf.data.Dataset.from_tensor_slices(tf.constant(input_files))
        if shard_files:
            files = files.shard(shards, shard_id)
        if is_training:
            files = files.repeat().shuffle(buffer_size=len(input_files), seed=seed)
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
        batches = records.map(
            lambda record: decode_record(record, name_to_features),
            num_parallel_calls=num_cpu_threads,
        ).batch(batch_size, drop_remainder=drop_remainder)
        return batches.prefetch(tf.data.AUTOTUNE)

    return input_fn
