"""The GPU/CPU Estimator path, proven on CPU: replicas over logical CPU devices, two workers
on 127.0.0.1, gradient accumulation, XLA and mixed precision give the numbers they should."""

import collections
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MAX_PREDICTIONS, SEQ_LENGTH

from helpers import (
    REPO_ROOT,
    load_variables,
    max_difference,
    read_eval_results,
    run_script,
    write_keyword_task,
    write_tiny_model,
)


@pytest.fixture(scope="module")
def keyword_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("keyword")
    flags = write_tiny_model(root)
    write_keyword_task(root / "data", {"train": 160, "dev": 48})
    return dict(
        flags,
        task_name="generic",
        data_dir=str(root / "data"),
        max_seq_length=16,
        train_batch_size=16,
        eval_batch_size=16,
        learning_rate=5e-4,
        random_seed=7,
        # These tests compare batchings (one batch of 16 against two of 8), which length
        # bucketing would fill with different examples.
        bucket_by_length=False,
    )


def classifier_run(keyword_task, output_dir, **extra):
    flags = dict(keyword_task, output_dir=str(output_dir), do_train=True, num_train_epochs=0.5)
    flags.update(extra)
    return run_script("run_classifier.py", flags)


@pytest.mark.slow
def test_two_mirrored_cpu_replicas_match_one_device_classifier(keyword_task, tmp_path):
    classifier_run(keyword_task, tmp_path / "one")
    mirrored = classifier_run(
        keyword_task, tmp_path / "two", distribution_strategy="mirrored", num_cpu_devices=2
    )
    assert "train: batch 16 = 2 replica(s) x 1 micro-batch(es) x 8 examples" in mirrored.stdout
    one, two = load_variables(tmp_path / "one"), load_variables(tmp_path / "two")
    assert one["global_step"] == two["global_step"] == 5
    assert max_difference(one, two) <= 1e-5
    # The comparison means something: training moved the weights far more than that.
    start = load_variables_at(tmp_path / "one", 0)
    assert max_difference(start, {k: one[k] for k in start}) > 1e-3


def load_variables_at(model_dir, step):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(model_dir / f"model.ckpt-{step}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.slow
def test_two_mirrored_cpu_replicas_match_one_device_pretraining(pretraining_data, tmp_path):
    flags = {
        "input_file": f"{pretraining_data}/*.tfrecord",
        "bert_config_file": pretraining_data / "bert_config.json",
        "max_seq_length": SEQ_LENGTH,
        "max_predictions_per_seq": MAX_PREDICTIONS,
        "train_batch_size": 16,
        "num_train_steps": 4,
        "num_warmup_steps": 0,
        "learning_rate": 1e-3,
        "random_seed": 3,
        "do_train": True,
        "bucket_by_length": False,
    }
    run_script("run_pretraining.py", dict(flags, output_dir=tmp_path / "one"))
    run_script(
        "run_pretraining.py",
        dict(
            flags,
            output_dir=tmp_path / "two",
            distribution_strategy="mirrored",
            num_cpu_devices=2,
        ),
    )
    one, two = load_variables(tmp_path / "one"), load_variables(tmp_path / "two")
    assert max_difference(one, two) <= 1e-5


@contextlib.contextmanager
def reserved_ports(count: int):
    """`count` free TCP ports, held bound until the block ends.

    Picking a free port and closing it before the worker binds it is a race: any process
    may be given the same port in between. Here each port stays bound for the whole run, so
    the kernel hands it to no one else, and the workers can still bind it because both
    sides set SO_REUSEPORT (TensorFlow's gRPC server does with TF_GRPC_REUSE_PORT=1). The
    sockets never listen, so every connection to the port reaches the worker. (Only a
    process of the same user that sets SO_REUSEPORT and binds this very port number could
    share it; TensorFlow's servers do not by default.)
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("0.0.0.0", 0))  # the address TensorFlow's server binds
            sockets.append(sock)
        yield [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_two_workers(flags: dict, output_root: Path) -> list[str]:
    """Runs run_classifier.py as the two workers of a localhost cluster, writing to
    `output_root`/worker0 and /worker1; returns their outputs."""
    with reserved_ports(2) as ports:
        workers = [f"127.0.0.1:{port}" for port in ports]
        processes = []
        try:
            for index in range(2):
                task = {"type": "worker", "index": index}
                worker_flags = dict(flags, output_dir=output_root / f"worker{index}")
                command = [sys.executable, str(REPO_ROOT / "run_classifier.py")]
                command += [f"--{k}={'true' if v is True else v}" for k, v in worker_flags.items()]
                env = dict(
                    os.environ,
                    TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": task}),
                    TF_CPP_MIN_LOG_LEVEL="2",
                    TF_GRPC_REUSE_PORT="1",
                )
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
            outputs = [process.communicate(timeout=300)[0] for process in processes]
        finally:
            for process in processes:
                process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
    return outputs


def write_doubled_rows(source: Path, target: Path) -> None:
    """Copies a CSV task with every training row written twice in a row."""
    target.mkdir(parents=True)
    lines = (source / "train.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    doubled = lines[:1] + [line for line in lines[1:] for _ in range(2)]
    (target / "train.csv").write_text("".join(doubled), encoding="utf-8")


@pytest.mark.slow
def test_two_workers_on_localhost_train_as_one_process_on_the_same_global_batch(
    keyword_task, tmp_path
):
    # Each worker reads every other record of the training file, so with every row doubled
    # both read the same 160 examples, shuffled alike (same seed): at step k each holds the
    # same 8, and the averaged gradient of the global batch of 16 is the gradient of those
    # 8. A one-process run with batch 8 on the undoubled rows reads the same 8 at each step
    # and must end with the same weights. A worker reading the whole file instead of its
    # half, or an all-reduce that summed instead of averaged, would end elsewhere.
    doubled = tmp_path / "doubled"
    write_doubled_rows(Path(keyword_task["data_dir"]), doubled)
    epochs = 0.25  # 320 rows / 16 * 0.25 = 160 examples / 8 * 0.25 = 5 steps
    classifier_run(keyword_task, tmp_path / "one", train_batch_size=8, num_train_epochs=epochs)
    outputs = run_two_workers(
        dict(
            keyword_task,
            data_dir=doubled,
            do_train=True,
            num_train_epochs=epochs,
            distribution_strategy="multi_worker",
        ),
        tmp_path,
    )
    for output in outputs:
        assert "train: batch 16 = 2 replica(s) x 1 micro-batch(es) x 8 examples" in output
    # Both workers end in sync. (Each line is logged twice, by TensorFlow's and by absl's.)
    fingerprints = [set(re.findall(r"Weights fingerprint: (\S+)", output)) for output in outputs]
    assert len(fingerprints[0]) == 1 and fingerprints[0] == fingerprints[1]
    # The chief (worker 0) saved the result, which is the one-process run's.
    one, chief = load_variables(tmp_path / "one"), load_variables(tmp_path / "worker0")
    assert one["global_step"] == chief["global_step"] == 5
    assert max_difference(one, chief) <= 1e-5
    start = load_variables_at(tmp_path / "one", 0)
    assert max_difference(start, {k: one[k] for k in start}) > 1e-3


@pytest.mark.slow
def test_accumulating_two_micro_batches_equals_one_full_batch(keyword_task, tmp_path):
    classifier_run(keyword_task, tmp_path / "full")
    accumulated = classifier_run(
        keyword_task, tmp_path / "accumulated", gradient_accumulation_steps=2
    )
    assert "train: batch 16 = 1 replica(s) x 2 micro-batch(es) x 8 examples" in accumulated.stdout
    full, micro = load_variables(tmp_path / "full"), load_variables(tmp_path / "accumulated")
    assert full["global_step"] == micro["global_step"] == 5  # optimizer steps
    shared = {name: full[name] for name in full if name in micro}
    assert max_difference(shared, {name: micro[name] for name in shared}) <= 1e-5


@pytest.mark.slow
def test_xla_gives_the_same_loss(keyword_task, tmp_path):
    plain = classifier_run(keyword_task, tmp_path / "plain", do_eval=True)
    compiled = run_script(
        "run_classifier.py",
        dict(
            keyword_task,
            output_dir=str(tmp_path / "xla"),
            do_train=True,
            do_eval=True,
            num_train_epochs=0.5,
            use_xla=True,
        ),
        env={"TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    assert "Compiled cluster using XLA" in compiled.stdout
    assert "Compiled cluster using XLA" not in plain.stdout
    plain_loss = read_eval_results(tmp_path / "plain" / "eval_results.txt")["eval_loss"]
    xla_loss = read_eval_results(tmp_path / "xla" / "eval_results.txt")["eval_loss"]
    assert abs(plain_loss - xla_loss) <= 1e-4


# Stated tolerance: after 15 epochs of the keyword task, mixed precision reaches the same
# accuracy as float32 to within 0.05 and an eval loss within 0.05 of it.
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_close_to_float32(keyword_task, tmp_path, precision):
    results = {}
    for name in ("float32", precision):
        out = tmp_path / name
        classifier_run(keyword_task, out, do_eval=True, num_train_epochs=15, precision=name)
        results[name] = read_eval_results(out / "eval_results.txt")
    reduced, full = results[precision], results["float32"]
    assert reduced["eval_accuracy"] >= 0.9  # chance is 0.5: it trained
    assert reduced["eval_loss"] < 0.3  # from about 0.69 at the start
    assert abs(reduced["eval_accuracy"] - full["eval_accuracy"]) <= 0.05
    assert abs(reduced["eval_loss"] - full["eval_loss"]) <= 0.05
    checkpoint = load_variables(tmp_path / precision)
    assert checkpoint["bert/embeddings/word_embeddings"].dtype.name == "float32"
    if precision == "float16":
        assert "loss_scale" in checkpoint
    # The encoder's matrix products, forward and backward, ran in the reduced type: 2
    # layers x (q, k, v, attention output, intermediate, output + 2 batched products).
    for name, dtype in (("float32", "float32"), (precision, precision)):
        products = encoder_matmul_dtypes(tmp_path / name / "graph.pbtxt")
        assert sum(products["forward"].values()) == 2 * 8
        assert sum(products["backward"].values()) >= 2 * 8
        assert set(products["forward"]) == set(products["backward"]) == {dtype}, products


def encoder_matmul_dtypes(graph_file: Path) -> dict[str, collections.Counter]:
    """How many MatMul / BatchMatMul ops of the encoder, forward and in the gradients, the
    training graph that the Estimator saved has of each dtype."""
    import tensorflow as tf
    from google.protobuf import text_format

    graph = text_format.Parse(graph_file.read_text(), tf.compat.v1.GraphDef())
    products = {"forward": collections.Counter(), "backward": collections.Counter()}
    for node in graph.node:
        if node.op not in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
            continue
        dtype = tf.as_dtype(node.attr["T"].type if "T" in node.attr else node.attr["Ta"].type)
        if node.name.startswith("bert/encoder/"):
            products["forward"][dtype.name] += 1
        elif node.name.startswith("gradients/bert/encoder/"):
            products["backward"][dtype.name] += 1
    return products


def test_batch_that_does_not_split_over_micro_batches_is_rejected(keyword_task, tmp_path):
    flags = dict(
        keyword_task,
        output_dir=str(tmp_path / "out"),
        do_train=True,
        train_batch_size=10,
        gradient_accumulation_steps=4,
    )
    result = run_script("run_classifier.py", flags, expect_failure=True)
    assert "batch size 10 does not divide" in result.stdout


def test_accumulation_is_refused_on_tpu(keyword_task, tmp_path):
    flags = dict(
        keyword_task,
        output_dir=str(tmp_path / "out"),
        do_train=True,
        use_tpu=True,
        gradient_accumulation_steps=2,
    )
    result = run_script("run_classifier.py", flags, expect_failure=True)
    assert "--gradient_accumulation_steps is for the GPU/CPU path" in result.stdout
