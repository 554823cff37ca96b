r"""Converts BERT weights between transformers' safetensors layout and Google's TF checkpoints.

safetensors -> TF (a directory of `model.safetensors`, `config.json` and `vocab.txt`, as
transformers' `BertModel` or `BertForPreTraining` saves it):

  python convert_checkpoint.py --to=tf --input_dir=all-MiniLM-L6-v2 --output_dir=minilm_tf

writes `bert_model.ckpt.{index,data-00000-of-00001}`, `bert_config.json` and `vocab.txt`,
ready for `--init_checkpoint=minilm_tf/bert_model.ckpt --bert_config_file=...`.

TF -> safetensors (a directory of `bert_model.ckpt.*` or the newest checkpoint of a training
run, plus `bert_config.json` and `vocab.txt`):

  python convert_checkpoint.py --to=safetensors --input_dir=uncased_L-12_H-768_A-12 \
      --output_dir=bert_hf

writes `model.safetensors`, a transformers `config.json` and `vocab.txt`.

A fine-tuning run converts from its --output_dir (where the scripts write bert_config.json,
the vocab and bert_export.json when they start) or its --export_dir, to the transformers
class of its task:

  python convert_checkpoint.py --to=safetensors --input_dir=my_finetuned_run --output_dir=hf_out

run_classifier.py's `output_weights` `[num_labels, hidden]` and `output_bias` become
`BertForSequenceClassification`'s `classifier.weight` / `.bias` (its config.json gets
num_labels, id2label / label2id from the run's labels, and problem_type from its task
kind); run_squad.py's `cls/squad/output_*` `[2, hidden]` `BertForQuestionAnswering`'s
`qa_outputs.*`; run_ner.py's head `BertForTokenClassification`'s `classifier.*` (a CRF is
refused: transformers has no place for its transitions); run_multiple_choice.py's
`[1, hidden]` head `BertForMultipleChoice`'s `classifier.*`. ALBERT gives the `Albert...`
classes alike.

ALBERT (transformers' `AlbertModel` / `AlbertForPreTraining`, model_type "albert", with
`spiece.model`) converts the same way to google-research/albert's layout
(`model.ckpt-best.*`, `albert_config.json`, `spiece.model`) and back:

  python convert_checkpoint.py --to=tf --input_dir=albert-base-v2 --output_dir=albert_tf
  python convert_checkpoint.py --to=safetensors --input_dir=albert_base \
      --output_dir=albert_hf

transformers' `encoder.albert_layer_groups.<g>.albert_layers.<i>.attention.{query,key,value,
dense,LayerNorm}`, `.ffn`, `.ffn_output`, `.full_layer_layer_norm` are Google's
`bert/encoder/transformer/group_<g>/inner_group_<i>/attention_1/self/{query,key,value}`,
`attention_1/output/dense`, `LayerNorm`, `ffn_1/intermediate/dense`,
`ffn_1/intermediate/output/dense`, `LayerNorm_1`; `predictions.*` is `cls/predictions/*` and
`sop_classifier.classifier` is `cls/seq_relationship/output_*`.

Every tensor is mapped one to one; a tensor the converter does not know, or a required one
that is missing, stops it with a list of the names. Dense kernels are transposed (PyTorch
stores `[out, in]`, TensorFlow `[in, out]`). The activation name is translated so the
numbers do not change: transformers' "gelu" is the exact erf GELU (our "gelu_exact") and its
"gelu_new" is the tanh approximation (our "gelu"). The output directory appears whole or not
at all: it is built beside its final place and renamed into it.
"""

from __future__ import annotations

import bert_logging  # noqa: F401  (imports TensorFlow without its start-up noise)

import collections
import dataclasses
import json
import os
import re
import shutil
import struct

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

import atomic_files
import classifier_data
import export
import finetuning
import flag_help
import input_files
import modeling
import tokenization

tf1 = tf.compat.v1

FLAGS = flags.FLAGS

CHECKPOINT_NAME = "bert_model.ckpt"
# google-research/albert's releases name their files so.
ALBERT_CHECKPOINT_NAME = "model.ckpt-best"
ALBERT_CONFIG_NAME = "albert_config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
HF_CONFIG_NAME = "config.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
BERT_CONFIG_NAME = "bert_config.json"
VOCAB_NAME = "vocab.txt"
# The SentencePiece model: transformers' AlbertTokenizer looks for spiece.model; Google's
# ALBERT releases ship 30k-clean.model.
SPM_NAME = "spiece.model"
_RELEASED_SPM_NAMES = (SPM_NAME, "30k-clean.model")

# transformers' names of activations -> ours, chosen so the computed function is the same.
_HF_TO_OUR_ACTIVATION = {
    "gelu": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_fast": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}
_OUR_TO_HF_ACTIVATION = {
    "gelu": "gelu_new",
    "gelu_new": "gelu_new",
    "gelu_exact": "gelu",
    "gelu_erf": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}

# transformers' BertConfig defaults, applied as transformers applies them to a config.json
# that leaves a key out.
_HF_CONFIG_DEFAULTS = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
}
# transformers' AlbertConfig defaults (an ALBERT-xxlarge), likewise.
_HF_ALBERT_CONFIG_DEFAULTS = {
    "vocab_size": 30000,
    "embedding_size": 128,
    "hidden_size": 4096,
    "num_hidden_layers": 12,
    "num_hidden_groups": 1,
    "num_attention_heads": 64,
    "intermediate_size": 16384,
    "inner_group_num": 1,
    "hidden_act": "gelu_new",
    "hidden_dropout_prob": 0,
    "attention_probs_dropout_prob": 0,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
}
_SHARED_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
)
# modeling.layer_norm uses this epsilon; another one would change every activation.
_LAYER_NORM_EPSILON = 1e-12

# Buffers transformers recomputes from the config; they carry no learned weights.
_IGNORED_HF_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
# Training state in a TF checkpoint (global step, optimizer slots, loss scaling, gradient
# accumulation): not part of the model.
_TRAINING_STATE_PATTERN = re.compile(
    r"^(global_step|loss_scale|loss_scale_finite_steps|gradient_accumulation_step)$"
    r"|/(adam_m|adam_v|lamb_m|lamb_v|gradient_accumulator)$"
)
# transformers' masked-LM head of BERT and of ALBERT. Its decoder is tied to the word
# embeddings and its bias; Google's format has no copy of either.
_HF_BERT_MLM = "cls.predictions"
_HF_ALBERT_MLM = "predictions"
_HF_MLM_BIAS = _HF_BERT_MLM + ".bias"
# transformers' AlbertModel always projects the embeddings; google-research/albert only
# when embedding_size differs from hidden_size.
_HF_ALBERT_MAPPING = "encoder.embedding_hidden_mapping_in"

# The parts of a BERT checkpoint. The encoder is required; each other part is either
# present whole or absent.
ENCODER, POOLER, MASKED_LM, NEXT_SENTENCE = "encoder", "pooler", "masked_lm", "next_sentence"

TensorSpec = collections.namedtuple(
    "TensorSpec", ["hf_name", "google_name", "transpose", "google_shape", "part"]
)


# ----------------------------------------------------------------------------------------
# The name map


def _dense_specs(hf_prefix, google_prefix, in_width, out_width, part):
    return [
        TensorSpec(
            f"{hf_prefix}.weight", f"{google_prefix}/kernel", True, (in_width, out_width), part
        ),
        TensorSpec(f"{hf_prefix}.bias", f"{google_prefix}/bias", False, (out_width,), part),
    ]


def _layer_norm_specs(hf_prefix, google_prefix, width, part):
    return [
        TensorSpec(f"{hf_prefix}.weight", f"{google_prefix}/gamma", False, (width,), part),
        TensorSpec(f"{hf_prefix}.bias", f"{google_prefix}/beta", False, (width,), part),
    ]


def _embedding_specs(config: modeling.BertConfig, width: int) -> list[TensorSpec]:
    tables = (
        ("word_embeddings", config.vocab_size),
        ("position_embeddings", config.max_position_embeddings),
        ("token_type_embeddings", config.type_vocab_size),
    )
    specs = [
        TensorSpec(
            f"embeddings.{table}.weight", f"bert/embeddings/{table}", False, (rows, width), ENCODER
        )
        for table, rows in tables
    ]
    return specs + _layer_norm_specs(
        "embeddings.LayerNorm", "bert/embeddings/LayerNorm", width, ENCODER
    )


def _sentence_pair_specs(hf_prefix: str, hidden: int) -> list[TensorSpec]:
    # Google multiplies by output_weights transposed, so it is stored [2, hidden] like
    # PyTorch's Linear weight: no transpose here.
    return [
        TensorSpec(
            f"{hf_prefix}.weight",
            "cls/seq_relationship/output_weights",
            False,
            (2, hidden),
            NEXT_SENTENCE,
        ),
        TensorSpec(
            f"{hf_prefix}.bias", "cls/seq_relationship/output_bias", False, (2,), NEXT_SENTENCE
        ),
    ]


def tensor_specs(config: modeling.BertConfig) -> list[TensorSpec]:
    """Every tensor a BERT (or, for an ALBERT config, an ALBERT) of `config` can have, in
    both namings.

    `hf_name` is transformers' name without the `bert.` (`albert.`) prefix; `google_shape`
    is the shape in the TF checkpoint (a transposed kernel has the reverse shape in PyTorch).
    """
    if config.is_albert():
        return albert_tensor_specs(config)
    hidden, inner = config.hidden_size, config.intermediate_size
    specs = _embedding_specs(config, hidden)
    for index in range(config.num_hidden_layers):
        hf, google = f"encoder.layer.{index}", f"bert/encoder/layer_{index}"
        for projection in ("query", "key", "value"):
            specs += _dense_specs(
                f"{hf}.attention.self.{projection}",
                f"{google}/attention/self/{projection}",
                hidden,
                hidden,
                ENCODER,
            )
        specs += _dense_specs(
            f"{hf}.attention.output.dense",
            f"{google}/attention/output/dense",
            hidden,
            hidden,
            ENCODER,
        )
        specs += _layer_norm_specs(
            f"{hf}.attention.output.LayerNorm",
            f"{google}/attention/output/LayerNorm",
            hidden,
            ENCODER,
        )
        specs += _dense_specs(
            f"{hf}.intermediate.dense", f"{google}/intermediate/dense", hidden, inner, ENCODER
        )
        specs += _dense_specs(
            f"{hf}.output.dense", f"{google}/output/dense", inner, hidden, ENCODER
        )
        specs += _layer_norm_specs(
            f"{hf}.output.LayerNorm", f"{google}/output/LayerNorm", hidden, ENCODER
        )
    specs += _dense_specs("pooler.dense", "bert/pooler/dense", hidden, hidden, POOLER)
    specs += _dense_specs(
        "cls.predictions.transform.dense",
        "cls/predictions/transform/dense",
        hidden,
        hidden,
        MASKED_LM,
    )
    specs += _layer_norm_specs(
        "cls.predictions.transform.LayerNorm",
        "cls/predictions/transform/LayerNorm",
        hidden,
        MASKED_LM,
    )
    specs.append(
        TensorSpec(
            _HF_MLM_BIAS, "cls/predictions/output_bias", False, (config.vocab_size,), MASKED_LM
        )
    )
    return specs + _sentence_pair_specs("cls.seq_relationship", hidden)


def albert_tensor_specs(config: modeling.BertConfig) -> list[TensorSpec]:
    """Every tensor of an ALBERT: transformers' AlbertModel / AlbertForPreTraining names
    (without `albert.`) and google-research/albert's.

    transformers' `embedding_hidden_mapping_in` is listed only when the widths differ, as
    Google's exists only then (see `_drop_identity_mapping`).
    """
    embedding, hidden, inner = config.embedding_width, config.hidden_size, config.intermediate_size
    specs = _embedding_specs(config, embedding)
    if embedding != hidden:
        specs += _dense_specs(
            _HF_ALBERT_MAPPING,
            "bert/encoder/embedding_hidden_mapping_in",
            embedding,
            hidden,
            ENCODER,
        )
    for group in range(config.hidden_groups):
        for index in range(config.inner_groups):
            hf = f"encoder.albert_layer_groups.{group}.albert_layers.{index}"
            google = f"bert/encoder/transformer/group_{group}/inner_group_{index}"
            for projection in ("query", "key", "value"):
                specs += _dense_specs(
                    f"{hf}.attention.{projection}",
                    f"{google}/attention_1/self/{projection}",
                    hidden,
                    hidden,
                    ENCODER,
                )
            specs += _dense_specs(
                f"{hf}.attention.dense",
                f"{google}/attention_1/output/dense",
                hidden,
                hidden,
                ENCODER,
            )
            specs += _layer_norm_specs(
                f"{hf}.attention.LayerNorm", f"{google}/LayerNorm", hidden, ENCODER
            )
            specs += _dense_specs(
                f"{hf}.ffn", f"{google}/ffn_1/intermediate/dense", hidden, inner, ENCODER
            )
            specs += _dense_specs(
                f"{hf}.ffn_output",
                f"{google}/ffn_1/intermediate/output/dense",
                inner,
                hidden,
                ENCODER,
            )
            specs += _layer_norm_specs(
                f"{hf}.full_layer_layer_norm", f"{google}/LayerNorm_1", hidden, ENCODER
            )
    specs += _dense_specs("pooler", "bert/pooler/dense", hidden, hidden, POOLER)
    mlm = _HF_ALBERT_MLM
    specs += _dense_specs(
        f"{mlm}.dense", "cls/predictions/transform/dense", hidden, embedding, MASKED_LM
    )
    specs += _layer_norm_specs(
        f"{mlm}.LayerNorm", "cls/predictions/transform/LayerNorm", embedding, MASKED_LM
    )
    specs.append(
        TensorSpec(
            f"{mlm}.bias", "cls/predictions/output_bias", False, (config.vocab_size,), MASKED_LM
        )
    )
    return specs + _sentence_pair_specs("sop_classifier.classifier", hidden)


def _hf_shape(spec: TensorSpec) -> tuple[int, ...]:
    return tuple(reversed(spec.google_shape)) if spec.transpose else spec.google_shape


def _check_parts_complete(present: set[str], specs: list[TensorSpec], name_of, source: str):
    """Raises ValueError when the encoder, or a part that is partly there, lacks tensors.

    Returns the set of parts present.
    """
    parts_seen = {spec.part for spec in specs if name_of(spec) in present} | {ENCODER}
    missing = [
        name_of(spec) for spec in specs if spec.part in parts_seen and name_of(spec) not in present
    ]
    if missing:
        raise ValueError(f"{source} lacks {len(missing)} required tensors: " + ", ".join(missing))
    if POOLER not in parts_seen:
        logging.warning(
            "%s has no pooler weights: whatever loads the converted model will initialize "
            "its pooler afresh",
            source,
        )
    return parts_seen


def _check_shapes(tensors: dict[str, np.ndarray], specs, name_of, shape_of, source, config_src):
    mismatched = [
        f"{name_of(spec)} {list(tensors[name_of(spec)].shape)} (config gives "
        f"{list(shape_of(spec))})"
        for spec in specs
        if name_of(spec) in tensors and tuple(tensors[name_of(spec)].shape) != shape_of(spec)
    ]
    if mismatched:
        raise ValueError(
            f"Tensors of {source} do not fit the sizes in {config_src}: " + "; ".join(mismatched)
        )


# ----------------------------------------------------------------------------------------
# safetensors -> Google names


def _model_prefix(config: modeling.BertConfig) -> str:
    """The prefix of encoder tensors in transformers' task models."""
    return "albert." if config.is_albert() else "bert."


def _canonical_hf_name(name: str, model_prefix: str = "bert.") -> str:
    """Drops the `bert.` (`albert.`) prefix of task models and renames old LayerNorm
    gamma/beta."""
    if name.startswith(model_prefix):
        name = name[len(model_prefix) :]
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    return re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)


def _canonical_hf_tensors(
    tensors: dict[str, np.ndarray], source: str, model_prefix: str = "bert."
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Renames to canonical names and drops the buffers transformers recomputes.

    Returns `(canonical name -> array, canonical name -> name in the file)`.

    Raises:
      ValueError: two names in the file give the same canonical name.
    """
    canonical: dict[str, np.ndarray] = {}
    original_of: dict[str, str] = {}
    for name, value in tensors.items():
        new_name = _canonical_hf_name(name, model_prefix)
        if new_name in _IGNORED_HF_BUFFERS:
            logging.info("Ignoring %s: a buffer transformers rebuilds, not a weight", name)
            continue
        if new_name in canonical:
            raise ValueError(
                f"{source} holds both {original_of[new_name]} and {name}, which name the same "
                "tensor"
            )
        canonical[new_name] = value
        original_of[new_name] = name
    return canonical, original_of


def _fold_tied_decoder(
    tensors: dict[str, np.ndarray], source: str, mlm_prefix: str = _HF_BERT_MLM
) -> dict[str, np.ndarray]:
    """Removes transformers' copies of tied tensors after checking they are true copies.

    Google's masked-LM head multiplies by the word embeddings and has one output bias, so an
    untied decoder weight cannot be represented and is refused rather than lost.
    `mlm_prefix` is the head's name: `cls.predictions` (BERT) or `predictions` (ALBERT).
    """
    tensors = dict(tensors)
    decoder_weight_name = f"{mlm_prefix}.decoder.weight"
    decoder_bias_name = f"{mlm_prefix}.decoder.bias"
    bias_name = f"{mlm_prefix}.bias"
    decoder_weight = tensors.pop(decoder_weight_name, None)
    if decoder_weight is not None:
        embeddings = tensors.get("embeddings.word_embeddings.weight")
        if embeddings is None or not np.array_equal(decoder_weight, embeddings):
            raise ValueError(
                f"{source}: {decoder_weight_name} differs from the word embeddings; Google's "
                "format ties them, so this masked-LM head cannot be converted"
            )
    decoder_bias = tensors.pop(decoder_bias_name, None)
    if decoder_bias is not None:
        bias = tensors.setdefault(bias_name, decoder_bias)
        if not np.array_equal(bias, decoder_bias):
            raise ValueError(
                f"{source}: {decoder_bias_name} differs from {bias_name}; Google's format "
                "has one output bias"
            )
    return tensors


def _albert_has_no_mapping(config: modeling.BertConfig) -> bool:
    return config.is_albert() and config.embedding_width == config.hidden_size


def _drop_identity_mapping(
    tensors: dict[str, np.ndarray], config: modeling.BertConfig, source: str
) -> dict[str, np.ndarray]:
    """Removes transformers' `embedding_hidden_mapping_in` of an ALBERT whose embedding and
    hidden widths are equal, where Google's model has none, when it is the identity (as
    `identity_mapping` writes it); any other projection would be lost, so it is refused."""
    if not _albert_has_no_mapping(config):
        return tensors
    tensors = dict(tensors)
    weight = tensors.pop(_HF_ALBERT_MAPPING + ".weight", None)
    bias = tensors.pop(_HF_ALBERT_MAPPING + ".bias", None)
    if weight is None and bias is None:
        return tensors
    width = config.hidden_size
    if (
        weight is None
        or bias is None
        or not np.array_equal(weight, np.eye(width, dtype=weight.dtype))
        or np.any(bias)
    ):
        raise ValueError(
            f"{source}: embedding_size equals hidden_size ({width}), where "
            f"google-research/albert has no {_HF_ALBERT_MAPPING}, and this one is not the "
            "identity, so it cannot be converted"
        )
    return tensors


def identity_mapping(config: modeling.BertConfig) -> dict[str, np.ndarray]:
    """transformers' `embedding_hidden_mapping_in` that computes what Google's ALBERT does
    when the widths are equal (no projection): the identity, `[hidden, hidden]`, and zeros."""
    width = config.hidden_size
    return {
        _HF_ALBERT_MAPPING + ".weight": np.eye(width, dtype=np.float32),
        _HF_ALBERT_MAPPING + ".bias": np.zeros([width], np.float32),
    }


def _as_float32(name: str, value: np.ndarray) -> np.ndarray:
    if value.dtype == np.float32:
        return value
    if not np.issubdtype(value.dtype, np.floating):
        raise ValueError(f"Tensor {name} has dtype {value.dtype}; expected floating point")
    logging.info("Casting %s from %s to float32", name, value.dtype)
    return value.astype(np.float32)


def safetensors_to_google(
    tensors: dict[str, np.ndarray],
    config: modeling.BertConfig,
    source: str = "safetensors file",
    config_source: str = "config",
) -> dict[str, np.ndarray]:
    """Maps transformers-named tensors to Google's variable names, as float32.

    Args:
      tensors: name -> array as stored by transformers (`BertModel`, `BertForPreTraining`,
        with or without the `bert.` prefix; for an ALBERT config `AlbertModel`,
        `AlbertForPreTraining`, with or without `albert.`). Kernels are `[out_width,
        in_width]`.
      config: sizes to check every shape against.
      source, config_source: names used in error messages.

    Returns:
      Google name -> float32 array; kernels `[in_width, out_width]`.

    Raises:
      ValueError: a tensor is unknown, required but missing, or of the wrong shape.
    """
    canonical, original_of = _canonical_hf_tensors(tensors, source, _model_prefix(config))
    mlm_prefix = _HF_ALBERT_MLM if config.is_albert() else _HF_BERT_MLM
    tensors = _fold_tied_decoder(canonical, source, mlm_prefix)
    tensors = _drop_identity_mapping(tensors, config, source)
    specs = tensor_specs(config)
    known = {spec.hf_name for spec in specs}
    unknown = sorted(original_of[name] for name in set(tensors) - known)
    if unknown:
        raise ValueError(
            f"{source} holds {len(unknown)} tensors with no Google {_family(config)} "
            "counterpart: " + ", ".join(unknown)
        )
    parts = _check_parts_complete(set(tensors), specs, lambda spec: spec.hf_name, source)
    _check_shapes(tensors, specs, lambda spec: spec.hf_name, _hf_shape, source, config_source)
    converted = {}
    for spec in specs:
        if spec.part in parts:
            value = _as_float32(spec.hf_name, tensors[spec.hf_name])
            converted[spec.google_name] = np.ascontiguousarray(value.T) if spec.transpose else value
    return converted


# ----------------------------------------------------------------------------------------
# Google names -> safetensors

# Which transformers class loads a file with these heads without warnings.
_ARCHITECTURE_FOR_HEADS = {
    frozenset(): "BertModel",
    frozenset({MASKED_LM}): "BertForMaskedLM",
    frozenset({NEXT_SENTENCE}): "BertForNextSentencePrediction",
    frozenset({MASKED_LM, NEXT_SENTENCE}): "BertForPreTraining",
}
# transformers has no ALBERT class with the sentence-order head alone; AlbertForPreTraining
# loads it and initializes the masked-LM head.
_ALBERT_ARCHITECTURE_FOR_HEADS = {
    frozenset(): "AlbertModel",
    frozenset({MASKED_LM}): "AlbertForMaskedLM",
    frozenset({NEXT_SENTENCE}): "AlbertForPreTraining",
    frozenset({MASKED_LM, NEXT_SENTENCE}): "AlbertForPreTraining",
}


def _family(config: modeling.BertConfig) -> str:
    return "ALBERT" if config.is_albert() else "BERT"


def google_to_safetensors(
    variables: dict[str, np.ndarray],
    config: modeling.BertConfig,
    source: str = "TF checkpoint",
    config_source: str = "bert_config.json",
) -> tuple[dict[str, np.ndarray], str]:
    """Maps Google-named variables to transformers' names.

    Args:
      variables: Google name -> array, as in a TF checkpoint. Training state (global step,
        optimizer slots) is ignored.
      config: sizes to check every shape against.

    Returns:
      `(tensors, architecture)`: transformers name -> array (kernels `[out_width,
      in_width]`; a `bert.` (`albert.`) prefix when there are heads, as transformers saves
      task models), and the transformers class that matches the heads found. An ALBERT
      whose widths are equal gets an identity `embedding_hidden_mapping_in`, which
      transformers' AlbertModel always has.

    Raises:
      ValueError: a variable is unknown, required but missing, or of the wrong shape.
    """
    weights = {}
    for name, value in variables.items():
        if _TRAINING_STATE_PATTERN.search(name):
            logging.info("Ignoring %s: training state, not a weight", name)
        else:
            weights[name] = value
    specs = tensor_specs(config)
    unknown = sorted(set(weights) - {spec.google_name for spec in specs})
    if unknown:
        raise ValueError(
            f"{source} holds {len(unknown)} variables this converter does not map: "
            + ", ".join(unknown)
        )
    parts = _check_parts_complete(set(weights), specs, lambda spec: spec.google_name, source)
    _check_shapes(
        weights,
        specs,
        lambda spec: spec.google_name,
        lambda spec: spec.google_shape,
        source,
        config_source,
    )
    heads = frozenset(parts & {MASKED_LM, NEXT_SENTENCE})
    encoder_tensors = identity_mapping(config) if _albert_has_no_mapping(config) else {}
    tensors = {}
    for spec in specs:
        if spec.part not in parts:
            continue
        value = weights[spec.google_name]
        target = encoder_tensors if spec.part in (ENCODER, POOLER) else tensors
        target[spec.hf_name] = np.ascontiguousarray(value.T) if spec.transpose else value
    prefix = _model_prefix(config) if heads else ""
    tensors.update((prefix + name, value) for name, value in encoder_tensors.items())
    architectures = (
        _ALBERT_ARCHITECTURE_FOR_HEADS if config.is_albert() else _ARCHITECTURE_FOR_HEADS
    )
    return tensors, architectures[heads]


# ----------------------------------------------------------------------------------------
# Task heads of fine-tuned models


@dataclasses.dataclass(frozen=True)
class TaskHead:
    """A fine-tuning script's head and the transformers task model that computes the same.

    Attributes:
      script: what made it, for messages.
      google_prefix: of its `output_weights` `[rows, hidden]` and `output_bias` `[rows]`;
        the weights are multiplied transposed, so they are stored like PyTorch's
        `Linear.weight` and need no transpose.
      hf_prefix: transformers' name of the same Linear layer.
      architecture: the class name without its `Bert` / `Albert`.
      uses_pooler: whether the head reads the pooled output (transformers' models of the
        others have no pooler, so its weights are left out).
      rows: the number of outputs when fixed by the task (None: the number of labels).
    """

    script: str
    google_prefix: str
    hf_prefix: str
    architecture: str
    uses_pooler: bool
    rows: int | None = None


SEQUENCE_CLASSIFIER = TaskHead(
    "run_classifier.py", "", "classifier", "ForSequenceClassification", uses_pooler=True
)
TOKEN_CLASSIFIER = TaskHead(
    "run_ner.py", "", "classifier", "ForTokenClassification", uses_pooler=False
)
MULTIPLE_CHOICE = TaskHead(
    "run_multiple_choice.py", "", "classifier", "ForMultipleChoice", uses_pooler=True, rows=1
)
SPAN_HEAD = TaskHead(
    "run_squad.py", "cls/squad/", "qa_outputs", "ForQuestionAnswering", uses_pooler=False, rows=2
)
# run_ner.py --use_crf's transition scores: transformers' token classifiers score each
# token on its own and have nowhere to put them.
CRF_TRANSITIONS = "crf/transitions"
# The `task` of a run's bert_export.json -> its head; the classifier's metadata has none.
_HEAD_OF_TASK = {"ner": TOKEN_CLASSIFIER, "multiple_choice": MULTIPLE_CHOICE}
# classifier_data's task kinds -> transformers' problem_type.
_PROBLEM_TYPES = {
    classifier_data.CLASSIFICATION: "single_label_classification",
    classifier_data.MULTI_LABEL: "multi_label_classification",
    classifier_data.REGRESSION: "regression",
}


def find_task_head(
    variables: dict[str, np.ndarray], metadata: dict | None, source: str
) -> TaskHead | None:
    """The task head among `variables` (None when there is none): `cls/squad/*` is
    run_squad.py's; `output_weights` is run_ner.py's or run_multiple_choice.py's when the
    run's metadata says so (`task`), else run_classifier.py's.

    Raises:
      ValueError: the head is a CRF, which transformers cannot represent.
    """
    if CRF_TRANSITIONS in variables:
        raise ValueError(
            f"{source} holds {CRF_TRANSITIONS}, the transition scores of a CRF head "
            "(run_ner.py --use_crf). transformers' BertForTokenClassification has no place "
            "for them (it scores each token alone), so this model cannot be converted; "
            "fine-tune without --use_crf to get one that can"
        )
    if any(name.startswith(SPAN_HEAD.google_prefix) for name in variables):
        return SPAN_HEAD
    if "output_weights" not in variables and "output_bias" not in variables:
        return None
    if metadata is None:
        logging.warning(
            "%s has a classifier head (output_weights) but no %s beside it: converting it "
            "as run_classifier.py's, with labels LABEL_0, LABEL_1... and no problem_type",
            source,
            export.METADATA_FILE,
        )
        return SEQUENCE_CLASSIFIER
    return _HEAD_OF_TASK.get(metadata.get("task"), SEQUENCE_CLASSIFIER)


def _head_tensors(
    variables: dict[str, np.ndarray], head: TaskHead, config: modeling.BertConfig, source: str
) -> tuple[dict[str, np.ndarray], int]:
    """Takes the head's two variables out of `variables`; returns them under transformers'
    names and the number of outputs."""
    weights_name = f"{head.google_prefix}output_weights"
    bias_name = f"{head.google_prefix}output_bias"
    missing = [name for name in (weights_name, bias_name) if name not in variables]
    if missing:
        raise ValueError(f"{source} lacks {', '.join(missing)} of {head.script}'s head")
    weights = variables.pop(weights_name)
    bias = variables.pop(bias_name)
    rows = head.rows or weights.shape[0]
    if weights.shape != (rows, config.hidden_size) or bias.shape != (rows,):
        raise ValueError(
            f"{source}: {head.script}'s head has output_weights {list(weights.shape)} and "
            f"output_bias {list(bias.shape)}; expected [{rows}, {config.hidden_size}] and "
            f"[{rows}]"
        )
    tensors = {
        f"{head.hf_prefix}.weight": _as_float32(weights_name, weights),
        f"{head.hf_prefix}.bias": _as_float32(bias_name, bias),
    }
    return tensors, rows


def _label_config(head: TaskHead, num_outputs: int, metadata: dict | None, source: str) -> dict:
    """`num_labels`, `id2label`, `label2id` and `problem_type` of a classifier's or a
    tagger's config.json, from the run's metadata (labels, task_kind)."""
    if head not in (SEQUENCE_CLASSIFIER, TOKEN_CLASSIFIER):
        return {}
    metadata = metadata or {}
    labels = [str(label) for label in metadata.get("labels") or []]
    task_kind = metadata.get("task_kind", classifier_data.CLASSIFICATION if metadata else None)
    if task_kind == classifier_data.REGRESSION and not labels:
        labels = ["LABEL_0"]
    if not labels:
        labels = [f"LABEL_{index}" for index in range(num_outputs)]
    if len(labels) != num_outputs:
        raise ValueError(
            f"{source}: its {export.METADATA_FILE} lists {len(labels)} labels but the head "
            f"has {num_outputs} outputs"
        )
    values = {
        "num_labels": num_outputs,
        "id2label": {str(index): label for index, label in enumerate(labels)},
        "label2id": {label: index for index, label in enumerate(labels)},
    }
    if head is SEQUENCE_CLASSIFIER and task_kind is not None:
        if task_kind not in _PROBLEM_TYPES:
            raise ValueError(f"{source}: unknown task_kind {task_kind!r}")
        values["problem_type"] = _PROBLEM_TYPES[task_kind]
    return values


def fine_tuned_to_safetensors(
    variables: dict[str, np.ndarray],
    config: modeling.BertConfig,
    metadata: dict | None = None,
    source: str = "TF checkpoint",
    config_source: str = "bert_config.json",
) -> tuple[dict[str, np.ndarray], str, dict]:
    """Maps a checkpoint of a pre-trained model, or of one fine-tuned by a task script, to
    transformers' names.

    Args:
      variables: Google name -> array, as in a TF checkpoint.
      config: sizes to check every shape against.
      metadata: the run's `bert_export.json` (labels, task_kind, task), if any.

    Returns:
      `(tensors, architecture, config_values)`. Without a task head, as
      `google_to_safetensors`. With one, the `Bert...` / `Albert...` task model: the
      encoder under `bert.` (`albert.`), the head's Linear layer (`classifier.*`
      `[num_labels, hidden]`, or `qa_outputs.*` `[2, hidden]`), and the values its
      config.json adds (num_labels, id2label, label2id, problem_type).

    Raises:
      ValueError: a variable is unknown, missing or misshapen, or the head has no
        transformers layout (a CRF).
    """
    head = find_task_head(variables, metadata, source)
    if head is None:
        tensors, architecture = google_to_safetensors(variables, config, source, config_source)
        return tensors, architecture, {}
    encoder = dict(variables)
    head_tensors, num_outputs = _head_tensors(encoder, head, config, source)
    tensors, architecture = google_to_safetensors(encoder, config, source, config_source)
    if architecture not in ("BertModel", "AlbertModel"):
        raise ValueError(
            f"{source} holds both pre-training heads ({architecture}) and {head.script}'s "
            "head; transformers has no model with both"
        )
    if not head.uses_pooler:
        pooler = {spec.hf_name for spec in tensor_specs(config) if spec.part == POOLER}
        tensors = {name: value for name, value in tensors.items() if name not in pooler}
    prefix = _model_prefix(config)
    tensors = {prefix + name: value for name, value in tensors.items()}
    tensors.update(head_tensors)
    family = "Albert" if config.is_albert() else "Bert"
    config_values = _label_config(head, num_outputs, metadata, source)
    return tensors, family + head.architecture, config_values


def _hf_task_head(tensors: dict[str, np.ndarray], hf_config: dict) -> TaskHead | None:
    """The head of a transformers task model among `tensors`, by its tensors' names and
    (for `classifier.*`, shared by three classes) the config's `architectures`."""
    if any(name.startswith(SPAN_HEAD.hf_prefix + ".") for name in tensors):
        return SPAN_HEAD
    if not any(name.startswith(SEQUENCE_CLASSIFIER.hf_prefix + ".") for name in tensors):
        return None
    architecture = (hf_config.get("architectures") or [""])[0]
    for head in (TOKEN_CLASSIFIER, MULTIPLE_CHOICE):
        if architecture.endswith(head.architecture):
            return head
    return SEQUENCE_CLASSIFIER


def split_hf_task_head(
    tensors: dict[str, np.ndarray], hf_config: dict, config: modeling.BertConfig, source: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict | None]:
    """Separates the head of a transformers task model from its encoder.

    Returns `(encoder tensors, head variables under the task script's Google names,
    bert_export.json values for the head: labels, task_kind, task)`; the last two are
    empty and None for a model without a task head.
    """
    head = _hf_task_head(tensors, hf_config)
    if head is None:
        return tensors, {}, None
    tensors = dict(tensors)
    weight_name, bias_name = f"{head.hf_prefix}.weight", f"{head.hf_prefix}.bias"
    missing = [name for name in (weight_name, bias_name) if name not in tensors]
    if missing:
        raise ValueError(
            f"{source} lacks {', '.join(missing)}: a task head needs both {weight_name} and "
            f"{bias_name}"
        )
    weight = _as_float32(weight_name, tensors.pop(weight_name))
    bias = _as_float32(bias_name, tensors.pop(bias_name))
    rows = head.rows or weight.shape[0]
    if weight.shape != (rows, config.hidden_size) or bias.shape != (rows,):
        raise ValueError(
            f"{source}: {weight_name} {list(weight.shape)} and {bias_name} {list(bias.shape)}; "
            f"{head.script}'s head needs [{rows}, {config.hidden_size}] and [{rows}]"
        )
    variables = {
        f"{head.google_prefix}output_weights": weight,
        f"{head.google_prefix}output_bias": bias,
    }
    return tensors, variables, _metadata_from_hf(head, hf_config, rows)


def _metadata_from_hf(head: TaskHead, hf_config: dict, rows: int) -> dict:
    """The task script's bert_export.json values that a transformers config tells."""
    if head is SPAN_HEAD:
        return {"task": "squad"}
    if head is MULTIPLE_CHOICE:
        return {"task": "multiple_choice"}
    id2label = {str(key): value for key, value in (hf_config.get("id2label") or {}).items()}
    labels = [str(id2label.get(str(index), f"LABEL_{index}")) for index in range(rows)]
    if head is TOKEN_CLASSIFIER:
        return {"task": "ner", "labels": labels}
    problem_type = hf_config.get("problem_type")
    kinds = {value: key for key, value in _PROBLEM_TYPES.items()}
    task_kind = kinds.get(problem_type) or (
        classifier_data.REGRESSION if rows == 1 else classifier_data.CLASSIFICATION
    )
    regression = task_kind == classifier_data.REGRESSION
    return {"labels": [] if regression else labels, "task_kind": task_kind}


# ----------------------------------------------------------------------------------------
# Configs


def bert_config_from_hf(hf_config: dict, source: str = HF_CONFIG_NAME) -> modeling.BertConfig:
    """Builds our `BertConfig` from a transformers `config.json` dict (model_type "bert",
    or "albert", which gives an ALBERT config as google-research/albert writes it).

    Raises:
      ValueError: the config describes something this BERT cannot compute the same way
        (another model type, activation, LayerNorm epsilon or position embedding type).
    """
    model_type = hf_config.get("model_type", "bert")
    albert = model_type == "albert"
    values = dict(_HF_ALBERT_CONFIG_DEFAULTS if albert else _HF_CONFIG_DEFAULTS, **hf_config)
    problems = []
    if model_type not in ("bert", "albert"):
        problems.append(f"model_type is {model_type!r}, not 'bert' or 'albert'")
    activation = values["hidden_act"]
    if not isinstance(activation, str) or activation.lower() not in _HF_TO_OUR_ACTIVATION:
        known = ", ".join(sorted(_HF_TO_OUR_ACTIVATION))
        problems.append(f"hidden_act {activation!r} has no equivalent here (known: {known})")
    if values["layer_norm_eps"] != _LAYER_NORM_EPSILON:
        problems.append(f"layer_norm_eps is {values['layer_norm_eps']!r}; only 1e-12 is supported")
    position_type = values.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        problems.append(f"position_embedding_type {position_type!r} is not supported")
    if values.get("is_decoder") or values.get("add_cross_attention"):
        problems.append("decoder models (is_decoder / add_cross_attention) are not supported")
    if problems:
        raise ValueError(f"Cannot convert {source}: " + "; ".join(problems))
    keys = _SHARED_CONFIG_KEYS + (modeling.ALBERT_CONFIG_KEYS if albert else ())
    google_values = {key: values[key] for key in keys}
    google_values["hidden_act"] = _HF_TO_OUR_ACTIVATION[activation.lower()]
    config = modeling.BertConfig.from_dict(google_values, source=source)
    if albert:
        _warn_if_groups_differ(config, source)
    return config


def _warn_if_groups_differ(config: modeling.BertConfig, source: str) -> None:
    """transformers picks a layer's group as int(l / (L / G)), google-research/albert as
    int(l / L * G); for a few sizes the float results differ and so would the outputs."""
    layers, groups = config.num_hidden_layers, config.hidden_groups
    differing = [
        layer
        for layer in range(layers)
        if int(layer / (layers / groups)) != modeling.albert_group_of_layer(layer, layers, groups)
    ]
    if differing:
        logging.warning(
            "%s: with %d layers in %d groups, transformers and google-research/albert give "
            "layers %s different weight groups; the converted model will not compute the same",
            source,
            layers,
            groups,
            differing,
        )


def hf_config_from_bert(config: modeling.BertConfig, architecture: str) -> dict:
    """A transformers `config.json` dict for our `config`, computing the same function.

    Raises:
      ValueError: `config.hidden_act` has no transformers equivalent.
    """
    activation = config.hidden_act
    if not isinstance(activation, str) or activation.lower() not in _OUR_TO_HF_ACTIVATION:
        known = ", ".join(sorted(_OUR_TO_HF_ACTIVATION))
        raise ValueError(f"hidden_act {activation!r} has no transformers equivalent ({known})")
    hf_config = {key: getattr(config, key) for key in _SHARED_CONFIG_KEYS}
    if config.is_albert():
        hf_config.update(
            embedding_size=config.embedding_width,
            num_hidden_groups=config.hidden_groups,
            inner_group_num=config.inner_groups,
        )
        _warn_if_groups_differ(config, "the ALBERT config")
    hf_config.update(
        architectures=[architecture],
        model_type="albert" if config.is_albert() else "bert",
        hidden_act=_OUR_TO_HF_ACTIVATION[activation.lower()],
        layer_norm_eps=_LAYER_NORM_EPSILON,
        position_embedding_type="absolute",
    )
    return dict(sorted(hf_config.items()))


def _read_json_object(path: str) -> dict:
    text = input_files.read_text(path, what="Config file", hint="JSON files are UTF-8")
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return values


# ----------------------------------------------------------------------------------------
# Files


def _read_bfloat16_tensors(path: str, names: list[str]) -> dict[str, np.ndarray]:
    """Reads bfloat16 tensors as float32 (exactly: bfloat16 is float32's top 16 bits).

    The safetensors NumPy reader has no bfloat16, so the tensors are located through the
    file's JSON header: 8 bytes of little-endian header length, the header, then the data.
    """
    with open(path, "rb") as reader:
        (header_length,) = struct.unpack("<Q", reader.read(8))
        header = json.loads(reader.read(header_length))
        data_start = 8 + header_length
        tensors = {}
        for name in names:
            begin, end = header[name]["data_offsets"]
            reader.seek(data_start + begin)
            halves = np.frombuffer(reader.read(end - begin), dtype="<u2")
            words = halves.astype(np.uint32) << 16
            tensors[name] = words.view(np.float32).reshape(header[name]["shape"])
    return tensors


def _read_one_safetensors_file(path: str) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    # A git-lfs pointer would otherwise be reported as a header too large or invalid.
    input_files.check_not_lfs_pointer(path, "safetensors weights file")

    tensors = {}
    bfloat16_names = []
    with safe_open(path, framework="np") as reader:
        for name in reader.keys():
            if reader.get_slice(name).get_dtype() == "BF16":
                bfloat16_names.append(name)
            else:
                tensors[name] = reader.get_tensor(name)
    tensors.update(_read_bfloat16_tensors(path, bfloat16_names))
    return tensors


def read_safetensors(model_dir: str) -> dict[str, np.ndarray]:
    """Reads `model.safetensors`, or every shard named by `model.safetensors.index.json`."""
    single = os.path.join(model_dir, SAFETENSORS_NAME)
    index = os.path.join(model_dir, SAFETENSORS_INDEX_NAME)
    if os.path.isfile(single):
        return _read_one_safetensors_file(single)
    if not os.path.isfile(index):
        raise FileNotFoundError(
            f"--input_dir: neither {SAFETENSORS_NAME} nor {SAFETENSORS_INDEX_NAME} in {model_dir}"
        )
    weight_map = _read_json_object(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise ValueError(f"{index} has no 'weight_map' object")
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(_read_one_safetensors_file(os.path.join(model_dir, shard)))
    return tensors


def write_tf_checkpoint(variables: dict[str, np.ndarray], checkpoint_prefix: str) -> None:
    """Saves `variables` under exactly their names, as `<prefix>.index` and `.data-*`.

    Values are fed through placeholders rather than embedded as constants, which keeps the
    graph small (a GraphDef is limited to 2 GB; BERT-Large weighs 1.3 GB).
    """
    with tf.Graph().as_default():
        feeds = {}
        saved = {}
        for name, value in variables.items():
            placeholder = tf1.placeholder(tf.as_dtype(value.dtype), value.shape)
            variable = tf1.Variable(placeholder, name=name, trainable=False)
            feeds[variable.initializer] = (placeholder, value)
            saved[name] = variable
        saver = tf1.train.Saver(var_list=saved, write_version=tf1.train.SaverDef.V2)
        with tf1.Session() as session:
            for initializer, (placeholder, value) in feeds.items():
                session.run(initializer, {placeholder: value})
            saver.save(session, checkpoint_prefix, write_meta_graph=False, write_state=False)


def read_tf_checkpoint(checkpoint_prefix: str) -> dict[str, np.ndarray]:
    """Reads every variable of a TF checkpoint into NumPy arrays."""
    modeling.check_checkpoint_files_downloaded(checkpoint_prefix)
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def find_checkpoint(model_dir: str) -> str:
    """`<model_dir>/bert_model.ckpt` (or ALBERT's `model.ckpt-best`) when present, else the
    newest checkpoint in `model_dir`."""
    for name in (CHECKPOINT_NAME, ALBERT_CHECKPOINT_NAME):
        released = os.path.join(model_dir, name)
        if tf.io.gfile.exists(released + ".index"):
            return released
    newest = tf.train.latest_checkpoint(model_dir)
    if newest is None:
        raise FileNotFoundError(
            f"--input_dir: no {CHECKPOINT_NAME}.index and no `checkpoint` file in {model_dir}"
        )
    return newest


def _input_file(given: str | None, input_dir: str, default_name: str, flag: str) -> str:
    """`given`, or `default_name` inside `input_dir`; the error names the flag at fault."""
    path = given or os.path.join(input_dir, default_name)
    if not os.path.isfile(path):
        culprit = flag if given else "--input_dir"
        raise FileNotFoundError(f"{culprit}: {path} does not exist")
    return path


def _copy_vocab(vocab_file: str, output_dir: str, vocab_size: int) -> None:
    entries = max(tokenization.load_vocab(vocab_file).values()) + 1  # lines, as ids count them
    if entries != vocab_size:
        logging.warning(
            "%s has %d entries but the model has %d word embeddings",
            vocab_file,
            entries,
            vocab_size,
        )
    shutil.copyfile(vocab_file, os.path.join(output_dir, VOCAB_NAME))


def _tokenizer_file(
    input_dir: str, vocab_file: str | None, spm_model_file: str | None, albert: bool
) -> tuple[str, bool]:
    """The tokenizer's file and whether it is a SentencePiece model: `spm_model_file` or
    `vocab_file` when given; else the spm.model of a run or an export that has no
    vocab.txt; else, for ALBERT, the SentencePiece model in `input_dir` (spiece.model or
    30k-clean.model), for BERT its vocab.txt."""
    if spm_model_file:
        return _input_file(spm_model_file, input_dir, SPM_NAME, "--spm_model_file"), True
    # A fine-tuning run or an export of a SentencePiece model holds it as spm.model.
    run_spm = os.path.join(input_dir, export.SPM_MODEL_ASSET)
    has_vocab = os.path.isfile(os.path.join(input_dir, VOCAB_NAME))
    if not vocab_file and not has_vocab and os.path.isfile(run_spm):
        return run_spm, True
    if vocab_file or not albert:
        return _input_file(vocab_file, input_dir, VOCAB_NAME, "--vocab_file"), False
    for name in _RELEASED_SPM_NAMES:
        if os.path.isfile(os.path.join(input_dir, name)):
            return os.path.join(input_dir, name), True
    raise FileNotFoundError(
        f"--input_dir: no SentencePiece model ({' or '.join(_RELEASED_SPM_NAMES)}) in "
        f"{input_dir}; name one with --spm_model_file"
    )


def _copy_tokenizer_file(tokenizer: tuple[str, bool], output_dir: str, vocab_size: int) -> None:
    """A WordPiece vocab is checked against the model and copied as vocab.txt, a
    SentencePiece model copied as spiece.model."""
    path, sentencepiece = tokenizer
    if sentencepiece:
        shutil.copyfile(path, os.path.join(output_dir, SPM_NAME))
    else:
        _copy_vocab(path, output_dir, vocab_size)


# ----------------------------------------------------------------------------------------
# Whole conversions


def convert_safetensors_to_tf(
    input_dir: str,
    output_dir: str,
    config_file: str | None = None,
    vocab_file: str | None = None,
    overwrite: bool = False,
    spm_model_file: str | None = None,
) -> str:
    """Converts a transformers BERT (or ALBERT) directory to Google's layout.

    Writes `bert_model.ckpt.*`, `bert_config.json` and `vocab.txt` into `output_dir` (for
    ALBERT `model.ckpt-best.*`, `albert_config.json` and `spiece.model`, as
    google-research/albert's releases) and returns the checkpoint prefix. A task model
    (`BertForSequenceClassification`, `...ForQuestionAnswering`, `...ForTokenClassification`,
    `...ForMultipleChoice`) gets its head under the task script's names and a
    `bert_export.json` with its labels and task kind, as a fine-tuning run leaves them.
    """
    config_file = _input_file(config_file, input_dir, HF_CONFIG_NAME, "--config_file")
    hf_config = _read_json_object(config_file)
    config = bert_config_from_hf(hf_config, source=config_file)
    albert = config.is_albert()
    tokenizer = _tokenizer_file(input_dir, vocab_file, spm_model_file, albert)
    source = os.path.join(input_dir, SAFETENSORS_NAME)
    tensors, head_variables, metadata = split_hf_task_head(
        read_safetensors(input_dir), hf_config, config, source
    )
    variables = safetensors_to_google(tensors, config, source, config_file)
    variables.update(head_variables)
    if metadata is not None:
        metadata.update(_casing_of(input_dir))
    checkpoint_name = ALBERT_CHECKPOINT_NAME if albert else CHECKPOINT_NAME
    config_name = ALBERT_CONFIG_NAME if albert else BERT_CONFIG_NAME
    with atomic_files.new_local_directory(output_dir, overwrite) as work_dir:
        write_tf_checkpoint(variables, os.path.join(work_dir, checkpoint_name))
        with open(os.path.join(work_dir, config_name), "w", encoding="utf-8") as writer:
            writer.write(config.to_json_string())
        if metadata is not None:
            _write_json(os.path.join(work_dir, export.METADATA_FILE), metadata)
        _copy_tokenizer_file(tokenizer, work_dir, config.vocab_size)
    logging.info("Wrote %d variables to %s", len(variables), output_dir)
    return os.path.join(output_dir, checkpoint_name)


def _casing_of(input_dir: str) -> dict:
    """`{"do_lower_case": ...}` from a transformers tokenizer_config.json, if it says."""
    path = os.path.join(input_dir, TOKENIZER_CONFIG_NAME)
    if not os.path.isfile(path):
        return {}
    values = _read_json_object(path)
    return {"do_lower_case": bool(values["do_lower_case"])} if "do_lower_case" in values else {}


def _google_config_file(given: str | None, input_dir: str) -> str:
    """`given`, else bert_config.json in `input_dir`, else ALBERT's albert_config.json."""
    albert_config = os.path.join(input_dir, ALBERT_CONFIG_NAME)
    bert_config = os.path.join(input_dir, BERT_CONFIG_NAME)
    if not given and not os.path.isfile(bert_config) and os.path.isfile(albert_config):
        return albert_config
    if given:
        return _input_file(given, input_dir, BERT_CONFIG_NAME, "--config_file")
    try:
        return _input_file(None, input_dir, BERT_CONFIG_NAME, "--config_file")
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}. Fine-tuning runs write it (with {export.METADATA_FILE} and the vocab) "
            "into their --output_dir and their exports' assets.extra/; for a run or an "
            "export made before they did, give --config_file=<the run's --bert_config_file>"
        ) from None


def _saved_model_of(input_dir: str) -> str | None:
    """The SavedModel `input_dir` is, or the newest of the timestamped exports it holds
    (an --export_dir); None for a checkpoint directory."""
    try:
        return export.resolve_saved_model_dir(input_dir)
    except FileNotFoundError:
        return None


def _files_dir(input_dir: str) -> str:
    """Where the config, the tokenizer's file and a fine-tuned model's `bert_export.json`
    are: `input_dir`, or an export's `assets.extra/`."""
    saved_model = _saved_model_of(input_dir)
    if saved_model is None:
        return input_dir
    return os.path.join(saved_model, export.EXTRA_ASSETS_DIR)


def checkpoint_to_convert(input_dir: str) -> str:
    """The weights of a released model or a training run (the best checkpoint its
    periodic evaluation kept in `best/`, else its newest), or of a SavedModel export (its
    `variables/`; of an --export_dir, its newest export)."""
    saved_model = _saved_model_of(input_dir)
    if saved_model is not None:
        return os.path.join(saved_model, "variables", "variables")
    best = tf.train.latest_checkpoint(os.path.join(input_dir, finetuning.BEST_DIR_NAME))
    if best is not None:
        logging.info("Converting %s, the best checkpoint the run kept", best)
        return best
    return find_checkpoint(input_dir)


def _read_run_metadata(files_dir: str) -> dict | None:
    """The `bert_export.json` a fine-tuning run or an export wrote, if there is one."""
    path = os.path.join(files_dir, export.METADATA_FILE)
    return _read_json_object(path) if os.path.isfile(path) else None


def _tokenizer_config(metadata: dict | None, albert: bool) -> dict | None:
    """transformers' tokenizer_config.json for the run's casing; None when unknown (the
    tokenizer's default then applies: lower-casing, for BERT's and ALBERT's)."""
    if metadata is None or "do_lower_case" not in metadata:
        return None
    return {
        "do_lower_case": bool(metadata["do_lower_case"]),
        "tokenizer_class": "AlbertTokenizer" if albert else "BertTokenizer",
    }


def _write_json(path: str, values: dict) -> None:
    with open(path, "w", encoding="utf-8") as writer:
        writer.write(json.dumps(values, indent=2, ensure_ascii=False) + "\n")


def convert_tf_to_safetensors(
    input_dir: str,
    output_dir: str,
    config_file: str | None = None,
    vocab_file: str | None = None,
    overwrite: bool = False,
    spm_model_file: str | None = None,
) -> str:
    """Converts a Google-format BERT (or ALBERT) directory to transformers' layout.

    `input_dir` is a released model, a pre-training run, a fine-tuning run of
    run_classifier.py, run_squad.py, run_ner.py (without CRF) or run_multiple_choice.py, or
    an export of one (see `checkpoint_to_convert`). Writes `model.safetensors`, `config.json`
    (for a fine-tuned model the task's transformers class, with its labels) and `vocab.txt`
    (for ALBERT `spiece.model`; and tokenizer_config.json when the run's casing is known)
    into `output_dir` and returns the path of `model.safetensors`.
    """
    from safetensors.numpy import save_file

    files_dir = _files_dir(input_dir)
    config_file = _google_config_file(config_file, files_dir)
    config = modeling.BertConfig.from_json_file(config_file)
    tokenizer = _tokenizer_file(files_dir, vocab_file, spm_model_file, config.is_albert())
    metadata = _read_run_metadata(files_dir)
    checkpoint = checkpoint_to_convert(input_dir)
    tensors, architecture, config_values = fine_tuned_to_safetensors(
        read_tf_checkpoint(checkpoint), config, metadata, checkpoint, config_file
    )
    hf_config = dict(
        sorted(dict(hf_config_from_bert(config, architecture), **config_values).items())
    )
    tokenizer_config = _tokenizer_config(metadata, config.is_albert())
    with atomic_files.new_local_directory(output_dir, overwrite) as work_dir:
        # transformers refuses safetensors files whose metadata does not name a framework.
        save_file(tensors, os.path.join(work_dir, SAFETENSORS_NAME), metadata={"format": "pt"})
        _write_json(os.path.join(work_dir, HF_CONFIG_NAME), hf_config)
        if tokenizer_config is not None:
            _write_json(os.path.join(work_dir, TOKENIZER_CONFIG_NAME), tokenizer_config)
        _copy_tokenizer_file(tokenizer, work_dir, config.vocab_size)
    logging.info("Wrote %d tensors (%s) to %s", len(tensors), architecture, output_dir)
    return os.path.join(output_dir, SAFETENSORS_NAME)


def define_flags() -> None:
    """Defines the command-line flags; only when run as a script, so that importing this
    module next to the training scripts does not define --output_dir twice."""
    flags.DEFINE_enum(
        "to",
        None,
        ["tf", "safetensors"],
        "Target format: 'tf' reads a safetensors BERT and writes a Google-format TF checkpoint; "
        "'safetensors' does the reverse.",
    )
    flags.DEFINE_string(
        "input_dir",
        None,
        "Model to convert. For --to=tf: model.safetensors (or a sharded "
        "model.safetensors.index.json), config.json and vocab.txt (ALBERT: spiece.model). "
        "For --to=safetensors: bert_model.ckpt.* (ALBERT: model.ckpt-best.*, or the newest "
        "checkpoint named by a `checkpoint` file), bert_config.json (or albert_config.json) "
        "and vocab.txt (ALBERT: spiece.model or 30k-clean.model); or a fine-tuning run's "
        "--output_dir (its best/ checkpoint first) or --export_dir, which converts to the "
        "transformers class of its task (BertForSequenceClassification...).",
    )
    flags.DEFINE_string("output_dir", None, "Directory to create with the converted model.")
    flags.DEFINE_string(
        "config_file",
        None,
        "Config to use instead of the one in --input_dir (config.json for --to=tf, "
        "bert_config.json for --to=safetensors).",
    )
    flags.DEFINE_string("vocab_file", None, "vocab.txt to use instead of the one in --input_dir.")
    flags.DEFINE_string(
        "spm_model_file",
        None,
        "SentencePiece model to copy instead of a vocab.txt (ALBERT's is found in --input_dir "
        "without this flag); it is written as spiece.model.",
    )
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Replace --output_dir if it exists. The old directory stays intact until the new one is "
        "complete.",
    )


def main(argv: list[str]) -> None:
    del argv
    if not os.path.isdir(FLAGS.input_dir):
        raise FileNotFoundError(f"--input_dir: {FLAGS.input_dir} is not a directory")
    convert = convert_safetensors_to_tf if FLAGS.to == "tf" else convert_tf_to_safetensors
    written = convert(
        FLAGS.input_dir,
        FLAGS.output_dir,
        config_file=FLAGS.config_file,
        vocab_file=FLAGS.vocab_file,
        spm_model_file=FLAGS.spm_model_file,
        overwrite=FLAGS.overwrite,
    )
    print(f"Wrote {written}")


if __name__ == "__main__":
    define_flags()
    flag_help.use_grouped_help(required=("to", "input_dir", "output_dir"))
    app.run(main)
