r"""Fine-tunes BERT for multiple choice: SWAG, RACE, Chinese C3 and ChID, or your own JSON lines.

  python run_multiple_choice.py --task_name=swag --data_dir=swagaf/data \
      --do_train --do_eval --do_predict --vocab_file=$BERT/vocab.txt \
      --bert_config_file=$BERT/bert_config.json --init_checkpoint=$BERT/bert_model.ckpt \
      --max_seq_length=128 --max_qa_length=64 --output_dir=/tmp/swag

An example with N choices is read as N sequences `[CLS] context [SEP] question option [SEP]`
(the option in the question's blank `_` when it has one); the encoder reads the
`[batch, N, seq]` inputs as `[batch * N, seq]`, one weight vector scores each choice's
pooled output (variables `output_weights` `[1, hidden]` and `output_bias` `[1]`,
`heads.multiple_choice_head`), and a softmax runs over the N choices. The context is cut
first; the question and option keep their last `--max_qa_length` tokens. Examples with fewer
choices than the run's (`--num_choices`, default the most of any example) get dummy choices
that are masked out. File formats: see `multiple_choice_data.py`.

Outputs in --output_dir: eval_results.txt (`eval_accuracy`, `eval_loss`; the best checkpoint
by accuracy in `best/` with --eval_every_steps), and with --do_predict test_results.tsv (per
example the probability of each of the run's choices, 0 for dummies) and
test_predictions.jsonl (`{"id", "prediction": index, "choice": text, "probabilities"}`).
--export_dir writes a SavedModel with `[batch, num_choices, seq]` inputs and a `choice_mask`,
which `predictor.MultipleChoicePredictor` reads.
"""

from __future__ import annotations

import bert_logging

import dataclasses
import json
import os
from collections.abc import Sequence

import tensorflow as tf
from absl import app, flags

import atomic_files
import estimator_builder
import export
import finetuning
import flag_help
import heads
import input_files
import modeling
import multiple_choice_data as mc_data
import tfrecord_io
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

MAIN_METRIC = "eval_accuracy"
TASK = "multiple_choice"


def define_flags() -> None:
    estimator_builder.define_fine_tuning_flags(max_seq_length=128)
    input_files.define_input_encoding_flag()
    flags.DEFINE_enum(
        "task_name",
        None,
        list(mc_data.TASKS),
        "The data format: swag (CSV), race (directories of JSON), c3, chid (CLUE's JSON) or "
        "jsonl (your own: context, question, choices, label).",
    )
    flags.DEFINE_string("data_dir", None, "The directory holding the task's files.")
    for split, kind in (("train", "training"), ("dev", "dev"), ("test", "test")):
        flags.DEFINE_string(
            f"{split}_file",
            None,
            f"The {kind} file(s) in --data_dir, comma-separated glob patterns (default per "
            f"task: swag {mc_data.DEFAULT_FILES['swag'][split]}, race "
            f"{mc_data.DEFAULT_FILES['race'][split]}/, c3 {mc_data.DEFAULT_FILES['c3'][split]}, "
            f"chid {mc_data.DEFAULT_FILES['chid'][split]}, jsonl "
            f"{mc_data.DEFAULT_FILES['jsonl'][split]}).",
        )
    flags.DEFINE_integer(
        "max_qa_length",
        64,
        "Tokens kept of the question and option (segment B), its last ones; the context gets "
        "the rest of --max_seq_length.",
    )
    flags.DEFINE_integer(
        "num_choices",
        None,
        "Choices per example in this run (default: the most of any example read); examples "
        "with fewer get masked dummy choices.",
    )
    flags.DEFINE_integer(
        "chid_window_chars",
        mc_data.DEFAULT_CHID_WINDOW_CHARS,
        "ChID: characters of the passage kept on each side of the blank.",
    )
    finetuning.define_evaluation_flags(best_metric="accuracy")
    export.define_export_flag()


@dataclasses.dataclass(frozen=True)
class ChoiceSettings:
    """The task's settings, read from the flags once in `main`."""

    task: str
    max_seq_length: int
    max_qa_length: int
    encoding: str = "utf-8"
    chid_window_chars: int = mc_data.DEFAULT_CHID_WINDOW_CHARS


# ---------------------------------------------------------------------------- the model


def create_model(
    bert_config: modeling.BertConfig,
    is_training: bool,
    features: dict,
    use_one_hot_embeddings: bool,
    compute_type: tf.DType = tf.float32,
) -> heads.MultipleChoiceOutputs:
    """BERT over every choice's sequence and `heads.multiple_choice_head` on the pooled
    outputs.

    Args:
      features: int `input_ids`, `input_mask`, `segment_ids` `[batch, num_choices, seq]`,
        `choice_mask` `[batch, num_choices]`, and `label_ids` `[batch]` when labelled.
    """
    input_ids = features["input_ids"]
    seq_length = input_ids.shape[-1]

    def as_sequences(tensor):
        return tf.reshape(tensor, [-1, seq_length])

    model = modeling.BertModel(
        config=bert_config,
        is_training=is_training,
        input_ids=as_sequences(input_ids),
        input_mask=as_sequences(features["input_mask"]),
        token_type_ids=as_sequences(features["segment_ids"]),
        use_one_hot_embeddings=use_one_hot_embeddings,
        compute_type=compute_type,
    )
    label_ids = features.get("label_ids")
    if label_ids is None:
        label_ids = tf.zeros([tf.shape(input_ids)[0]], tf.int32)
    return heads.multiple_choice_head(
        tf.cast(model.get_pooled_output(), tf.float32),
        features["choice_mask"],
        label_ids,
        is_training,
        bert_config.hidden_dropout_prob,
    )


def model_fn_builder(
    bert_config: modeling.BertConfig,
    init_checkpoint: str | None,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    use_tpu: bool,
    run_options: estimator_builder.RunOptions = estimator_builder.DEFAULT_RUN_OPTIONS,
):
    """Returns the model_fn (TPUEstimator style) of the multiple-choice model."""

    def model_fn(features, labels, mode, params):
        del labels, params
        is_training = mode == tf.estimator.ModeKeys.TRAIN
        outputs = create_model(
            bert_config, is_training, features, use_tpu, run_options.compute_type
        )
        def train_op_fn(loss):
            return run_options.create_train_op(
                loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu
            )

        def eval_metrics_fn():
            metric_inputs = [
                outputs.per_example_loss,
                features["label_ids"],
                outputs.logits,
                tf.cast(features["is_real_example"], tf.float32),
            ]
            return heads.classification_metrics, metric_inputs

        return heads.task_spec(
            mode,
            outputs.loss,
            train_op_fn,
            eval_metrics_fn,
            {"probabilities": outputs.probabilities, "logits": outputs.logits},
            estimator_builder.restore_from_checkpoint(init_checkpoint, use_tpu),
        )

    return model_fn


# ------------------------------------------------------------------------------ the data


def read_split(
    data_dir: str, patterns: str, flag_name: str, settings: ChoiceSettings, labelled: bool
) -> list[mc_data.MultipleChoiceExample]:
    paths = mc_data.split_paths(data_dir, patterns, flag_name)
    examples = mc_data.read_task_files(
        settings.task, paths, labelled, settings.encoding, settings.chid_window_chars
    )
    if not examples:
        raise ValueError(f"--{flag_name}: {', '.join(paths)} hold no examples")
    return examples


def write_records(features, output_dir: str, split: str) -> str:
    path = os.path.join(output_dir, f"{split}.tf_record")
    mc_data.write_features(features, [path])
    return path


# ------------------------------------------------------------------------------ outputs


def write_predictions(output_dir: str, examples, predictions: Sequence[dict]) -> None:
    """test_results.tsv (every choice's probability, a row per example) and
    test_predictions.jsonl (`multiple_choice_data.prediction_record` per example)."""
    rows = [
        "\t".join(str(float(p)) for p in prediction["probabilities"]) + "\n"
        for prediction in predictions
    ]
    atomic_files.write_text(os.path.join(output_dir, "test_results.tsv"), "".join(rows))
    records = [
        json.dumps(
            mc_data.prediction_record(example, prediction["probabilities"]), ensure_ascii=False
        )
        + "\n"
        for example, prediction in zip(examples, predictions, strict=True)
    ]
    atomic_files.write_text(os.path.join(output_dir, "test_predictions.jsonl"), "".join(records))
    tf1.logging.info(
        "Predictions of %d examples written to %s and %s",
        len(records),
        os.path.join(output_dir, "test_results.tsv"),
        os.path.join(output_dir, "test_predictions.jsonl"),
    )


# ----------------------------------------------------------------------------- the run


def main(_) -> None:
    bert_logging.configure()
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict or FLAGS.export_dir):
        raise ValueError(
            "At least one of --do_train, --do_eval, --do_predict or --export_dir must be set."
        )
    bert_config, tokenizer = estimator_builder.model_and_tokenizer_from_flags()
    tokenization.require_tokens(tokenizer, tokenization.FEATURE_TOKENS, "the model's inputs")
    mc_data.check_lengths(FLAGS.max_seq_length, FLAGS.max_qa_length)
    settings = ChoiceSettings(
        task=FLAGS.task_name,
        max_seq_length=FLAGS.max_seq_length,
        max_qa_length=FLAGS.max_qa_length,
        chid_window_chars=FLAGS.chid_window_chars,
        encoding=input_files.check_encoding(FLAGS.input_encoding),
    )
    loop_settings = finetuning.LoopSettings.from_flags(FLAGS)
    files = mc_data.DEFAULT_FILES[settings.task]

    # Read and check every split the run needs before any training starts.
    def split(name, labelled, needed):
        if not needed:
            return []
        flag_name = f"{name}_file"
        return read_split(
            FLAGS.data_dir, FLAGS[flag_name].value or files[name], flag_name, settings, labelled
        )

    train = split("train", True, FLAGS.do_train)
    dev = split("dev", True, FLAGS.do_eval)
    test = split("test", False, FLAGS.do_predict)
    if not (train or dev or test) and FLAGS.num_choices is None:
        raise ValueError("--export_dir alone: set --num_choices")
    num_choices = mc_data.num_choices_of(train + dev + test, FLAGS.num_choices)
    tf1.logging.info("%d choices per example", num_choices)

    def convert(examples):
        return mc_data.convert_examples(
            examples, num_choices, settings.max_seq_length, settings.max_qa_length, tokenizer
        )

    run_options = estimator_builder.run_options_from_flags()

    def make_model_fn(num_train_steps, num_warmup_steps):
        return model_fn_builder(
            bert_config,
            FLAGS.init_checkpoint,
            FLAGS.learning_rate,
            num_train_steps,
            num_warmup_steps,
            FLAGS.use_tpu,
            run_options,
        )

    loop = finetuning.FineTuning(
        loop_settings,
        make_model_fn,
        num_train_examples=len(train) if FLAGS.do_train else None,
        description=model_description(num_choices, settings),
    )
    spec = mc_data.feature_spec(num_choices, settings.max_seq_length)

    def input_fn(features, split_name, is_training):
        record_file = write_records(features, loop_settings.output_dir, split_name)
        return tfrecord_io.input_fn_builder(
            [record_file], spec, is_training=is_training, drop_remainder=True
        )

    def padded(features, batch_size):
        return finetuning.padded_to_batches(
            features,
            batch_size,
            lambda: mc_data.padding_features(num_choices, settings.max_seq_length),
        )

    if FLAGS.do_eval:
        loop.set_dev_set(
            input_fn(padded(convert(dev), loop_settings.eval_batch_size), "eval", False),
            num_real=len(dev),
            main_metric=MAIN_METRIC,
        )
    if FLAGS.do_train:
        loop.train(input_fn(convert(train), "train", True))
    if FLAGS.do_eval:
        loop.evaluate()
    if FLAGS.export_dir:
        export_model(loop, num_choices, settings)
    if FLAGS.do_predict:
        predictions = loop.predict(
            input_fn(padded(convert(test), loop_settings.predict_batch_size), "predict", False),
            len(test),
        )
        write_predictions(loop_settings.output_dir, test, predictions)


def model_description(num_choices: int, settings: ChoiceSettings) -> export.ModelDescription:
    """The number of choices and tokenizer settings with the vocab and config: what
    predictor.MultipleChoicePredictor reads from an export and convert_checkpoint.py from
    the run's directory."""
    return export.ModelDescription(
        metadata={
            "task": TASK,
            "num_choices": num_choices,
            "max_qa_length": settings.max_qa_length,
            "do_lower_case": FLAGS.do_lower_case,
        },
        vocab_file=FLAGS.vocab_file,
        spm_model_file=FLAGS.spm_model_file,
        bert_config_file=FLAGS.bert_config_file,
    )


def export_model(loop: finetuning.FineTuning, num_choices: int, settings: ChoiceSettings) -> str:
    """--export_dir: a SavedModel of `[batch, num_choices, seq]` inputs and `[batch,
    num_choices]` choice_mask with per-choice `probabilities` and `logits`, and the
    tokenizer and settings in assets.extra (what predictor.MultipleChoicePredictor reads)."""
    shapes = mc_data.input_shapes(num_choices, settings.max_seq_length)
    with loop.checkpoint_to_export(mc_data.SERVING_INPUT_NAMES, shapes) as checkpoint:
        return export.export_saved_model(
            loop.model_fn,
            checkpoint,
            FLAGS.export_dir,
            settings.max_seq_length,
            description=loop.description,
            input_names=mc_data.SERVING_INPUT_NAMES,
            input_shapes=shapes,
        )


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("task_name", "bert_config_file", "output_dir"))
    app.run(main)
