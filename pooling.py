"""Sentence vectors from BERT's layers, with bert-as-service's pooling strategies.

The strategies and their names are bert-as-service's (`-pooling_strategy`), over one or
several encoder layers (`-pooling_layer`, concatenated along the hidden axis in the order
given; -1 is the last layer, and bert-as-service's default -2 the second-to-last):

- `REDUCE_MEAN` (default): the average over the real tokens (`input_mask` 1), `[CLS]` and
  `[SEP]` included unless `mask_cls_sep`.
- `REDUCE_MAX`: the per-dimension maximum over the same tokens.
- `REDUCE_MEAN_MAX`: both, concatenated (`[mean, max]`, twice the width).
- `CLS_TOKEN` (alias `FIRST_TOKEN`): the vector of the first position, `[CLS]`.
- `SEP_TOKEN` (alias `LAST_TOKEN`): the vector of the last real token, the final `[SEP]`.
- `NONE`: every token's vector, padding (and `[CLS]` / `[SEP]` with `mask_cls_sep`) zeroed.

`mask_cls_sep` leaves `[CLS]` and every `[SEP]` out of the pooling, as bert-as-service's flag
of that name does. It changes only the pooling mask: bert-as-service also removes them from
the attention mask (it reuses one mask for both), which changes every other token's vector
too; here the encoder sees the same inputs with or without the flag. The `[SEP]`s are found
from the inputs alone (the last real token of each segment), so no vocabulary is needed in
the graph. `normalize` divides each vector by its L2 norm (what sentence-transformers'
`Normalize` does), per token for `NONE`.

Everything is a graph op over `[batch, seq_length]` inputs whose length may be unknown until
run time, so a served export pads each batch to its longest member and still gives every
sentence the same vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from absl import flags

REDUCE_MEAN = "REDUCE_MEAN"
REDUCE_MAX = "REDUCE_MAX"
REDUCE_MEAN_MAX = "REDUCE_MEAN_MAX"
CLS_TOKEN = "CLS_TOKEN"
SEP_TOKEN = "SEP_TOKEN"
NONE = "NONE"
STRATEGIES = (REDUCE_MEAN, REDUCE_MAX, REDUCE_MEAN_MAX, CLS_TOKEN, SEP_TOKEN, NONE)
# bert-as-service accepts these two names for the same strategies.
ALIASES = {"FIRST_TOKEN": CLS_TOKEN, "LAST_TOKEN": SEP_TOKEN}
DEFAULT_LAYERS = "-2"

# The name of the pooled output in the signature of an encoder export.
OUTPUT_KEY = "encodes"

# Far below any activation; a masked position never wins a max.
_MAX_MASK_OFFSET = 1e30


def canonical_strategy(strategy: str) -> str:
    """`strategy` (any case, or a bert-as-service alias) as one of `STRATEGIES`."""
    name = ALIASES.get(strategy.upper(), strategy.upper())
    if name not in STRATEGIES:
        raise ValueError(
            f"pooling strategy {strategy!r}: expected one of {', '.join(STRATEGIES)} "
            f"(or {', '.join(ALIASES)})"
        )
    return name


def parse_layers(layers: str | Sequence[int], num_hidden_layers: int) -> list[int]:
    """`"-1,-2"` (or a list of ints) as layer indexes, each checked to exist."""
    if isinstance(layers, str):
        parts = [part.strip() for part in layers.replace(" ", ",").split(",") if part.strip()]
    else:
        parts = list(layers)
    if not parts:
        raise ValueError(f"pooling layers {layers!r}: name at least one layer")
    indexes = []
    for part in parts:
        try:
            index = int(part)
        except ValueError:
            raise ValueError(f"pooling layers {layers!r}: {part!r} is not an integer") from None
        if not -num_hidden_layers <= index < num_hidden_layers:
            raise ValueError(
                f"pooling layers {layers!r}: layer {index} does not exist; the model has "
                f"{num_hidden_layers} layers (indexes {-num_hidden_layers} to "
                f"{num_hidden_layers - 1})"
            )
        indexes.append(index)
    return indexes


def cls_sep_mask(input_mask: tf.Tensor, segment_ids: tf.Tensor) -> tf.Tensor:
    """1.0 at `[CLS]` (position 0) and at each `[SEP]` (the last real token of a segment),
    else 0.0; float32 `[batch, seq_length]`."""
    real = tf.cast(input_mask, tf.float32)
    segments = tf.cast(segment_ids, tf.int32)
    next_real = tf.pad(real[:, 1:], [[0, 0], [0, 1]])
    next_segment = tf.pad(segments[:, 1:], [[0, 0], [0, 1]], constant_values=-1)
    ends_segment = tf.cast(
        tf.logical_or(tf.equal(next_real, 0.0), tf.not_equal(next_segment, segments)),
        tf.float32,
    )
    first = tf.one_hot(tf.zeros_like(real[:, 0], tf.int32), tf.shape(real)[1])
    return tf.maximum(first, ends_segment) * real


def pool(
    layers: Sequence[tf.Tensor],
    input_mask: tf.Tensor,
    segment_ids: tf.Tensor,
    strategy: str = REDUCE_MEAN,
    mask_cls_sep: bool = False,
    normalize: bool = False,
) -> tf.Tensor:
    """The vectors of `strategy` (see the module's docstring) over `layers` concatenated.

    Args:
      layers: float `[batch, seq_length, hidden]` each (encoder layers, in the order wanted).
      input_mask: int `[batch, seq_length]`, 1 for real tokens.
      segment_ids: int `[batch, seq_length]` (used to find the `[SEP]`s for `mask_cls_sep`).

    Returns:
      float32 `[batch, width]` (`width` = hidden x len(layers), twice that for
      `REDUCE_MEAN_MAX`), or `[batch, seq_length, width]` for `NONE`.
    """
    strategy = canonical_strategy(strategy)
    sequence = tf.concat([tf.cast(layer, tf.float32) for layer in layers], axis=-1)
    mask = tf.cast(input_mask, tf.float32)
    if mask_cls_sep:
        mask = mask * (1.0 - cls_sep_mask(input_mask, segment_ids))
    if strategy == REDUCE_MEAN:
        pooled = masked_mean(sequence, mask)
    elif strategy == REDUCE_MAX:
        pooled = masked_max(sequence, mask)
    elif strategy == REDUCE_MEAN_MAX:
        pooled = tf.concat([masked_mean(sequence, mask), masked_max(sequence, mask)], axis=-1)
    elif strategy == CLS_TOKEN:
        pooled = sequence[:, 0, :]
    elif strategy == SEP_TOKEN:
        last = tf.cast(tf.reduce_sum(tf.cast(input_mask, tf.int32), axis=1), tf.int32) - 1
        pooled = tf.gather(sequence, tf.maximum(last, 0), axis=1, batch_dims=1)
    else:
        pooled = sequence * mask[:, :, tf.newaxis]
    if normalize:
        # An all-zero vector (a masked token of NONE) stays zero instead of NaN.
        pooled = tf.math.l2_normalize(pooled, axis=-1, epsilon=1e-12)
    return pooled


def masked_mean(sequence: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`[batch, width]` mean of `sequence` `[batch, seq_length, width]` over positions where
    `mask` `[batch, seq_length]` is 1; a row with nothing to average gives zeros."""
    weights = mask[:, :, tf.newaxis]
    total = tf.reduce_sum(sequence * weights, axis=1)
    return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-10)


def masked_max(sequence: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`[batch, width]` maximum of `sequence` over positions where `mask` is 1."""
    return tf.reduce_max(sequence - (1.0 - mask[:, :, tf.newaxis]) * _MAX_MASK_OFFSET, axis=1)


# ------------------------------------------------------------------------------- the flags


def define_flags() -> None:
    """--pooling_strategy, --pooling_layer, --mask_cls_sep, --normalize_vectors: the sentence
    vectors an encoder export computes in its graph (output `encodes`)."""
    flags.DEFINE_enum(
        "pooling_strategy",
        REDUCE_MEAN,
        list(STRATEGIES) + list(ALIASES),
        "bert-as-service's pooling of the sentence vectors `encodes` an encoder export "
        "computes (and, with --pooled_output_file, what extract_features.py writes): "
        "REDUCE_MEAN, REDUCE_MAX, REDUCE_MEAN_MAX, CLS_TOKEN, SEP_TOKEN or NONE (token "
        "vectors).",
    )
    flags.DEFINE_string(
        "pooling_layer",
        DEFAULT_LAYERS,
        "The encoder layer(s) pooled, comma-separated and concatenated: -1 is the last, -2 "
        "(bert-as-service's default) the second-to-last.",
    )
    flags.DEFINE_bool(
        "mask_cls_sep",
        False,
        "Leave [CLS] and [SEP] out of the pooling (their vectors are zeroed for NONE).",
    )
    flags.DEFINE_bool("normalize_vectors", False, "Divide each pooled vector by its L2 norm.")


def settings_from_flags(num_hidden_layers: int) -> dict:
    """The pooling flags as `pool`'s keyword arguments plus `layers` (checked indexes):
    also what an export records in its metadata under `pooling`."""
    values = flags.FLAGS
    return {
        "strategy": canonical_strategy(values.pooling_strategy),
        "layers": parse_layers(values.pooling_layer, num_hidden_layers),
        "mask_cls_sep": bool(values.mask_cls_sep),
        "normalize": bool(values.normalize_vectors),
    }


def pool_encoder_layers(
    all_layers: Sequence[tf.Tensor],
    input_mask: tf.Tensor,
    segment_ids: tf.Tensor,
    settings: dict,
) -> tf.Tensor:
    """`pool` over the layers `settings["layers"]` picks from `all_layers` (every encoder
    layer, first to last); `settings` as `settings_from_flags` returns it."""
    return pool(
        [all_layers[index] for index in settings["layers"]],
        input_mask,
        segment_ids,
        strategy=settings["strategy"],
        mask_cls_sep=settings["mask_cls_sep"],
        normalize=settings["normalize"],
    )
