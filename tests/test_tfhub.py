"""Tests of tfhub.py (exporting both Hub formats, reading them back) and of
run_classifier_with_tfhub.py fine-tuning through each format."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

import modeling
import tfhub
from helpers import read_eval_results, run_script, write_keyword_task, write_tiny_model

tf1 = tf.compat.v1

# Three sequences of 7 ids: full, padded after 4 tokens, and a pair with segment ids.
INPUT_IDS = np.array(
    [[2, 10, 11, 12, 13, 14, 3], [2, 20, 21, 3, 0, 0, 0], [2, 30, 31, 3, 32, 33, 3]], np.int32
)
INPUT_MASK = (INPUT_IDS != 0).astype(np.int32)
SEGMENT_IDS = np.array([[0] * 7, [0] * 7, [0, 0, 0, 0, 1, 1, 1]], np.int32)


def write_random_checkpoint(config_file: str, path: str) -> None:
    """Saves every encoder variable with random values (LayerNorm gains and all biases
    included), so that any variable mis-mapped by an export changes the outputs."""
    config = modeling.BertConfig.from_json_file(config_file)
    rng = np.random.default_rng(7)
    with tf.Graph().as_default():
        modeling.BertModel(config, False, tf1.placeholder(tf.int32, [None, None]))
        with tf1.Session() as session:
            for var in tf1.global_variables():
                shape = var.shape.as_list()
                value = rng.normal(0.0, 0.2, shape)
                if var.name.endswith("gamma:0"):
                    value += 1.0
                var.load(value.astype(np.float32), session)
            tf1.train.Saver().save(session, path)


def checkpoint_outputs(config_file: str, checkpoint: str) -> dict[str, np.ndarray]:
    """pooled_output and sequence_output of modeling.BertModel restored from `checkpoint`."""
    config = modeling.BertConfig.from_json_file(config_file)
    with tf.Graph().as_default():
        model = modeling.BertModel(
            config, False, tf.constant(INPUT_IDS), tf.constant(INPUT_MASK), tf.constant(SEGMENT_IDS)
        )
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, checkpoint)
            pooled, sequence = session.run([model.get_pooled_output(), model.get_sequence_output()])
    return {"pooled_output": pooled, "sequence_output": sequence}


@pytest.fixture(scope="module")
def hub_models(tmp_path_factory):
    """A tiny random checkpoint (with dropout in its config), exported by tfhub.py's
    command line as a TF1 module (uncased) and a TF2 SavedModel (cased)."""
    root = tmp_path_factory.mktemp("hub")
    model = write_tiny_model(root, hidden_dropout_prob=0.1)
    checkpoint = str(root / "bert_model.ckpt")
    write_random_checkpoint(model["bert_config_file"], checkpoint)
    handles = {}
    for fmt, lower in (("tf1", True), ("tf2", False)):
        handles[fmt] = str(root / f"hub_{fmt}")
        run_script(
            "tfhub.py",
            dict(
                model,
                format=fmt,
                init_checkpoint=checkpoint,
                do_lower_case=lower,
                output_dir=handles[fmt],
            ),
        )
    expected = checkpoint_outputs(model["bert_config_file"], checkpoint)
    return dict(model, checkpoint=checkpoint, handles=handles, expected=expected)


def test_formats_are_detected_and_other_directories_rejected(hub_models, tmp_path):
    assert tfhub.module_format(hub_models["handles"]["tf1"]) == "tf1"
    assert tfhub.module_format(hub_models["handles"]["tf2"]) == "tf2"
    with pytest.raises(ValueError, match=f"bert_hub_module_handle={tmp_path}"):
        tfhub.module_format(str(tmp_path))


def test_tf1_module_gives_the_checkpoints_outputs_and_tokenization_info(hub_models):
    handle = hub_models["handles"]["tf1"]
    with tf.Graph().as_default():
        inputs = dict(
            input_ids=tf.constant(INPUT_IDS),
            input_mask=tf.constant(INPUT_MASK),
            segment_ids=tf.constant(SEGMENT_IDS),
        )
        outputs = hub.Module(handle)(inputs, signature="tokens", as_dict=True)
        training = hub.Module(handle, tags={"train"})(inputs, signature="tokens", as_dict=True)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            got, dropped = session.run([outputs, training["pooled_output"]])
    for name, want in hub_models["expected"].items():
        np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-5)
    # The {"train"} graph applies the config's dropout.
    assert np.abs(dropped - got["pooled_output"]).max() > 1e-3

    vocab_file, do_lower_case = tfhub.tokenization_info(handle)
    assert Path(vocab_file).parent == Path(handle) / "assets"
    assert Path(vocab_file).read_text() == Path(hub_models["vocab_file"]).read_text()
    assert do_lower_case is True


def test_tf2_saved_model_gives_the_checkpoints_outputs_eagerly_and_in_a_graph(hub_models):
    handle = hub_models["handles"]["tf2"]
    expected = hub_models["expected"]
    inputs = dict(input_word_ids=INPUT_IDS, input_mask=INPUT_MASK, input_type_ids=SEGMENT_IDS)
    loaded = hub.load(handle)
    eager = loaded({k: tf.constant(v) for k, v in inputs.items()}, training=False)
    for name, want in expected.items():
        np.testing.assert_allclose(eager[name].numpy(), want, rtol=0, atol=1e-5)
    assert len(eager["encoder_outputs"]) == 2
    np.testing.assert_allclose(
        eager["encoder_outputs"][-1].numpy(), expected["sequence_output"], rtol=0, atol=1e-5
    )
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(
        served["pooled_output"].numpy(), expected["pooled_output"], rtol=0, atol=1e-5
    )

    checkpoint_names = {name for name, _ in tf.train.list_variables(hub_models["checkpoint"])}
    with tf.Graph().as_default():
        layer = hub.KerasLayer(handle, trainable=True)
        graph_inputs = {k: tf.constant(v) for k, v in inputs.items()}
        outputs = layer(graph_inputs, training=False)
        dropped = layer(graph_inputs, training=True)["pooled_output"]
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            got, dropped = session.run([outputs["pooled_output"], dropped])
        trainable = {var.name.split(":")[0] for var in layer.trainable_weights}
    np.testing.assert_allclose(got, expected["pooled_output"], rtol=0, atol=1e-5)
    assert np.abs(dropped - got).max() > 1e-3
    assert trainable == checkpoint_names

    vocab_file, do_lower_case = tfhub.tokenization_info(handle)
    assert Path(vocab_file).read_text() == Path(hub_models["vocab_file"]).read_text()
    assert do_lower_case is False


def test_both_formats_take_any_sequence_length(hub_models):
    """The Hub signatures are [batch, None]: row 1 (4 real tokens) cut to 4 positions,
    and every row padded to 12, give the outputs of the 7-position batch."""
    expected = hub_models["expected"]
    cut = [array[1:2, :4] for array in (INPUT_IDS, INPUT_MASK, SEGMENT_IDS)]
    longer = [np.pad(array, [(0, 0), (0, 5)]) for array in (INPUT_IDS, INPUT_MASK, SEGMENT_IDS)]
    loaded = hub.load(hub_models["handles"]["tf2"])
    for arrays, rows, length in ((cut, [1], 4), (longer, [0, 1, 2], 7)):
        inputs = dict(zip(tfhub.TF2_INPUT_NAMES, map(tf.constant, arrays), strict=True))
        got = loaded(inputs, training=False)
        np.testing.assert_allclose(
            got["pooled_output"].numpy(), expected["pooled_output"][rows], atol=1e-5, rtol=0
        )
        np.testing.assert_allclose(
            got["sequence_output"].numpy()[:, :4],
            expected["sequence_output"][rows, :4],
            atol=1e-5,
            rtol=0,
        )
        assert got["sequence_output"].shape[1] == arrays[0].shape[1] >= length
    with tf.Graph().as_default():
        placeholders = [tf1.placeholder(tf.int32, [None, None]) for _ in range(3)]
        module = hub.Module(hub_models["handles"]["tf1"])
        outputs = module(
            dict(zip(tfhub.TF1_INPUT_NAMES, placeholders, strict=True)),
            signature="tokens",
            as_dict=True,
        )
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            pooled = session.run(
                outputs["pooled_output"], dict(zip(placeholders, cut, strict=True))
            )
    np.testing.assert_allclose(pooled, expected["pooled_output"][[1]], atol=1e-5, rtol=0)


def test_export_refuses_a_non_empty_output_dir(hub_models, tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    config = modeling.BertConfig.from_json_file(hub_models["bert_config_file"])
    with pytest.raises(ValueError, match=f"--output_dir={tmp_path} is not empty"):
        tfhub.export_tf2_saved_model(
            config, hub_models["checkpoint"], hub_models["vocab_file"], True, str(tmp_path)
        )


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tf1", "tf2"])
def test_classifier_fine_tunes_through_the_hub_model(hub_models, tmp_path, fmt):
    data, out = tmp_path / "data", tmp_path / "out"
    labels = write_keyword_task(data, {"train": 160, "dev": 48, "test": 5})
    run_script(
        "run_classifier_with_tfhub.py",
        dict(
            task_name="generic",
            data_dir=data,
            output_dir=out,
            bert_hub_module_handle=hub_models["handles"][fmt],
            do_train=True,
            do_eval=True,
            do_predict=True,
            max_seq_length=16,
            train_batch_size=16,
            num_train_epochs=5,
            learning_rate=5e-4,
            random_seed=5,
        ),
    )
    results = read_eval_results(out / "eval_results.txt")
    assert results["global_step"] == 50  # 160 / 16 * 5
    # The keyword task is learnt through the Hub encoder: far above the majority class.
    majority = max(labels["dev"].count(label) for label in ("happy", "sad")) / len(labels["dev"])
    assert majority < 0.65
    assert results["eval_accuracy"] >= 0.9
    probabilities = np.loadtxt(out / "test_results.tsv", delimiter="\t", ndmin=2)
    assert probabilities.shape == (5, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    # The encoder itself was fine-tuned, not only the new output layer.
    prefix = "module/" if fmt == "tf1" else ""
    trained = tf.train.load_checkpoint(str(out))
    initial = tf.train.load_checkpoint(hub_models["checkpoint"])
    for name in ("bert/pooler/dense/kernel", "bert/embeddings/word_embeddings"):
        assert np.abs(trained.get_tensor(prefix + name) - initial.get_tensor(name)).max() > 1e-4


def test_export_with_a_vocab_larger_than_the_config_is_refused_naming_both(hub_models, tmp_path):
    config = json.loads(Path(hub_models["bert_config_file"]).read_text())
    num_tokens = config["vocab_size"]
    smaller = tmp_path / "other_bert_config.json"
    smaller.write_text(json.dumps(dict(config, vocab_size=num_tokens - 2)))
    result = run_script(
        "tfhub.py",
        dict(
            vocab_file=hub_models["vocab_file"],
            bert_config_file=smaller,
            init_checkpoint=hub_models["checkpoint"],
            output_dir=tmp_path / "hub",
        ),
        expect_failure=True,
    )
    assert (
        f"{hub_models['vocab_file']} holds {num_tokens} tokens but {smaller} has "
        f"vocab_size={num_tokens - 2}"
    ) in result.stdout
    assert not (tmp_path / "hub").exists()
