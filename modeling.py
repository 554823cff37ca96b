"""The BERT encoder in TensorFlow 1.x graph style.

Variables are named and shaped exactly as in Google's released checkpoints
(`bert/embeddings/word_embeddings`, `bert/encoder/layer_0/attention/self/query/kernel`, ...),
so `bert_model.ckpt` files restore unchanged. Public helpers keep the original module's names
(`get_shape_list`, `layer_norm`, `create_initializer`, ...) because user code imports them.

ALBERT: a config with `embedding_size`, `num_hidden_groups` or `inner_group_num` (an
`albert_config.json`) builds google-research/albert's model under its checkpoints' names
(`bert/encoder/embedding_hidden_mapping_in`,
`bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel`, ...).

Mixed precision: pass `compute_type=tf.float16` (or `tf.bfloat16`). Variables stay float32 and
are cast at the point of use; layer normalization and the attention softmax run in float32.
"""

from __future__ import annotations

import bert_logging

import collections
import copy
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

import input_files

tf1 = tf.compat.v1

# Google's configs carry keys the encoder does not use (e.g. the multilingual models'
# "directionality" and "pooler_*"). They are kept on the config so it round-trips unchanged.
_REQUIRED_POSITIVE_INTS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)

# ALBERT (google-research/albert) configs add these keys. Their presence selects ALBERT's
# layer layout and variable names (`encoder/transformer/group_<g>/inner_group_<i>/...`),
# even when their values would make the model a plain BERT, because the checkpoint names
# follow the layout and not the sizes.
ALBERT_CONFIG_KEYS = ("embedding_size", "num_hidden_groups", "inner_group_num")
# Keys of ALBERT configs for variants its released models never use. Only these values
# (their defaults in google-research/albert) compute the model built here.
_ALBERT_DEFAULT_ONLY_KEYS = {
    "down_scale_factor": 1,
    "gap_size": 0,
    "net_structure_type": 0,
    "num_memory_blocks": 0,
    "layers_to_keep": [],
}


class BertConfig:
    """Sizes and hyper-parameters of a `BertModel`, as stored in `bert_config.json`."""

    def __init__(
        self,
        vocab_size: int | None,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 16,
        initializer_range: float = 0.02,
    ):
        """Stores the hyper-parameters; `validate()` checks them.

        Args:
          vocab_size: number of rows of the word-embedding table.
          hidden_size: width of every encoder layer and of the pooler.
          num_hidden_layers: number of Transformer blocks.
          num_attention_heads: heads per attention layer; must divide `hidden_size`.
          intermediate_size: width of the feed-forward layer inside each block.
          hidden_act: activation of the feed-forward layer; see `get_activation`.
          hidden_dropout_prob: dropout on embeddings and every dense output.
          attention_probs_dropout_prob: dropout on the attention probabilities.
          max_position_embeddings: rows of the position table, the longest usable sequence.
          type_vocab_size: rows of the token-type (segment) table.
          initializer_range: stddev of the truncated normal weight initializer.
        """
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range

    def validate(self, source: str = "BertConfig") -> BertConfig:
        """Raises ValueError naming `source` and the field when a value cannot work."""
        problems = []
        for field in _REQUIRED_POSITIVE_INTS:
            value = getattr(self, field, None)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(f"{field} must be a positive integer, got {value!r}")
        heads, hidden = self.num_attention_heads, self.hidden_size
        if not problems and hidden % heads != 0:
            problems.append(
                f"hidden_size ({hidden}) must be a multiple of num_attention_heads ({heads})"
            )
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, field, None)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                problems.append(f"{field} must be in [0, 1), got {value!r}")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range <= 0:
            problems.append(f"initializer_range must be positive, got {self.initializer_range!r}")
        try:
            get_activation(self.hidden_act)
        except ValueError as err:
            problems.append(str(err))
        if self.is_albert():
            problems += self._albert_problems()
        if problems:
            raise ValueError(f"Invalid BERT config ({source}): " + "; ".join(problems))
        return self

    def _albert_problems(self) -> list[str]:
        problems = []
        for field in ALBERT_CONFIG_KEYS:
            value = getattr(self, field, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(f"{field} must be a positive integer, got {value!r}")
        groups = getattr(self, "num_hidden_groups", 1)
        if not problems and groups > self.num_hidden_layers:
            problems.append(
                f"num_hidden_groups ({groups}) must not exceed num_hidden_layers "
                f"({self.num_hidden_layers})"
            )
        for field, default in _ALBERT_DEFAULT_ONLY_KEYS.items():
            value = getattr(self, field, default)
            if value != default:
                problems.append(
                    f"{field}={value!r} is an ALBERT variant this model does not implement "
                    f"(only {default!r} is supported)"
                )
        return problems

    def is_albert(self) -> bool:
        """True for an ALBERT config (any of `embedding_size`, `num_hidden_groups`,
        `inner_group_num` present): the model then uses ALBERT's layout and names."""
        return any(hasattr(self, key) for key in ALBERT_CONFIG_KEYS)

    @property
    def embedding_width(self) -> int:
        """Width of the embedding tables: ALBERT's `embedding_size`, else `hidden_size`."""
        return getattr(self, "embedding_size", self.hidden_size)

    @property
    def hidden_groups(self) -> int:
        """ALBERT's `num_hidden_groups`: sets of layer weights the layers share (1 if absent)."""
        return getattr(self, "num_hidden_groups", 1)

    @property
    def inner_groups(self) -> int:
        """ALBERT's `inner_group_num`: attention+FFN blocks per layer (1 if absent)."""
        return getattr(self, "inner_group_num", 1)

    @classmethod
    def from_dict(cls, json_object: dict[str, Any], source: str = "BertConfig") -> BertConfig:
        """Builds a validated config; unknown keys are kept as attributes."""
        config = cls(vocab_size=None)
        for key, value in json_object.items():
            setattr(config, key, value)
        return config.validate(source)

    @classmethod
    def from_json_file(cls, json_file: str) -> BertConfig:
        """Reads a `bert_config.json` (any path TensorFlow's gfile understands)."""
        if not tf.io.gfile.exists(json_file):
            raise FileNotFoundError(f"BERT config file not found: {json_file}")
        text = input_files.read_text(
            json_file,
            what="BERT config file",
            hint="bert_config.json files are UTF-8",
            error_type=ValueError,
        )
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{json_file} is not valid JSON: {err}") from err
        if not isinstance(values, dict):
            raise ValueError(f"{json_file} must hold a JSON object of config values")
        return cls.from_dict(values, source=json_file)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.__dict__)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


class BertModel:
    """The BERT encoder: embeddings, a stack of Transformer blocks and the pooler.

    Example:
      model = BertModel(config, is_training=True, input_ids=ids, input_mask=mask,
                        token_type_ids=segments)
      pooled = model.get_pooled_output()        # [batch_size, hidden_size]
      tokens = model.get_sequence_output()      # [batch_size, seq_length, hidden_size]
    """

    def __init__(
        self,
        config: BertConfig,
        is_training: bool,
        input_ids: tf.Tensor,
        input_mask: tf.Tensor | None = None,
        token_type_ids: tf.Tensor | None = None,
        use_one_hot_embeddings: bool = False,
        scope: str | None = None,
        compute_type: tf.DType = tf.float32,
    ):
        """Builds the encoder graph.

        Args:
          config: the model's `BertConfig`.
          is_training: dropout is applied only when True.
          input_ids: int32 `[batch_size, seq_length]` word-piece ids.
          input_mask: int32 `[batch_size, seq_length]`, 1 for real tokens and 0 for padding.
            Defaults to all ones.
          token_type_ids: int32 `[batch_size, seq_length]` segment ids. Defaults to zeros.
          use_one_hot_embeddings: look words up with a one-hot matmul (faster on TPUs).
          scope: variable scope; "bert" by default, as in Google's checkpoints.
          compute_type: dtype of the activations (float32, float16 or bfloat16).

        Raises:
          ValueError: the inputs do not have rank 2, or are longer than
            `config.max_position_embeddings`.
        """
        config = copy.deepcopy(config)
        if not is_training:
            config.hidden_dropout_prob = 0.0
            config.attention_probs_dropout_prob = 0.0

        batch_size, seq_length = get_shape_list(input_ids, expected_rank=2)
        if isinstance(seq_length, int) and seq_length > config.max_position_embeddings:
            raise ValueError(
                f"Sequence length {seq_length} is longer than the model's "
                f"max_position_embeddings ({config.max_position_embeddings}); use a shorter "
                "--max_seq_length"
            )
        if input_mask is None:
            input_mask = tf.ones([batch_size, seq_length], dtype=tf.int32)
        if token_type_ids is None:
            token_type_ids = tf.zeros([batch_size, seq_length], dtype=tf.int32)

        with tf1.variable_scope(scope, default_name="bert"):
            with tf1.variable_scope("embeddings"):
                word_embeddings, self.embedding_table = embedding_lookup(
                    input_ids=input_ids,
                    vocab_size=config.vocab_size,
                    embedding_size=config.embedding_width,
                    initializer_range=config.initializer_range,
                    word_embedding_name="word_embeddings",
                    use_one_hot_embeddings=use_one_hot_embeddings,
                )
                self.embedding_output = embedding_postprocessor(
                    input_tensor=word_embeddings,
                    use_token_type=True,
                    token_type_ids=token_type_ids,
                    token_type_vocab_size=config.type_vocab_size,
                    token_type_embedding_name="token_type_embeddings",
                    use_position_embeddings=True,
                    position_embedding_name="position_embeddings",
                    initializer_range=config.initializer_range,
                    max_position_embeddings=config.max_position_embeddings,
                    dropout_prob=config.hidden_dropout_prob,
                )
            self.embedding_output = tf.cast(self.embedding_output, compute_type)

            with tf1.variable_scope("encoder"):
                attention_mask = create_attention_mask_from_input_mask(input_ids, input_mask)
                stack_sizes = dict(
                    input_tensor=self.embedding_output,
                    attention_mask=attention_mask,
                    hidden_size=config.hidden_size,
                    num_hidden_layers=config.num_hidden_layers,
                    num_attention_heads=config.num_attention_heads,
                    intermediate_size=config.intermediate_size,
                    intermediate_act_fn=get_activation(config.hidden_act),
                    hidden_dropout_prob=config.hidden_dropout_prob,
                    attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                    initializer_range=config.initializer_range,
                    do_return_all_layers=True,
                )
                if config.is_albert():
                    self.all_encoder_layers = albert_transformer_model(
                        num_hidden_groups=config.hidden_groups,
                        inner_group_num=config.inner_groups,
                        **stack_sizes,
                    )
                else:
                    self.all_encoder_layers = transformer_model(**stack_sizes)
            self.sequence_output = self.all_encoder_layers[-1]

            with tf1.variable_scope("pooler"):
                # The pooler summarises the sequence by the hidden state of its first
                # token, [CLS], through one dense layer.
                first_token = self.sequence_output[:, 0, :]
                self.pooled_output = dense_layer(
                    first_token,
                    config.hidden_size,
                    activation=tf.tanh,
                    initializer_range=config.initializer_range,
                )

    @classmethod
    def from_features(
        cls,
        config: BertConfig,
        features: dict,
        is_training: bool,
        use_one_hot_embeddings: bool = False,
        compute_type: tf.DType = tf.float32,
    ) -> BertModel:
        """The encoder over a batch of the scripts' features: int `input_ids`,
        `input_mask` and `segment_ids`, each `[batch_size, seq_length]`."""
        return cls(
            config=config,
            is_training=is_training,
            input_ids=features["input_ids"],
            input_mask=features["input_mask"],
            token_type_ids=features["segment_ids"],
            use_one_hot_embeddings=use_one_hot_embeddings,
            compute_type=compute_type,
        )

    def get_pooled_output(self) -> tf.Tensor:
        """Returns the pooled [CLS] representation, `[batch_size, hidden_size]`."""
        return self.pooled_output

    def get_sequence_output(self) -> tf.Tensor:
        """Returns the last encoder layer, `[batch_size, seq_length, hidden_size]`."""
        return self.sequence_output

    def get_all_encoder_layers(self) -> list[tf.Tensor]:
        """Returns every encoder layer, each `[batch_size, seq_length, hidden_size]`.

        For ALBERT, as in google-research/albert, one entry per attention+FFN block:
        `num_hidden_layers * inner_group_num` entries.
        """
        return self.all_encoder_layers

    def get_embedding_output(self) -> tf.Tensor:
        """Returns word + position + type embeddings after LayerNorm (and dropout),
        `[batch_size, seq_length, embedding_width]` (`hidden_size` for BERT): the input of
        the encoder (for ALBERT, before `embedding_hidden_mapping_in`)."""
        return self.embedding_output

    def get_embedding_table(self) -> tf.Variable:
        """Returns the word-embedding table, `[vocab_size, embedding_width]`."""
        return self.embedding_table


# ----------------------------------------------------------------------------------------
# Activations


def gelu(x: tf.Tensor) -> tf.Tensor:
    """GELU with the tanh approximation: what "gelu" means in Google's BERT configs."""
    cube = tf.pow(x, 3)
    inner = np.sqrt(2.0 / np.pi) * (x + 0.044715 * cube)
    return x * (0.5 * (1.0 + tf.tanh(inner)))


def gelu_exact(x: tf.Tensor) -> tf.Tensor:
    """GELU with the exact Gaussian CDF (erf), used by most PyTorch-trained checkpoints."""
    return x * 0.5 * (1.0 + tf.math.erf(x / tf.cast(np.sqrt(2.0), x.dtype)))


_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor] | None] = {
    "linear": None,
    "relu": tf.nn.relu,
    "gelu": gelu,
    # transformers calls the tanh approximation "gelu_new" and the exact form "gelu".
    "gelu_new": gelu,
    "gelu_exact": gelu_exact,
    "gelu_erf": gelu_exact,
    "tanh": tf.tanh,
}


def get_activation(activation_string: Any) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """Maps a config's `hidden_act` to a function; None means linear.

    A non-string (already a function) is returned unchanged; an empty string or "linear"
    gives None. Raises ValueError for an unknown name.
    """
    if not isinstance(activation_string, str):
        return activation_string
    if not activation_string:
        return None
    name = activation_string.lower()
    if name not in _ACTIVATIONS:
        known = ", ".join(sorted(_ACTIVATIONS))
        raise ValueError(f"Unsupported activation: {activation_string!r} (known: {known})")
    return _ACTIVATIONS[name]


# ----------------------------------------------------------------------------------------
# Checkpoint loading


def _strip_output_index(name: str) -> str:
    """'bert/pooler/dense/kernel:0' -> 'bert/pooler/dense/kernel'."""
    match = re.match(r"^(.*):\d+$", name)
    return match.group(1) if match else name


def _is_optimizer_slot(name: str) -> bool:
    return name.endswith(("/adam_m", "/adam_v", "/lamb_m", "/lamb_v")) or name == "global_step"


CheckpointReport = collections.namedtuple(
    "CheckpointReport", ["loaded", "unused_in_checkpoint", "missing_in_checkpoint"]
)


def get_assignment_map_from_checkpoint(
    tvars: Sequence[tf.Variable], init_checkpoint: str, log: bool = True
) -> tuple[collections.OrderedDict, dict[str, int]]:
    """Maps checkpoint variables onto the model variables with the same name.

    Returns `(assignment_map, initialized_variable_names)` as the original does: the map
    for `tf.train.init_from_checkpoint`, and the set of names (with and without ":0")
    that it initializes. Also logs (unless `log` is false) what was not used and what the
    model did not find, since a silent partial load costs users hours.

    Raises:
      ValueError: a variable exists in both with different shapes (a checkpoint that does
        not fit the config), naming each one.
    """
    model_variables = collections.OrderedDict((_strip_output_index(var.name), var) for var in tvars)
    assignment_map = collections.OrderedDict()
    initialized_variable_names: dict[str, int] = {}
    mismatched = []
    checkpoint_variables = tf.train.list_variables(init_checkpoint)
    for name, shape in checkpoint_variables:
        var = model_variables.get(name)
        if var is None:
            continue
        model_shape = var.shape.as_list()
        if list(shape) != model_shape:
            mismatched.append(f"{name}: checkpoint {list(shape)} vs model {model_shape}")
            continue
        assignment_map[name] = name
        initialized_variable_names[name] = 1
        initialized_variable_names[name + ":0"] = 1
    if mismatched:
        raise ValueError(
            f"Checkpoint {init_checkpoint} does not fit the model config; shapes differ for: "
            + "; ".join(mismatched)
        )
    report = _make_report(
        model_variables, [name for name, _ in checkpoint_variables], assignment_map
    )
    if log:
        _log_checkpoint_report(report, init_checkpoint)
    return assignment_map, initialized_variable_names


def check_checkpoint_fits(config: BertConfig, init_checkpoint: str) -> None:
    """Raises ValueError, before any training, when `init_checkpoint` is missing or its
    encoder variables do not have the shapes `config` gives them."""
    check_checkpoint_files_downloaded(init_checkpoint)
    try:
        tf.train.list_variables(init_checkpoint)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as err:
        raise FileNotFoundError(
            f"--init_checkpoint: cannot read a checkpoint at {init_checkpoint}: {err}"
        ) from None
    with tf.Graph().as_default():
        BertModel(config, is_training=False, input_ids=tf1.placeholder(tf.int32, [1, 2]))
        # Only the shapes are checked here; the model_fn reports what it loads.
        get_assignment_map_from_checkpoint(tf1.trainable_variables(), init_checkpoint, log=False)


def check_checkpoint_files_downloaded(checkpoint_prefix: str) -> None:
    """Raises ValueError when a file of the checkpoint is a git-lfs pointer (a clone of a
    model repository without `git lfs pull`), which TensorFlow would only call corrupt."""
    for path in tf.io.gfile.glob(checkpoint_prefix + ".*"):
        input_files.check_not_lfs_pointer(path, "checkpoint file", error_type=ValueError)


def checkpoint_report(
    tvars: Sequence[tf.Variable], init_checkpoint: str, assignment_map: dict[str, str]
) -> CheckpointReport:
    """Lists loaded names, checkpoint names not used (optimizer slots aside) and model
    variables the checkpoint lacks."""
    model_names = [_strip_output_index(var.name) for var in tvars]
    checkpoint_names = [name for name, _ in tf.train.list_variables(init_checkpoint)]
    return _make_report(model_names, checkpoint_names, assignment_map)


def _make_report(
    model_names: Sequence[str], checkpoint_names: Sequence[str], assignment_map: dict[str, str]
) -> CheckpointReport:
    loaded = sorted(assignment_map)
    unused = sorted(
        name
        for name in checkpoint_names
        if name not in assignment_map and not _is_optimizer_slot(name)
    )
    missing = sorted(name for name in model_names if name not in assignment_map)
    return CheckpointReport(loaded, unused, missing)


def _log_checkpoint_report(report: CheckpointReport, init_checkpoint: str) -> None:
    """One line at INFO the first time a checkpoint is read this way in the process (each
    mode's model_fn reads it again), with every name at DEBUG. It is a warning only when
    an encoder variable (`bert/...`) is left out, on either side: a new task head and
    unused pre-training heads are what fine-tuning expects."""
    missing = report.missing_in_checkpoint
    unused = report.unused_in_checkpoint
    text = (
        f"Initialized {len(report.loaded)} of {len(report.loaded) + len(missing)} model "
        f"variables from {init_checkpoint}"
    )
    if missing:
        text += f"; {len(missing)} new, trained from scratch: {_some_names(missing)}"
    if unused:
        text += f"; {len(unused)} checkpoint variables unused: {_some_names(unused)}"
    touches_encoder = any(name.startswith("bert/") for name in [*missing, *unused])
    if not bert_logging.is_first_time(f"checkpoint report {init_checkpoint} {missing} {unused}"):
        tf1.logging.debug("%s", text)
    elif touches_encoder:
        tf1.logging.warning("%s", text)
    else:
        tf1.logging.info("%s", text)
    for name in report.loaded:
        tf1.logging.debug("  from the checkpoint: %s", name)
    for name in missing:
        tf1.logging.debug("  not in the checkpoint: %s", name)
    for name in unused:
        tf1.logging.debug("  unused from the checkpoint: %s", name)


def _some_names(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


# ----------------------------------------------------------------------------------------
# Layers


def create_initializer(initializer_range: float = 0.02) -> tf1.initializers.truncated_normal:
    """The weight initializer of every BERT matrix: truncated normal, stddev `range`."""
    return tf1.truncated_normal_initializer(stddev=initializer_range)


def dropout(input_tensor: tf.Tensor, dropout_prob: float | None) -> tf.Tensor:
    """Drops each value with probability `dropout_prob` (not a keep probability)."""
    if not dropout_prob:
        return input_tensor
    return tf.nn.dropout(input_tensor, rate=dropout_prob)


def layer_norm(input_tensor: tf.Tensor, name: str | None = None) -> tf.Tensor:
    """Layer normalization over the last axis, computed in float32.

    Variables `<name or "LayerNorm">/beta` and `/gamma`, epsilon 1e-12, as in Google's
    checkpoints. Returns a tensor of the input's shape and dtype.
    """
    width = input_tensor.shape[-1]
    with tf1.variable_scope(name, default_name="LayerNorm"):
        beta = tf1.get_variable("beta", [width], initializer=tf1.zeros_initializer())
        gamma = tf1.get_variable("gamma", [width], initializer=tf1.ones_initializer())
        values = tf.cast(input_tensor, tf.float32)
        mean, variance = tf.nn.moments(values, axes=[-1], keepdims=True)
        normalized = tf.nn.batch_normalization(
            values, mean, variance, offset=beta, scale=gamma, variance_epsilon=1e-12
        )
    return tf.cast(normalized, input_tensor.dtype)


def layer_norm_and_dropout(
    input_tensor: tf.Tensor, dropout_prob: float | None, name: str | None = None
) -> tf.Tensor:
    """`layer_norm` followed by `dropout`; same shape as the input."""
    return dropout(layer_norm(input_tensor, name), dropout_prob)


def dense_layer(
    input_tensor: tf.Tensor,
    units: int,
    activation: Callable[[tf.Tensor], tf.Tensor] | None = None,
    name: str = "dense",
    initializer_range: float = 0.02,
) -> tf.Tensor:
    """A fully connected layer on `[rows, width]` inputs, giving `[rows, units]`.

    Variables `<name>/kernel` `[width, units]` and `<name>/bias` `[units]`, as
    `tf.layers.dense` named them in the original. Float32 variables are cast to the
    input's dtype, so the same code runs in mixed precision.
    """
    width = input_tensor.shape[-1]
    with tf1.variable_scope(name):
        kernel = tf1.get_variable(
            "kernel", [width, units], initializer=create_initializer(initializer_range)
        )
        bias = tf1.get_variable("bias", [units], initializer=tf1.zeros_initializer())
    output = tf.matmul(input_tensor, tf.cast(kernel, input_tensor.dtype))
    output = tf.nn.bias_add(output, tf.cast(bias, input_tensor.dtype))
    return activation(output) if activation is not None else output


def embedding_lookup(
    input_ids: tf.Tensor,
    vocab_size: int,
    embedding_size: int = 128,
    initializer_range: float = 0.02,
    word_embedding_name: str = "word_embeddings",
    use_one_hot_embeddings: bool = False,
) -> tuple[tf.Tensor, tf.Variable]:
    """Looks up word embeddings.

    Args:
      input_ids: int32 `[batch_size, seq_length]` (or with a trailing 1) word ids.
      vocab_size: rows of the table.
      embedding_size: width of the table.
      initializer_range: stddev of the table's initializer.
      word_embedding_name: the table's variable name.
      use_one_hot_embeddings: a one-hot matmul instead of a gather (faster on TPUs).

    Returns:
      `(embeddings [batch_size, seq_length, embedding_size], table [vocab_size,
      embedding_size])`.
    """
    if input_ids.shape.ndims == 3:
        input_ids = tf.squeeze(input_ids, axis=[-1])
    table = tf1.get_variable(
        word_embedding_name,
        [vocab_size, embedding_size],
        initializer=create_initializer(initializer_range),
    )
    if use_one_hot_embeddings:
        batch_size, seq_length = get_shape_list(input_ids, expected_rank=2)
        flat_ids = tf.reshape(input_ids, [-1])
        flat = tf.matmul(tf.one_hot(flat_ids, depth=vocab_size), table)
        output = tf.reshape(flat, [batch_size, seq_length, embedding_size])
    else:
        output = tf.gather(table, input_ids)
    return output, table


def embedding_postprocessor(
    input_tensor: tf.Tensor,
    use_token_type: bool = False,
    token_type_ids: tf.Tensor | None = None,
    token_type_vocab_size: int = 16,
    token_type_embedding_name: str = "token_type_embeddings",
    use_position_embeddings: bool = True,
    position_embedding_name: str = "position_embeddings",
    initializer_range: float = 0.02,
    max_position_embeddings: int = 512,
    dropout_prob: float = 0.1,
) -> tf.Tensor:
    """Adds token-type and position embeddings, then LayerNorm and dropout.

    Args:
      input_tensor: float `[batch_size, seq_length, width]` word embeddings.
      token_type_ids: int32 `[batch_size, seq_length]`; required with `use_token_type`.

    Returns:
      float `[batch_size, seq_length, width]`.
    """
    batch_size, seq_length, width = get_shape_list(input_tensor, expected_rank=3)
    output = input_tensor
    if use_token_type:
        if token_type_ids is None:
            raise ValueError("token_type_ids must be given when use_token_type is True")
        type_table = tf1.get_variable(
            token_type_embedding_name,
            [token_type_vocab_size, width],
            initializer=create_initializer(initializer_range),
        )
        # A one-hot matmul, as the original: the table is tiny and this is fast on TPUs.
        one_hot_types = tf.one_hot(tf.reshape(token_type_ids, [-1]), depth=token_type_vocab_size)
        type_embeddings = tf.matmul(one_hot_types, type_table)
        output += tf.reshape(type_embeddings, [batch_size, seq_length, width])
    if use_position_embeddings:
        check_length = tf.debugging.assert_less_equal(
            seq_length,
            max_position_embeddings,
            message="Sequence is longer than max_position_embeddings",
        )
        with tf.control_dependencies([check_length]):
            position_table = tf1.get_variable(
                position_embedding_name,
                [max_position_embeddings, width],
                initializer=create_initializer(initializer_range),
            )
            positions = tf.slice(position_table, [0, 0], [seq_length, -1])
        output += tf.expand_dims(positions, axis=0)
    return layer_norm_and_dropout(output, dropout_prob)


def create_attention_mask_from_input_mask(from_tensor: tf.Tensor, to_mask: tf.Tensor) -> tf.Tensor:
    """Turns a `[batch_size, to_seq_length]` 0/1 mask into the float attention mask
    `[batch_size, from_seq_length, to_seq_length]` (every query sees the same keys)."""
    from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
    batch_size, from_seq_length = from_shape[0], from_shape[1]
    to_seq_length = get_shape_list(to_mask, expected_rank=2)[1]
    keys = tf.cast(tf.reshape(to_mask, [batch_size, 1, to_seq_length]), tf.float32)
    return tf.ones([batch_size, from_seq_length, 1], dtype=tf.float32) * keys


def attention_layer(
    from_tensor: tf.Tensor,
    to_tensor: tf.Tensor,
    attention_mask: tf.Tensor | None = None,
    num_attention_heads: int = 1,
    size_per_head: int = 512,
    query_act: Callable | None = None,
    key_act: Callable | None = None,
    value_act: Callable | None = None,
    attention_probs_dropout_prob: float = 0.0,
    initializer_range: float = 0.02,
    do_return_2d_tensor: bool = False,
    batch_size: int | tf.Tensor | None = None,
    from_seq_length: int | tf.Tensor | None = None,
    to_seq_length: int | tf.Tensor | None = None,
) -> tf.Tensor:
    """Multi-head scaled dot-product attention from `from_tensor` to `to_tensor`.

    Args:
      from_tensor: `[batch_size, from_seq_length, from_width]`, or the 2-D
        `[batch_size * from_seq_length, from_width]` with the sizes passed explicitly.
      to_tensor: `[batch_size, to_seq_length, to_width]` or its 2-D form.
      attention_mask: `[batch_size, from_seq_length, to_seq_length]` of 1 (may attend)
        and 0 (masked, score pushed to -10000).

    Returns:
      `[batch_size, from_seq_length, heads * size_per_head]`, or with
      `do_return_2d_tensor` `[batch_size * from_seq_length, heads * size_per_head]`.
    """
    from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
    to_shape = get_shape_list(to_tensor, expected_rank=[2, 3])
    if len(from_shape) != len(to_shape):
        raise ValueError("from_tensor and to_tensor must have the same rank")
    if len(from_shape) == 3:
        batch_size, from_seq_length, to_seq_length = from_shape[0], from_shape[1], to_shape[1]
    elif batch_size is None or from_seq_length is None or to_seq_length is None:
        raise ValueError(
            "With rank-2 inputs, batch_size, from_seq_length and to_seq_length must be given"
        )
    width = num_attention_heads * size_per_head

    def project(tensor, name, activation):
        return dense_layer(reshape_to_matrix(tensor), width, activation, name, initializer_range)

    def split_heads(tensor, seq_length):
        # [batch * seq, heads * size] -> [batch, heads, seq, size]
        tensor = tf.reshape(tensor, [batch_size, seq_length, num_attention_heads, size_per_head])
        return tf.transpose(tensor, [0, 2, 1, 3])

    query = split_heads(project(from_tensor, "query", query_act), from_seq_length)
    key = split_heads(project(to_tensor, "key", key_act), to_seq_length)
    value = split_heads(project(to_tensor, "value", value_act), to_seq_length)

    # Scores and softmax in float32: in float16 the -10000 mask and large logits overflow.
    scores = tf.matmul(query, key, transpose_b=True)
    scores = tf.cast(scores, tf.float32) * (1.0 / math.sqrt(float(size_per_head)))
    if attention_mask is not None:
        mask = tf.expand_dims(tf.cast(attention_mask, tf.float32), axis=1)
        scores += (1.0 - mask) * -10000.0
    probs = tf.cast(tf.nn.softmax(scores), query.dtype)
    probs = dropout(probs, attention_probs_dropout_prob)

    context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])
    if do_return_2d_tensor:
        return tf.reshape(context, [batch_size * from_seq_length, width])
    return tf.reshape(context, [batch_size, from_seq_length, width])


def _self_attention(
    layer_input: tf.Tensor,
    attention_mask: tf.Tensor | None,
    num_attention_heads: int,
    hidden_size: int,
    attention_probs_dropout_prob: float,
    initializer_range: float,
    batch_size: int | tf.Tensor,
    seq_length: int | tf.Tensor,
) -> tf.Tensor:
    """Multi-headed self-attention of a layer's `[batch_size * seq_length, hidden_size]`
    input, under the variable scope `self` (BERT's and ALBERT's checkpoints both name it so);
    returns `[batch_size * seq_length, hidden_size]`."""
    with tf1.variable_scope("self"):
        return attention_layer(
            from_tensor=layer_input,
            to_tensor=layer_input,
            attention_mask=attention_mask,
            num_attention_heads=num_attention_heads,
            size_per_head=hidden_size // num_attention_heads,
            attention_probs_dropout_prob=attention_probs_dropout_prob,
            initializer_range=initializer_range,
            do_return_2d_tensor=True,
            batch_size=batch_size,
            from_seq_length=seq_length,
            to_seq_length=seq_length,
        )


def transformer_model(
    input_tensor: tf.Tensor,
    attention_mask: tf.Tensor | None = None,
    hidden_size: int = 768,
    num_hidden_layers: int = 12,
    num_attention_heads: int = 12,
    intermediate_size: int = 3072,
    intermediate_act_fn: Callable | None = gelu,
    hidden_dropout_prob: float = 0.1,
    attention_probs_dropout_prob: float = 0.1,
    initializer_range: float = 0.02,
    do_return_all_layers: bool = False,
) -> tf.Tensor | list[tf.Tensor]:
    """The Transformer encoder stack (post-LayerNorm blocks, as in BERT).

    Args:
      input_tensor: `[batch_size, seq_length, hidden_size]`.
      attention_mask: `[batch_size, seq_length, seq_length]` of 1/0.

    Returns:
      The last layer `[batch_size, seq_length, hidden_size]`, or the list of every
      layer's output with `do_return_all_layers`.
    """
    if hidden_size % num_attention_heads != 0:
        raise ValueError(
            f"hidden_size ({hidden_size}) is not a multiple of num_attention_heads "
            f"({num_attention_heads})"
        )
    input_shape = get_shape_list(input_tensor, expected_rank=3)
    batch_size, seq_length, input_width = input_shape
    if input_width != hidden_size:
        raise ValueError(f"Input width ({input_width}) differs from hidden_size ({hidden_size})")

    # The stack works on [batch * seq, hidden] matrices to avoid reshapes in every layer.
    layer_input = reshape_to_matrix(input_tensor)
    layer_outputs = []
    for index in range(num_hidden_layers):
        with tf1.variable_scope(f"layer_{index}"):
            with tf1.variable_scope("attention"):
                attended = _self_attention(
                    layer_input,
                    attention_mask,
                    num_attention_heads,
                    hidden_size,
                    attention_probs_dropout_prob,
                    initializer_range,
                    batch_size,
                    seq_length,
                )
                with tf1.variable_scope("output"):
                    attended = dense_layer(
                        attended, hidden_size, initializer_range=initializer_range
                    )
                    attended = dropout(attended, hidden_dropout_prob)
                    attended = layer_norm(attended + layer_input)
            with tf1.variable_scope("intermediate"):
                intermediate = dense_layer(
                    attended,
                    intermediate_size,
                    activation=intermediate_act_fn,
                    initializer_range=initializer_range,
                )
            with tf1.variable_scope("output"):
                output = dense_layer(intermediate, hidden_size, initializer_range=initializer_range)
                output = dropout(output, hidden_dropout_prob)
                output = layer_norm(output + attended)
        layer_outputs.append(output)
        layer_input = output

    if do_return_all_layers:
        return [reshape_from_matrix(output, input_shape) for output in layer_outputs]
    return reshape_from_matrix(layer_input, input_shape)


# ----------------------------------------------------------------------------------------
# ALBERT: factorized embeddings and layers that share weights (google-research/albert)


def albert_group_of_layer(layer_index: int, num_hidden_layers: int, num_hidden_groups: int) -> int:
    """The weight group a layer uses.

    Written with google-research/albert's float arithmetic: for some sizes (22 layers in
    22 groups, layer 15) it differs from the integer quotient, and the checkpoints follow it.
    """
    return int(layer_index / num_hidden_layers * num_hidden_groups)


def albert_block(
    layer_input: tf.Tensor,
    attention_mask: tf.Tensor | None,
    hidden_size: int,
    num_attention_heads: int,
    intermediate_size: int,
    intermediate_act_fn: Callable | None,
    hidden_dropout_prob: float,
    attention_probs_dropout_prob: float,
    initializer_range: float,
    batch_size: int | tf.Tensor,
    seq_length: int | tf.Tensor,
) -> tf.Tensor:
    """One attention + feed-forward block under ALBERT's names (post-LayerNorm, as BERT).

    Variables, relative to the current scope: `attention_1/self/{query,key,value}`,
    `attention_1/output/dense`, `LayerNorm` (after attention), `ffn_1/intermediate/dense`,
    `ffn_1/intermediate/output/dense`, `LayerNorm_1` (after the feed-forward layer).

    Args:
      layer_input: `[batch_size * seq_length, hidden_size]`.

    Returns:
      `[batch_size * seq_length, hidden_size]`.
    """
    with tf1.variable_scope("attention_1"):
        attended = _self_attention(
            layer_input,
            attention_mask,
            num_attention_heads,
            hidden_size,
            attention_probs_dropout_prob,
            initializer_range,
            batch_size,
            seq_length,
        )
        with tf1.variable_scope("output"):
            attended = dense_layer(attended, hidden_size, initializer_range=initializer_range)
            attended = dropout(attended, hidden_dropout_prob)
    # ALBERT's LayerNorms sit beside attention_1 and ffn_1, not inside them.
    attended = layer_norm(attended + layer_input, name="LayerNorm")
    with tf1.variable_scope("ffn_1"):
        with tf1.variable_scope("intermediate"):
            intermediate = dense_layer(
                attended,
                intermediate_size,
                activation=intermediate_act_fn,
                initializer_range=initializer_range,
            )
            with tf1.variable_scope("output"):
                output = dense_layer(intermediate, hidden_size, initializer_range=initializer_range)
        output = dropout(output, hidden_dropout_prob)
    return layer_norm(output + attended, name="LayerNorm_1")


def albert_transformer_model(
    input_tensor: tf.Tensor,
    attention_mask: tf.Tensor | None = None,
    hidden_size: int = 768,
    num_hidden_layers: int = 12,
    num_hidden_groups: int = 1,
    inner_group_num: int = 1,
    num_attention_heads: int = 12,
    intermediate_size: int = 3072,
    intermediate_act_fn: Callable | None = gelu,
    hidden_dropout_prob: float = 0.0,
    attention_probs_dropout_prob: float = 0.0,
    initializer_range: float = 0.02,
    do_return_all_layers: bool = False,
) -> tf.Tensor | list[tf.Tensor]:
    """ALBERT's encoder stack: layers in `num_hidden_groups` groups sharing weights.

    When the input is narrower than `hidden_size` (factorized embeddings) it is first
    projected by `embedding_hidden_mapping_in` (kernel `[embedding_size, hidden_size]`); at
    equal widths there is no projection, as in google-research/albert. Layer `l` runs the
    `inner_group_num` blocks of `transformer/group_<g>/inner_group_<i>` with
    `g = albert_group_of_layer(l, ...)`: the weights of a group exist once, however many
    layers use them.

    Args:
      input_tensor: `[batch_size, seq_length, embedding_size]`.
      attention_mask: `[batch_size, seq_length, seq_length]` of 1/0.

    Returns:
      The last block's output `[batch_size, seq_length, hidden_size]`, or with
      `do_return_all_layers` the output of every block (`num_hidden_layers *
      inner_group_num` of them), as google-research/albert returns them.
    """
    if hidden_size % num_attention_heads != 0:
        raise ValueError(
            f"hidden_size ({hidden_size}) is not a multiple of num_attention_heads "
            f"({num_attention_heads})"
        )
    batch_size, seq_length, input_width = get_shape_list(input_tensor, expected_rank=3)
    output_shape = [batch_size, seq_length, hidden_size]
    layer_input = reshape_to_matrix(input_tensor)
    if input_width != hidden_size:
        layer_input = dense_layer(
            layer_input,
            hidden_size,
            name="embedding_hidden_mapping_in",
            initializer_range=initializer_range,
        )
    block_outputs = []
    # AUTO_REUSE: layers of one group enter the same variable scope and find its weights.
    with tf1.variable_scope("transformer", reuse=tf1.AUTO_REUSE):
        for layer_index in range(num_hidden_layers):
            group = albert_group_of_layer(layer_index, num_hidden_layers, num_hidden_groups)
            with tf1.variable_scope(f"group_{group}"):
                for inner_index in range(inner_group_num):
                    with tf1.variable_scope(f"inner_group_{inner_index}"):
                        layer_input = albert_block(
                            layer_input,
                            attention_mask,
                            hidden_size,
                            num_attention_heads,
                            intermediate_size,
                            intermediate_act_fn,
                            hidden_dropout_prob,
                            attention_probs_dropout_prob,
                            initializer_range,
                            batch_size,
                            seq_length,
                        )
                    block_outputs.append(layer_input)
    if do_return_all_layers:
        return [reshape_from_matrix(output, output_shape) for output in block_outputs]
    return reshape_from_matrix(layer_input, output_shape)


# ----------------------------------------------------------------------------------------
# Shape helpers


def get_shape_list(
    tensor: tf.Tensor, expected_rank: int | Sequence[int] | None = None, name: str | None = None
) -> list[int | tf.Tensor]:
    """The tensor's shape as a list: Python ints where static, scalar tensors where not."""
    if expected_rank is not None:
        assert_rank(tensor, expected_rank, name)
    shape = tensor.shape.as_list()
    if all(dim is not None for dim in shape):
        return shape
    dynamic = tf.shape(tensor)
    return [dynamic[index] if dim is None else dim for index, dim in enumerate(shape)]


def reshape_to_matrix(input_tensor: tf.Tensor) -> tf.Tensor:
    """`[d0, ..., dn-1, width]` -> `[d0 * ... * dn-1, width]`."""
    ndims = input_tensor.shape.ndims
    if ndims < 2:
        raise ValueError(f"Expected a tensor of rank >= 2, got shape {input_tensor.shape}")
    if ndims == 2:
        return input_tensor
    return tf.reshape(input_tensor, [-1, input_tensor.shape[-1]])


def reshape_from_matrix(
    output_tensor: tf.Tensor, orig_shape_list: Sequence[int | tf.Tensor]
) -> tf.Tensor:
    """Undoes `reshape_to_matrix`: `[rows, width]` -> `orig_shape_list[:-1] + [width]`."""
    if len(orig_shape_list) == 2:
        return output_tensor
    width = get_shape_list(output_tensor)[-1]
    return tf.reshape(output_tensor, list(orig_shape_list[:-1]) + [width])


def assert_rank(
    tensor: tf.Tensor, expected_rank: int | Sequence[int], name: str | None = None
) -> None:
    """Raises ValueError when the tensor's static rank is not one of `expected_rank`."""
    allowed = {expected_rank} if isinstance(expected_rank, int) else set(expected_rank)
    actual = tensor.shape.ndims
    if actual not in allowed:
        label = name or getattr(tensor, "name", "tensor")
        raise ValueError(
            f"Tensor {label} has rank {actual} (shape {tensor.shape}); expected rank "
            f"{expected_rank}"
        )
