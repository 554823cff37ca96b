"""predictor.py and export.freeze_saved_model: a tiny classifier is trained and exported
once by run_classifier.py; its Estimator.predict output (test_results.tsv) is the reference
every faster path must reproduce."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import export
import predictor
import tfrecord_io
from helpers import (
    REPO_ROOT,
    run_script,
    write_bert_config,
    write_keyword_task,
    write_tiny_model,
    write_vocab_for_texts,
)

MAX_SEQ_LENGTH = 16
NUM_TEST = 11


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trains the keyword task for a few steps, predicts its test set with the Estimator
    and exports a SavedModel; returns the paths and flags involved."""
    root = tmp_path_factory.mktemp("predictor")
    model_flags = write_tiny_model(root)
    data = root / "data"
    write_keyword_task(data, {"train": 64, "test": NUM_TEST})
    flags = dict(
        model_flags,
        data_dir=str(data),
        output_dir=str(root / "out"),
        max_seq_length=MAX_SEQ_LENGTH,
        train_batch_size=16,
        predict_batch_size=8,
        learning_rate=5e-4,
        task_name="generic",
        labels="happy,sad",
        export_dir=str(root / "exported"),
    )
    # The reference predictions are the original's: every batch padded to max_seq_length.
    run_script(
        "run_classifier.py",
        dict(flags, do_train=True, do_predict=True, num_train_epochs=1, bucket_by_length=False),
    )
    with (data / "test.csv").open(newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return {
        "root": root,
        "flags": flags,
        "texts": texts,
        "exported": root / "exported",
        "records": root / "out" / "predict.tf_record",
        "expected": np.loadtxt(root / "out" / "test_results.tsv", delimiter="\t", ndmin=2),
    }


@pytest.fixture(scope="module")
def classifier(trained):
    return predictor.ClassifierPredictor(str(trained["exported"]))


@pytest.mark.slow
def test_predictions_on_raw_texts_equal_the_estimators(trained, classifier):
    expected = trained["expected"]
    assert expected.shape == (NUM_TEST, 2)
    result = classifier.predict(trained["texts"])
    assert result.probabilities.shape == (NUM_TEST, 2)
    assert np.abs(result.probabilities - expected).max() <= 1e-5
    assert result.labels == [["happy", "sad"][i] for i in expected.argmax(axis=1)]
    # Batching changes nothing, including a last partial batch.
    in_fours = classifier.predict(trained["texts"], batch_size=4)
    assert np.abs(in_fours.probabilities - expected).max() <= 1e-5


@pytest.mark.slow
def test_the_export_carries_its_tokenizer_and_settings(trained, classifier):
    assert classifier.label_list == ["happy", "sad"]
    assert classifier.max_seq_length == MAX_SEQ_LENGTH
    # A pair is [CLS] a [SEP] b [SEP] with segment 1 on b, as BERT was trained; the ids are
    # looked up by hand in the vocab the export ships.
    vocab_file = os.path.join(classifier.export_path, "assets.extra", "vocab.txt")
    with open(vocab_file, encoding="utf-8") as f:
        vocab = {token: index for index, token in enumerate(f.read().splitlines())}
    features = classifier.featurize([("Wonderful river", "terrible")])
    tokens = ["[CLS]", "wonderful", "river", "[SEP]", "terrible", "[SEP]"]
    padding = [0] * (MAX_SEQ_LENGTH - len(tokens))
    assert features["input_ids"].tolist() == [[vocab[t] for t in tokens] + padding]
    assert features["input_mask"].tolist() == [[1] * 6 + padding]
    assert features["segment_ids"].tolist() == [[0, 0, 0, 0, 1, 1] + padding]
    assert features["input_ids"].dtype == np.int32


@pytest.mark.slow
def test_bad_inputs_are_refused_with_a_clear_error(tmp_path, classifier):
    with pytest.raises(TypeError, match="not a str"):
        classifier.predict("a single string")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        classifier.predict(["fine", ("a", "b", "c")])
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        predictor.ClassifierPredictor(str(tmp_path))


FROZEN_CHECK = """
import sys
import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
pb_file, record_file, expected_file = sys.argv[1:]
graph_def = tf1.GraphDef()
with open(pb_file, "rb") as f:
    graph_def.ParseFromString(f.read())
ops = {node.op for node in graph_def.node}
assert not ops & {"VarHandleOp", "VariableV2", "ReadVariableOp", "ParseExampleV2"}, ops
placeholders = sorted(node.name for node in graph_def.node if node.op == "Placeholder")
assert placeholders == ["input_ids", "input_mask", "segment_ids"], placeholders
records = [r.numpy() for r in tf.data.TFRecordDataset(record_file)]
parsed = [tf.train.Example.FromString(r).features.feature for r in records]
feed = {
    name + ":0": np.array([list(f[name].int64_list.value) for f in parsed], np.int32)
    for name in ("input_ids", "input_mask", "segment_ids")
}
graph = tf.Graph()
with graph.as_default():
    tf1.import_graph_def(graph_def, name="")
with tf1.Session(graph=graph) as session:
    probabilities = session.run("probabilities:0", feed)
expected = np.loadtxt(expected_file, delimiter="\\t", ndmin=2)
difference = np.abs(probabilities[: len(expected)] - expected).max()
print("max difference", difference)
assert difference <= 1e-5
"""


@pytest.mark.slow
def test_frozen_graph_reproduces_the_estimator_in_a_fresh_process(trained, tmp_path):
    pb_file = tmp_path / "frozen" / "classifier.pb"
    shown = run_script(
        "export.py", {"saved_model_dir": trained["exported"], "output_pb": pb_file}
    ).stdout
    for line in [
        "input\tinput_ids\tinput_ids:0",
        "input\tinput_mask\tinput_mask:0",
        "input\tsegment_ids\tsegment_ids:0",
        "output\tlogits\tlogits:0",
        "output\tprobabilities\tprobabilities:0",
    ]:
        assert line in shown.splitlines(), shown[-3000:]
    # Only TensorFlow in the process that loads it: the .pb stands on its own.
    subprocess.run(
        [
            sys.executable,
            "-c",
            FROZEN_CHECK,
            str(pb_file),
            str(trained["records"]),
            str(trained["root"] / "out" / "test_results.tsv"),
        ],
        cwd=tmp_path,
        check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )


def test_freezing_a_directory_without_a_saved_model_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        export.freeze_saved_model(str(tmp_path), str(tmp_path / "out.pb"))


@pytest.mark.slow
def test_interactive_alone_needs_only_the_export(trained):
    """`run_classifier.py --interactive --export_dir=...` reads vocab, labels and settings
    from the export: no --data_dir, --bert_config_file, --output_dir or --task_name."""
    command = [sys.executable, str(REPO_ROOT / "run_classifier.py"), "--interactive"]
    command.append(f"--export_dir={trained['exported']}")
    texts = trained["texts"][:2]
    result = subprocess.run(
        command,
        input="".join(text + "\n" for text in texts),
        cwd=REPO_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    for line, text, expected in zip(lines, texts, trained["expected"][:2], strict=True):
        label, probability, echoed = line.split("\t")
        assert label == ["happy", "sad"][expected.argmax()]
        assert abs(float(probability) - expected.max()) <= 1e-5
        assert echoed == text
    # Piped input: no prompt anywhere.
    assert predictor.PROMPT not in result.stdout + result.stderr


def run_predictor_cli(export_dir, stdin: str, *flags: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "predictor.py"), f"--export_dir={export_dir}", *flags],
        input=stdin,
        cwd=REPO_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.splitlines()


@pytest.mark.slow
def test_predictor_cli_prints_label_probability_and_text(trained):
    """The quickstart's last step: label name, probability and the sentence, tab-separated;
    a pair comes back as its two texts. --print_text=false keeps the bare prediction."""
    texts = trained["texts"][:2]
    expected = trained["expected"]
    stdin = f"{texts[0]}\n\n{texts[1]}\twonderful\n"
    want_pair = predictor.ClassifierPredictor(str(trained["exported"])).predict(
        [(texts[1], "wonderful")]
    )
    lines = run_predictor_cli(trained["exported"], stdin)
    assert len(lines) == 2, lines  # the blank line is skipped
    label, probability, text = lines[0].split("\t")
    assert label == ["happy", "sad"][expected[0].argmax()]
    assert abs(float(probability) - expected[0].max()) <= 1e-5
    assert text == texts[0]
    label, probability, text_a, text_b = lines[1].split("\t")
    assert label == want_pair.labels[0]
    assert abs(float(probability) - want_pair.probabilities[0].max()) <= 1e-5
    assert (text_a, text_b) == (texts[1], "wonderful")

    bare = run_predictor_cli(trained["exported"], texts[0] + "\n", "--print_text=false")
    assert bare == [lines[0].rsplit("\t", 1)[0]]


def test_interactive_without_export_dir_names_the_flag(tmp_path):
    result = run_script("run_classifier.py", {"interactive": True}, expect_failure=True)
    assert "--interactive reads the model from --export_dir, which is not set" in result.stdout


def test_training_flags_stay_required_without_interactive(tmp_path):
    result = run_script("run_classifier.py", {"do_train": True}, expect_failure=True)
    assert "--data_dir, --bert_config_file, --output_dir must be set" in result.stdout


def test_lines_read_from_a_terminal_are_prompted_for():
    import io
    import pty

    controller, terminal = pty.openpty()
    try:
        os.write(controller, "one\n第二行\n".encode() + b"\x04")  # Ctrl-D: end of input
        with open(terminal, encoding="utf-8", closefd=False) as stream:
            assert stream.isatty()
            prompts = io.StringIO()
            lines = list(predictor.prompted_lines(stream, prompt_to=prompts))
    finally:
        os.close(controller)
        os.close(terminal)
    assert lines == ["one\n", "第二行\n"]
    # One prompt per line read, one for the end of input, then a newline after it.
    assert prompts.getvalue() == "> > > \n"


def test_piped_lines_get_no_prompt():
    import io

    prompts = io.StringIO()
    lines = list(predictor.prompted_lines(io.StringIO("one\ntwo\n"), prompt_to=prompts))
    assert lines == ["one\n", "two\n"] and prompts.getvalue() == ""


PASSAGES = [
    (
        "The Thames flows through London and reaches the North Sea after 346 kilometres of "
        "meadows, towns and tidal marshes east of the city.",
        [("Which city does the Thames flow through?", "London"), ("Where does it end?", "Sea")],
    ),
    (
        "Honey bees live in colonies ruled by a single queen, who can lay 2000 eggs a day.",
        [("Who rules a colony of honey bees?", "a single queen")],
    ),
]
SQUAD_SETTINGS = {"max_seq_length": 32, "doc_stride": 8, "max_query_length": 12}


@pytest.mark.slow
def test_squad_predictor_gives_run_squads_answers(tmp_path):
    """The passages need several windows of 32 tokens, so windowing and the merging of
    windows in post-processing are exercised."""
    paragraphs = [
        {
            "context": passage,
            "qas": [
                {
                    "id": f"{i}-{j}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": passage.index(answer)}],
                }
                for j, (question, answer) in enumerate(questions)
            ],
        }
        for i, (passage, questions) in enumerate(PASSAGES)
    ]
    data_file = tmp_path / "squad.json"
    data_file.write_text(json.dumps({"version": "1.1", "data": [{"paragraphs": paragraphs}]}))
    texts = [passage for passage, _ in PASSAGES] + [q for _, qs in PASSAGES for q, _ in qs]
    vocab = write_vocab_for_texts(tmp_path / "vocab.txt", texts)
    write_bert_config(tmp_path / "bert_config.json", len(vocab), max_position_embeddings=32)
    out = tmp_path / "out"
    # One training step: an export needs a checkpoint, and the answers need not be right,
    # only the same as run_squad.py's.
    run_script(
        "run_squad.py",
        dict(
            SQUAD_SETTINGS,
            vocab_file=tmp_path / "vocab.txt",
            bert_config_file=tmp_path / "bert_config.json",
            output_dir=out,
            train_file=data_file,
            predict_file=data_file,
            do_train=True,
            do_predict=True,
            train_batch_size=3,
            num_train_epochs=1,
            random_seed=3,
            export_dir=out / "exported",
        ),
    )
    expected_answers = json.loads((out / "predictions.json").read_text())
    expected_nbest = json.loads((out / "nbest_predictions.json").read_text())

    # The vocab, casing and windowing settings all come from the export.
    squad = predictor.SquadPredictor(str(out / "exported"))
    assert squad.doc_stride == SQUAD_SETTINGS["doc_stride"] != 128
    assert squad.max_query_length == SQUAD_SETTINGS["max_query_length"] != 64
    pairs = [(q, passage) for passage, questions in PASSAGES for q, _ in questions]
    answers = squad.answer(pairs, batch_size=3)
    ids = [f"{i}-{j}" for i, (_, questions) in enumerate(PASSAGES) for j in range(len(questions))]
    assert [a.text for a in answers] == [expected_answers[qid] for qid in ids]
    for answer, qid in zip(answers, ids, strict=True):
        assert [e["text"] for e in answer.nbest] == [e["text"] for e in expected_nbest[qid]]
        for got, want in zip(answer.nbest, expected_nbest[qid], strict=True):
            assert abs(got["start_logit"] - want["start_logit"]) <= 1e-5
            assert abs(got["end_logit"] - want["end_logit"]) <= 1e-5


def _tiny_classifier_model_fn(config_file):
    """A BERT classifier of three labels, enough to export: what the exports' input
    shapes change is tested here, not the task."""
    import tensorflow as tf

    import modeling

    config = modeling.BertConfig.from_json_file(str(config_file))

    def model_fn(features, labels, mode, params):
        model = modeling.BertModel(
            config,
            False,
            features["input_ids"],
            features["input_mask"],
            features["segment_ids"],
        )
        logits = modeling.dense_layer(model.get_pooled_output(), 3, name="classifier")
        probabilities = tf.nn.softmax(logits)
        outputs = {"probabilities": probabilities, "logits": logits}
        return tf.estimator.EstimatorSpec(
            mode,
            predictions=outputs,
            export_outputs={"serving_default": tf.estimator.export.PredictOutput(outputs)},
        )

    return model_fn


def _mixed_length_rows(max_length, lengths, seed=0):
    rng = np.random.RandomState(seed)
    rows = {name: np.zeros([len(lengths), max_length], np.int32) for name in export.INPUT_NAMES}
    for row, length in enumerate(lengths):
        rows["input_ids"][row, :length] = rng.randint(5, 40, size=length)
        rows["input_mask"][row, :length] = 1
        rows["segment_ids"][row, length // 2 : length] = 1
    return rows


def test_dynamic_length_export_answers_mixed_lengths_as_the_fixed_length_one(tmp_path):
    import tensorflow as tf

    write_bert_config(tmp_path / "bert_config.json", 48, max_position_embeddings=40)
    model_fn = _tiny_classifier_model_fn(tmp_path / "bert_config.json")
    with export.initialized_checkpoint(model_fn, MAX_SEQ_LENGTH) as checkpoint:
        fixed_dir = export.export_saved_model(
            model_fn, checkpoint, str(tmp_path / "fixed"), MAX_SEQ_LENGTH, dynamic_length=False
        )
        dynamic_dir = export.export_saved_model(
            model_fn, checkpoint, str(tmp_path / "dynamic"), MAX_SEQ_LENGTH
        )
    fixed = tf.saved_model.load(fixed_dir).signatures["serving_default"]
    dynamic = tf.saved_model.load(dynamic_dir).signatures["serving_default"]
    assert fixed.structured_input_signature[1]["input_ids"].shape.as_list() == [None, 16]
    assert dynamic.structured_input_signature[1]["input_ids"].shape.as_list() == [None, None]

    lengths = [3, 16, 1, 9, 12, 5]
    rows = _mixed_length_rows(MAX_SEQ_LENGTH, lengths)
    expected = fixed(**{name: tf.constant(v) for name, v in rows.items()})["logits"].numpy()
    assert np.ptp(expected, axis=0).max() > 1e-3  # the rows do differ
    # The whole batch cut to its longest member (16) and to shorter ones without the
    # 16-token row; each row on its own at its exact length; and longer than trained.
    for pick, length in [(range(6), 16), ([0, 2, 3, 4, 5], 12), ([0, 2, 5], 5)]:
        pick = list(pick)
        got = dynamic(**{n: tf.constant(v[pick, :length]) for n, v in rows.items()})["logits"]
        np.testing.assert_allclose(got.numpy(), expected[pick], rtol=0, atol=1e-5)
    for row, length in enumerate(lengths):
        got = dynamic(**{n: tf.constant(v[row : row + 1, :length]) for n, v in rows.items()})
        np.testing.assert_allclose(
            got["logits"].numpy(), expected[row : row + 1], rtol=0, atol=1e-5
        )
    longer = {n: tf.constant(np.pad(v, [(0, 0), (0, 24)])) for n, v in rows.items()}
    np.testing.assert_allclose(dynamic(**longer)["logits"].numpy(), expected, rtol=0, atol=1e-5)

    # The tf.Example signature still takes records written at max_seq_length.
    records = [
        tf.train.Example(
            features=tf.train.Features(
                feature={n: tfrecord_io.create_int_feature(v[row]) for n, v in rows.items()}
            )
        ).SerializeToString()
        for row in range(len(lengths))
    ]
    by_examples = tf.saved_model.load(dynamic_dir).signatures["examples:serving_default"]
    got = by_examples(examples=tf.constant(records))["logits"].numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)

    # The frozen graph keeps the dynamic length.
    pb_file = tmp_path / "dynamic.pb"
    nodes = export.freeze_saved_model(dynamic_dir, str(pb_file))
    graph_def = tf.compat.v1.GraphDef.FromString(pb_file.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    placeholder = graph.get_tensor_by_name(nodes["inputs"]["input_ids"])
    assert placeholder.shape.as_list() == [None, None]
    with tf.compat.v1.Session(graph=graph) as session:
        feed = {nodes["inputs"][n]: v[[0, 2, 5], :5] for n, v in rows.items()}
        got = session.run(nodes["outputs"]["logits"], feed)
    np.testing.assert_allclose(got, expected[[0, 2, 5]], rtol=0, atol=1e-5)


def test_predictor_cuts_each_batch_to_its_longest_member():
    rows = _mixed_length_rows(MAX_SEQ_LENGTH, [3, 9, 1])
    cut = predictor.cut_to_longest(rows)
    assert {name: values.shape for name, values in cut.items()} == {
        name: (3, 9) for name in export.INPUT_NAMES
    }
    np.testing.assert_array_equal(cut["input_ids"], rows["input_ids"][:, :9])
    empty = predictor.cut_to_longest({n: np.zeros([2, 16], np.int32) for n in export.INPUT_NAMES})
    assert empty["input_mask"].shape == (2, 1)
