"""atomic_files: outputs appear whole or not at all, and old outputs survive failures."""

import os

import pytest

import atomic_files


def test_temporary_paths_are_hidden_unique_and_next_to_the_target():
    first = atomic_files.temporary_path_for("/data/out/train.tfrecord")
    second = atomic_files.temporary_path_for("/data/out/train.tfrecord")
    assert first != second
    for path in (first, second):
        assert os.path.dirname(path) == "/data/out"
        assert os.path.basename(path).startswith(".train.tfrecord.tmp-")
    assert atomic_files.temporary_path_for("gs://bucket/dir/x").startswith("gs://bucket/dir/.x.")


def test_write_text_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "eval_results.txt"
    target.write_text("old\n")
    atomic_files.write_text(str(target), "new ✓ 中文\n")
    assert target.read_text(encoding="utf-8") == "new ✓ 中文\n"
    assert os.listdir(tmp_path) == ["eval_results.txt"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_partial_one(tmp_path):
    target = tmp_path / "predictions.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_files.writing(str(target)) as temporary:
            with open(temporary, "w") as f:
                f.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["predictions.json"]


def test_replace_directory_swaps_whole_directories(tmp_path):
    final, staging = tmp_path / "best", tmp_path / "best.staging"
    final.mkdir()
    (final / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    atomic_files.replace_directory(str(staging), str(final))
    assert os.listdir(final) == ["new.txt"]
    assert os.listdir(tmp_path) == ["best"]

    fresh = tmp_path / "fresh.staging"
    fresh.mkdir()
    atomic_files.replace_directory(str(fresh), str(tmp_path / "fresh"))
    assert sorted(os.listdir(tmp_path)) == ["best", "fresh"]


def test_new_local_directory_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        with atomic_files.new_local_directory(str(out)):
            pass
    with atomic_files.new_local_directory(str(out), overwrite=True) as work_dir:
        (tmp_path / work_dir / "model.txt").write_text("converted")
    assert os.listdir(out) == ["model.txt"]
    assert os.listdir(tmp_path) == ["out"]


def test_writing_creates_a_missing_directory(tmp_path):
    target = tmp_path / "results" / "run 1" / "eval_results.txt"
    atomic_files.write_text(str(target), "global_step = 3\n")
    assert target.read_text() == "global_step = 3\n"
    assert os.listdir(target.parent) == ["eval_results.txt"]
