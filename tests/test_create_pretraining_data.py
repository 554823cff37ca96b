"""Tests for create_pretraining_data.py.

The golden digests pin byte-identical output with the original google-research/bert script.
The other tests check the output against rules from the original's documentation, recomputed
here from the records themselves (masking proportions, whole words, shard semantics), and the
handling of bad input.
"""

import collections
import hashlib
import os
import random
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import flags

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
    completed = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "create_pretraining_data.py"),
            f"--input_file={input_file}",
            f"--output_file={output}",
            f"--vocab_file={vocab_file}",
            *flag_args,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    records = read_records(output)
    assert f"Wrote {len(records)} total instances" in completed.stderr
    # The original logs its first 20 examples in full.
    assert completed.stderr.count("*** Example ***") == 20
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


def test_missing_output_directory_is_reported_before_any_work(corpus):
    input_file, vocab_file, output_dir = corpus
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        run_main(
            input_file=input_file,
            vocab_file=vocab_file,
            output_file=output_dir / "no-such-dir" / "out.tfrecord",
        )


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
