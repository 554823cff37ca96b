"""Starting serve.py on a port the system picks, and exports for it to serve (shared by
tests/test_serve.py and bench/bench_serve.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """A running serve.py: its process, base URL and everything it printed so far."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(models: dict[str, str], work_dir: Path, *flags: str, startup_s: float = 300):
    """serve.py over `models` ({name: export_dir}) with `--port=0`; the port is read from
    its --port_file, so no port is ever picked before the server binds it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port_file = work_dir / "port"
    if port_file.exists():
        port_file.unlink()
    log_path = work_dir / "serve.log"
    command = [sys.executable, str(REPO_ROOT / "serve.py"), "--port=0", f"--port_file={port_file}"]
    command += [f"--model={name}={path}" for name, path in models.items()]
    command += list(flags)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + startup_s
        while not port_file.exists():
            if process.poll() is not None:
                raise RuntimeError(
                    f"serve.py exited with {process.returncode}:\n{log_path.read_text()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve.py did not start in {startup_s}s")
            time.sleep(0.1)
        yield ServerProcess(process, int(port_file.read_text()), log_path)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def export_tiny_models(
    root: Path, seq_length: int = 32, tasks: tuple[str, ...] = ("vectors", "sentiment")
) -> dict[str, str]:
    """Random-weights exports on a tiny BERT, with their tokenizer: `vectors` an encoder
    (REDUCE_MEAN of the last layer, normalized), `sentiment` a two-label classifier, `ner`
    a BIO tagger of PER, `qa` a SQuAD model, `choice` a multiple-choice model of 3 choices;
    returns {name: export_dir} of `tasks`."""
    sys.path.insert(0, str(REPO_ROOT))
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import classifier_task
    import export
    import extract_features
    import modeling
    from helpers import write_tiny_model

    root.mkdir(parents=True, exist_ok=True)
    flags = write_tiny_model(root, max_position_embeddings=64)
    config = modeling.BertConfig.from_json_file(flags["bert_config_file"])
    assets = export.tokenizer_assets(flags["vocab_file"], None)
    pooling_settings = {
        "strategy": "REDUCE_MEAN",
        "layers": [-1],
        "mask_cls_sep": False,
        "normalize": True,
    }
    exports = {}
    if "vectors" in tasks:
        encoder_fn = extract_features.model_fn_builder(
            config, None, [-1], False, False, pooling_settings=pooling_settings
        )
        exports["vectors"] = export.export_initialized_model(
            encoder_fn,
            str(root / "encoder"),
            seq_length,
            assets_extra=assets,
            metadata={"task": "encoder", "do_lower_case": True, "pooling": pooling_settings},
        )
    if "sentiment" in tasks:
        classifier_fn = classifier_task.model_fn_builder(config, 2, None, 1e-4, 1, 0, False, False)
        exports["sentiment"] = export.export_initialized_model(
            classifier_fn,
            str(root / "classifier"),
            seq_length,
            assets_extra=assets,
            metadata={
                "labels": ["happy", "sad"],
                "task_kind": "classification",
                "do_lower_case": True,
            },
        )
    if "ner" in tasks:
        exports["ner"] = _export_tagger(root / "ner", config, seq_length, assets)
    if "qa" in tasks:
        import run_squad

        squad_fn = run_squad.model_fn_builder(config, None, 1e-4, 1, 0, False, False)
        exports["qa"] = export.export_initialized_model(
            squad_fn,
            str(root / "qa"),
            seq_length,
            assets_extra=assets,
            metadata={"do_lower_case": True, "doc_stride": 8, "max_query_length": 8},
        )
    if "choice" in tasks:
        exports["choice"] = _export_multiple_choice(root / "choice", config, seq_length, assets)
    return exports


def _export_multiple_choice(directory: Path, config, seq_length: int, assets: dict) -> str:
    """As run_multiple_choice.py --export_dir writes it: fixed `[batch, 3, seq_length]`."""
    import export
    import multiple_choice_data
    import run_multiple_choice

    num_choices = 3
    shapes = multiple_choice_data.input_shapes(num_choices, seq_length)
    names = multiple_choice_data.SERVING_INPUT_NAMES
    model_fn = run_multiple_choice.model_fn_builder(config, None, 1e-4, 1, 0, False)
    with export.initialized_checkpoint(model_fn, seq_length, names, shapes) as checkpoint:
        return export.export_saved_model(
            model_fn,
            checkpoint,
            str(directory),
            seq_length,
            assets_extra=assets,
            metadata={
                "task": run_multiple_choice.TASK,
                "num_choices": num_choices,
                "max_qa_length": 12,
                "do_lower_case": True,
            },
            input_names=names,
            input_shapes=shapes,
        )


def _export_tagger(directory: Path, config, seq_length: int, assets: dict) -> str:
    import export
    import ner_data
    import run_ner

    labels = ["O", "B-PER", "I-PER"]
    settings = run_ner.NerSettings(
        scheme="BIO",
        max_seq_length=seq_length,
        doc_stride=8,
        use_document_context=False,
        use_crf=False,
        tag_constraints=True,
    )
    model_fn = run_ner.model_fn_builder(config, labels, settings, None, 1e-4, 1, 0, False)
    with export.initialized_checkpoint(
        model_fn, seq_length, ner_data.SERVING_INPUT_NAMES
    ) as checkpoint:
        return export.export_saved_model(
            model_fn,
            checkpoint,
            str(directory),
            seq_length,
            assets_extra=assets,
            metadata={
                "task": "ner",
                "labels": labels,
                "tag_scheme": "BIO",
                "do_lower_case": True,
                "doc_stride": 8,
            },
            input_names=ner_data.SERVING_INPUT_NAMES,
        )
