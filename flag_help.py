"""The --help every script prints: its flags grouped by what they are about.

absl's own --help lists the flags of the script's file only, and --helpfull lists every flag
of every module under the module's name (`estimator_builder:`, `absl.logging:`,
`tensorflow.python.tpu...:`), which tells a user little. Here --help (and --helpshort, -?)
lists every flag the script defined, its own and the shared ones of this project's library
modules, under headings a user thinks in: Model, Data, Training and evaluation, Hardware,
Output, Export, and one group for the script's remaining flags. Each flag shows its help
text and default. absl's and TensorFlow's flags stay in --helpfull, which is absl's and
unchanged.

A flag's group is looked up by name in `GROUPS`, the one table of groups: a flag a new
library adds is shown in the script's group until it is filed there, so nothing is hidden.

A script opts in from its `__main__` block, after defining its flags:

    define_flags()
    flag_help.use_grouped_help(required=("data_dir", "bert_config_file", "output_dir"))
    app.run(main)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from absl import app, flags

MODEL = "Model"
DATA = "Data"
TRAINING = "Training and evaluation"
HARDWARE = "Hardware"
OUTPUT = "Output"
EXPORT = "Export"

# Group -> its flags, in the order they are shown. A name means the same thing in every
# script that defines it (--output_dir is always where results go); a script whose flag of a
# shared name means something else passes it in `own=` (create_pretraining_data.py's
# --random_seed seeds the data, not training).
GROUPS: dict[str, tuple[str, ...]] = {
    MODEL: (
        "bert_config_file",
        "vocab_file",
        "spm_model_file",
        "init_checkpoint",
        "bert_hub_module_handle",
        "input_dir",
        "config_file",
        "do_lower_case",
        "max_seq_length",
    ),
    DATA: (
        "task_name",
        "processor",
        "data_dir",
        "input_file",
        "train_file",
        "dev_file",
        "test_file",
        "predict_file",
        "file_format",
        "input_encoding",
        "has_header",
        "delimiter",
        "text_a_column",
        "text_b_column",
        "label_column",
        "labels",
        "label_separator",
        "xnli_language",
    ),
    TRAINING: (
        "do_train",
        "do_eval",
        "do_predict",
        "train_batch_size",
        "eval_batch_size",
        "predict_batch_size",
        "batch_size",
        "learning_rate",
        "num_train_epochs",
        "num_train_steps",
        "warmup_proportion",
        "num_warmup_steps",
        "optimizer",
        "gradient_accumulation_steps",
        "eval_every_steps",
        "max_eval_steps",
        "save_checkpoints_steps",
        "log_every_steps",
        "random_seed",
    ),
    HARDWARE: (
        "use_tpu",
        "tpu_name",
        "tpu_zone",
        "gcp_project",
        "master",
        "num_tpu_cores",
        "iterations_per_loop",
        "use_one_hot_embeddings",
        "distribution_strategy",
        "num_gpus",
        "num_cpu_devices",
        "precision",
        "use_xla",
        "bucket_by_length",
        "bucket_boundaries",
    ),
    OUTPUT: (
        "output_dir",
        "overwrite_output_dir",
        "overwrite",
        "keep_checkpoint_max",
        "output_file",
        "pooled_output_file",
        "output_pb",
    ),
    EXPORT: (
        "export_dir",
        "export_raw_text",
        "format",
        "saved_model_dir",
        "signature",
        "pooling_strategy",
        "pooling_layer",
        "mask_cls_sep",
        "normalize_vectors",
    ),
}


def _group_by_flag() -> dict[str, str]:
    by_flag: dict[str, str] = {}
    for group, names in GROUPS.items():
        for name in names:
            if name in by_flag:
                raise ValueError(f"--{name} is in both {by_flag[name]!r} and {group!r}")
            by_flag[name] = group
    return by_flag


_GROUP_BY_FLAG = _group_by_flag()

# The project's modules are the .py files beside this one; a flag defined anywhere else
# (absl, TensorFlow, a virtualenv inside the checkout) is left to --helpfull.
_PROJECT_DIR = Path(__file__).resolve().parent


def _is_project_module(module_name: str, main_module: str) -> bool:
    if module_name == main_module:
        return True
    module_file = getattr(sys.modules.get(module_name), "__file__", None)
    return module_file is not None and Path(module_file).resolve().parent == _PROJECT_DIR


def script_flags(flag_values: flags.FlagValues, main_module: str) -> list[flags.Flag]:
    """The flags the script `main_module` (absl's name for it: its sys.argv[0]) defined,
    itself or through the project's library modules, in definition order."""
    shown: dict[str, flags.Flag] = {}
    for module_name, module_flags in flag_values.flags_by_module_dict().items():
        if not _is_project_module(module_name, main_module):
            continue
        for flag in module_flags:
            # A flag deleted or redefined since keeps its entry in the module lists.
            if flag.name in flag_values and flag_values[flag.name] is flag:
                shown.setdefault(flag.name, flag)
    return list(shown.values())


def _render_flag(flag: flags.Flag, required: bool) -> str:
    """`  --name: help` wrapped to the terminal, then its default, as absl writes a flag."""
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    if flag.short_name:
        name = f"-{flag.short_name},{name}"
    text = flags.text_wrap(f"{name}: {flag.help}", indent="    ", firstline_indent="  ")
    notes = []
    if required:
        notes.append("required")
    elif flag.default_as_str:
        notes.append(f"default: {flag.default_as_str}")
    if flag.parser.syntactic_help:
        notes.append(flag.parser.syntactic_help)
    if notes:
        text += "\n" + flags.text_wrap(f"({'; '.join(notes)})", indent="    ")
    return text


def grouped_help(
    flag_values: flags.FlagValues,
    main_module: str,
    own: Iterable[str] = (),
    required: Iterable[str] = (),
) -> str:
    """The flag listing of --help: a section per group, the script's own flags first (under
    "Specific to <script>"), then the groups of `GROUPS` in its order, empty ones left out.
    `own` names flags to list with the script's own although `GROUPS` files them elsewhere;
    `required` flags say "(required)" instead of their default."""
    own, required = set(own), set(required)
    script_name = Path(main_module).name
    sections: dict[str, list[flags.Flag]] = {f"Specific to {script_name}": []}
    sections.update((group, []) for group in GROUPS)
    for flag in script_flags(flag_values, main_module):
        group = _GROUP_BY_FLAG.get(flag.name)
        if group is None or flag.name in own:
            group = f"Specific to {script_name}"
        sections[group].append(flag)
    order = {name: i for names in GROUPS.values() for i, name in enumerate(names)}
    lines = []
    for heading, group_flags in sections.items():
        if not group_flags:
            continue
        if heading in GROUPS:
            group_flags.sort(key=lambda flag: order[flag.name])
        lines.append(f"\n{heading}:")
        lines.extend(_render_flag(flag, flag.name in required) for flag in group_flags)
    return "\n".join(lines) + "\n"


class _GroupedHelpFlag(flags.BooleanFlag):
    """A --help (or --helpshort) that prints the script's docstring and `grouped_help`,
    then exits 0 before main, while the other flags are still being parsed."""

    def __init__(
        self, name: str, short_name: str | None, own: Sequence[str], required: Sequence[str]
    ):
        super().__init__(name, False, "show this help", short_name=short_name)
        self.own = tuple(own)
        self.required = tuple(required)

    def parse(self, argument) -> None:
        super().parse(argument)
        if not self.value:
            return
        main = sys.modules["__main__"]
        usage = (main.__doc__ or "").strip() or f"USAGE: {sys.argv[0]} [flags]"
        listing = grouped_help(flags.FLAGS, sys.argv[0], own=self.own, required=self.required)
        try:
            sys.stdout.write(
                f"{usage}\n{listing}\nTry --helpfull for every flag, absl's and TensorFlow's "
                "included.\n"
            )
            sys.stdout.flush()
        except BrokenPipeError:  # `--help | head` closed the pipe early: not an error
            pass
        sys.exit(0)


def use_grouped_help(
    own: Sequence[str] = (), required: Sequence[str] = (), mark_required: bool = True
) -> None:
    """Makes --help, --helpshort and -? print `grouped_help` of the running script, and
    marks the `required` flags required (absl then rejects a run without them; --help still
    works). `mark_required=False`: --help says they are required, and the script checks
    them itself (a validator that lets some runs go without them). `own`: see
    `grouped_help`. Call it from the script's `__main__` block after defining its flags and
    before `app.run`."""
    if mark_required:
        flags.mark_flags_as_required(list(required))
    # absl's help flags first (app.run would define them; it does so once), then ours take
    # the names of --help, -? and --helpshort; --helpfull and --helpxml stay absl's.
    app.define_help_flags()
    for name in ("help", "?", "helpshort"):
        if name in flags.FLAGS:
            delattr(flags.FLAGS, name)
    for name, short_name in (("help", "?"), ("helpshort", None)):
        flags.DEFINE_flag(_GroupedHelpFlag(name, short_name, own, required), module_name="absl.app")
