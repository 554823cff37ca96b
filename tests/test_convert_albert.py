"""Tests for convert_checkpoint.py on ALBERT: transformers' AlbertModel / AlbertForPreTraining
safetensors to google-research/albert's TF layout and back, bit-exact."""

import json

import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file, save_file
from test_albert_modeling import build_with_pretraining_heads

import convert_checkpoint
import modeling
from helpers import run_script

tf1 = tf.compat.v1

VOCAB, EMBED, HIDDEN, INNER, POSITIONS = 20, 6, 8, 12, 10
GROUPS, INNER_GROUPS = 2, 2

# A transformers config.json of a tiny ALBERT, as AlbertConfig.save_pretrained writes it.
TINY_HF_ALBERT = {
    "architectures": ["AlbertForPreTraining"],
    "model_type": "albert",
    "vocab_size": VOCAB,
    "embedding_size": EMBED,
    "hidden_size": HIDDEN,
    "num_hidden_layers": 4,
    "num_hidden_groups": GROUPS,
    "inner_group_num": INNER_GROUPS,
    "num_attention_heads": 2,
    "intermediate_size": INNER,
    "hidden_act": "gelu_new",
    "hidden_dropout_prob": 0,
    "attention_probs_dropout_prob": 0,
    "max_position_embeddings": POSITIONS,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "classifier_dropout_prob": 0.1,
    "position_embedding_type": "absolute",
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 3,
}


def dense(hf, google, in_width, out_width):
    """PyTorch's Linear stores weight [out, in]; TensorFlow's dense kernel is [in, out]."""
    return [
        (f"{hf}.weight", (out_width, in_width), f"{google}/kernel", True),
        (f"{hf}.bias", (out_width,), f"{google}/bias", False),
    ]


def norm(hf, google, width):
    return [
        (f"{hf}.weight", (width,), f"{google}/gamma", False),
        (f"{hf}.bias", (width,), f"{google}/beta", False),
    ]


def albert_layout(embed=EMBED, with_heads=True):
    """(transformers name, PyTorch shape, Google name, transposed), written out from
    transformers' modeling_albert.py and google-research/albert's checkpoints."""
    prefix = "albert." if with_heads else ""
    rows = [
        (f"{prefix}embeddings.word_embeddings.weight", (VOCAB, embed),
         "bert/embeddings/word_embeddings", False),
        (f"{prefix}embeddings.position_embeddings.weight", (POSITIONS, embed),
         "bert/embeddings/position_embeddings", False),
        (f"{prefix}embeddings.token_type_embeddings.weight", (2, embed),
         "bert/embeddings/token_type_embeddings", False),
    ]  # fmt: skip
    rows += norm(f"{prefix}embeddings.LayerNorm", "bert/embeddings/LayerNorm", embed)
    if embed != HIDDEN:
        rows += dense(
            f"{prefix}encoder.embedding_hidden_mapping_in",
            "bert/encoder/embedding_hidden_mapping_in",
            embed,
            HIDDEN,
        )
    for g in range(GROUPS):
        for i in range(INNER_GROUPS):
            hf = f"{prefix}encoder.albert_layer_groups.{g}.albert_layers.{i}"
            google = f"bert/encoder/transformer/group_{g}/inner_group_{i}"
            for part in ("query", "key", "value"):
                rows += dense(
                    f"{hf}.attention.{part}", f"{google}/attention_1/self/{part}", HIDDEN, HIDDEN
                )
            rows += dense(
                f"{hf}.attention.dense", f"{google}/attention_1/output/dense", HIDDEN, HIDDEN
            )
            rows += norm(f"{hf}.attention.LayerNorm", f"{google}/LayerNorm", HIDDEN)
            rows += dense(f"{hf}.ffn", f"{google}/ffn_1/intermediate/dense", HIDDEN, INNER)
            rows += dense(
                f"{hf}.ffn_output", f"{google}/ffn_1/intermediate/output/dense", INNER, HIDDEN
            )
            rows += norm(f"{hf}.full_layer_layer_norm", f"{google}/LayerNorm_1", HIDDEN)
    rows += dense(f"{prefix}pooler", "bert/pooler/dense", HIDDEN, HIDDEN)
    if with_heads:
        rows += dense("predictions.dense", "cls/predictions/transform/dense", HIDDEN, embed)
        rows += norm("predictions.LayerNorm", "cls/predictions/transform/LayerNorm", embed)
        rows.append(("predictions.bias", (VOCAB,), "cls/predictions/output_bias", False))
        rows.append(
            ("sop_classifier.classifier.weight", (2, HIDDEN),
             "cls/seq_relationship/output_weights", False)
        )  # fmt: skip
        rows.append(
            ("sop_classifier.classifier.bias", (2,), "cls/seq_relationship/output_bias", False)
        )
    return rows


def random_tensors(layout, seed=0):
    rng = np.random.RandomState(seed)
    return {name: rng.normal(0, 1, shape).astype(np.float32) for name, shape, _, _ in layout}


def write_hf_dir(path, tensors, config=None):
    path.mkdir(parents=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config or TINY_HF_ALBERT))
    (path / "spiece.model").write_bytes(b"a SentencePiece model, copied as it is")


def with_transformers_extras(tensors):
    """What AlbertForPreTraining's state dict adds: the decoder tied to the word
    embeddings and to predictions.bias, and the position_ids buffer."""
    extras = dict(tensors)
    extras["predictions.decoder.weight"] = tensors["albert.embeddings.word_embeddings.weight"]
    extras["predictions.decoder.bias"] = tensors["predictions.bias"]
    extras["albert.embeddings.position_ids"] = np.arange(POSITIONS, dtype=np.int64)[None]
    return extras


def checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def assert_bit_exact(actual, expected):
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


def test_albert_for_pretraining_converts_to_googles_names_and_back_bit_exact(tmp_path):
    layout = albert_layout()
    tensors = random_tensors(layout)
    write_hf_dir(tmp_path / "hf", with_transformers_extras(tensors))

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )

    assert prefix == str(tmp_path / "tf" / "model.ckpt-best")
    expected = {
        google: np.ascontiguousarray(tensors[hf].T) if transposed else tensors[hf]
        for hf, _, google, transposed in layout
    }
    assert_bit_exact(checkpoint_values(prefix), expected)
    config = json.loads((tmp_path / "tf" / "albert_config.json").read_text())
    assert config["embedding_size"] == EMBED
    assert (config["num_hidden_groups"], config["inner_group_num"]) == (GROUPS, INNER_GROUPS)
    assert config["hidden_act"] == "gelu"  # transformers' gelu_new: the tanh GELU
    assert (tmp_path / "tf" / "spiece.model").read_bytes() == (
        tmp_path / "hf" / "spiece.model"
    ).read_bytes()

    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )
    assert_bit_exact(load_file(written), tensors)
    back_config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert back_config["architectures"] == ["AlbertForPreTraining"]
    for key in ("model_type", "hidden_act", "embedding_size", "num_hidden_groups"):
        assert back_config[key] == TINY_HF_ALBERT[key]
    assert (tmp_path / "back" / "spiece.model").exists()


def test_converted_albert_loads_into_the_model_with_nothing_unmatched(tmp_path):
    write_hf_dir(tmp_path / "hf", random_tensors(albert_layout()))
    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )
    config = modeling.BertConfig.from_json_file(str(tmp_path / "tf" / "albert_config.json"))
    modeling.check_checkpoint_fits(config, prefix)
    with tf.Graph().as_default():
        build_with_pretraining_heads(config, seq_length=8)
        tvars = tf1.trainable_variables()
        assignment, _ = modeling.get_assignment_map_from_checkpoint(tvars, prefix)
        report = modeling.checkpoint_report(tvars, prefix, assignment)
    assert (report.missing_in_checkpoint, report.unused_in_checkpoint) == ([], [])


def test_bare_albert_model_round_trips(tmp_path):
    tensors = random_tensors(albert_layout(with_heads=False), seed=3)
    config = dict(TINY_HF_ALBERT, architectures=["AlbertModel"])
    write_hf_dir(tmp_path / "hf", tensors, config)
    convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "tf"))
    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )
    assert_bit_exact(load_file(written), tensors)
    back = json.loads((tmp_path / "back" / "config.json").read_text())
    assert back["architectures"] == ["AlbertModel"]


def test_equal_widths_keep_transformers_identity_mapping_out_of_googles_layout(tmp_path):
    tensors = random_tensors(albert_layout(embed=HIDDEN), seed=4)
    tensors["albert.encoder.embedding_hidden_mapping_in.weight"] = np.eye(HIDDEN, dtype=np.float32)
    tensors["albert.encoder.embedding_hidden_mapping_in.bias"] = np.zeros(HIDDEN, np.float32)
    write_hf_dir(tmp_path / "hf", tensors, dict(TINY_HF_ALBERT, embedding_size=HIDDEN))

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )
    assert not any("embedding_hidden_mapping_in" in name for name in checkpoint_values(prefix))
    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )
    assert_bit_exact(load_file(written), tensors)


def test_a_real_projection_at_equal_widths_is_refused(tmp_path):
    tensors = random_tensors(albert_layout(embed=HIDDEN), seed=5)
    tensors["albert.encoder.embedding_hidden_mapping_in.weight"] = np.full(
        (HIDDEN, HIDDEN), 0.5, np.float32
    )
    tensors["albert.encoder.embedding_hidden_mapping_in.bias"] = np.zeros(HIDDEN, np.float32)
    write_hf_dir(tmp_path / "hf", tensors, dict(TINY_HF_ALBERT, embedding_size=HIDDEN))
    with pytest.raises(ValueError, match="embedding_hidden_mapping_in, and this one is not"):
        convert_checkpoint.convert_safetensors_to_tf(str(tmp_path / "hf"), str(tmp_path / "tf"))
    assert not (tmp_path / "tf").exists()


def test_google_albert_checkpoint_round_trips_through_transformers_layout(tmp_path):
    """A directory as google-research/albert releases it: albert_config.json,
    model.ckpt-best.* with training state, 30k-clean.model."""
    rng = np.random.RandomState(6)
    google = {
        name: rng.normal(0, 1, shape[::-1] if transposed else shape).astype(np.float32)
        for _, shape, name, transposed in albert_layout()
    }
    release = tmp_path / "albert_base"
    release.mkdir()
    shared = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size")
    google_config = {key: TINY_HF_ALBERT[key] for key in shared}
    google_config.update(
        max_position_embeddings=POSITIONS,
        type_vocab_size=2,
        embedding_size=EMBED,
        num_hidden_groups=GROUPS,
        inner_group_num=INNER_GROUPS,
        hidden_act="gelu",
        net_structure_type=0,
        gap_size=0,
        num_memory_blocks=0,
        down_scale_factor=1,
        num_hidden_layers=4,
    )
    (release / "albert_config.json").write_text(json.dumps(google_config))
    (release / "30k-clean.model").write_bytes(b"sentencepiece")
    convert_checkpoint.write_tf_checkpoint(
        dict(google, global_step=np.int64(10000)), str(release / "model.ckpt-best")
    )

    convert_checkpoint.convert_tf_to_safetensors(str(release), str(tmp_path / "hf"))
    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )

    assert_bit_exact(checkpoint_values(prefix), google)
    assert (tmp_path / "hf" / "spiece.model").read_bytes() == b"sentencepiece"


@pytest.mark.parametrize(
    "override, complaint",
    [
        ({"hidden_act": "silu"}, "hidden_act 'silu' has no equivalent"),
        ({"layer_norm_eps": 1e-5}, "layer_norm_eps is 1e-05"),
        ({"num_hidden_groups": 5}, r"num_hidden_groups \(5\) must not exceed"),
    ],
)
def test_albert_configs_that_would_change_the_numbers_are_refused(override, complaint):
    with pytest.raises(ValueError, match=complaint) as err:
        convert_checkpoint.bert_config_from_hf(dict(TINY_HF_ALBERT, **override), "my/config.json")
    assert "my/config.json" in str(err.value)


def test_transformers_defaults_fill_a_sparse_albert_config():
    config = convert_checkpoint.bert_config_from_hf({"model_type": "albert"}, "c.json")
    # transformers' AlbertConfig() is ALBERT-xxlarge with the tanh GELU ("gelu_new").
    assert (config.hidden_size, config.embedding_width, config.num_attention_heads) == (
        4096,
        128,
        64,
    )
    assert config.hidden_act == "gelu"
    exact = convert_checkpoint.bert_config_from_hf(dict(TINY_HF_ALBERT, hidden_act="gelu"), "c")
    assert exact.hidden_act == "gelu_exact"


def test_command_line_finds_the_sentencepiece_model(tmp_path):
    write_hf_dir(tmp_path / "hf", random_tensors(albert_layout()))
    (tmp_path / "hf" / "spiece.model").unlink()
    failed = run_script(
        "convert_checkpoint.py",
        {"to": "tf", "input_dir": tmp_path / "hf", "output_dir": tmp_path / "tf"},
        expect_failure=True,
    )
    assert "--spm_model_file" in failed.stdout and not (tmp_path / "tf").exists()
    (tmp_path / "elsewhere.model").write_bytes(b"sp")
    run_script(
        "convert_checkpoint.py",
        {
            "to": "tf",
            "input_dir": tmp_path / "hf",
            "output_dir": tmp_path / "tf",
            "spm_model_file": tmp_path / "elsewhere.model",
        },
    )
    assert (tmp_path / "tf" / "model.ckpt-best.index").exists()
    assert (tmp_path / "tf" / "spiece.model").read_bytes() == b"sp"


def test_group_assignments_that_differ_from_transformers_are_warned_about(caplog):
    sizes = dict(TINY_HF_ALBERT, num_hidden_layers=22, num_hidden_groups=22, inner_group_num=1)
    with caplog.at_level("WARNING"):
        convert_checkpoint.bert_config_from_hf(sizes, "c.json")
    # transformers: int(15 / (22 / 22)) = 15; google-research/albert: int(15 / 22 * 22) = 14.
    assert "layers [15]" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        convert_checkpoint.bert_config_from_hf(TINY_HF_ALBERT, "c.json")
    assert "different weight groups" not in caplog.text


@pytest.mark.parametrize(
    "architecture, head_name, rows, google_prefix",
    [
        ("AlbertForSequenceClassification", "classifier", 3, ""),
        ("AlbertForQuestionAnswering", "qa_outputs", 2, "cls/squad/"),
    ],
)
def test_albert_task_models_round_trip_with_the_scripts_head_names(
    tmp_path, architecture, head_name, rows, google_prefix
):
    # transformers' AlbertForQuestionAnswering has no pooler; the classifier has one.
    layout = [
        row
        for row in albert_layout(with_heads=False)
        if head_name == "classifier" or not row[0].startswith("pooler")
    ]
    tensors = {"albert." + name: value for name, value in random_tensors(layout, 5).items()}
    rng = np.random.RandomState(6)
    tensors[f"{head_name}.weight"] = rng.normal(0, 1, [rows, HIDDEN]).astype(np.float32)
    tensors[f"{head_name}.bias"] = rng.normal(0, 1, [rows]).astype(np.float32)
    labels = {"id2label": {"0": "否", "1": "是", "2": "不确定"}} if rows == 3 else {}
    write_hf_dir(
        tmp_path / "hf", tensors, dict(TINY_HF_ALBERT, architectures=[architecture], **labels)
    )

    prefix = convert_checkpoint.convert_safetensors_to_tf(
        str(tmp_path / "hf"), str(tmp_path / "tf")
    )
    written = convert_checkpoint.convert_tf_to_safetensors(
        str(tmp_path / "tf"), str(tmp_path / "back")
    )

    np.testing.assert_array_equal(
        checkpoint_values(prefix)[f"{google_prefix}output_weights"], tensors[f"{head_name}.weight"]
    )
    assert_bit_exact(load_file(written), tensors)
    back = json.loads((tmp_path / "back" / "config.json").read_text(encoding="utf-8"))
    assert back["architectures"] == [architecture]
    if labels:
        assert back["id2label"] == labels["id2label"]
        assert back["problem_type"] == "single_label_classification"
