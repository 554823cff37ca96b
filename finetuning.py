"""The fine-tuning loop every task script shares.

A task script brings its data (TFRecords and input_fns), its model_fn (a head on the
encoder) and, for evaluation, a scoring function over the dev set's predictions and the name
of the metric that picks the best checkpoint. This module does the rest, the same way for
every task:

- the step arithmetic (`num_train_steps` from examples, batch size and epochs, the warm-up
  steps) and the "no training step" check, before any work;
- training, optionally in stretches of `eval_every_steps` with the dev set scored after each
  one, keeping a copy of the best checkpoint in `<output_dir>/best`; a restarted run picks
  up at its last checkpoint;
- `eval_results.txt` in the original's `key = value` format, and the task's own metrics
  next to the Estimator's in TensorBoard;
- prediction without the padding examples that fill the last batch;
- the checkpoint to export: the best one kept, else the last, else `--init_checkpoint`
  alone (a model fine-tuned before, exported without training).
"""

from __future__ import annotations

import bert_logging

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf
from absl import flags

import atomic_files
import estimator_builder
import export

tf1 = tf.compat.v1

BEST_DIR_NAME = "best"
EVAL_RESULTS_FILE = "eval_results.txt"

# A scoring function gets the dev set's predictions (one dict of numpy values per real
# example, in input order) and returns metrics to add to the Estimator's.
ScoreFn = Callable[[Sequence[dict]], dict]
# Builds the model_fn once the number of training and warm-up steps is known.
ModelFnFactory = Callable[[int, int], estimator_builder.ModelFn]


def define_evaluation_flags(best_metric: str) -> None:
    """--do_eval, --eval_batch_size and --eval_every_steps, the original's first two names
    and defaults; `best_metric` says in --eval_every_steps' help what picks the best
    checkpoint ("the task's metric", "entity F1"...)."""
    flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
    flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
    flags.DEFINE_integer(
        "eval_every_steps",
        0,
        "With --do_train --do_eval: score the dev set every N training steps and keep the "
        f"best checkpoint (by {best_metric}) in <output_dir>/{BEST_DIR_NAME}. 0 evaluates "
        "only at the end, as the original did.",
    )


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """What the loop needs to know of a run; scripts fill it from their flags."""

    output_dir: str
    train_batch_size: int
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    eval_every_steps: int = 0
    init_checkpoint: str | None = None
    max_seq_length: int = 128
    hardware: estimator_builder.HardwareSettings = estimator_builder.HardwareSettings()
    log_every_steps: int = 0
    overwrite_output_dir: bool = False

    @classmethod
    def from_flags(cls, flag_values, **overrides) -> LoopSettings:
        """The settings from estimator_builder.define_fine_tuning_flags' flags (and the
        task's eval flags where it defines them), hardware included."""
        settings = {
            "output_dir": flag_values.output_dir,
            "train_batch_size": flag_values.train_batch_size,
            "predict_batch_size": flag_values.predict_batch_size,
            "num_train_epochs": flag_values.num_train_epochs,
            "warmup_proportion": flag_values.warmup_proportion,
            "init_checkpoint": flag_values.init_checkpoint,
            "max_seq_length": flag_values.max_seq_length,
            "hardware": estimator_builder.HardwareSettings.from_flags(flag_values),
        }
        for optional in (
            "eval_batch_size",
            "eval_every_steps",
            "log_every_steps",
            "overwrite_output_dir",
        ):
            if optional in flag_values:
                settings[optional] = flag_values[optional].value
        settings.update(overrides)
        return cls(**settings)

    @property
    def best_dir(self) -> str:
        return os.path.join(self.output_dir, BEST_DIR_NAME)


@dataclasses.dataclass(frozen=True)
class TrainingSteps:
    num_train_steps: int
    num_warmup_steps: int


def training_steps(num_examples: int, settings: LoopSettings) -> TrainingSteps:
    """The original's arithmetic: `int(examples / batch * epochs)` optimizer steps, the
    first `int(steps * warmup_proportion)` of them warming up.

    Raises:
      ValueError: the data makes no training step at these settings.
    """
    num_train_steps = int(num_examples / settings.train_batch_size * settings.num_train_epochs)
    if num_train_steps < 1:
        raise ValueError(
            f"{num_examples} training examples at --train_batch_size="
            f"{settings.train_batch_size} and --num_train_epochs={settings.num_train_epochs} "
            "make no training step"
        )
    return TrainingSteps(num_train_steps, int(num_train_steps * settings.warmup_proportion))


def padded_to_batches(examples: Sequence[Any], batch_size: int, make_padding: Callable) -> list:
    """`examples` followed by `make_padding()` stand-ins up to a multiple of `batch_size`.

    TPUs need every batch full; the stand-ins carry `is_real_example = 0`, so they weigh
    nothing in the metrics, and `predict` leaves them out (they come last).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return list(examples) + [make_padding() for _ in range(-len(examples) % batch_size)]


def gather_predictions(
    estimator: estimator_builder.BertEstimator,
    input_fn: estimator_builder.InputFn,
    num_real: int,
    checkpoint_path: str | None = None,
) -> list[dict]:
    """The predictions of the first `num_real` examples of `input_fn`, in input order
    (the padding that fills the last batch comes after them and is cut off)."""
    predictions = []
    if num_real <= 0:
        return predictions
    for prediction in bert_logging.counted(
        estimator.predict(input_fn, checkpoint_path=checkpoint_path), "Predictions", num_real
    ):
        predictions.append(prediction)
        if len(predictions) == num_real:
            break
    if len(predictions) != num_real:
        raise RuntimeError(f"Got {len(predictions)} predictions for {num_real} examples")
    return predictions


def read_eval_results(path: str) -> dict[str, str]:
    """The `key = value` lines of an eval_results.txt, as strings."""
    results = {}
    with tf.io.gfile.GFile(path) as reader:
        for line in reader:
            key, separator, value = line.rstrip("\n").partition(" = ")
            if separator:
                results[key] = value
    return results


class Evaluator:
    """Scores the dev set, the Estimator's metrics plus the task's own, and keeps a copy of
    the best checkpoint so far (by `main_metric`, higher is better) in `best_dir`.

    Args:
      input_fn: the dev set, padded to whole batches.
      num_real: how many of its examples are real (they come first).
      main_metric: the key of the result that picks the best checkpoint.
      score_fn: metrics computed from the predictions of the real examples (F1, MCC,
        entity F1...); None when the Estimator's metrics are all there is.
      keep_best: copy the best checkpoint to `best_dir`; worth its disk (a checkpoint with
        its optimizer slots is three times the model) only when evaluation runs during
        training, where the best is not the last.
    """

    def __init__(
        self,
        estimator: estimator_builder.BertEstimator,
        input_fn: estimator_builder.InputFn,
        num_real: int,
        output_dir: str,
        main_metric: str,
        score_fn: ScoreFn | None = None,
        keep_best: bool = True,
    ):
        self.estimator = estimator
        self.input_fn = input_fn
        self.num_real = num_real
        self.output_dir = output_dir
        self.main_metric = main_metric
        self.score_fn = score_fn
        self.keep_best = keep_best
        self.best_dir = os.path.join(output_dir, BEST_DIR_NAME)
        self.best_value = self._recorded_best()

    def evaluate(self) -> dict:
        """Scores the newest checkpoint; returns the metrics (with `global_step`)."""
        checkpoint = tf.train.latest_checkpoint(self.output_dir)
        result = self.estimator.evaluate(self.input_fn, checkpoint_path=checkpoint)
        if self.score_fn is not None:
            predictions = gather_predictions(
                self.estimator, self.input_fn, self.num_real, checkpoint_path=checkpoint
            )
            result.update(self.score_fn(predictions))
            self._write_summaries(result)
        if self.main_metric not in result:
            raise KeyError(
                f"The metric {self.main_metric!r} that picks the best checkpoint is not among "
                f"the evaluation's results {sorted(result)}"
            )
        if self.keep_best:
            self._keep_if_best(result, checkpoint)
        return result

    def one_line(self, result: dict, last_step: int) -> str:
        """`Step 10 of 68: macro_f1 = 0.3239 (best 0.3239), eval_loss = 0.6937`: what a
        periodic evaluation says, without the per-label metrics of eval_results.txt."""
        text = (
            f"Step {result['global_step']} of {last_step}: "
            f"{self.main_metric} = {float(result[self.main_metric]):.4f}"
        )
        if self.best_value is not None:
            text += f" (best {self.best_value:.4f})"
        if "eval_loss" in result and self.main_metric != "eval_loss":
            text += f", eval_loss = {float(result['eval_loss']):.4f}"
        return text

    def _write_summaries(self, result: dict) -> None:
        """Puts the task's metrics next to the Estimator's own in TensorBoard's eval run."""
        writer = tf1.summary.FileWriterCache.get(os.path.join(self.output_dir, "eval"))
        values = [
            tf1.Summary.Value(tag=key, simple_value=float(value))
            for key, value in result.items()
            if key != "global_step" and _is_number(value)
        ]
        writer.add_summary(tf1.Summary(value=values), int(result["global_step"]))
        writer.flush()

    def _recorded_best(self) -> float | None:
        """The best value of an earlier run into the same output_dir, so a restarted run
        does not replace a better checkpoint with a worse one."""
        path = os.path.join(self.best_dir, EVAL_RESULTS_FILE)
        if not tf.io.gfile.exists(path):
            return None
        value = read_eval_results(path).get(self.main_metric)
        return None if value is None else float(value)

    def _keep_if_best(self, result: dict, checkpoint: str) -> None:
        value = float(result[self.main_metric])
        if self.best_value is not None and value <= self.best_value:
            return
        self.best_value = value
        tf1.logging.info("New best %s = %.4f at %s", self.main_metric, value, checkpoint)
        staging = atomic_files.temporary_path_for(self.best_dir)
        tf.io.gfile.makedirs(staging)
        try:
            for path in tf.io.gfile.glob(checkpoint + ".*"):
                tf.io.gfile.copy(path, os.path.join(staging, os.path.basename(path)))
            name = os.path.basename(checkpoint)
            atomic_files.write_text(
                os.path.join(staging, "checkpoint"),
                f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n',
            )
            estimator_builder.write_eval_results(
                result, os.path.join(staging, EVAL_RESULTS_FILE), log=False
            )
            atomic_files.replace_directory(staging, self.best_dir)
        except BaseException:
            atomic_files.remove_quietly(staging)
            raise


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class FineTuning:
    """One run of a task: the Estimator, training (with periodic evaluation when asked),
    the dev set's scores, prediction and the checkpoint to export.

    Args:
      settings: the run's output directory, batch sizes, epochs and evaluation interval.
      make_model_fn: `make_model_fn(num_train_steps, num_warmup_steps)` gives the task's
        TPUEstimator-style model_fn.
      num_train_examples: the training examples (features) one epoch holds; None when the
        run does not train (the model_fn then gets one step and no warm-up, which only the
        optimizer's graph sees).
      description: the model's task settings, tokenizer and config, written into the
        output directory now (see `describe_run`) and kept for the export.
    """

    def __init__(
        self,
        settings: LoopSettings,
        make_model_fn: ModelFnFactory,
        num_train_examples: int | None = None,
        description: export.ModelDescription | None = None,
    ):
        self.settings = settings
        self.description = description
        self.steps = (
            TrainingSteps(1, 0)
            if num_train_examples is None
            else training_steps(num_train_examples, settings)
        )
        self.num_train_examples = num_train_examples
        self.model_fn = make_model_fn(self.steps.num_train_steps, self.steps.num_warmup_steps)
        tf.io.gfile.makedirs(settings.output_dir)
        if settings.overwrite_output_dir:
            estimator_builder.clear_previous_run(
                settings.output_dir,
                keep=[settings.init_checkpoint],
                training=num_train_examples is not None,
                distribution_strategy=settings.hardware.distribution_strategy,
            )
        describe_run(settings, description)
        self.log_every_steps = (
            settings.log_every_steps
            or estimator_builder.default_log_every_steps(self.steps.num_train_steps)
        )
        self.estimator = estimator_builder.BertEstimator(
            self.model_fn,
            settings.output_dir,
            train_batch_size=settings.train_batch_size,
            eval_batch_size=settings.eval_batch_size,
            predict_batch_size=settings.predict_batch_size,
            hardware=settings.hardware,
            log_every_steps=self.log_every_steps,
        )
        self._log_summary()
        self.evaluator: Evaluator | None = None
        self._last_result: dict | None = None

    def _log_summary(self) -> None:
        """The run's plan in a few lines, before any work (model and compute type are
        logged where the scripts read them, just before)."""
        settings = self.settings
        tf1.logging.info("***** Run *****")
        if self.num_train_examples is not None:
            tf1.logging.info(
                "  training: %d examples, batch %d, %d steps (%g epochs, %d warm-up)%s",
                self.num_train_examples,
                settings.train_batch_size,
                self.steps.num_train_steps,
                settings.num_train_epochs,
                self.steps.num_warmup_steps,
                # TPUEstimator logs its own speed, once per --iterations_per_loop.
                ""
                if settings.hardware.use_tpu
                else f", progress every {self.log_every_steps} steps",
            )
        tf1.logging.info(
            "  max_seq_length %d; devices: %s",
            settings.max_seq_length,
            settings.hardware.describe(),
        )
        tf1.logging.info("  output_dir: %s", settings.output_dir)

    def set_dev_set(
        self,
        input_fn: estimator_builder.InputFn,
        num_real: int,
        main_metric: str,
        score_fn: ScoreFn | None = None,
    ) -> Evaluator:
        """Makes `evaluate` (and periodic evaluation while training) score this dev set;
        with `eval_every_steps` the best checkpoint is kept in `<output_dir>/best`."""
        self.evaluator = Evaluator(
            self.estimator,
            input_fn,
            num_real,
            self.settings.output_dir,
            main_metric,
            score_fn,
            keep_best=self.settings.eval_every_steps > 0,
        )
        return self.evaluator

    def train(self, input_fn: estimator_builder.InputFn) -> None:
        """Trains to `steps.num_train_steps`, scoring the dev set every `eval_every_steps`
        when a dev set is set and the interval is positive."""
        if self.num_train_examples is None:
            raise ValueError("FineTuning.train: the run was set up without training examples")
        tf1.logging.info("***** Running training *****")
        tf1.logging.info("  Num examples = %d", self.num_train_examples)
        tf1.logging.info("  Batch size = %d", self.settings.train_batch_size)
        tf1.logging.info("  Num steps = %d", self.steps.num_train_steps)
        estimator_builder.report_training_start(
            self.settings.output_dir, self.steps.num_train_steps
        )
        if self.evaluator is not None and self.settings.eval_every_steps > 0:
            self._last_result = self._train_with_periodic_eval(input_fn)
        else:
            self.estimator.train(input_fn, max_steps=self.steps.num_train_steps)

    def _train_with_periodic_eval(self, input_fn: estimator_builder.InputFn) -> dict:
        step = estimator_builder.checkpoint_step(
            tf.train.latest_checkpoint(self.settings.output_dir)
        )
        last_step = self.steps.num_train_steps
        result: dict = {}
        while step < last_step or not result:
            step = min(step + self.settings.eval_every_steps, last_step)
            self.estimator.train(input_fn, max_steps=step, total_steps=last_step)
            result = self.evaluator.evaluate()
            tf1.logging.info("%s", self.evaluator.one_line(result, last_step))
        return result

    def evaluate(self) -> dict:
        """The dev set's scores of the last checkpoint (those of the last periodic
        evaluation when training just ran them), written to eval_results.txt."""
        if self.evaluator is None:
            raise ValueError("FineTuning.evaluate: no dev set; call set_dev_set first")
        result = self._last_result
        if result is None:
            tf1.logging.info("***** Running evaluation *****")
            tf1.logging.info("  Num examples = %d", self.evaluator.num_real)
            result = self.evaluator.evaluate()
        estimator_builder.write_eval_results(
            result, os.path.join(self.settings.output_dir, EVAL_RESULTS_FILE)
        )
        return result

    def predict(self, input_fn: estimator_builder.InputFn, num_real: int) -> list[dict]:
        """Predictions of the real examples of `input_fn` (the padding left out), in order."""
        tf1.logging.info("***** Running prediction *****")
        tf1.logging.info("  Num examples = %d", num_real)
        return gather_predictions(self.estimator, input_fn, num_real)

    def checkpoint_to_export(
        self,
        input_names: Sequence[str] = export.INPUT_NAMES,
        input_shapes: export.InputShapes | None = None,
    ) -> contextlib.AbstractContextManager[str]:
        """See the module-level `checkpoint_to_export`; the best kept checkpoint first."""
        best_dir = self.evaluator.best_dir if self.evaluator is not None else None
        return checkpoint_to_export(
            self.model_fn,
            self.settings.output_dir,
            self.settings.init_checkpoint,
            self.settings.max_seq_length,
            best_dir=best_dir,
            input_names=input_names,
            input_shapes=input_shapes,
        )


def describe_run(settings: LoopSettings, description: export.ModelDescription | None) -> None:
    """Writes the run's `bert_export.json`, tokenizer file and `bert_config.json` into its
    output directory, as an export holds them in `assets.extra/`, so that the checkpoints
    there can be used (`convert_checkpoint.py --input_dir=<output_dir>`) without the
    flags of the run."""
    if description is not None:
        export.write_description(settings.output_dir, description, settings.max_seq_length)


@contextlib.contextmanager
def checkpoint_to_export(
    model_fn: estimator_builder.ModelFn,
    output_dir: str,
    init_checkpoint: str | None,
    max_seq_length: int,
    best_dir: str | None = None,
    input_names: Sequence[str] = export.INPUT_NAMES,
    input_shapes: export.InputShapes | None = None,
) -> Iterator[str]:
    """Yields the checkpoint an export should hold: the newest in `best_dir` (the best
    one periodic evaluation kept), else the newest in `output_dir`, else one made of the
    model_fn's graph initialized from `init_checkpoint` (the task's head, if new, keeps its
    fresh initialization), which is deleted afterwards. `input_names`, `input_shapes`: the
    features the model_fn reads, fed to that graph (see `export.input_shapes_of`).

    Raises:
      ValueError: there is no checkpoint at all.
    """
    checkpoint = (best_dir and tf.train.latest_checkpoint(best_dir)) or (
        tf.train.latest_checkpoint(output_dir)
    )
    if checkpoint:
        yield checkpoint
        return
    if not init_checkpoint:
        raise ValueError(f"--export_dir: no checkpoint in {output_dir} and no --init_checkpoint")
    with export.initialized_checkpoint(
        model_fn, max_seq_length, input_names, input_shapes
    ) as initialized:
        yield initialized
