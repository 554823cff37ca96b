r"""Fine-tunes BERT for sentence (pair) classification, regression or multi-label tagging.

The GLUE tasks and XNLI come built in (`--task_name=MRPC` ...); your own CSV, TSV or JSON Lines
files need no code (`--task_name=generic --text_a_column=... --label_column=...`), and a
`DataProcessor` of your own plugs in with `--processor=my_module:MyProcessor`.

  python run_classifier.py --task_name=MRPC --do_train --do_eval --data_dir=glue/MRPC \
      --vocab_file=$BERT/vocab.txt --bert_config_file=$BERT/bert_config.json \
      --init_checkpoint=$BERT/bert_model.ckpt --output_dir=/tmp/mrpc
"""

from __future__ import annotations

import bert_logging

import sys

import tensorflow as tf
from absl import app, flags

import classifier_task
import estimator_builder
import flag_help
import predictor

# Users of the original import these from run_classifier; they live in library modules now.
from classifier_data import (  # noqa: F401
    DataProcessor,
    InputExample,
    InputFeatures,
    PaddingInputExample,
    convert_single_example,
    file_based_convert_examples_to_features,
)
from classifier_task import create_model, model_fn_builder  # noqa: F401

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

define_flags = classifier_task.define_flags


# Needed by everything but --interactive on its own, which reads the model, its vocab and its
# labels from the export.
REQUIRED_FLAGS = ("data_dir", "bert_config_file", "output_dir")


def classify_stdin(export_dir: str | None) -> None:
    """--interactive: one prediction per line of stdin, from the newest export, each line
    asked for with a prompt when stdin is a terminal."""
    if not export_dir:
        raise ValueError("--interactive reads the model from --export_dir, which is not set")
    classifier = predictor.ClassifierPredictor(export_dir)
    predictor.classify_lines(classifier, predictor.prompted_lines(sys.stdin))


def interactive_only(values: dict) -> bool:
    """Whether the flags ask for --interactive alone (no --do_*)."""
    return values["interactive"] and not (
        values["do_train"] or values["do_eval"] or values["do_predict"]
    )


def check_required_flags(values: dict) -> bool:
    """The flag validator of REQUIRED_FLAGS: each must be set, unless the run is
    --interactive alone, which needs --export_dir only."""
    if interactive_only(values):
        if not values["export_dir"]:
            raise flags.ValidationError(
                "--interactive reads the model from --export_dir, which is not set"
            )
        return True
    missing = [f"--{name}" for name in REQUIRED_FLAGS if values[name] is None]
    if missing:
        raise flags.ValidationError(
            f"{', '.join(missing)} must be set (only --interactive --export_dir=DIR, which "
            "reads everything from the export, runs without them)"
        )
    return True


def main(_) -> None:
    bert_logging.configure()
    if interactive_only(FLAGS.flag_values_dict()):
        classify_stdin(FLAGS.export_dir)
        return
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.export_dir):
        raise ValueError(
            "At least one of --do_train, --do_eval, --do_predict or --export_dir must be set."
        )
    bert_config, tokenizer = estimator_builder.model_and_tokenizer_from_flags()
    run_options = estimator_builder.run_options_from_flags()

    def make_model_fn(num_labels, task_kind, num_train_steps, num_warmup_steps):
        return model_fn_builder(
            bert_config=bert_config,
            num_labels=num_labels,
            init_checkpoint=FLAGS.init_checkpoint,
            learning_rate=FLAGS.learning_rate,
            num_train_steps=num_train_steps,
            num_warmup_steps=num_warmup_steps,
            use_tpu=FLAGS.use_tpu,
            use_one_hot_embeddings=FLAGS.use_tpu,
            task_kind=task_kind,
            run_options=run_options,
        )

    classifier_task.run(
        classifier_task.ClassifierSettings.from_flags(FLAGS),
        classifier_task.processor_from_flags(FLAGS),
        tokenizer,
        make_model_fn,
    )
    if FLAGS.interactive:
        classify_stdin(FLAGS.export_dir)


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=REQUIRED_FLAGS, mark_required=False)
    flags.register_multi_flags_validator(
        [*REQUIRED_FLAGS, "interactive", "do_train", "do_eval", "do_predict", "export_dir"],
        check_required_flags,
    )
    app.run(main)
