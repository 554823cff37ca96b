"""Tests for the writing half of tfrecord_io.py: features, round-robin, atomic files.

File contents are checked against TFRecord framing built here from the format's definition
(length, masked CRC-32C of the length, data, masked CRC-32C of the data).
"""

import os
import struct

import pytest
import tensorflow as tf

import input_files
import tfrecord_io


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit by bit, reflected polynomial 0x82F63B78."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def framed(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return (
        length
        + struct.pack("<I", masked_crc(length))
        + record
        + struct.pack("<I", masked_crc(record))
    )


def test_crc32c_reference_value():
    # The check value of CRC-32C from the CRC catalogue.
    assert crc32c(b"123456789") == 0xE3069283


def test_int_and_float_features():
    ints = tfrecord_io.create_int_feature(iter([3, 0, -2, 2**40]))
    assert list(ints.int64_list.value) == [3, 0, -2, 2**40]
    assert not ints.float_list.value
    floats = tfrecord_io.create_float_feature([1.0, 0.1])
    # Stored as 32-bit floats.
    assert list(floats.float_list.value) == [1.0, struct.unpack("<f", struct.pack("<f", 0.1))[0]]


def test_records_go_round_robin_and_files_are_valid_tfrecords(tmp_path):
    paths = [str(tmp_path / f"part-{i}.tfrecord") for i in range(3)]
    records = [f"record {i}".encode() * (i + 1) for i in range(7)]
    with tfrecord_io.RoundRobinRecordWriter(paths) as writer:
        for record in records:
            writer.write(record)
    assert writer.num_written == 7
    expected = [records[0::3], records[1::3], records[2::3]]
    for path, wanted in zip(paths, expected, strict=True):
        with open(path, "rb") as f:
            assert f.read() == b"".join(framed(r) for r in wanted)
        assert [bytes(r) for r in tf.compat.v1.io.tf_record_iterator(path)] == wanted
    assert sorted(os.listdir(tmp_path)) == ["part-0.tfrecord", "part-1.tfrecord", "part-2.tfrecord"]


def test_files_appear_only_on_commit(tmp_path):
    path = str(tmp_path / "out.tfrecord")
    writer = tfrecord_io.RoundRobinRecordWriter([path])
    writer.write(b"x")
    # Meanwhile only a hidden temporary file exists, in the same directory.
    (name,) = os.listdir(tmp_path)
    assert name.startswith(".out.tfrecord.tmp-")
    writer.commit()
    assert os.listdir(tmp_path) == ["out.tfrecord"]
    with open(path, "rb") as f:
        assert f.read() == framed(b"x")


def test_failure_inside_the_block_leaves_no_file_and_keeps_old_output(tmp_path):
    old = tmp_path / "a.tfrecord"
    old.write_bytes(b"from an earlier run")
    paths = [str(old), str(tmp_path / "b.tfrecord")]
    with pytest.raises(KeyboardInterrupt):
        with tfrecord_io.RoundRobinRecordWriter(paths) as writer:
            for i in range(100):
                writer.write(b"%d" % i)
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["a.tfrecord"]
    assert old.read_bytes() == b"from an earlier run"


def test_commit_replaces_an_existing_file(tmp_path):
    path = tmp_path / "out.tfrecord"
    path.write_bytes(b"stale")
    with tfrecord_io.RoundRobinRecordWriter([str(path)]) as writer:
        writer.write(b"fresh")
    assert path.read_bytes() == framed(b"fresh")


def test_zero_records_give_empty_files(tmp_path):
    path = tmp_path / "out.tfrecord"
    with tfrecord_io.RoundRobinRecordWriter([str(path)]):
        pass
    assert path.read_bytes() == b""


def test_a_missing_output_directory_is_created(tmp_path):
    target = tmp_path / "out" / "data" / "train.tfrecord"
    with tfrecord_io.RoundRobinRecordWriter([str(target)]) as writer:
        writer.write(b"record")
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(target))] == [b"record"]


def test_bad_output_lists_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        tfrecord_io.RoundRobinRecordWriter([])
    path = str(tmp_path / "same.tfrecord")
    with pytest.raises(ValueError, match="more than once"):
        tfrecord_io.RoundRobinRecordWriter([path, path])
    assert os.listdir(tmp_path) == []


def test_files_that_are_not_records_are_named_with_what_they_are(tmp_path):
    good = tmp_path / "good.tfrecord"
    with tf.io.TFRecordWriter(str(good)) as writer:
        writer.write(
            tf.train.Example(
                features=tf.train.Features(
                    feature={"input_ids": tfrecord_io.create_int_feature([1, 2])}
                )
            ).SerializeToString()
        )
    pointer = tmp_path / "pointer.tfrecord"
    pointer.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n")
    text = tmp_path / "corpus.txt"
    text.write_text("A sentence.\n", encoding="utf-8")
    spec = {"input_ids": tfrecord_io.int_feature_spec(2)}
    tfrecord_io.check_record_files([str(good)], spec)
    with pytest.raises(input_files.InputFileError) as error:
        tfrecord_io.check_record_files([str(good), str(text)], spec)
    assert str(error.value) == (
        f"{text} is not a TFRecord file: it is a text file starting with 'A sentence.'"
    )
    with pytest.raises(input_files.InputFileError) as error:
        tfrecord_io.check_record_files([str(pointer), str(good)], spec)
    assert str(error.value).startswith(
        f"{pointer} is not a TFRecord file: it is a git-lfs pointer file"
    )
