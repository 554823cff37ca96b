"""One place that turns a task's model_fn into a running Estimator.

Every script writes its model_fn once, TPUEstimator style (it returns a
`TPUEstimatorSpec`). With `--use_tpu` it runs under `TPUEstimator` exactly as the original
scripts did; otherwise the same model_fn runs under a plain `tf.estimator.Estimator`
(the spec is converted with `as_estimator_spec`), which is the GPU/CPU path.

Also here: the hardware flags every script shares, restoring an `--init_checkpoint`, and the
wrapper that gives each mode its own batch size.
"""

from __future__ import annotations

import bert_logging

import dataclasses
import fnmatch
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import tensorflow as tf
from absl import flags

import atomic_files
import modeling
import optimization
import tfrecord_io
import tokenization

tf1 = tf.compat.v1
FLAGS = flags.FLAGS

ModelFn = Callable[..., Any]
InputFn = Callable[[dict], tf.data.Dataset]


def define_hardware_flags() -> None:
    """Defines the TPU and checkpointing flags, with the original scripts' names and defaults."""
    flags.DEFINE_bool("use_tpu", False, "Whether to use TPU or GPU/CPU.")
    flags.DEFINE_string(
        "tpu_name",
        None,
        "The Cloud TPU to use: the name given when creating it, or a grpc://ip:8470 URL.",
    )
    flags.DEFINE_string(
        "tpu_zone", None, "[Optional] GCE zone of the Cloud TPU; detected from metadata if unset."
    )
    flags.DEFINE_string(
        "gcp_project",
        None,
        "[Optional] Project of the Cloud TPU; detected from metadata if unset.",
    )
    flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
    flags.DEFINE_integer(
        "num_tpu_cores", 8, "Only used if `use_tpu` is True. Total number of TPU cores to use."
    )
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "How often to save the model checkpoint.")
    flags.DEFINE_integer(
        "iterations_per_loop", 1000, "How many steps to make in each estimator call."
    )
    flags.DEFINE_integer(
        "keep_checkpoint_max", 5, "How many recent checkpoints to keep in --output_dir."
    )


def define_fine_tuning_flags(max_seq_length: int = 128) -> None:
    """The model, data and schedule flags shared by run_classifier.py and run_squad.py,
    with the original scripts' names and defaults."""
    flags.DEFINE_string(
        "bert_config_file",
        None,
        "The config json file of the pre-trained BERT model; it sets the architecture.",
    )
    flags.DEFINE_string(
        "vocab_file", None, "The vocabulary file that the BERT model was trained on."
    )
    flags.DEFINE_string(
        "spm_model_file",
        None,
        "A SentencePiece model to tokenize with instead of --vocab_file (ALBERT-style and "
        "some multilingual models).",
    )
    flags.DEFINE_string(
        "output_dir", None, "The output directory where the model checkpoints will be written."
    )
    flags.DEFINE_string(
        "init_checkpoint", None, "Initial checkpoint (usually from a pre-trained BERT model)."
    )
    flags.DEFINE_bool(
        "do_lower_case",
        True,
        "Whether to lower case the input text. True for uncased models, False for cased ones.",
    )
    flags.DEFINE_integer(
        "max_seq_length",
        max_seq_length,
        "The maximum total input sequence length after WordPiece tokenization. Longer "
        "sequences are truncated, shorter ones padded.",
    )
    flags.DEFINE_bool("do_train", False, "Whether to run training.")
    flags.DEFINE_bool("do_predict", False, "Whether to run the model in inference mode.")
    flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
    flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predictions.")
    flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
    flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training epochs to perform.")
    flags.DEFINE_float(
        "warmup_proportion",
        0.1,
        "Proportion of training to perform linear learning rate warmup for (0.1 = 10%).",
    )
    define_hardware_flags()
    define_gpu_flags()
    define_run_output_flags()


def define_run_output_flags() -> None:
    """--log_every_steps and --overwrite_output_dir, for every script that trains."""
    flags.DEFINE_integer(
        "log_every_steps",
        0,
        "Log step, loss, speed and ETA every N training steps (and write the summaries "
        "TensorBoard shows). 0: about 20 lines a run, at least one every 100 steps.",
    )
    flags.DEFINE_bool(
        "overwrite_output_dir",
        False,
        "Start afresh: delete the checkpoints, TensorBoard events, cached features and "
        "best/ of an earlier run in --output_dir first (other files are left alone). "
        "Without it a run resumes from the last checkpoint in --output_dir.",
    )


def model_and_tokenizer_from_flags() -> tuple[modeling.BertConfig, tokenization.Tokenizer]:
    """--bert_config_file's config and the tokenizer of --vocab_file / --spm_model_file,
    checked against each other and against --max_seq_length, --do_lower_case and
    --init_checkpoint before any work (see `check_model_flags`)."""
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    tokenizer = tokenization.create_tokenizer(
        FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.spm_model_file
    )
    check_model_flags(bert_config, tokenizer)
    tf1.logging.info(
        "Model: %s (%s), tokenizer: %s, %s",
        describe_model(bert_config),
        FLAGS.bert_config_file,
        FLAGS.spm_model_file or FLAGS.vocab_file,
        f"from {FLAGS.init_checkpoint}" if FLAGS.init_checkpoint else "random initialization",
    )
    return bert_config, tokenizer


def describe_model(config: modeling.BertConfig) -> str:
    """`BERT, 12 layers, hidden 768, 12 heads, vocab 30522` (ALBERT: with its embedding
    size and groups)."""
    text = (
        f"{'ALBERT' if config.is_albert() else 'BERT'}, {config.num_hidden_layers} layers, "
        f"hidden {config.hidden_size}, {config.num_attention_heads} heads, "
        f"vocab {config.vocab_size}"
    )
    if config.is_albert():
        embedding_size = getattr(config, "embedding_size", config.hidden_size)
        groups = getattr(config, "num_hidden_groups", 1)
        text += f", embedding {embedding_size}, {groups} layer group(s)"
    return text


def check_model_flags(
    bert_config: modeling.BertConfig, tokenizer: tokenization.Tokenizer | None = None
) -> None:
    """Checks, before any work, the flags every fine-tuning script shares, and that the
    vocab of `tokenizer` (if the script has one) fits --bert_config_file."""
    if tokenizer is not None:
        check_vocab_fits_config(tokenizer, bert_config, FLAGS.bert_config_file)
    if FLAGS.max_seq_length > bert_config.max_position_embeddings:
        raise ValueError(
            f"--max_seq_length={FLAGS.max_seq_length} is longer than the model's "
            f"max_position_embeddings ({bert_config.max_position_embeddings}) in "
            f"{FLAGS.bert_config_file}"
        )
    if FLAGS.init_checkpoint:
        modeling.check_checkpoint_fits(bert_config, FLAGS.init_checkpoint)


def check_vocab_fits_config(
    tokenizer: tokenization.Tokenizer, bert_config: modeling.BertConfig, config_file: str
) -> None:
    """Raises ValueError, naming both files and both numbers, when the vocab has ids beyond
    the config's `vocab_size`: a vocab of one model with the config of another."""
    num_tokens = max(tokenizer.vocab.values(), default=-1) + 1
    if num_tokens > bert_config.vocab_size:
        raise ValueError(
            f"{tokenizer.source_file} holds {num_tokens} tokens but {config_file} has "
            f"vocab_size={bert_config.vocab_size}: the vocab and the config come from "
            "different models (check --vocab_file / --spm_model_file and --bert_config_file)"
        )


def define_gpu_flags() -> None:
    """Flags of the GPU/CPU path: distribution, precision, XLA (all off by default)."""
    flags.DEFINE_enum(
        "distribution_strategy",
        "none",
        ["none", "mirrored", "multi_worker"],
        "How to spread training without a TPU: 'none' (one device), 'mirrored' (every GPU "
        "of this machine, or --num_gpus of them) or 'multi_worker' (MultiWorkerMirrored "
        "over the cluster in the TF_CONFIG environment variable). Batch-size flags stay "
        "global: each replica gets batch_size / number_of_replicas examples.",
    )
    flags.DEFINE_integer(
        "num_gpus",
        None,
        "With --distribution_strategy=mirrored: how many GPUs to use (default: all).",
    )
    flags.DEFINE_integer(
        "num_cpu_devices",
        1,
        "Split this machine's CPU into N logical devices so that 'mirrored' and "
        "'multi_worker' can be tried without GPUs (for testing a set-up on a laptop).",
    )
    flags.DEFINE_enum(
        "precision",
        "float32",
        ["float32", "float16", "bfloat16"],
        "Compute type of the model. float16: mixed precision for GPUs (float32 master "
        "weights, dynamic loss scaling); bfloat16: mixed precision for CPUs and TPUs. "
        "Checkpoints are float32 either way.",
    )
    flags.DEFINE_bool("use_xla", False, "Compile the graph with XLA (just-in-time).")
    flags.DEFINE_integer(
        "gradient_accumulation_steps",
        1,
        "Split every training batch into this many micro-batches and add up their gradients "
        "before one optimizer step: the same update with less memory. --train_batch_size "
        "stays the batch of one optimizer step; the global step counts optimizer steps.",
    )
    flags.DEFINE_enum(
        "optimizer",
        "adamw",
        ["adamw", "lamb"],
        "adamw: BERT's Adam with weight decay; lamb: layer-wise adaptive (large batches).",
    )
    flags.DEFINE_bool(
        "bucket_by_length",
        True,
        "GPU/CPU path: put examples of similar length into the same batch and pad each "
        "batch only to its bucket's length (--bucket_boundaries) instead of "
        "--max_seq_length; real text is mostly short, so most of a full-length batch is "
        "padding. The TFRecords stay as written, and evaluation and prediction give the "
        "same numbers, in input order. With --use_tpu batches always keep static "
        "full-length shapes. false: every batch padded to --max_seq_length, the "
        "original's batches exactly.",
    )
    flags.DEFINE_list(
        "bucket_boundaries",
        None,
        "With --bucket_by_length: the padded lengths of the shorter buckets, e.g. 32,64 "
        "(--max_seq_length is always the last). Default: 1/8, 2/8, 3/8, 4/8 and 6/8 of "
        "--max_seq_length, rounded down to a multiple of 8, none shorter than 16 "
        "(16,32,48,64,96 at 128).",
    )
    flags.DEFINE_integer(
        "random_seed",
        None,
        "Seed for initialization, dropout and input shuffling, making a run repeatable. "
        "Unset: a fresh seed every run, as the original.",
    )


@dataclasses.dataclass(frozen=True)
class HardwareSettings:
    """Where and how an Estimator runs: the TPU or the GPU/CPU path, distribution, XLA,
    seeding, checkpointing and length bucketing. The defaults are the flags' defaults (one
    device, float32 graph, no TPU); scripts build it from their flags with `from_flags`."""

    use_tpu: bool = False
    tpu_name: str | None = None
    tpu_zone: str | None = None
    gcp_project: str | None = None
    master: str | None = None
    num_tpu_cores: int = 8
    iterations_per_loop: int = 1000
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    distribution_strategy: str = "none"
    num_gpus: int | None = None
    num_cpu_devices: int = 1
    use_xla: bool = False
    gradient_accumulation_steps: int = 1
    random_seed: int | None = None
    bucket_by_length: bool = True
    bucket_boundaries: tuple[int, ...] | None = None

    def describe(self) -> str:
        """Where the run computes, in a few words: `TPU grpc://... (8 cores)`, `one
        device (CPU)`, `MirroredStrategy over 2 GPUs, XLA`..."""
        if self.use_tpu:
            return f"TPU {self.tpu_name or self.master or ''} ({self.num_tpu_cores} cores)"
        if self.distribution_strategy == "mirrored":
            devices = f"{self.num_gpus} GPUs" if self.num_gpus else "every GPU"
            if self.num_cpu_devices > 1:
                devices = f"{self.num_cpu_devices} logical CPU devices"
            text = f"MirroredStrategy over {devices}"
        elif self.distribution_strategy == "multi_worker":
            text = "MultiWorkerMirroredStrategy over the TF_CONFIG cluster"
        else:
            text = "one device (" + ("GPU" if _machine_has_gpu() else "CPU") + ")"
        if self.use_xla:
            text += ", XLA"
        if self.bucket_by_length:
            text += ", batches grouped by length"
        if self.random_seed is not None:
            text += f", seed {self.random_seed}"
        return text

    @classmethod
    def from_flags(cls, flag_values: flags.FlagValues = FLAGS) -> HardwareSettings:
        """The settings of define_hardware_flags' and define_gpu_flags' flags."""
        names = [field.name for field in dataclasses.fields(cls)]
        values = {name: flag_values[name].value for name in names if name != "bucket_boundaries"}
        values["bucket_boundaries"] = parse_bucket_boundaries(flag_values.bucket_boundaries)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the GPU-path flags change inside a model_fn: the model's compute type and the
    optimizer's settings. The defaults are the original's float32 AdamW."""

    compute_type: tf.DType = tf.float32
    optimizer_name: str = "adamw"
    gradient_accumulation_steps: int = 1
    loss_scaling: bool = False

    def create_train_op(
        self,
        loss: tf.Tensor,
        learning_rate: float,
        num_train_steps: int,
        num_warmup_steps: int,
        use_tpu: bool,
    ) -> tf.Operation:
        """`optimization.create_optimizer` with these options."""
        return optimization.create_optimizer(
            loss,
            learning_rate,
            num_train_steps,
            num_warmup_steps,
            use_tpu,
            **self.optimizer_kwargs(),
        )

    def describe(self) -> str:
        """`float16 with dynamic loss scaling, optimizer lamb, 4 micro-batches a step`."""
        text = self.compute_type.name
        if self.loss_scaling:
            text += " with dynamic loss scaling"
        text += f", optimizer {self.optimizer_name}"
        if self.gradient_accumulation_steps > 1:
            text += f", {self.gradient_accumulation_steps} micro-batches a step"
        return text

    def optimizer_kwargs(self) -> dict:
        """Keyword arguments for `optimization.create_optimizer`."""
        kwargs = {"optimizer_name": self.optimizer_name}
        if self.gradient_accumulation_steps > 1:
            kwargs["gradient_accumulation_steps"] = self.gradient_accumulation_steps
        if self.loss_scaling:
            kwargs["loss_scaling"] = True
        return kwargs


DEFAULT_RUN_OPTIONS = RunOptions()


def run_options_from_flags() -> RunOptions:
    """The RunOptions the flags ask for, checked against --use_tpu."""
    if FLAGS.gradient_accumulation_steps < 1:
        raise ValueError("--gradient_accumulation_steps must be at least 1")
    if FLAGS.use_tpu and FLAGS.gradient_accumulation_steps > 1:
        raise ValueError("--gradient_accumulation_steps is for the GPU/CPU path, not --use_tpu")
    if FLAGS.use_tpu and FLAGS.precision == "float16":
        raise ValueError("TPUs compute in bfloat16: use --precision=bfloat16 with --use_tpu")
    options = RunOptions(
        compute_type=tf.as_dtype(FLAGS.precision),
        optimizer_name=FLAGS.optimizer,
        gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
        loss_scaling=FLAGS.precision == "float16",
    )
    tf1.logging.info("Compute: %s", options.describe())
    if FLAGS.precision == "float16" and not FLAGS.use_tpu and not _machine_has_gpu():
        tf1.logging.warning(
            "--precision=float16 without a GPU: CPUs have no fast float16 kernels, and a "
            "run takes many times longer than in float32 (17x in one measurement); use "
            "--precision=float32 (or bfloat16 on a CPU that has it) here"
        )
    return options


def _machine_has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def _split_cpu_into_devices(count: int) -> None:
    """Makes `count` logical CPU devices; must run before TensorFlow touches a device."""
    if count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as err:
        raise RuntimeError(
            "--num_cpu_devices must be applied before TensorFlow initializes its devices"
        ) from err


def make_distribution_strategy(settings: HardwareSettings) -> tf.distribute.Strategy | None:
    """The strategy chosen by --distribution_strategy, or None for a single device."""
    kind = settings.distribution_strategy
    if kind == "none":
        return None
    _split_cpu_into_devices(settings.num_cpu_devices)
    if kind == "mirrored":
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        if settings.num_gpus is not None:
            if settings.num_gpus > len(gpus):
                raise ValueError(f"--num_gpus={settings.num_gpus} but this machine has {len(gpus)}")
            gpus = gpus[: settings.num_gpus]
        devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf1.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "--distribution_strategy=multi_worker reads the cluster from the TF_CONFIG "
            "environment variable, which is not set"
        )
    return tf1.distribute.experimental.MultiWorkerMirroredStrategy()


def _tpu_run_config(output_dir: str, settings: HardwareSettings) -> tf1.estimator.tpu.RunConfig:
    cluster = None
    if settings.tpu_name:
        cluster = tf.distribute.cluster_resolver.TPUClusterResolver(
            settings.tpu_name, zone=settings.tpu_zone, project=settings.gcp_project
        )
    return tf1.estimator.tpu.RunConfig(
        cluster=cluster,
        master=settings.master,
        model_dir=output_dir,
        save_checkpoints_steps=settings.save_checkpoints_steps,
        keep_checkpoint_max=settings.keep_checkpoint_max,
        tpu_config=tf1.estimator.tpu.TPUConfig(
            iterations_per_loop=settings.iterations_per_loop,
            num_shards=settings.num_tpu_cores,
            per_host_input_for_training=tf1.estimator.tpu.InputPipelineConfig.PER_HOST_V2,
        ),
    )


def _session_config(
    strategy: tf.distribute.Strategy | None, use_xla: bool, num_cpu_devices: int
) -> tf1.ConfigProto | None:
    """Session settings for the GPU/CPU path.

    Replicas wait on each other inside all-reduce ops; with TensorFlow's default inter-op
    pool sized to a small CPU's core count, those waits can take every thread and stall
    the step, so a distributed run gets a larger pool. XLA is switched on here too.
    """
    if strategy is None and not use_xla:
        return None
    config = tf1.ConfigProto(allow_soft_placement=True)
    if strategy is not None:
        config.inter_op_parallelism_threads = max(8, 2 * (os.cpu_count() or 1))
        config.device_count["CPU"] = max(num_cpu_devices, 1)
    if use_xla:
        config.graph_options.optimizer_options.global_jit_level = tf1.OptimizerOptions.ON_1
        _enable_xla_on_cpu()
    return config


def _enable_xla_on_cpu() -> None:
    """TensorFlow auto-clusters for XLA on GPUs only unless told otherwise; this flag
    extends it to the CPU, so --use_xla means the same on every machine. (TF_XLA_FLAGS is
    read when TensorFlow loads, too early for a flag; this sets the same switch.)"""
    from tensorflow.python.client import pywrap_tf_session

    pywrap_tf_session.TF_SetTfXlaCpuGlobalJit(True)


def as_estimator_model_fn(tpu_model_fn: ModelFn) -> ModelFn:
    """Adapts a model_fn that returns `TPUEstimatorSpec` to a plain Estimator.

    A bucketed prediction input adds `tfrecord_io.EXAMPLE_INDEX` to the features; the task's
    model_fn never sees it, and it is handed through to the predictions, where
    `BertEstimator.predict` uses it to restore the input order.
    """

    def model_fn(features, labels, mode, params):
        example_index = None
        if isinstance(features, dict) and tfrecord_io.EXAMPLE_INDEX in features:
            features = dict(features)
            example_index = features.pop(tfrecord_io.EXAMPLE_INDEX)
        spec = tpu_model_fn(features, labels, mode, params)
        if isinstance(spec, tf1.estimator.tpu.TPUEstimatorSpec):
            spec = spec.as_estimator_spec()
        if example_index is not None and mode == tf.estimator.ModeKeys.PREDICT:
            predictions = spec.predictions
            if not isinstance(predictions, dict):
                predictions = {_SINGLE_PREDICTION: predictions}
            spec = spec._replace(
                predictions=dict(predictions, **{tfrecord_io.EXAMPLE_INDEX: example_index})
            )
        return spec

    return model_fn


# The key under which a model_fn's lone prediction tensor travels next to the example index.
_SINGLE_PREDICTION = "_prediction"


def in_input_order(predictions: Iterable[dict]) -> Iterator:
    """Yields predictions that carry `tfrecord_io.EXAMPLE_INDEX` in the order of that
    index, without it, each as soon as all before it have come; predictions without the
    index pass through unchanged (an input_fn that does not bucket).

    Raises:
      RuntimeError: an index is missing or repeated (the input lost or doubled examples).
    """
    pending: dict[int, Any] = {}
    next_index = 0
    for prediction in predictions:
        if not isinstance(prediction, dict) or tfrecord_io.EXAMPLE_INDEX not in prediction:
            yield prediction
            continue
        prediction = dict(prediction)
        index = int(prediction.pop(tfrecord_io.EXAMPLE_INDEX))
        if index < next_index or index in pending:
            raise RuntimeError(f"Example {index} was predicted twice")
        pending[index] = prediction.get(_SINGLE_PREDICTION, prediction)
        while next_index in pending:
            yield pending.pop(next_index)
            next_index += 1
    if pending:
        raise RuntimeError(
            f"No prediction for example {next_index}, though {len(pending)} later ones came"
        )


def parse_bucket_boundaries(values: Iterable[str] | None) -> tuple[int, ...] | None:
    """--bucket_boundaries as integers (None when not given)."""
    if not values:
        return None
    try:
        boundaries = tuple(int(value) for value in values)
    except ValueError as err:
        raise ValueError(f"--bucket_boundaries={','.join(values)}: not integers") from err
    if any(boundary < 1 for boundary in boundaries):
        raise ValueError(f"--bucket_boundaries={','.join(values)}: lengths must be positive")
    return boundaries


class BertEstimator:
    """A TPUEstimator, or a plain Estimator with per-mode batch sizes, behind one API.

    `train`, `evaluate` and `predict` take input_fns of the form `input_fn(params)` that
    read the batch size from `params["batch_size"]`, as TPUEstimator gives it. `hardware`
    (default: one device, no TPU) says where and how it runs; scripts pass
    `HardwareSettings.from_flags()`.
    """

    def __init__(
        self,
        model_fn: ModelFn,
        output_dir: str,
        train_batch_size: int,
        eval_batch_size: int = 8,
        predict_batch_size: int = 8,
        params: dict | None = None,
        hardware: HardwareSettings | None = None,
        log_every_steps: int = 100,
    ):
        hardware = hardware or HardwareSettings()
        self.log_every_steps = log_every_steps
        self._progress_hook: TrainingProgressHook | None = None
        self.use_tpu = hardware.use_tpu
        self.num_replicas = 1
        self.accumulation_steps = 1 if self.use_tpu else hardware.gradient_accumulation_steps
        self.multi_worker = not self.use_tpu and hardware.distribution_strategy == "multi_worker"
        self.seed = hardware.random_seed
        # Length bucketing is for the plain Estimator only: TPUs need static shapes.
        self.bucket_by_length = not self.use_tpu and hardware.bucket_by_length
        self.bucket_boundaries = hardware.bucket_boundaries
        self.batch_sizes = {
            tf.estimator.ModeKeys.TRAIN: train_batch_size,
            tf.estimator.ModeKeys.EVAL: eval_batch_size,
            tf.estimator.ModeKeys.PREDICT: predict_batch_size,
        }
        if self.use_tpu:
            self.estimator = tf1.estimator.tpu.TPUEstimator(
                use_tpu=True,
                model_fn=model_fn,
                config=_tpu_run_config(output_dir, hardware),
                params=params,
                train_batch_size=train_batch_size,
                eval_batch_size=eval_batch_size,
                predict_batch_size=predict_batch_size,
            )
        else:
            strategy = make_distribution_strategy(hardware)
            self.num_replicas = strategy.num_replicas_in_sync if strategy else 1
            config = tf.estimator.RunConfig(
                model_dir=output_dir,
                session_config=_session_config(
                    strategy, hardware.use_xla, hardware.num_cpu_devices
                ),
                tf_random_seed=hardware.random_seed,
                save_checkpoints_steps=hardware.save_checkpoints_steps,
                keep_checkpoint_max=hardware.keep_checkpoint_max,
                # TrainingProgressHook logs loss and speed; TensorFlow's own hooks for
                # them would print a second, less useful line at each step logged.
                log_step_count_steps=None,
                save_summary_steps=log_every_steps,
                train_distribute=strategy,
                # Estimator.evaluate cannot run multi-worker; each process scores alone.
                eval_distribute=None if self.multi_worker else strategy,
            )
            self.estimator = tf.estimator.Estimator(
                model_fn=as_estimator_model_fn(model_fn), config=config, params=params or {}
            )

    def _input_fn_for(self, input_fn: InputFn, mode: str) -> InputFn:
        if self.use_tpu:
            return input_fn  # TPUEstimator fills params["batch_size"] per shard itself.
        batch_size = self.per_replica_batch_size(mode)
        settings = dict(batch_size=batch_size, seed=self.seed)
        if self.bucket_by_length:
            settings.update(
                bucket_by_length=True,
                bucket_boundaries=self.bucket_boundaries,
                example_index=mode == tf.estimator.ModeKeys.PREDICT,
            )

        def with_batch_size(params, input_context=None):
            return input_fn(dict(params, input_context=input_context, **settings))

        return with_batch_size

    def per_replica_batch_size(self, mode: str) -> int:
        """The batch one replica reads per run of the graph.

        The flags give the global batch of one optimizer step. Under a strategy the
        Estimator feeds every replica its own batch, and with gradient accumulation one
        optimizer step takes several runs, so each run of each replica reads
        global / (replicas x accumulation steps) examples.
        """
        global_batch = self.batch_sizes[mode]
        parts = self.num_replicas
        if mode == tf.estimator.ModeKeys.TRAIN:
            parts *= self.accumulation_steps
        if global_batch % parts:
            raise ValueError(
                f"The {mode} batch size {global_batch} does not divide into {self.num_replicas} "
                f"replica(s) x {self.accumulation_steps if mode == 'train' else 1} "
                "micro-batch(es)"
            )
        if parts > 1:
            tf1.logging.info(
                "%s: batch %d = %d replica(s) x %d micro-batch(es) x %d examples",
                mode,
                global_batch,
                self.num_replicas,
                parts // self.num_replicas,
                global_batch // parts,
            )
        return global_batch // parts

    def train(
        self,
        input_fn: InputFn,
        max_steps: int,
        hooks: Iterable | None = None,
        total_steps: int | None = None,
    ) -> None:
        """Trains until the global step reaches `max_steps` (resuming from `output_dir`).
        `total_steps`: the last step of the whole run, for the progress lines' percent and
        ETA when training goes in stretches (default `max_steps`)."""
        total_steps = total_steps or max_steps
        hooks = list(hooks or [])
        train_input_fn = self._input_fn_for(input_fn, tf.estimator.ModeKeys.TRAIN)
        if self.use_tpu:
            self.estimator.train(train_input_fn, max_steps=max_steps, hooks=hooks)
            return
        if self._progress_hook is None or self._progress_hook.total_steps != total_steps:
            self._progress_hook = TrainingProgressHook(
                self.batch_sizes[tf.estimator.ModeKeys.TRAIN],
                self.model_dir,
                total_steps,
                self.log_every_steps,
            )
        hooks.append(self._progress_hook)
        if not self.multi_worker:
            self.estimator.train(train_input_fn, max_steps=max_steps, hooks=hooks)
            return
        # Estimator.train refuses multi-worker strategies; train_and_evaluate runs each
        # worker of TF_CONFIG's cluster as an independent worker. Workers never evaluate
        # (only an "evaluator" task would), so the eval spec is a formality.
        hooks.append(WeightsFingerprintHook())
        tf.estimator.train_and_evaluate(
            self.estimator,
            tf.estimator.TrainSpec(train_input_fn, max_steps=max_steps, hooks=hooks),
            tf.estimator.EvalSpec(train_input_fn, steps=1),
        )

    def evaluate(
        self, input_fn: InputFn, steps: int | None = None, checkpoint_path: str | None = None
    ) -> dict:
        return self.estimator.evaluate(
            self._input_fn_for(input_fn, tf.estimator.ModeKeys.EVAL),
            steps=steps,
            checkpoint_path=checkpoint_path,
        )

    def predict(self, input_fn: InputFn, checkpoint_path: str | None = None) -> Iterable[dict]:
        """Yields one prediction per example, in the order of the input (also when the
        batches were grouped by length)."""
        predictions = self.estimator.predict(
            self._input_fn_for(input_fn, tf.estimator.ModeKeys.PREDICT),
            checkpoint_path=checkpoint_path,
            yield_single_examples=True,
        )
        return in_input_order(predictions) if self.bucket_by_length else predictions

    @property
    def model_dir(self) -> str:
        return self.estimator.model_dir


# What a run leaves in --output_dir that a fresh start must not find (see
# --overwrite_output_dir); anything else there is the user's and stays.
_RUN_STATE_PATTERNS = (
    "checkpoint",
    "model.ckpt-*",
    "graph.pbtxt",
    "events.out.tfevents.*",
    "*.tf_record",
    "*.tf_record.fingerprint",
    "eval",
    "best",
)


def clear_previous_run(
    output_dir: str,
    keep: Iterable[str] = (),
    training: bool = True,
    distribution_strategy: str = "none",
) -> int:
    """--overwrite_output_dir: deletes the checkpoints, event files, cached features, `eval/`
    and `best/` of an earlier run in `output_dir`; returns how many entries went.

    `keep`: the run's inputs (record files, an --init_checkpoint prefix), never deleted even
    when they sit in `output_dir` under a name a run also writes.

    Raises:
      ValueError: the run does not train (deleting its checkpoints would leave nothing to
        evaluate, predict or export), or it is one worker of a multi-worker cluster (a late
        worker would delete what the others have written).
    """
    if not training:
        raise ValueError(
            "--overwrite_output_dir deletes the checkpoints in --output_dir; it is for "
            "--do_train runs (this run would evaluate, predict or export nothing trained)"
        )
    if distribution_strategy == "multi_worker":
        raise ValueError(
            "--overwrite_output_dir with --distribution_strategy=multi_worker: every worker "
            "would clear the directory the others write; empty --output_dir before starting them"
        )
    kept = [os.path.abspath(path) for path in keep if path]

    def is_an_input(path: str) -> bool:  # the file itself, or a file of a checkpoint prefix
        return any(path == k or path.startswith(k + ".") for k in kept)

    removed = 0
    for name in sorted(tf.io.gfile.listdir(output_dir) if tf.io.gfile.isdir(output_dir) else []):
        name = name.rstrip("/")
        path = os.path.join(output_dir, name)
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in _RUN_STATE_PATTERNS):
            continue
        if is_an_input(os.path.abspath(path)):
            continue
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
        removed += 1
    if removed:
        tf1.logging.info(
            "--overwrite_output_dir: deleted %d files and folders of the earlier run in %s",
            removed,
            output_dir,
        )
    return removed


def checkpoint_step(checkpoint: str | None) -> int:
    """The global step in a checkpoint's name (`model.ckpt-102` -> 102); 0 for None."""
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0


def report_training_start(output_dir: str, total_steps: int) -> None:
    """Says when `output_dir` already holds a run at `total_steps` (the Estimator would
    silently train nothing, whatever the flags now say) or a run to resume."""
    checkpoint = tf.train.latest_checkpoint(output_dir)
    done = checkpoint_step(checkpoint)
    if done >= total_steps:
        tf1.logging.warning(
            "Nothing to train: step %d of %d is already done in %s; use a new --output_dir "
            "or --overwrite_output_dir to train again",
            done,
            total_steps,
            output_dir,
        )
    elif done:
        tf1.logging.info("Resuming from step %d of %d: %s", done, total_steps, checkpoint)


def default_log_every_steps(num_train_steps: int) -> int:
    """About twenty progress lines a run, and at least one every 100 steps (the
    original's interval): every step of a 6-step run, every 50th of a 1,000-step one."""
    return max(1, min(100, num_train_steps // 20))


class TrainingProgressHook(tf1.train.SessionRunHook):
    """Logs `step n/N (p%): loss = x, s steps/s, e examples/s, ETA t` at every multiple
    of `every_n_steps` and at the last step, and writes the speed and the ETA to TensorBoard
    (`throughput/steps_per_sec`, `throughput/examples_per_sec`, `progress/eta_seconds`).

    The speed is that of the steps since the previous line (the first line's includes the
    graph's warm-up); the ETA extrapolates the speed since the first step of the first call
    to `train` this hook served, evaluations in between included, to the `total_steps` of
    the run.
    """

    def __init__(
        self, global_batch_size: int, model_dir: str, total_steps: int, every_n_steps: int
    ):
        self.global_batch_size = global_batch_size
        self.model_dir = model_dir
        self.total_steps = total_steps
        self.every_n_steps = max(1, every_n_steps)

    def begin(self):
        self._global_step = tf1.train.get_global_step()
        self._fetches = {}
        loss = _estimator_loss_tensor()
        if loss is not None:
            self._fetches["loss"] = loss
        # (step, time) after the first optimizer step of the first call to `train` (the
        # graph's warm-up excluded): kept over later calls (training in stretches between
        # evaluations), so the ETA counts the evaluations too.
        self._first = getattr(self, "_first", None)
        self._last = None  # (step, time) of the previous line, or of the session's start

    def after_create_session(self, session, coord):
        self._last = (int(session.run(self._global_step)), time.time())

    def before_run(self, run_context):
        return tf1.train.SessionRunArgs(self._fetches)

    def after_run(self, run_context, run_values):
        # The step fetched with the train op may be read before or after the increment
        # (and with gradient accumulation not every run increments it): read it now.
        step = int(run_context.session.run(self._global_step))
        now = time.time()
        if step == self._last[0]:
            return  # a micro-batch of gradient accumulation: no optimizer step yet
        first_step = self._first is None
        if first_step:
            self._first = (step, now)
        if step % self.every_n_steps and step < self.total_steps:
            return
        steps_per_sec = (step - self._last[0]) / max(now - self._last[1], 1e-9)
        # From the second step on, the speed since the first (warm-up left out).
        overall_rate = (
            steps_per_sec
            if first_step or step == self._first[0]
            else (step - self._first[0]) / max(now - self._first[1], 1e-9)
        )
        eta_seconds = max(self.total_steps - step, 0) / max(overall_rate, 1e-9)
        examples_per_sec = steps_per_sec * self.global_batch_size
        loss = run_values.results.get("loss")
        loss_text = f"loss = {float(loss):.6g}, " if loss is not None else ""
        tf1.logging.info(
            "step %d/%d (%.0f%%): %s%.3f steps/s, %.1f examples/s, ETA %s",
            step,
            self.total_steps,
            100.0 * step / max(self.total_steps, 1),
            loss_text,
            steps_per_sec,
            examples_per_sec,
            bert_logging.format_duration(eta_seconds),
        )
        self._write_summaries(step, steps_per_sec, examples_per_sec, eta_seconds)
        self._last = (step, now)

    def _write_summaries(self, step, steps_per_sec, examples_per_sec, eta_seconds) -> None:
        values = {
            "throughput/steps_per_sec": steps_per_sec,
            "throughput/examples_per_sec": examples_per_sec,
            "progress/eta_seconds": eta_seconds,
        }
        summary = tf1.Summary(
            value=[tf1.Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()]
        )
        tf1.summary.FileWriterCache.get(self.model_dir).add_summary(summary, step)


def _estimator_loss_tensor() -> tf.Tensor | None:
    """The loss the Estimator trains on and reports (reduced over the replicas under a
    distribution strategy): `Estimator.train` adds it to the LOSSES collection last, just
    before the hooks begin. None if there is none."""
    losses = tf1.get_collection(tf1.GraphKeys.LOSSES)
    return losses[-1] if losses else None


class WeightsFingerprintHook(tf1.train.SessionRunHook):
    """Logs one number summarising every trainable variable when training ends, so the
    logs of the workers of a multi-worker run show at a glance that they stayed in sync."""

    def begin(self):
        variables = tf1.trainable_variables()
        self._fingerprint = tf.add_n(
            [tf.reduce_sum(tf.abs(tf.cast(v, tf.float64))) for v in variables]
        )

    def end(self, session):
        tf1.logging.info("Weights fingerprint: %.12e", session.run(self._fingerprint))


def restore_from_checkpoint(init_checkpoint: str | None, use_tpu: bool) -> Callable | None:
    """Initializes the graph's trainable variables from `init_checkpoint`.

    Call inside a model_fn after the model is built. Returns the `scaffold_fn` a
    TPUEstimatorSpec needs on TPU (where initialization must happen inside the
    scaffold), or None. Logs each variable and whether it came from the checkpoint
    (at DEBUG).
    """
    tvars = tf1.trainable_variables()
    initialized: dict[str, int] = {}
    scaffold_fn = None
    if init_checkpoint:
        assignment_map, initialized = modeling.get_assignment_map_from_checkpoint(
            tvars, init_checkpoint
        )
        if use_tpu:

            def scaffold_fn():
                tf1.train.init_from_checkpoint(init_checkpoint, assignment_map)
                return tf1.train.Scaffold()

        else:
            tf1.train.init_from_checkpoint(init_checkpoint, assignment_map)
    # The original's list, one line per variable: at DEBUG (--verbosity=1), since
    # get_assignment_map_from_checkpoint already says in one line what was loaded.
    tf1.logging.debug("**** Trainable Variables ****")
    for var in tvars:
        source = ", *INIT_FROM_CKPT*" if var.name in initialized else ""
        tf1.logging.debug("  name = %s, shape = %s%s", var.name, var.shape, source)
    return scaffold_fn


def write_eval_results(result: dict, path: str, log: bool = True) -> None:
    """Writes `key = value` lines sorted by key, as the original scripts' eval_results.txt,
    via a temporary file so a crash never leaves a half-written file; `log` also prints
    them under the original's `***** Eval results *****` heading."""
    if log:
        tf1.logging.info("***** Eval results *****")
    lines = []
    for key in sorted(result):
        if log:
            tf1.logging.info("  %s = %s", key, str(result[key]))
        lines.append(f"{key} = {result[key]}\n")
    atomic_files.write_text(path, "".join(lines))
    if log:
        tf1.logging.info("  (written to %s)", path)
