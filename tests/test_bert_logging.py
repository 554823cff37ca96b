"""What a run prints: few lines, each once, with progress and where the outputs went."""

import bert_logging

import os
import re
import subprocess
import sys

import pytest

from helpers import REPO_ROOT, write_keyword_task, write_tiny_model

# absl's own format ("I1201 11:40:22.726382 140322967968640 file.py:12] ..."): a line in
# it next to TensorFlow's "INFO:tensorflow:" lines is the same record printed twice.
ABSL_FORMAT = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ")
PROGRESS_LINE = re.compile(
    r"step (\d+)/(\d+) \((\d+)%\): loss = ([0-9.]+), [0-9.]+ steps/s, "
    r"[0-9.]+ examples/s, ETA (\S+)"
)


@pytest.fixture(scope="module")
def six_step_task(tmp_path_factory):
    """48 training examples at batch 16 for 2 epochs: 6 steps."""
    root = tmp_path_factory.mktemp("six_steps")
    model = write_tiny_model(root)
    write_keyword_task(root / "data", {"train": 48, "dev": 16, "test": 8})
    return dict(
        model,
        task_name="generic",
        data_dir=str(root / "data"),
        max_seq_length=16,
        train_batch_size=16,
        num_train_epochs=2,
        random_seed=3,
    )


def run_classifier(flags, output_dir, env=None, **extra):
    # The environment a user has: no TF_CPP_MIN_LOG_LEVEL of the tests' own.
    user_env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    user_env.update(env or {})
    command = [sys.executable, str(REPO_ROOT / "run_classifier.py")]
    for name, value in dict(flags, output_dir=str(output_dir), **extra).items():
        command.append(f"--{name}={value}")
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=dict(user_env, PYTHONPATH=str(REPO_ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout.splitlines()


@pytest.mark.slow
def test_six_step_run_prints_few_lines_once_and_says_where_outputs_went(six_step_task, tmp_path):
    out, export_dir = tmp_path / "out", tmp_path / "export"
    lines = run_classifier(
        six_step_task,
        out,
        do_train="true",
        do_eval="true",
        do_predict="true",
        export_dir=str(export_dir),
    )
    text = "\n".join(lines)
    assert len(lines) <= 60, text
    assert not [line for line in lines if ABSL_FORMAT.match(line)], text
    assert "Unable to register" not in text and "deprecated" not in text
    assert "Using config" not in text and "name = bert/" not in text
    for output in (
        out / "train.tf_record",
        out / "eval_results.txt",
        out / "test_results.tsv",
        out / "test_predictions.tsv",
    ):
        assert str(output) in text, output
    assert re.search(rf"as a SavedModel to {re.escape(str(export_dir))}/\d+", text)
    # What the original's users grep for is still there.
    assert "***** Eval results *****" in text and "loss = " in text
    summary = lines.index("INFO:tensorflow:***** Run *****")
    assert "48 examples, batch 16, 6 steps" in lines[summary + 1]
    model_line = "INFO:tensorflow:Model: BERT, 2 layers, hidden 32"
    assert any(line.startswith(model_line) for line in lines)


@pytest.mark.slow
def test_progress_lines_carry_step_total_loss_and_eta(six_step_task, tmp_path):
    lines = run_classifier(six_step_task, tmp_path / "out", do_train="true")
    progress = [PROGRESS_LINE.search(line) for line in lines]
    progress = [match for match in progress if match]
    steps = [int(match.group(1)) for match in progress]
    # Every step is logged in a 6-step run, the first included.
    assert steps == [1, 2, 3, 4, 5, 6], lines
    assert {int(match.group(2)) for match in progress} == {6}
    assert [int(match.group(3)) for match in progress] == [17, 33, 50, 67, 83, 100]
    assert progress[-1].group(5) == "0s"
    assert all(0.5 < float(match.group(4)) < 1.0 for match in progress)  # about ln 2


@pytest.mark.slow
def test_log_every_steps_and_a_finished_run_and_overwrite(six_step_task, tmp_path):
    out = tmp_path / "out"
    first = run_classifier(six_step_task, out, do_train="true", log_every_steps=3)
    assert [m.group(1) for line in first if (m := PROGRESS_LINE.search(line))] == ["3", "6"]

    again = "\n".join(run_classifier(six_step_task, out, do_train="true"))
    assert (
        f"Nothing to train: step 6 of 6 is already done in {out}; use a new --output_dir "
        "or --overwrite_output_dir" in again
    )
    assert not PROGRESS_LINE.search(again)

    (out / "notes.txt").write_text("mine")
    fresh = "\n".join(
        run_classifier(six_step_task, out, do_train="true", overwrite_output_dir="true")
    )
    assert "--overwrite_output_dir: deleted" in fresh and "Nothing to train" not in fresh
    assert "step 6/6 (100%)" in fresh
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_verbosity_keeps_its_absl_meaning(six_step_task, tmp_path):
    debug = "\n".join(run_classifier(six_step_task, tmp_path / "debug", do_train="true", v=1))
    # TensorFlow's own lines and the original's per-variable list come back at DEBUG.
    assert "Graph was finalized" in debug and "name = bert/embeddings/word_embeddings" in debug
    quiet = run_classifier(six_step_task, tmp_path / "quiet", do_train="true", verbosity=-1)
    assert not [line for line in quiet if line.startswith("INFO:")], quiet


def test_importing_bert_logging_drops_tensorflows_start_up_noise():
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}

    def stderr_of(code):
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            env=dict(env, PYTHONPATH=str(REPO_ROOT)),
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        ).stderr

    # The noise is real (TensorFlow 2.15 prints it on every CPU machine)...
    assert "Unable to register cuDNN factory" in stderr_of("import tensorflow")
    # ...and gone; a line printed to stderr after the import still gets through.
    quiet = stderr_of("import bert_logging, sys; print('after import', file=sys.stderr)")
    assert "Unable to register" not in quiet and "TensorRT" not in quiet
    assert quiet.strip().endswith("after import")


def test_format_duration():
    assert bert_logging.format_duration(0.4) == "0s"
    assert bert_logging.format_duration(59) == "59s"
    assert bert_logging.format_duration(185) == "3m05s"
    assert bert_logging.format_duration(2 * 3600 + 7 * 60 + 30) == "2h07m"


def test_progress_line_counts_rate_and_eta():
    progress = bert_logging.Progress("Features", total=1000)
    progress.update(250)
    # 250 items in 10 s: 25/s, 750 left: 30 s.
    assert progress.line(now=progress._start + 10) == "Features: 250 / 1000 (25%), 25.0/s, ETA 30s"
    unknown = bert_logging.Progress("Records")
    unknown.update(30)
    assert unknown.line(now=unknown._start + 3) == "Records: 30, 10.0/s"


@pytest.mark.parametrize(
    "flags, confirmed, warned",
    [
        (["--precision=float16"], "float16 with dynamic loss scaling, optimizer adamw", True),
        (["--precision=bfloat16", "--optimizer=lamb"], "bfloat16, optimizer lamb", False),
    ],
)
def test_compute_flags_are_confirmed_and_float16_without_a_gpu_is_warned_about(
    flags, confirmed, warned
):
    code = (
        "import bert_logging; bert_logging.configure(0)\n"
        "from absl import flags; import estimator_builder\n"
        "estimator_builder.define_hardware_flags(); estimator_builder.define_gpu_flags()\n"
        f"flags.FLAGS(['x', *{flags!r}])\n"
        "estimator_builder.run_options_from_flags()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES=""),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=True,
    )
    assert f"INFO:tensorflow:Compute: {confirmed}\n" in result.stdout
    assert ("--precision=float16 without a GPU" in result.stdout) == warned


def test_default_verbosity_hides_tensorflows_own_info_lines_only():
    import logging

    logger = logging.getLogger("test_bert_logging")
    logger.setLevel(logging.INFO)
    keep = bert_logging._DefaultVerbosityFilter(logger)
    tensorflow_file = bert_logging._TENSORFLOW_PACKAGE_DIRS[0] + "python/training/x.py"

    def record(level, message, path):
        return logging.LogRecord("tensorflow", level, path, 1, message, None, None)

    assert not keep.filter(record(logging.INFO, "Graph was finalized.", tensorflow_file))
    assert keep.filter(record(logging.INFO, "Loss for final step: 0.1.", tensorflow_file))
    assert keep.filter(record(logging.WARNING, "Out of range", tensorflow_file))
    assert not keep.filter(
        record(logging.WARNING, "X is deprecated and will be removed", tensorflow_file)
    )
    # Lines of this project and of a user's own --processor module are kept.
    assert keep.filter(record(logging.INFO, "Reading my data", "/home/me/my_tasks.py"))
    assert keep.filter(record(logging.INFO, "Model: BERT", str(REPO_ROOT / "finetuning.py")))
    logger.setLevel(logging.DEBUG)
    assert keep.filter(record(logging.INFO, "Graph was finalized.", tensorflow_file))


def test_the_start_up_filter_forwards_every_other_line_as_it_comes():
    code = (
        "import os, bert_logging\n"
        "def action():\n"
        "    os.write(2, b'E cuda_dnn.cc:9261] Unable to register cuDNN factory: twice\\n')\n"
        "    os.write(2, b'a line of its own\\n')\n"
        "    raise SystemExit(3)\n"
        "bert_logging._stderr_filtered_while(action)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        stderr=subprocess.PIPE,
        text=True,
    )
    # What the action printed before it failed is there; the noise is not.
    assert result.returncode == 3
    assert "a line of its own" in result.stderr and "Unable to register" not in result.stderr


def test_overwrite_output_dir_deletes_the_earlier_run_and_nothing_else(tmp_path):
    import estimator_builder

    run_files = ["checkpoint", "model.ckpt-6.index", "graph.pbtxt", "train.tf_record"]
    inputs = ["pretraining.tf_record", "model.ckpt-0.index", "model.ckpt-0.data-00000-of-00001"]
    for name in run_files + inputs + ["notes.txt"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "checkpoint").write_text("x")
    removed = estimator_builder.clear_previous_run(
        str(tmp_path),
        keep=[str(tmp_path / "pretraining.tf_record"), str(tmp_path / "model.ckpt-0")],
    )
    assert removed == len(run_files) + 1
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(inputs + ["notes.txt"])
    with pytest.raises(ValueError, match="for --do_train runs"):
        estimator_builder.clear_previous_run(str(tmp_path), training=False)
    with pytest.raises(ValueError, match="multi_worker"):
        estimator_builder.clear_previous_run(str(tmp_path), distribution_strategy="multi_worker")
