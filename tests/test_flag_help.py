"""--help of every script: its flags under Model, Data, Training and evaluation, Hardware,
Output, Export and its own group, with defaults; absl's and TensorFlow's flags only in
--helpfull."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys

import pytest
from absl import flags

import flag_help
from helpers import REPO_ROOT

SPECIFIC = "Specific to {script}"
MODEL, DATA, TRAINING = flag_help.MODEL, flag_help.DATA, flag_help.TRAINING
HARDWARE, OUTPUT, EXPORT = flag_help.HARDWARE, flag_help.OUTPUT, flag_help.EXPORT

# The fine-tuning flags the README's commands use, with the original scripts' defaults.
FINE_TUNING = {
    "bert_config_file": (MODEL, "required"),
    "vocab_file": (MODEL, None),
    "init_checkpoint": (MODEL, None),
    "do_lower_case": (MODEL, "default: 'true'"),
    "max_seq_length": (MODEL, "default: '128'"),
    "output_dir": (OUTPUT, "required"),
    "do_train": (TRAINING, "default: 'false'"),
    "train_batch_size": (TRAINING, "default: '32'"),
    "learning_rate": (TRAINING, "default: '5e-05'"),
    "num_train_epochs": (TRAINING, "default: '3.0'"),
    "gradient_accumulation_steps": (TRAINING, "default: '1'"),
    "use_tpu": (HARDWARE, "default: 'false'"),
    "distribution_strategy": (HARDWARE, "default: 'none'"),
    "num_gpus": (HARDWARE, None),
    "precision": (HARDWARE, "default: 'float32'"),
    "bucket_by_length": (HARDWARE, "default: 'true'"),
    "export_dir": (EXPORT, None),
}
EVALUATION = {
    "do_eval": (TRAINING, "default: 'false'"),
    "eval_every_steps": (TRAINING, "default: '0'"),
}

# script -> {flag: (group, how the note in parentheses under it starts, or None: no default)}
EXPECTED = {
    "run_classifier.py": {
        **FINE_TUNING,
        **EVALUATION,
        "data_dir": (DATA, "required"),
        "task_name": (DATA, None),
        "text_a_column": (DATA, "default: 'text'"),
        "input_encoding": (DATA, "default: 'utf-8'"),
        "multi_label": (SPECIFIC, "default: 'false'"),
    },
    "run_squad.py": {
        **FINE_TUNING,
        "max_seq_length": (MODEL, "default: '384'"),
        "train_file": (DATA, None),
        "predict_file": (DATA, None),
        "doc_stride": (SPECIFIC, "default: '128'"),
        "max_query_length": (SPECIFIC, "default: '64'"),
    },
    "run_ner.py": {
        **FINE_TUNING,
        **EVALUATION,
        "data_dir": (DATA, "required"),
        "train_file": (DATA, "default: 'train.txt'"),
        "tag_scheme": (SPECIFIC, "default: 'BIO'"),
        "use_crf": (SPECIFIC, "default: 'false'"),
    },
    "run_multiple_choice.py": {
        **FINE_TUNING,
        **EVALUATION,
        "task_name": (DATA, "required"),
        "data_dir": (DATA, None),
        "max_qa_length": (SPECIFIC, "default: '64'"),
    },
    "run_pretraining.py": {
        "bert_config_file": (MODEL, "required"),
        "input_file": (DATA, None),
        "output_dir": (OUTPUT, "required"),
        "train_batch_size": (TRAINING, "default: '32'"),
        "learning_rate": (TRAINING, "default: '5e-05'"),
        "num_train_steps": (TRAINING, "default: '100000'"),
        "num_warmup_steps": (TRAINING, "default: '10000'"),
        "num_gpus": (HARDWARE, None),
        "max_predictions_per_seq": (SPECIFIC, "default: '20'"),
        "pooling_strategy": (EXPORT, "default: 'REDUCE_MEAN'"),
    },
    "create_pretraining_data.py": {
        "input_file": (DATA, "required"),
        "output_file": (OUTPUT, "required"),
        "vocab_file": (MODEL, None),
        "max_seq_length": (MODEL, "default: '128'"),
        "random_seed": (SPECIFIC, "default: '12345'"),  # seeds the data, not training
        "dupe_factor": (SPECIFIC, "default: '10'"),
        "masked_lm_prob": (SPECIFIC, "default: '0.15'"),
        "num_workers": (SPECIFIC, "default: '1'"),
    },
    "extract_features.py": {
        "bert_config_file": (MODEL, "required"),
        "init_checkpoint": (MODEL, "required"),
        "vocab_file": (MODEL, None),
        "input_file": (DATA, None),
        "output_file": (OUTPUT, None),
        "pooled_output_file": (OUTPUT, None),
        "batch_size": (TRAINING, "default: '32'"),
        "layers": (SPECIFIC, "default: '-1,-2,-3,-4'"),
        "num_gpus": (HARDWARE, None),
        "pooling_strategy": (EXPORT, "default: 'REDUCE_MEAN'"),
    },
    "run_classifier_with_tfhub.py": {
        **FINE_TUNING,
        "bert_hub_module_handle": (MODEL, "required"),
        "bert_config_file": (MODEL, None),
        "data_dir": (DATA, "required"),
    },
    "convert_checkpoint.py": {
        "to": (SPECIFIC, "required"),
        "input_dir": (MODEL, "required"),
        "vocab_file": (MODEL, None),
        "output_dir": (OUTPUT, "required"),
        "overwrite": (OUTPUT, "default: 'false'"),
    },
    "tfhub.py": {
        "bert_config_file": (MODEL, "required"),
        "vocab_file": (MODEL, None),
        "output_dir": (OUTPUT, "required"),
        "format": (EXPORT, "default: 'tf2'"),
    },
    "serve.py": {
        "model": (SPECIFIC, "default: '[]'"),
        "port": (SPECIFIC, "default: '8501'"),
        "max_batch_size": (SPECIFIC, "default: '32'"),
        "batch_timeout_ms": (SPECIFIC, "default: '5.0'"),
    },
    "predictor.py": {"export_dir": (EXPORT, "required")},
    "export.py": {
        "saved_model_dir": (EXPORT, "required"),
        "signature": (EXPORT, "default: 'serving_default'"),
        "output_pb": (OUTPUT, "required"),
    },
}

ABSL_AND_TF_FLAGS = ("logtostderr", "only_check_args", "verbosity", "pdb_post_mortem")
FLAG_LINE = re.compile(r"^  (?:-\S,)?--(?:\[no\])?(\w+): ")
MODULE = r"[\w./-]+"  # a section of --helpfull, named after the module defining its flags


@functools.cache
def shown(script: str, help_flag: str) -> str:
    """What `python SCRIPT --HELP_FLAG` prints on stdout (TensorFlow's start-up noise goes to
    stderr); --help exits 0, absl's --helpfull 1."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / script), f"--{help_flag}"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=120,
    )
    assert result.returncode == (1 if help_flag == "helpfull" else 0), result.stderr
    return result.stdout


def sections(text: str, heading: str = r"[A-Z][^:]*") -> dict[str, dict[str, str]]:
    """heading -> {flag name -> its entry (help text and notes)} of a grouped --help (or,
    with heading=MODULE, of absl's --helpfull)."""
    groups: dict[str, dict[str, str]] = {}
    entries = None
    name = None
    for line in text.splitlines():
        if re.fullmatch(heading + ":", line):
            entries = groups.setdefault(line[:-1], {})
        elif entries is not None and (match := FLAG_LINE.match(line)):
            name = match.group(1)
            assert name not in entries, f"--{name} shown twice"
            entries[name] = line
        elif entries is not None and name and line.startswith("    "):
            entries[name] += "\n" + line
        elif not line.strip():
            name = None
    return groups


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_help_groups_the_flags_the_script_uses_with_their_defaults(script):
    text = shown(script, "help")
    groups = sections(text)
    all_shown = [name for entries in groups.values() for name in entries]
    assert len(all_shown) == len(set(all_shown)), "a flag is in two groups"
    for name, (group, note) in EXPECTED[script].items():
        heading = group.format(script=script)
        assert name in groups.get(heading, {}), f"--{name} not under {heading!r}"
        last_line = groups[heading][name].splitlines()[-1].strip()
        if note is None:
            assert not last_line.startswith(("(default:", "(required")), (name, last_line)
        else:
            assert last_line.startswith(f"({note}"), (name, last_line)
    for name in ABSL_AND_TF_FLAGS:
        assert f"--{name}" not in text and f"--[no]{name}" not in text, name
    assert "Try --helpfull" in text
    # The docstring's example commands keep their line continuations (a raw docstring).
    assert not re.search(r"\S {4,}--", text)


def test_helpshort_is_help_and_helpfull_still_lists_everything():
    text = shown("run_classifier.py", "help")
    assert shown("run_classifier.py", "helpshort") == text
    full = shown("run_classifier.py", "helpfull")
    for name in ABSL_AND_TF_FLAGS + ("help", "helpfull", "tt_check_filter"):
        assert re.search(rf"^  (-\S,)?--(\[no\])?{name}: ", full, re.M), name
    # Nothing of the project is hidden: --help shows every flag absl files under the
    # script and the project's library modules.
    project_modules = (
        "estimator_builder",
        "finetuning",
        "input_files",
        "export",
        "classifier_task",
    )
    in_full = set()
    for module, entries in sections(full, heading=MODULE).items():
        if module in project_modules:
            in_full.update(entries)
    in_help = {name for entries in sections(text).values() for name in entries}
    assert in_full and in_help == in_full


def define(flag_values, module, name, default=None, define=flags.DEFINE_string):
    define(name, default, f"help of {name}", flag_values=flag_values, module_name=module)


def test_flags_land_in_their_groups_in_table_order_and_unknown_ones_in_the_script_group():
    fv = flags.FlagValues()
    define(fv, "fake_script.py", "max_seq_length", 128, flags.DEFINE_integer)
    define(fv, "fake_script.py", "brand_new_flag", "x")
    define(fv, "fake_script.py", "vocab_file")
    # A library module of the project (a file beside flag_help.py) counts as the script's.
    define(fv, "flag_help", "bert_config_file")
    # Others' flags (absl's, TensorFlow's) do not.
    define(fv, "absl.logging", "logtostderr", False, flags.DEFINE_bool)

    text = flag_help.grouped_help(fv, "fake_script.py", required=("bert_config_file",))

    assert sections(text) == {
        "Specific to fake_script.py": {
            "brand_new_flag": "  --brand_new_flag: help of brand_new_flag\n    (default: 'x')"
        },
        "Model": {
            "bert_config_file": "  --bert_config_file: help of bert_config_file\n    (required)",
            "vocab_file": "  --vocab_file: help of vocab_file",
            "max_seq_length": "  --max_seq_length: help of max_seq_length\n"
            "    (default: '128'; an integer)",
        },
    }
    assert list(sections(text)["Model"]) == ["bert_config_file", "vocab_file", "max_seq_length"]


def test_own_keeps_a_namesake_flag_in_the_script_group():
    fv = flags.FlagValues()
    define(fv, "make_data.py", "random_seed", 12345, flags.DEFINE_integer)
    grouped = sections(flag_help.grouped_help(fv, "make_data.py"))
    assert list(grouped) == [flag_help.TRAINING]
    grouped = sections(flag_help.grouped_help(fv, "make_data.py", own=("random_seed",)))
    assert list(grouped) == ["Specific to make_data.py"]


def test_no_flag_is_in_two_groups():
    names = [name for group in flag_help.GROUPS.values() for name in group]
    assert len(names) == len(set(names))
