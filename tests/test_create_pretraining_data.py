"""Tests for create_pretraining_data.py.

The golden digests pin byte-identical output with the original google-research/bert script.
The other tests check the output against rules from the original's documentation, recomputed
here from the records themselves (masking proportions, whole words, shard semantics), and the
handling of bad input.
"""

import collections
import hashlib
import json
import math
import os
import random
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import app, flags

import create_pretraining_data as cpd
import input_files
import tokenization

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Six short documents: real English sentences, accented words, Chinese and Japanese lines, a
# line of control characters only (it yields no tokens and is skipped) and a one-sentence
# document.
DOCUMENTS = [
    [
        "The mountains were covered in fresh snow when we started walking before dawn.",
        "Our guide said the trail was longer than it looked on the map.",
        "By noon the wind had picked up, and the clouds moved quickly across the valley.",
        "We stopped at a small wooden hut to eat bread, cheese and apples.",
        "Nobody expected the weather to change so suddenly.",
        "When we finally reached the summit, the view was unbelievable.",
        "Walking back down took almost as long as the climb itself.",
    ],
    [
        "My grandmother kept her recipes in a notebook with a torn blue cover.",
        "She never measured flour; she simply knew how much the dough needed.",
        "Every Sunday the whole house smelled of cinnamon and baked apples.",
        "The café on the corner sold her pastries for a few years.",
        "Customers often asked for the secret, but she only smiled.",
        "After she retired, my uncle tried to copy the recipes and failed.",
    ],
    [
        "Light from the nearest star takes more than four years to reach the Earth.",
        "Astronomers measure such distances in light years rather than kilometres.",
        "A telescope collects light over a large area and focuses it onto a detector.",
        "Modern detectors can count single photons arriving from distant galaxies.",
        "The larger the mirror, the fainter the objects it can reveal.",
    ],
    [
        "北京是中国的首都。",
        "東京は日本の首都です。",
        "Zoë and Renée visited the old château near Besançon in late spring.",
        "They wrote postcards in French, German and a little Japanese.",
        "The naïve tourist confused the two rivers on the map.",
    ],
    [
        "The city council voted to build a new bridge over the river.",
        "Construction will begin next year and should last three years.",
        "\x07\x07",
        "Residents worry about the noise, but shop owners welcome the visitors.",
    ],
    ["A single sentence can be a document too."],
]

# A WordPiece vocab for the corpus. Many words exist only as pieces (walk ##ing, un ##bel ##ie
# ##va ##ble, ...) so that whole-word masking has multi-piece words to work on; cinnamon,
# chateau, besancon and 首 are missing and become [UNK].
VOCAB = """
[PAD] [UNK] [CLS] [SEP] [MASK] , . ; 。
a about across after almost and apples area as asked at back baked be before begin blue bread
bridge build but by cafe can change cheese city climb clouds collects copy corner council
count cover dawn distances distant document dough down earth eat every few finally flour
focuses for four french fresh from german guide had her house how hut in it itself japanese
kept knew large larger last late light little long longer map measure mirror modern more
moved much my naive near nearest never new next nobody noise noon notebook objects of often
old on only onto our over owners rather reach river rivers said secret sentence she shop
should simply single small snow so sold spring star such summit sunday takes than the they
three to too took torn tourist trail tried two uncle up valley view was we weather welcome
were when whole will wind with wooden worry wrote year years zoe renee
walk mountain quick un sudden detect gal kilo astro tele grand recipe past customer resident
visit photon post construct smell smile start stop look pick expect need retire fail vote
confuse arriv
##ing ##s ##ly ##bel ##ie ##va ##ble ##or ##ax ##ies ##met ##res ##nom ##ers ##scope ##mother
##ries ##ors ##ed ##card ##ion ##d ##ped ##er ##ght ##ant
北 京 是 中 国 的 東 は 日 本 の てす
""".split()

# The flags of the golden runs: short sequences so that truncation, short targets, random
# next sentences and put-back segments all happen on this small corpus.
GOLDEN_FLAGS = dict(
    max_seq_length=32,
    max_predictions_per_seq=6,
    dupe_factor=3,
    short_seq_prob=0.2,
    masked_lm_prob=0.15,
    random_seed=12345,
)

# SHA-256 of the two output files of the ORIGINAL google-research/bert
# create_pretraining_data.py (commit eedf571, copied to a scratch directory with
# `import tensorflow.compat.v1 as tf` instead of `import tensorflow as tf`, with its own
# tokenization.py), run under Python 3.11, TensorFlow 2.15.1 and protobuf 4.25 on the files
# `write_corpus` writes, with GOLDEN_FLAGS, --do_whole_word_mask=<key> and
# --output_file=out-0.tfrecord,out-1.tfrecord. Regenerate (and check) them with
# `python tools/regenerate_pretraining_goldens.py /path/to/google-research-bert --check`.
GOLDEN_DIGESTS = {
    False: (
        "4ce31d8b4e9441153c38adb4f1eb1d5e307bddc92761c6f4a70765bdf8f5fec8",
        "d664f488da4a4d8c9359a3b49672b713c34a3e80435db28ea6bae6efbc47aa6a",
    ),
    True: (
        "cd3dc38a9d978ac03ece5989ac2d04ee11bc5b5138a2228243f1d5f08e67480b",
        "da348d87315ddc44024c8e94b69e9d2976219c94c5ccdda5de1ed4dbca830245",
    ),
}


def write_corpus(directory):
    """Writes the corpus as two files and the vocab; returns (input_file flag, vocab path).

    The first file does not end with a blank line, so (as in the original) its last document
    runs on into the second file; the second file has Windows line endings.
    """
    directory = str(directory)
    first = "\n\n".join("\n".join(document) for document in DOCUMENTS[:3]) + "\n"
    second = "\n\n".join("\n".join(document) for document in DOCUMENTS[3:]) + "\n"
    paths = [os.path.join(directory, "part-1.txt"), os.path.join(directory, "part-2.txt")]
    with open(paths[0], "w", encoding="utf-8", newline="\n") as f:
        f.write(first)
    with open(paths[1], "w", encoding="utf-8", newline="\r\n") as f:
        f.write(second)
    vocab_path = os.path.join(directory, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    return ",".join(paths), vocab_path


def run_main(**flag_values):
    """Runs `main` in-process on the given flags, parsed by absl as on the command line."""
    argv = ["create_pretraining_data.py"]
    argv += [f"--{name}={value}" for name, value in flag_values.items()]
    # A FlagValues of its own keeps these flags apart from other scripts' in this process.
    parsed = flags.FlagValues()
    cpd.define_flags(parsed)
    parsed(argv)
    cpd.main([], parsed)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_records(path):
    return [bytes(r) for r in tf.compat.v1.io.tf_record_iterator(path)]


def parse(record):
    """A record as {feature name: list of values}."""
    feature = tf.train.Example.FromString(record).features.feature
    return {
        name: list(feature[name].int64_list.value or feature[name].float_list.value)
        for name in feature
    }


@pytest.fixture
def corpus(tmp_path):
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    input_file, vocab_file = write_corpus(input_dir)
    return input_file, vocab_file, output_dir


# --------------------------------------------------------------------------------------------
# Byte-identical to the original


@pytest.mark.parametrize("whole_word", [False, True])
def test_output_is_byte_identical_to_the_original(corpus, whole_word):
    input_file, vocab_file, output_dir = corpus
    outputs = [str(output_dir / "out-0.tfrecord"), str(output_dir / "out-1.tfrecord")]
    run_main(
        input_file=input_file,
        output_file=",".join(outputs),
        vocab_file=vocab_file,
        do_whole_word_mask=whole_word,
        **GOLDEN_FLAGS,
    )
    assert (sha256(outputs[0]), sha256(outputs[1])) == GOLDEN_DIGESTS[whole_word]
    assert sorted(os.listdir(output_dir)) == ["out-0.tfrecord", "out-1.tfrecord"]


def test_script_runs_from_the_command_line(corpus):
    input_file, vocab_file, output_dir = corpus
    output = str(output_dir / "out.tfrecord")
    flag_args = [f"--{name}={value}" for name, value in GOLDEN_FLAGS.items()]
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "create_pretraining_data.py"),
        f"--input_file={input_file}",
        f"--output_file={output}",
        f"--vocab_file={vocab_file}",
        *flag_args,
    ]

    def run(*extra):
        completed = subprocess.run(
            command + list(extra), capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
        )
        assert completed.returncode == 0, completed.stderr
        return completed

    # The original logs its first 20 examples in full: so does --verbosity=1; by default
    # the first one is shown.
    assert run("--verbosity=1").stderr.count("*** Example ***") == 20
    completed = run()
    records = read_records(output)
    assert f"Wrote {len(records)} total instances" in completed.stderr
    assert completed.stderr.count("*** Example ***") == 1
    assert "instances/s" in completed.stderr and "ETA" in completed.stderr
    first = parse(records[0])
    logged_ids = " ".join(str(i) for i in first["input_ids"])
    assert f"input_ids: {logged_ids}" in completed.stderr


def test_command_line_without_input_file_fails_with_the_flag_name(corpus):
    _, vocab_file, output_dir = corpus
    completed = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "create_pretraining_data.py"),
            f"--output_file={output_dir / 'out.tfrecord'}",
            f"--vocab_file={vocab_file}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert completed.returncode != 0
    assert "input_file" in completed.stderr
    assert os.listdir(output_dir) == []


# --------------------------------------------------------------------------------------------
# The instances, checked against the documented rules


def unmasked_ids(record):
    """The record's token ids before masking: masked positions get their labels back."""
    num_masked = int(sum(record["masked_lm_weights"]))
    ids = list(record["input_ids"][: sum(record["input_mask"])])
    for position, label in zip(
        record["masked_lm_positions"][:num_masked], record["masked_lm_ids"], strict=False
    ):
        ids[position] = label
    return ids


def test_features_are_padded_and_consistent(corpus):
    input_file, vocab_file, output_dir = corpus
    outputs = [str(output_dir / "out-0.tfrecord"), str(output_dir / "out-1.tfrecord")]
    run_main(
        input_file=input_file, output_file=",".join(outputs), vocab_file=vocab_file, **GOLDEN_FLAGS
    )
    cls_id, sep_id = VOCAB.index("[CLS]"), VOCAB.index("[SEP]")
    first, second = read_records(outputs[0]), read_records(outputs[1])
    # Round-robin: the first file gets the extra record of an odd count.
    assert len(first) - len(second) in (0, 1)
    records = [parse(r) for r in first + second]
    for record in records:
        assert {name: len(values) for name, values in record.items()} == {
            "input_ids": 32,
            "input_mask": 32,
            "segment_ids": 32,
            "masked_lm_positions": 6,
            "masked_lm_ids": 6,
            "masked_lm_weights": 6,
            "next_sentence_labels": 1,
        }
        length = sum(record["input_mask"])
        assert record["input_mask"] == [1] * length + [0] * (32 - length)
        assert record["input_ids"][length:] == [0] * (32 - length)
        ids = unmasked_ids(record)
        assert ids[0] == cls_id and ids[-1] == sep_id and ids.count(sep_id) == 2
        first_sep = ids.index(sep_id)
        assert 1 < first_sep < length - 2  # both segments hold at least one token
        assert record["segment_ids"] == (
            [0] * (first_sep + 1) + [1] * (length - first_sep - 1) + [0] * (32 - length)
        )
        num_masked = int(sum(record["masked_lm_weights"]))
        # round(len * 0.15), at least one, at most max_predictions_per_seq.
        assert num_masked == min(6, max(1, round(length * 0.15)))
        assert record["masked_lm_weights"] == [1.0] * num_masked + [0.0] * (6 - num_masked)
        positions = record["masked_lm_positions"][:num_masked]
        assert positions == sorted(set(positions))
        assert all(0 < p < length - 1 and p != first_sep for p in positions)
        assert record["masked_lm_positions"][num_masked:] == [0] * (6 - num_masked)
        assert record["masked_lm_ids"][num_masked:] == [0] * (6 - num_masked)
    # Both kinds of next sentence occur.
    assert {r["next_sentence_labels"][0] for r in records} == {0, 1}


def test_masking_replaces_80_percent_with_mask_10_random_10_unchanged():
    vocab = {
        token: index
        for index, token in enumerate(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(995)]
        )
    }
    vocab_ids = cpd.VocabIds.from_vocab(vocab)
    options = cpd.InstanceOptions(max_predictions_per_seq=20, masked_lm_prob=0.15)
    tokens = [vocab["[CLS]"], *range(5, 55), vocab["[SEP]"], *range(55, 105), vocab["[SEP]"]]
    rng = random.Random(7)
    outcomes = collections.Counter()
    position_counts = collections.Counter()
    for _ in range(2000):
        masked, positions, labels = cpd.create_masked_lm_predictions(
            tokens, options, vocab_ids, rng
        )
        assert len(positions) == 15  # round(103 * 0.15)
        assert labels == [tokens[p] for p in positions]
        assert all(masked[i] == tokens[i] for i in range(len(tokens)) if i not in positions)
        for position in positions:
            position_counts[position] += 1
            if masked[position] == vocab["[MASK]"]:
                outcomes["mask"] += 1
            elif masked[position] == tokens[position]:
                outcomes["same"] += 1
            else:
                outcomes["random"] += 1
    total = sum(outcomes.values())
    # 30000 draws: the standard error of each share is below 0.0025.
    assert outcomes["mask"] / total == pytest.approx(0.8, abs=0.01)
    assert outcomes["same"] / total == pytest.approx(0.1, abs=0.01)
    assert outcomes["random"] / total == pytest.approx(0.1, abs=0.01)
    # [CLS] and [SEP] are never masked; every other position is, about equally often.
    assert set(position_counts) == set(range(1, 102)) - {51}
    assert min(position_counts.values()) > 0.5 * total / 100


def words_of(tokens):
    """Index groups of whole words: a token and the `##` pieces after it, within a segment."""
    words = []
    for index, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            continue
        if token.startswith("##") and words and words[-1][-1] == index - 1:
            words[-1].append(index)
        else:
            words.append([index])
    return words


def masked_word_shapes(output):
    """(pieces in the word, pieces of it masked) for every multi-piece word in the records."""
    shapes = collections.Counter()
    for record in map(parse, read_records(output)):
        num_masked = int(sum(record["masked_lm_weights"]))
        positions = record["masked_lm_positions"][:num_masked]
        for word in words_of([VOCAB[i] for i in unmasked_ids(record)]):
            if len(word) > 1:
                shapes[(len(word), len(set(word) & set(positions)))] += 1
    return shapes


def test_whole_word_masking_never_masks_part_of_a_word(corpus):
    input_file, vocab_file, output_dir = corpus
    flag_values = dict(GOLDEN_FLAGS, dupe_factor=20)
    for whole_word in (True, False):
        output = str(output_dir / f"out-{whole_word}.tfrecord")
        run_main(
            input_file=input_file,
            output_file=output,
            vocab_file=vocab_file,
            do_whole_word_mask=whole_word,
            **flag_values,
        )
        shapes = masked_word_shapes(output)
        partly_masked = sum(n for (size, masked), n in shapes.items() if 0 < masked < size)
        fully_masked = sum(n for (size, masked), n in shapes.items() if masked == size)
        if whole_word:
            assert partly_masked == 0
            assert fully_masked > 20
        else:
            # The same check fails for per-piece masking, so it can see a split word.
            assert partly_masked > 20


# --------------------------------------------------------------------------------------------
# --num_workers > 1


def test_sharded_output_is_the_original_run_on_each_shard(corpus, tmp_path):
    """With one document per shard, N > 1 writes, in shard order, what the single-process
    algorithm writes for each document alone, seeded with 64 bits of
    SHA-256("random_seed:shard_index")."""
    _, vocab_file, output_dir = corpus
    documents = DOCUMENTS
    corpus_path = tmp_path / "corpus.txt"
    corpus_path.write_text("\n\n".join("\n".join(d) for d in documents) + "\n", "utf-8")
    sharded = str(output_dir / "sharded.tfrecord")
    flag_values = dict(GOLDEN_FLAGS, dupe_factor=2)
    # A shard is cut once it holds at least 1 byte, so every document is a shard of its own.
    run_main(
        input_file=corpus_path,
        output_file=sharded,
        vocab_file=vocab_file,
        num_workers=2,
        shard_size_mb=1e-6,
        **flag_values,
    )

    expected = []
    for index, document in enumerate(documents):
        single_path = tmp_path / f"doc-{index}.txt"
        single_path.write_text("\n".join(document) + "\n", "utf-8")
        seed = int.from_bytes(hashlib.sha256(f"12345:{index}".encode()).digest()[:8], "little")
        single_output = str(tmp_path / f"doc-{index}.tfrecord")
        run_main(
            input_file=single_path,
            output_file=single_output,
            vocab_file=vocab_file,
            **dict(flag_values, random_seed=seed),
        )
        expected += read_records(single_output)
    assert read_records(sharded) == expected


def test_sharded_output_is_the_same_on_every_run_and_worker_count(corpus):
    input_file, vocab_file, output_dir = corpus
    digests = []
    for run, num_workers in enumerate([2, 2, 3]):
        outputs = [str(output_dir / f"run{run}-{i}.tfrecord") for i in range(2)]
        run_main(
            input_file=input_file,
            output_file=",".join(outputs),
            vocab_file=vocab_file,
            num_workers=num_workers,
            shard_size_mb=0.0005,
            **GOLDEN_FLAGS,
        )
        digests.append([sha256(path) for path in outputs])
    assert digests[0] == digests[1] == digests[2]


# --------------------------------------------------------------------------------------------
# Bad input


def test_glob_matching_nothing_names_the_pattern(corpus):
    input_file, vocab_file, output_dir = corpus
    missing = str(output_dir.parent / "in" / "nothing-*.txt")
    with pytest.raises(FileNotFoundError, match="nothing-"):
        run_main(
            input_file=f"{input_file},{missing}",
            vocab_file=vocab_file,
            output_file=output_dir / "out.tfrecord",
        )
    # A directory is not a file (the original would read it as an empty one).
    with pytest.raises(FileNotFoundError, match="--input_file"):
        run_main(
            input_file=output_dir.parent / "i*",
            vocab_file=vocab_file,
            output_file=output_dir / "out.tfrecord",
        )
    assert os.listdir(output_dir) == []


@pytest.mark.parametrize("num_workers", [1, 2])
def test_empty_corpus_is_an_error_and_writes_nothing(tmp_path, corpus, num_workers):
    _, vocab_file, output_dir = corpus
    empty = tmp_path / "empty.txt"
    # Blank lines, whitespace and a line of control characters only: no tokens at all.
    empty.write_text("\n\n   \t\n\x07\n\n", "utf-8")
    with pytest.raises(cpd.EmptyCorpusError, match="input_file"):
        run_main(
            input_file=empty,
            vocab_file=vocab_file,
            num_workers=num_workers,
            output_file=output_dir / "out.tfrecord",
        )
    assert os.listdir(output_dir) == []


@pytest.mark.parametrize(
    "flag_name, value",
    [
        ("max_seq_length", 4),
        ("max_predictions_per_seq", 0),
        ("dupe_factor", 0),
        ("masked_lm_prob", 1.5),
        ("num_workers", 0),
    ],
)
def test_bad_numeric_flags_are_rejected_before_any_work(corpus, flag_name, value):
    input_file, vocab_file, output_dir = corpus
    with pytest.raises(flags.IllegalFlagValueError, match=f"--{flag_name}"):
        run_main(
            input_file=input_file,
            vocab_file=vocab_file,
            output_file=output_dir / "out.tfrecord",
            **{flag_name: value},
        )
    assert os.listdir(output_dir) == []


def test_smallest_sequence_length_works(corpus):
    input_file, vocab_file, output_dir = corpus
    output = str(output_dir / "out.tfrecord")
    run_main(
        input_file=input_file,
        vocab_file=vocab_file,
        output_file=output,
        max_seq_length=5,
        max_predictions_per_seq=1,
        dupe_factor=1,
    )
    for record in map(parse, read_records(output)):
        assert record["input_mask"] == [1] * 5
        assert record["segment_ids"] == [0, 0, 0, 1, 1]


def test_a_missing_output_directory_is_created(corpus):
    input_file, vocab_file, output_dir = corpus
    output_file = output_dir / "new" / "dir" / "out.tfrecord"
    run_main(input_file=input_file, vocab_file=vocab_file, output_file=output_file)
    assert sum(1 for _ in tf.data.TFRecordDataset(str(output_file))) > 0
    assert os.listdir(output_file.parent) == ["out.tfrecord"]


def test_undecodable_corpus_stops_naming_file_line_and_flag(tmp_path, corpus):
    # The original dropped such bytes silently, which turns a GBK corpus into English-only
    # data; here the run stops before writing anything.
    _, vocab_file, output_dir = corpus
    text = "\n\n".join("\n".join(document) for document in DOCUMENTS).encode("utf-8")
    broken = tmp_path / "broken.txt"
    broken.write_bytes(text.replace(b"fresh snow", b"fresh sn\x80ow"))
    line = text[: text.index(b"fresh snow")].count(b"\n") + 1
    column = len(text.split(b"\n")[line - 1].split(b"fresh snow")[0]) + len("fresh sn") + 1
    output = output_dir / "out.tfrecord"
    output.write_bytes(b"previous run")
    with pytest.raises(input_files.InputFileError) as error:
        run_main(input_file=broken, vocab_file=vocab_file, output_file=output, **GOLDEN_FLAGS)
    assert str(error.value).startswith(
        f"{broken}:{line}: not valid UTF-8 (byte 0x80 at column {column}); if the file is in "
        "another encoding, pass --input_encoding=gbk"
    )
    assert output.read_bytes() == b"previous run"
    assert os.listdir(output_dir) == ["out.tfrecord"]


CHINESE_DOCUMENTS = [
    ["北京是中国的首都。", "今天的天气很好，我们去公园散步。"],
    ["中国的河很长。", "日本的山很高。", "北京的冬天很冷。"],
]


def test_gbk_corpus_with_input_encoding_gives_the_records_of_its_utf8_copy(tmp_path, corpus):
    _, vocab_file, output_dir = corpus
    text = "\n\n".join("\n".join(document) for document in CHINESE_DOCUMENTS) + "\n"
    utf8_file, gbk_file = tmp_path / "utf8.txt", tmp_path / "gbk.txt"
    utf8_file.write_bytes(text.encode("utf-8"))
    gbk_file.write_bytes(text.encode("gbk"))
    flags_ = dict(GOLDEN_FLAGS, dupe_factor=1)
    with pytest.raises(input_files.InputFileError, match=f"{gbk_file}:1: not valid UTF-8"):
        run_main(input_file=gbk_file, vocab_file=vocab_file, output_file=output_dir / "x", **flags_)
    outputs = [output_dir / "utf8.tfrecord", output_dir / "gbk.tfrecord"]
    run_main(input_file=utf8_file, vocab_file=vocab_file, output_file=outputs[0], **flags_)
    run_main(
        input_file=gbk_file,
        vocab_file=vocab_file,
        output_file=outputs[1],
        input_encoding="gbk",
        **flags_,
    )
    records = read_records(str(outputs[1]))
    assert records and records == read_records(str(outputs[0]))
    # The Chinese characters made it into the records (the original would have dropped them).
    bei = VOCAB.index("北")
    assert any(bei in parse(record)["input_ids"] for record in records)


def test_vocab_without_mask_is_refused_naming_the_file_and_token(tmp_path, corpus):
    input_file, _, output_dir = corpus
    vocab_file = tmp_path / "no_mask_vocab.txt"
    vocab_file.write_text("\n".join(t for t in VOCAB if t != "[MASK]") + "\n", "utf-8")
    (output_dir / "o.tfrecord").write_bytes(b"previous run")
    with pytest.raises(tokenization.MissingTokenError) as error:
        run_main(
            input_file=input_file, vocab_file=vocab_file, output_file=output_dir / "o.tfrecord"
        )
    assert str(error.value).startswith(f"{vocab_file} has no [MASK] token")
    assert os.listdir(output_dir) == ["o.tfrecord"]
    assert (output_dir / "o.tfrecord").read_bytes() == b"previous run"


# --------------------------------------------------------------------------------------------
# Atomic output


def test_failure_while_writing_leaves_no_file_and_keeps_the_old_one(corpus, monkeypatch):
    input_file, vocab_file, output_dir = corpus
    outputs = [output_dir / "out-0.tfrecord", output_dir / "out-1.tfrecord"]
    outputs[0].write_bytes(b"previous run")
    logged = []

    def log_then_fail(serialized, inv_vocab):
        # Called after each of the first examples is written: fail at the third.
        logged.append(serialized)
        if len(logged) == 3:
            raise RuntimeError("disk full")

    monkeypatch.setattr(cpd, "log_example", log_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        run_main(
            input_file=input_file,
            vocab_file=vocab_file,
            output_file=",".join(map(str, outputs)),
            **GOLDEN_FLAGS,
        )
    assert len(logged) == 3
    assert os.listdir(output_dir) == ["out-0.tfrecord"]
    assert outputs[0].read_bytes() == b"previous run"


def test_sharded_failure_after_some_shards_leaves_nothing(corpus, monkeypatch):
    input_file, vocab_file, output_dir = corpus
    read_spill = cpd.read_spill
    handed_over = []

    def fail_at_third_shard(path):
        # Runs in the main process as it writes each finished shard, in shard order.
        if len(handed_over) == 2:
            raise RuntimeError("disk full")
        handed_over.append(list(read_spill(path)))
        return iter(handed_over[-1])

    monkeypatch.setattr(cpd, "read_spill", fail_at_third_shard)
    with pytest.raises(RuntimeError, match="disk full"):
        # One shard per document.
        run_main(
            input_file=input_file,
            vocab_file=vocab_file,
            output_file=output_dir / "out.tfrecord",
            num_workers=2,
            shard_size_mb=1e-6,
            **GOLDEN_FLAGS,
        )
    assert all(handed_over)  # two shards' records were written before the failure
    assert os.listdir(output_dir) == []


# --------------------------------------------------------------------------------------------
# Chinese whole-word masking (--word_segmenter, --word_ref_file)

# Written for this project: a few dozen lines of plain Chinese prose in nine documents, the
# last one mixing in English words.
ZH_CORPUS = os.path.join(REPO_ROOT, "data", "pretraining_corpus_zh.txt")
ZH_FLAGS = dict(
    max_seq_length=128,
    max_predictions_per_seq=20,
    masked_lm_prob=0.15,
    short_seq_prob=0.1,
    dupe_factor=20,
    random_seed=7,
)


def test_segmentation(text_lines, tokenizer):
    """Per line, (tokens, word number of each token), segmented by jieba in the test's own
    way: each jieba word of two or more CJK characters is one word, any other CJK character a
    word alone, and an other jieba word ("Python", "CSV") one word of all its pieces."""
    import jieba

    jieba.setLogLevel(60)
    segmenter = jieba.Tokenizer()
    lines = []
    word_number = 0
    for line in text_lines:
        tokens, words = [], []
        for word in segmenter.lcut(line):
            pieces = tokenizer.tokenize(word)
            if not pieces:
                continue
            all_cjk = all(tokenization.is_chinese_character(char) for char in word)
            if all_cjk and len(word) > 1 or not any(
                    tokenization.is_chinese_character(char) for char in word):
                words += [word_number] * len(pieces)
                word_number += 1
            else:
                for _ in pieces:
                    words.append(word_number)
                    word_number += 1
            tokens += pieces
        assert tokens == tokenizer.tokenize(line), line
        lines.append((tokens, words))
    return lines


test_segmentation.__test__ = False  # a helper, not a test


def zh_setup(tmp_path):
    """Vocab and tokenizer for the Chinese corpus; the corpus's documents as (token stream,
    word numbers) pairs."""
    from helpers import write_vocab_for_texts

    text = open(ZH_CORPUS, encoding="utf-8").read()
    vocab_file = tmp_path / "vocab_zh.txt"
    write_vocab_for_texts(vocab_file, text.splitlines())
    tokenizer = tokenization.FullTokenizer(str(vocab_file), do_lower_case=True)
    documents = []
    for document in text.split("\n\n"):
        tokens, words = [], []
        for line_tokens, line_words in test_segmentation(document.splitlines(), tokenizer):
            tokens += line_tokens
            words += line_words
        documents.append((tokens, words))
    return vocab_file, tokenizer, documents


def segments_of(tokens):
    """(start, end) of segments A and B in `[CLS] A [SEP] B [SEP]`."""
    first_sep = tokens.index("[SEP]")
    return (1, first_sep), (first_sep + 1, len(tokens) - 1)


def occurrences(segment, documents):
    """Word numbers of the segment's tokens at each place it occurs in the corpus."""
    found = []
    for tokens, words in documents:
        for start in range(len(tokens) - len(segment) + 1):
            if tokens[start:start + len(segment)] == segment:
                found.append(words[start:start + len(segment)])
    return found


def whole_word_violations(output, tokenizer, documents):
    """(segments checked, segments with a partly masked word under every placement)."""
    checked = violations = 0
    for record in map(parse, read_records(output)):
        num_masked = int(sum(record["masked_lm_weights"]))
        masked = set(record["masked_lm_positions"][:num_masked])
        tokens = tokenizer.convert_ids_to_tokens(unmasked_ids(record))
        for start, end in segments_of(tokens):
            placements = occurrences(tokens[start:end], documents)
            assert placements, "every segment is text of the corpus"
            checked += 1
            violations += not any(
                masks_whole_words(placement, start, masked) for placement in placements)
    return checked, violations


def masks_whole_words(word_numbers, start, masked):
    """Whether each word (tokens start, start + 1, ... numbered by `word_numbers`) is masked
    in full or not at all."""
    groups = collections.defaultdict(set)
    for offset, number in enumerate(word_numbers):
        groups[number].add(start + offset)
    return all(group <= masked or not group & masked for group in groups.values())


@pytest.fixture(scope="module")
def zh_jieba_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("zh")
    vocab_file, tokenizer, documents = zh_setup(tmp_path)
    output = str(tmp_path / "jieba.tfrecord")
    run_main(
        input_file=ZH_CORPUS, output_file=output, vocab_file=vocab_file,
        do_whole_word_mask=True, word_segmenter="jieba", **ZH_FLAGS)
    return tmp_path, vocab_file, tokenizer, documents, output


def test_chinese_whole_word_masking_masks_jieba_words_whole(zh_jieba_run):
    _, _, tokenizer, documents, output = zh_jieba_run
    checked, violations = whole_word_violations(output, tokenizer, documents)
    assert checked > 500
    assert violations == 0


def test_chinese_character_masking_splits_words(zh_jieba_run):
    """Without a segmenter the same check finds split words: it can see them."""
    tmp_path, vocab_file, tokenizer, documents, _ = zh_jieba_run
    output = str(tmp_path / "plain.tfrecord")
    run_main(
        input_file=ZH_CORPUS, output_file=output, vocab_file=vocab_file,
        do_whole_word_mask=True, **ZH_FLAGS)
    checked, violations = whole_word_violations(output, tokenizer, documents)
    assert violations > 0.3 * checked


def test_chinese_whole_word_output_has_no_subword_tokens(zh_jieba_run):
    _, _, tokenizer, _, output = zh_jieba_run
    records = list(map(parse, read_records(output)))
    ids = set()
    for record in records:
        ids.update(record["input_ids"])
        ids.update(record["masked_lm_ids"])
    tokens = tokenizer.convert_ids_to_tokens(sorted(ids))
    # The vocab holds a `##` form of every character, so a leak would show.
    assert sum(token.startswith("##") for token in tokenizer.vocab) > 400
    assert not [token for token in tokens if token.startswith("##")]


def test_chinese_whole_word_masked_fraction_is_masked_lm_prob(zh_jieba_run):
    _, _, _, _, output = zh_jieba_run
    records = list(map(parse, read_records(output)))
    num_masked = sum(sum(record["masked_lm_weights"]) for record in records)
    num_tokens = sum(sum(record["input_mask"]) for record in records)
    assert len(records) > 300
    assert abs(num_masked / num_tokens - ZH_FLAGS["masked_lm_prob"]) < 0.005


def test_chinese_whole_word_decides_mask_keep_replace_per_word(zh_jieba_run):
    """All characters of a masked word are [MASK], or none is: one decision per word (per
    character, a two-character word would be partly [MASK] 32% of the time)."""
    _, _, tokenizer, documents, output = zh_jieba_run
    mask_id = tokenizer.vocab["[MASK]"]
    mixed = multi_character = all_mask = 0
    for record in map(parse, read_records(output)):
        num_masked = int(sum(record["masked_lm_weights"]))
        masked = set(record["masked_lm_positions"][:num_masked])
        tokens = tokenizer.convert_ids_to_tokens(unmasked_ids(record))
        for start, end in segments_of(tokens):
            placements = occurrences(tokens[start:end], documents)
            groups = collections.defaultdict(list)
            for offset, number in enumerate(placements[0]):
                groups[number].append(start + offset)
            for group in groups.values():
                if len(group) > 1 and set(group) <= masked:
                    multi_character += 1
                    is_mask = [record["input_ids"][i] == mask_id for i in group]
                    mixed += any(is_mask) and not all(is_mask)
                    all_mask += all(is_mask)
    assert multi_character > 300
    # A random replacement may be [MASK] itself (1 in the vocab size).
    assert mixed <= 0.01 * multi_character
    assert 0.72 < all_mask / multi_character < 0.88


def write_ref_file(path, corpus_path, tokenizer):
    """A reference file as transformers' run_chinese_ref.py writes one, from jieba's words:
    per non-blank line, the positions ([CLS] = 0) of the CJK characters that continue a
    word."""
    lines = [line.strip() for line in open(corpus_path, encoding="utf-8") if line.strip()]
    with open(path, "w", encoding="utf-8") as f:
        for tokens, words in test_segmentation(lines, tokenizer):
            positions = [
                index + 1 for index in range(1, len(tokens))
                if words[index] == words[index - 1]
                and tokenization.is_chinese_character(tokens[index])]
            f.write(json.dumps(positions) + "\n")


def test_reference_file_of_the_same_words_gives_the_same_records(zh_jieba_run):
    tmp_path, vocab_file, tokenizer, _, jieba_output = zh_jieba_run
    ref_file = tmp_path / "ref.txt"
    write_ref_file(ref_file, ZH_CORPUS, tokenizer)
    output = str(tmp_path / "ref.tfrecord")
    run_main(
        input_file=ZH_CORPUS, output_file=output, vocab_file=vocab_file,
        do_whole_word_mask=True, word_ref_file=ref_file, **ZH_FLAGS)
    assert sha256(output) == sha256(jieba_output)


def test_chinese_whole_word_reruns_are_byte_identical(zh_jieba_run):
    tmp_path, vocab_file, _, _, jieba_output = zh_jieba_run
    output = str(tmp_path / "rerun.tfrecord")
    run_main(
        input_file=ZH_CORPUS, output_file=output, vocab_file=vocab_file,
        do_whole_word_mask=True, word_segmenter="jieba", **ZH_FLAGS)
    assert sha256(output) == sha256(jieba_output)


def test_chinese_whole_word_sharded_output_is_each_document_run_alone(zh_jieba_run, tmp_path):
    """--num_workers=2 with one document per shard writes what one process writes for each
    document alone with the shard's seed, as for English (the segmenter lives in the workers
    too)."""
    _, vocab_file, tokenizer, documents, _ = zh_jieba_run
    flag_values = dict(ZH_FLAGS, dupe_factor=2, do_whole_word_mask=True, word_segmenter="jieba")
    sharded = str(tmp_path / "sharded.tfrecord")
    run_main(
        input_file=ZH_CORPUS, output_file=sharded, vocab_file=vocab_file, num_workers=2,
        shard_size_mb=1e-6, **flag_values)
    texts = open(ZH_CORPUS, encoding="utf-8").read().split("\n\n")
    expected = []
    for index, text in enumerate(texts):
        single_path = tmp_path / f"doc-{index}.txt"
        single_path.write_text(text.strip("\n") + "\n", "utf-8")
        seed = int.from_bytes(hashlib.sha256(f"7:{index}".encode()).digest()[:8], "little")
        single_output = str(tmp_path / f"doc-{index}.tfrecord")
        run_main(
            input_file=single_path, output_file=single_output, vocab_file=vocab_file,
            **dict(flag_values, random_seed=seed))
        expected += read_records(single_output)
    assert len(texts) == 9
    assert read_records(sharded) == expected
    _, violations = whole_word_violations(sharded, tokenizer, documents)
    assert violations == 0


def test_mixed_chinese_and_english_keeps_wordpiece_words(tmp_path):
    """English words split into pieces stay whole next to segmented Chinese words."""
    lines = [
        "我们用 walking 和 running 两个词测试 unbelievable 的效果。",
        "今天 walking 的人很多，running 的人很少。",
    ] * 20
    corpus_path = tmp_path / "mixed.txt"
    corpus_path.write_text("\n".join(lines) + "\n", "utf-8")
    vocab_file = tmp_path / "vocab.txt"
    chars = sorted({c for line in lines for c in line if tokenization.is_chinese_character(c)})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。", "walk", "run", "un",
             "##ning", "##ing", "##bel", "##ie", "##vable", *chars]
    vocab_file.write_text("\n".join(vocab) + "\n", "utf-8")
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    tokens, words = [], []
    for line_tokens, line_words in test_segmentation(lines, tokenizer):
        tokens += line_tokens
        words += line_words
    documents = [(tokens, words)]
    output = str(tmp_path / "out.tfrecord")
    run_main(
        input_file=corpus_path, output_file=output, vocab_file=vocab_file,
        do_whole_word_mask=True, word_segmenter="jieba", **dict(ZH_FLAGS, dupe_factor=10))
    checked, violations = whole_word_violations(output, tokenizer, documents)
    assert checked > 20
    assert violations == 0
    masked_pieces = collections.Counter()
    for record in map(parse, read_records(output)):
        masked_pieces.update(tokenizer.convert_ids_to_tokens(record["masked_lm_ids"][
            :int(sum(record["masked_lm_weights"]))]))
    assert masked_pieces["##vable"] > 0 and masked_pieces["##ing"] > 0


@pytest.mark.parametrize("flag_values, message", [
    (dict(word_segmenter="jieba"), "needs --do_whole_word_mask"),
    (dict(do_whole_word_mask=True, word_segmenter="jieba", word_ref_file="x"), "exclude"),
    (dict(do_whole_word_mask=True, word_ref_file="/no/such/ref.txt"), "no such file"),
])
def test_word_flags_are_checked_before_any_work(corpus, flag_values, message):
    input_file, vocab_file, output_dir = corpus
    with pytest.raises(app.UsageError, match=message):
        run_main(input_file=input_file, vocab_file=vocab_file,
                 output_file=output_dir / "out.tfrecord", **flag_values)
    assert not os.listdir(output_dir)


@pytest.mark.parametrize("ref_lines, message", [
    (["[]"] * 3, "ends before the input does"),
    (["[]"] * 200, r"ref.txt:\d+: --word_ref_file has more entries"),
    (["[999]"] + ["[]"] * 59, r"ref.txt:1: position 999 is outside"),
    (["[1, \"2\"]"], r"ref.txt:1: expected a JSON list"),
])
def test_bad_reference_file_names_the_file_and_line(tmp_path, ref_lines, message):
    vocab_file, _, _ = zh_setup(tmp_path)
    ref_file = tmp_path / "ref.txt"
    ref_file.write_text("\n".join(ref_lines) + "\n", "utf-8")
    output = tmp_path / "out.tfrecord"
    with pytest.raises(ValueError, match=message):
        run_main(input_file=ZH_CORPUS, output_file=output, vocab_file=vocab_file,
                 do_whole_word_mask=True, word_ref_file=ref_file, **ZH_FLAGS)
    assert not output.exists()


# --------------------------------------------------------------------------------------------
# --sentence_order_prediction


EN_CORPUS = os.path.join(REPO_ROOT, "data", "pretraining_corpus.txt")


def corpus_streams(corpus_path, tokenizer):
    """The token stream of each document of a corpus file."""
    text = open(corpus_path, encoding="utf-8").read()
    return [
        [token for line in document.splitlines() for token in tokenizer.tokenize(line)]
        for document in text.split("\n\n")]


def contains(streams, tokens):
    return any(
        stream[start:start + len(tokens)] == tokens
        for stream in streams for start in range(len(stream) - len(tokens) + 1))


def sentence_order_pairs(output, tokenizer):
    """(A tokens, B tokens, label) of each record, unmasked."""
    pairs = []
    for record in map(parse, read_records(output)):
        tokens = tokenizer.convert_ids_to_tokens(unmasked_ids(record))
        (a_start, a_end), (b_start, b_end) = segments_of(tokens)
        pairs.append((tokens[a_start:a_end], tokens[b_start:b_end],
                      record["next_sentence_labels"][0]))
    return pairs


@pytest.mark.parametrize("corpus_path, extra", [
    (EN_CORPUS, dict(dupe_factor=10)),
    (ZH_CORPUS, dict(
        do_whole_word_mask=True, word_segmenter="jieba", ngram_masking=3, dupe_factor=30)),
])
def test_sentence_order_pairs_are_consecutive_and_swapped_half_of_the_time(
        tmp_path, corpus_path, extra):
    """Label 0: A then B is text of the corpus; label 1: B then A is (and A then B
    is not, unless a segment is a few tokens that also occur elsewhere).
    No document is longer than the sequence, so nothing is truncated and A and B meet
    exactly. The labels are Bernoulli(1/2): the count of 1s stays within 3 standard
    deviations of half (a seeded run, the same every time)."""
    from helpers import write_vocab_for_texts

    vocab_file = tmp_path / "vocab.txt"
    write_vocab_for_texts(vocab_file, open(corpus_path, encoding="utf-8").read().splitlines())
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    streams = corpus_streams(corpus_path, tokenizer)
    max_seq_length = max(map(len, streams)) + 3
    output = str(tmp_path / "sop.tfrecord")
    run_main(
        input_file=corpus_path, output_file=output, vocab_file=vocab_file,
        sentence_order_prediction=True, max_seq_length=max_seq_length,
        max_predictions_per_seq=30, short_seq_prob=0.5, random_seed=11,
        **extra)
    pairs = sentence_order_pairs(output, tokenizer)
    swapped = also_in_order = 0
    for tokens_a, tokens_b, label in pairs:
        if label == 0:
            assert contains(streams, tokens_a + tokens_b)
        else:
            assert contains(streams, tokens_b + tokens_a)
            # A segment of a few tokens (a lone ".") may also precede the other by chance.
            if min(len(tokens_a), len(tokens_b)) >= 5:
                also_in_order += contains(streams, tokens_a + tokens_b)
            swapped += 1
    assert len(pairs) > 250
    assert also_in_order == 0
    assert abs(swapped - len(pairs) / 2) <= 3 * math.sqrt(len(pairs)) / 2


def test_sentence_order_cuts_a_one_sentence_chunk_at_a_word_start(tmp_path):
    """A document of one sentence still makes pairs: the sentence cut at a word start
    (walking = walk ##ing is never cut), B after A in the text, swapped or not."""
    corpus_path = tmp_path / "one.txt"
    corpus_path.write_text("walking the dog in the snow\n\nwalking to the old bridge\n", "utf-8")
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "walk", "##ing", "the", "dog", "in",
         "snow", "to", "old", "bridge"]) + "\n", "utf-8")
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    output = str(tmp_path / "out.tfrecord")
    run_main(input_file=corpus_path, output_file=output, vocab_file=vocab_file,
             sentence_order_prediction=True, dupe_factor=50, max_seq_length=32)
    streams = corpus_streams(corpus_path, tokenizer)
    pairs = sentence_order_pairs(output, tokenizer)
    assert len(pairs) == 100
    labels = collections.Counter(label for _, _, label in pairs)
    assert labels[0] > 30 and labels[1] > 30
    for tokens_a, tokens_b, label in pairs:
        first, second = (tokens_a, tokens_b) if label == 0 else (tokens_b, tokens_a)
        assert contains(streams, first + second)
        assert not second[0].startswith("##")


# --------------------------------------------------------------------------------------------
# --ngram_masking


@pytest.mark.parametrize("max_ngram", [2, 3, 4])
def test_ngram_lengths_follow_one_over_n(max_ngram):
    """The first span chosen in a long sequence of one-token words has the n drawn, with
    P(n) = (1/n) / sum(1/k). Chi-square against that law stays below the 0.1% critical
    value (a seeded run, the same every time), while a uniform law is far off."""
    rng = random.Random(2024)
    num_words = 300
    counts = collections.Counter()
    for _ in range(3000):
        words = [[index] for index in range(num_words)]
        first = next(cpd.choose_masked_spans(words, [0] * num_words, 40, max_ngram, rng))
        if first[0][0] <= num_words - max_ngram:  # a span cut by the sequence end aside
            counts[len(first)] += 1
    total = sum(counts.values())
    harmonic = sum(1 / n for n in range(1, max_ngram + 1))

    def chi_square(probabilities):
        return sum(
            (counts[n] - total * p) ** 2 / (total * p)
            for n, p in zip(range(1, max_ngram + 1), probabilities, strict=True))

    critical = {2: 10.83, 3: 13.82, 4: 16.27}[max_ngram]  # 0.1%, max_ngram - 1 dof
    assert set(counts) == set(range(1, max_ngram + 1))
    assert chi_square([1 / n / harmonic for n in range(1, max_ngram + 1)]) < critical
    assert chi_square([1 / max_ngram] * max_ngram) > 10 * critical


def test_ngram_spans_stay_in_a_segment_fit_the_budget_and_never_overlap():
    rng = random.Random(5)
    for _ in range(500):
        num_words = rng.randint(2, 40)
        words = [[index] for index in range(num_words)]
        segments = [0 if index < num_words // 2 else 1 for index in range(num_words)]
        budget = rng.randint(1, 12)
        spans = list(cpd.choose_masked_spans(words, segments, budget, 3, rng))
        positions = [index for span in spans for word in span for index in word]
        assert len(positions) == len(set(positions)) <= budget
        for span in spans:
            assert len({segments[word[0]] for word in span}) == 1
            assert [word[0] for word in span] == list(range(span[0][0], span[0][0] + len(span)))


def adjacent_masked_words(output, tokenizer, documents):
    """Among masked words, the fraction whose next word in the segment is masked too."""
    masked_words = adjacent = 0
    for record in map(parse, read_records(output)):
        num_masked = int(sum(record["masked_lm_weights"]))
        masked = set(record["masked_lm_positions"][:num_masked])
        tokens = tokenizer.convert_ids_to_tokens(unmasked_ids(record))
        for start, end in segments_of(tokens):
            numbers = occurrences(tokens[start:end], documents)[0]
            starts = [start + offset for offset in range(len(numbers))
                      if offset == 0 or numbers[offset] != numbers[offset - 1]]
            for first, second in zip(starts, starts[1:], strict=False):
                if first in masked:
                    masked_words += 1
                    adjacent += second in masked
    return adjacent / masked_words


def test_ngram_masking_masks_runs_of_whole_chinese_words(zh_jieba_run):
    tmp_path, vocab_file, tokenizer, documents, unigram_output = zh_jieba_run
    output = str(tmp_path / "ngram.tfrecord")
    run_main(
        input_file=ZH_CORPUS, output_file=output, vocab_file=vocab_file,
        do_whole_word_mask=True, word_segmenter="jieba", ngram_masking=3, **ZH_FLAGS)
    _, violations = whole_word_violations(output, tokenizer, documents)
    assert violations == 0
    # Mean span 1 x 6/11 + 2 x 3/11 + 3 x 2/11 = 1.64 words: far more masked neighbours.
    with_ngrams = adjacent_masked_words(output, tokenizer, documents)
    without = adjacent_masked_words(unigram_output, tokenizer, documents)
    assert with_ngrams > without + 0.15


# --------------------------------------------------------------------------------------------
# Pre-training on the records


@pytest.mark.slow
def test_continued_pretraining_on_chinese_whole_word_records_raises_masked_lm_accuracy(
        tmp_path):
    """A tiny BERT, saved untrained, then continued from that checkpoint (--init_checkpoint)
    on jieba whole-word records of the Chinese corpus: masked-LM accuracy on those records
    rises from chance (about 1 / vocab size; 0.002 here) to far above it (0.48 here).
    Seeded data and training."""
    from helpers import read_eval_results, run_script, write_bert_config

    vocab_file, tokenizer, _ = zh_setup(tmp_path)
    write_bert_config(
        tmp_path / "bert_config.json", len(tokenizer.vocab), hidden_size=64,
        intermediate_size=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    data = tmp_path / "data.tfrecord"
    seq_length, max_predictions = 64, 10
    run_main(
        input_file=ZH_CORPUS, output_file=data, vocab_file=vocab_file,
        do_whole_word_mask=True, word_segmenter="jieba", max_seq_length=seq_length,
        max_predictions_per_seq=max_predictions, dupe_factor=10, random_seed=3)
    common = {
        "input_file": data,
        "bert_config_file": tmp_path / "bert_config.json",
        "max_seq_length": seq_length,
        "max_predictions_per_seq": max_predictions,
        "train_batch_size": 32,
        "eval_batch_size": 32,
        "max_eval_steps": 10,
        "save_checkpoints_steps": 1000,
        "random_seed": 5,
        "do_train": True,
        "do_eval": True,
    }
    released = tmp_path / "released"
    run_script("run_pretraining.py", dict(
        common, output_dir=released, num_train_steps=1, learning_rate=0.0, num_warmup_steps=0))
    before = read_eval_results(released / "eval_results.txt")
    continued = tmp_path / "continued"
    run_script("run_pretraining.py", dict(
        common, output_dir=continued, init_checkpoint=released / "model.ckpt-1",
        num_train_steps=400, learning_rate=1e-3, num_warmup_steps=40))
    after = read_eval_results(continued / "eval_results.txt")
    assert before["masked_lm_accuracy"] < 0.02
    assert after["masked_lm_accuracy"] > 0.3
    assert after["masked_lm_loss"] < before["masked_lm_loss"] - 1.0
