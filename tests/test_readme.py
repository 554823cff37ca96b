"""README.md's command blocks checked against the code, so the README cannot drift from it.

Every ```bash block of the README is split into commands. Each `python <script>.py ...`
command is checked statically (fast): the script exists and every `--flag` it passes is a
flag the script defines, as listed by the script's own `--helpxml` in a fresh process (the
path a user's command line takes, absl's own flags included).

The slow tests then run the README's commands as written, in README order, in a scratch
directory where its placeholders exist: `$BERT` & co. are tiny models made by the test
(`helpers.write_tiny_model` with a random checkpoint), `path/to/hf_model`, `my_data`,
`corpus/*.txt`... are tiny files in the README's own formats (Chinese text included), `/tmp/`
is a directory of the scratch space. A new README command is run by default; the few that
cannot run here are in EXCLUDED / EXCLUDED_BLOCKS below, each with its reason, and those
failing for work still being merged elsewhere in KNOWN_GAPS.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from helpers import FILLER, REPO_ROOT, write_csv, write_pretraining_checkpoint, write_tiny_model

README = REPO_ROOT / "README.md"

# ------------------------------------------------------------------------------------------
# Which commands do not run, and how the others are filled in. Keys are snippets of a
# command's text (after joining its continuation lines); each must match a README command
# (test_every_listed_snippet_matches_a_readme_command).

# Commands that cannot run in the test: why.
EXCLUDED = {
    "./quickstart.sh": "converts a real pretrained model from a PyPI package; ~5 min",
    "./run_tests.sh": "runs the whole test suite, this file included",
    "tensorboard --logdir": "a server that runs until stopped (the tags it shows are checked "
    "by test_the_tensorboard_tags_the_readme_lists_are_written)",
}
# Blocks none of whose commands can run (a block is named by a snippet of one of them).
EXCLUDED_BLOCKS = {
    "tensorflow_model_server": "TensorFlow Serving's binary is not installed here",
}

# README commands that fail today because of work other developers are merging (remove an
# entry once its fix is in: the test then passes, and xfail(strict) reports it).
KNOWN_GAPS: dict[str, str] = {}

# What a `...` stands for in a command, for the run: the flags the README leaves to the
# reader (the model, an output directory).
ELLIPSIS_FILLS = {
    "--init_checkpoint=$ALBERT/model.ckpt-best ...": "--task_name=generic --data_dir=my_data "
    "--text_a_column=review --label_column=stars --do_train --max_seq_length=64 "
    "--output_dir=/tmp/albert_classifier",
    "--task_name=generic --data_dir=my_data": "--vocab_file=$BERT/vocab.txt "
    "--bert_config_file=$BERT/bert_config.json --init_checkpoint=$BERT/bert_model.ckpt "
    "--max_seq_length=64 --output_dir=my_finetuned_run",
}

# Flags appended to a command for the run only, where its values as written would take
# minutes here; later flags override earlier ones in absl.
SHORTENED = {
    # 100000 steps of pre-training: two steps and a two-batch evaluation show it works.
    "python run_pretraining.py": "--num_train_steps=2 --num_warmup_steps=1 --max_eval_steps=2",
}

# Commands that start a server: run in the background for the rest of their block, on a
# port the system picks (no port races), which replaces 8501 in the block's other commands.
SERVERS = {"python serve.py": "--port=0 --port_file={port_file}"}

# Lines typed into a command that reads stdin.
STDIN = {
    "--interactive": "A wonderful little film.\n这部电影很好看。\n",
}

# Flags every absl program takes that --helpxml does not list (read by the parser itself).
ABSL_PARSER_FLAGS = {"flagfile", "undefok"}


# ------------------------------------------------------------------------------------------
# Parsing the README


@dataclasses.dataclass(frozen=True)
class Command:
    """One shell command of a README ```bash block."""

    line: int  # README line of its first line
    block: int  # README line of its block's opening fence
    text: str  # as written, continuation lines joined by "\n"
    words: tuple[str, ...]  # shell words, comments dropped
    comment: str  # the comment after it, if any

    @property
    def stages(self) -> list[list[str]]:
        """The pipeline's commands (split on `|`, `;`, `&&`)."""
        stages, current = [], []
        for word in self.words:
            if word in ("|", ";", "&&", "||"):
                stages.append(current)
                current = []
            else:
                current.append(word)
        return [*stages, current]

    @property
    def python_scripts(self) -> list[tuple[str, list[str]]]:
        """(script, arguments) of each `python <script>.py ...` stage."""
        return [
            (stage[1], stage[2:])
            for stage in self.stages
            if len(stage) >= 2 and stage[0] == "python" and stage[1].endswith(".py")
        ]

    @property
    def label(self) -> str:
        return f"L{self.line}-{'-'.join(self.words[:2])[:40]}"


def shell_words(text: str) -> list[str]:
    """`text` split as the shell would (quotes, `\\` continuations, comments), with `|`,
    `;`, `&` runs as words of their own. Raises ValueError on an unclosed quote."""
    lexer = shlex.shlex(text.replace("\\\n", " "), posix=True, punctuation_chars="|;&")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def trailing_comment(text: str) -> str:
    """The comment ending `text` (from a `#` outside quotes to the end of its line), or ""."""
    for cut in (m.start() for m in re.finditer(r"\s#", text)):
        try:
            shell_words(text[:cut])
        except ValueError:
            continue  # the # is inside quotes
        return text[cut:].strip()[1:].splitlines()[0].strip()
    return ""


def split_commands(lines: list[tuple[int, str]], block: int) -> list[Command]:
    """The commands of one block's (line number, line) pairs: a command goes on over lines
    ending in `\\` and over a quoted string spanning lines; comment lines are dropped."""
    commands, pending, first = [], [], None
    for number, line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        first = number if not pending else first
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        text = "\n".join(pending)
        try:
            words = shell_words(text)
        except ValueError:
            continue  # a quote still open: the command goes on
        commands.append(Command(first, block, text, tuple(words), trailing_comment(text)))
        pending = []
    assert not pending, f"README.md:{first}: unterminated command in the block at line {block}"
    return commands


def readme_commands(text: str) -> list[Command]:
    """Every command of the ```bash blocks of a markdown text."""
    commands, block, lines = [], None, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = line.strip()
        if block is None and fence.startswith("```bash"):
            block, lines = number, []
        elif block is not None and fence.startswith("```"):
            commands += split_commands(lines, block)
            block = None
        elif block is not None:
            lines.append((number, line))
    assert block is None, f"README.md:{block}: the ```bash block is never closed"
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
PYTHON_COMMANDS = [command for command in COMMANDS if command.python_scripts]


def matching(table: dict, command: Command):
    """The values of `table` whose key is a snippet of `command`'s text."""
    return [value for snippet, value in table.items() if snippet in command.text]


def exclusion(command: Command) -> str | None:
    """Why `command` is not run, or None."""
    reasons = matching(EXCLUDED, command)
    for other in COMMANDS:
        if other.block == command.block:
            reasons += matching(EXCLUDED_BLOCKS, other)
    return reasons[0] if reasons else None


# ------------------------------------------------------------------------------------------
# The parser itself, on text whose commands are known


def test_the_parser_joins_continuations_keeps_quotes_and_drops_comments():
    text = "\n".join(
        [
            "# a comment line",
            "```bash",
            "python a.py --x=1 \\",
            "  --y='two words' [--z]   # says why",
            "",
            "# between commands",
            "echo 'hi ||| there' > input.txt",
            'curl -d \'{"a": [1,',
            '   2]}\'   # {"b": 1}',
            "echo x | python b.py --export_dir=/tmp/e",
            "```",
            "```python",
            "python not_shell.py",
            "```",
        ]
    )
    commands = readme_commands(text)
    assert [c.line for c in commands] == [3, 7, 8, 10]
    assert commands[0].words == ("python", "a.py", "--x=1", "--y=two words", "[--z]")
    assert commands[0].comment == "says why"
    assert commands[0].python_scripts == [("a.py", ["--x=1", "--y=two words", "[--z]"])]
    assert commands[1].words == ("echo", "hi ||| there", ">", "input.txt")
    assert commands[2].words == ("curl", "-d", '{"a": [1,\n   2]}')
    assert commands[2].comment == '{"b": 1}'
    assert commands[3].python_scripts == [("b.py", ["--export_dir=/tmp/e"])]
    assert {c.block for c in commands} == {2}


def test_the_readme_has_its_commands():
    scripts = {script for c in PYTHON_COMMANDS for script, _ in c.python_scripts}
    assert {"run_classifier.py", "run_squad.py", "run_pretraining.py", "serve.py"} <= scripts
    # Every line of a bash block that starts a python command is the start of a parsed one.
    starts = {c.line for c in COMMANDS if c.python_scripts or c.words[:2] == ("python", "-c")}
    lines = README.read_text(encoding="utf-8").splitlines()
    inside = False
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("```"):
            inside = line.strip().startswith("```bash") and not inside
        elif inside and line.lstrip().startswith("python "):
            assert number in starts, f"README.md:{number} was not parsed as a command"


def test_every_listed_snippet_matches_a_readme_command():
    """A table entry whose command left the README is stale: delete it."""
    tables = {
        "EXCLUDED": EXCLUDED,
        "EXCLUDED_BLOCKS": EXCLUDED_BLOCKS,
        "KNOWN_GAPS": KNOWN_GAPS,
        "ELLIPSIS_FILLS": ELLIPSIS_FILLS,
        "SHORTENED": SHORTENED,
        "SERVERS": SERVERS,
        "STDIN": STDIN,
        "RUNS_AFTER": RUNS_AFTER,
        "README_OUTPUTS": README_OUTPUTS,
    }
    for name, table in tables.items():
        for snippet in table:
            assert any(snippet in c.text for c in COMMANDS), f"{name}[{snippet!r}]: no command"


# ------------------------------------------------------------------------------------------
# Static check: scripts and flags


@dataclasses.dataclass(frozen=True)
class ScriptFlags:
    names: frozenset[str]
    booleans: frozenset[str]


# Run in one fresh process: imports TensorFlow once (2-3 s), then runs each script as
# `__main__` with `--helpxml` in a fork of itself, so every script defines its flags in a
# process of its own exactly as `python <script> --helpxml` would, for a fraction of the time
# of one process per script. Prints {script: its XML}.
FLAG_READER = """
import json, os, runpy, sys
import tensorflow  # noqa: F401
helps = {}
for script in sys.argv[1:]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.dup2(write_end, 1)
        sys.argv = [script, "--helpxml"]
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit:
            pass
        sys.stdout.flush()
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as reader:
        helps[script] = reader.read()
    os.waitpid(pid, 0)
print(json.dumps(helps))
"""


def parse_helpxml(script: str, output: str) -> ScriptFlags:
    """The flags an absl program's `--helpxml` lists (absl's own included)."""
    start = output.find("<?xml")
    assert start >= 0, f"{script} --helpxml printed no XML:\n{output[-3000:]}"
    names, booleans = set(ABSL_PARSER_FLAGS), set()
    for flag in ElementTree.fromstring(output[start:]).iter("flag"):
        names.add(flag.findtext("name"))
        if flag.findtext("type") == "bool":
            booleans.add(flag.findtext("name"))
    return ScriptFlags(frozenset(names), frozenset(booleans))


@functools.cache
def all_script_flags() -> dict[str, ScriptFlags]:
    """The flags of every script a README command runs."""
    scripts = sorted(
        {s for c in PYTHON_COMMANDS for s, _ in c.python_scripts if (REPO_ROOT / s).is_file()}
    )
    result = subprocess.run(
        [sys.executable, "-c", FLAG_READER, *scripts],
        cwd=REPO_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    helps = json.loads(result.stdout.strip().splitlines()[-1])
    return {script: parse_helpxml(script, helps[script]) for script in scripts}


def flag_name(argument: str) -> str | None:
    """`--name=value`, `--name`, `[--name=value]` -> name; None for a non-flag argument."""
    match = re.fullmatch(r"\[?--([A-Za-z0-9_]+)(=.*)?\]?", argument, re.DOTALL)
    return match.group(1) if match else None


@pytest.mark.parametrize("command", PYTHON_COMMANDS, ids=lambda c: c.label)
def test_every_flag_of_a_readme_command_is_defined_by_its_script(command):
    for script, arguments in command.python_scripts:
        assert (REPO_ROOT / script).is_file(), f"README.md:{command.line}: no {script}"
        known = all_script_flags()[script]
        unknown = []
        for argument in arguments:
            name = flag_name(argument)
            if name is None:
                continue
            if name not in known.names and not (
                name.startswith("no") and name[2:] in known.booleans
            ):
                unknown.append(argument)
        assert not unknown, f"README.md:{command.line}: {script} defines no {unknown}"


def test_the_shell_scripts_the_readme_runs_exist():
    for command in COMMANDS:
        program = command.words[0]
        if program.startswith("./"):
            path = REPO_ROOT / program
            assert path.is_file() and os.access(path, os.X_OK), f"README.md:{command.line}"


# ------------------------------------------------------------------------------------------
# Running the commands: the scratch space their placeholders point into

MRPC_PAIRS = [
    ("1", "The cat sat on the mat.", "A cat was sitting on the mat."),
    ("0", "The cat sat on the mat.", "Stock prices fell sharply today."),
    ("1", "他今天去了北京。", "他今天到北京去了。"),
    ("0", "他今天去了北京。", "明天会下雨。"),
    ("1", "A wonderful little film.", "A lovely small movie."),
    ("0", "A wonderful little film.", "The train was late again."),
]
REVIEWS = [  # (review, stars, title)
    ("这部电影很好看，演员也很棒。", "5", "好看"),
    ("太无聊了，浪费时间。", "1", "无聊"),
    ("A wonderful little film.", "5", "Lovely"),
    ("Terrible plot and worse acting.", "1", "Awful"),
    ("服务很好，下次还来。", "5", "满意"),
    ("The battery died after two days.", "1", "Broken"),
]
SQUAD_ARTICLES = [
    (
        "Jim Henson was a puppeteer who created the Muppets in 1955.",
        [("Who created the Muppets?", "Jim Henson"), ("When were the Muppets created?", "1955")],
    ),
    (
        "北京是中国的首都，长城在北京的北边。",
        [("中国的首都是哪里？", "北京"), ("长城在哪里？", "北京的北边")],
    ),
]
RACE_FILES = {
    "high": {
        "article": "小明去了北京。他在那里看了长城，觉得很高兴。",
        "questions": ["小明去了哪里？", "小明觉得怎么样？"],
        "options": [["上海", "北京", "广州", "南京"], ["很累", "很冷", "很高兴", "很饿"]],
        "answers": ["B", "C"],
    },
    "middle": {
        "article": "Tom has a red bike. He rides it to school every day.",
        "questions": ["What colour is Tom's bike?", "Where does Tom ride _ every day?"],
        "options": [["red", "blue", "green", "black"], ["home", "school", "park", "town"]],
        "answers": ["A", "B"],
    },
}
CORPUS = {
    "en.txt": "The cat sat on the mat.\nIt was a sunny day.\nThe dog barked at the cat.\n"
    "Then the cat ran away.\n\nJim Henson was a puppeteer.\nHe created the Muppets.\n"
    "They became famous on television.\n",
    "zh.txt": "今天天气很好。\n我们去公园散步。\n公园里有很多人。\n\n北京是中国的首都。\n"
    "长城在北京的北边。\n很多人去长城旅游。\n",
}
VOCAB_SIZE = 8192  # the README's serving requests send BERT-Base ids (7592 is "hello")


def texts_of_the_data() -> list[str]:
    texts = [text for pair in MRPC_PAIRS for text in pair[1:]]
    texts += [text for row in REVIEWS for text in (row[0], row[2])]
    for context, questions in SQUAD_ARTICLES:
        texts += [context] + [text for pair in questions for text in pair]
    for record in RACE_FILES.values():
        texts += [record["article"], *record["questions"]]
        texts += [option for options in record["options"] for option in options]
    texts += list(CORPUS.values())
    texts += (REPO_ROOT / "data/pretraining_corpus_zh.txt").read_text(encoding="utf-8").split()
    return texts


def write_bert_model(root: Path) -> None:
    """`$BERT`: helpers.write_tiny_model's config (positions for 512 tokens), its vocab grown
    by the words and characters of the test's data and padded with `[unusedN]` entries to
    VOCAB_SIZE, and a random checkpoint of the encoder and the pre-training heads."""
    import tokenization

    root.mkdir(parents=True)
    # 4 layers: the README's --layers=-1,-2,-3,-4 reads four.
    write_tiny_model(root, max_position_embeddings=512, num_hidden_layers=4)
    vocab = (root / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    basic = tokenization.BasicTokenizer(do_lower_case=True)
    for text in texts_of_the_data():
        for word in basic.tokenize(text):
            vocab += [word, *word, *("##" + char for char in word)]
    vocab = list(dict.fromkeys(vocab))
    vocab += [f"[unused{n}]" for n in range(VOCAB_SIZE - len(vocab))]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = json.loads((root / "bert_config.json").read_text())
    config["vocab_size"] = len(vocab)
    (root / "bert_config.json").write_text(json.dumps(config, indent=2))
    write_random_checkpoint(root / "bert_config.json", root / "bert_model.ckpt")


def write_random_checkpoint(config_file: Path, prefix: Path) -> None:
    """A randomly initialised checkpoint of the config's BERT with its pre-training heads."""
    import modeling

    write_pretraining_checkpoint(modeling.BertConfig.from_json_file(str(config_file)), prefix, 5)


def write_albert_model(root: Path) -> None:
    """`$ALBERT` as Google releases it: albert_config.json, 30k-clean.model, model.ckpt-best."""
    from helpers import write_tiny_albert_model

    texts = [text for row in REVIEWS for text in (row[0], row[2])] * 5
    texts += [" ".join(FILLER[n:] + FILLER[:n]) for n in range(len(FILLER))]
    write_tiny_albert_model(root, texts, vocab_size=200, max_position_embeddings=128)
    (root / "spiece.model").rename(root / "30k-clean.model")
    (root / "spiece.vocab").rename(root / "30k-clean.vocab")


def write_data(work: Path) -> None:
    """The README's data placeholders, in the formats the README gives for them."""
    mrpc = work / "glue/MRPC"
    mrpc.mkdir(parents=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for split in ("train", "dev"):
        # x3: enough for one step of the README's --train_batch_size=32 over 3 epochs.
        rows = 3 * [
            f"{label}\t{n}\t{n + 100}\t{a}\t{b}\n" for n, (label, a, b) in enumerate(MRPC_PAIRS)
        ]
        (mrpc / f"{split}.tsv").write_text(header + "".join(rows), encoding="utf-8")

    my_data = work / "my_data"
    my_data.mkdir()
    for split in ("train", "dev"):
        write_csv(my_data / f"{split}.csv", ["review", "stars", "title"], 3 * REVIEWS)
    write_csv(my_data / "test.csv", ["review", "title"], [(r, t) for r, _, t in REVIEWS])

    squad = work / "squad"
    squad.mkdir()
    paragraphs = [
        {
            "context": context,
            "qas": [
                {
                    "id": f"q{n}-{m}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
                for m, (question, answer) in enumerate(questions)
            ],
        }
        # x3: enough for two steps of the README's --train_batch_size=12 over 2 epochs.
        for n, (context, questions) in enumerate(3 * SQUAD_ARTICLES)
    ]
    squad_json = {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (squad / name).write_text(json.dumps(squad_json, ensure_ascii=False), encoding="utf-8")

    for split in ("train", "dev", "test"):
        for level, record in RACE_FILES.items():
            path = work / "race" / split / level / "1.txt"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(dict(record, id=f"{level}1.txt")), encoding="utf-8")

    for directory, files in (("corpus", CORPUS),):
        (work / directory).mkdir()
        for name, text in files.items():
            (work / directory / name).write_text(text, encoding="utf-8")
    (work / "zh").mkdir()
    (work / "zh/corpus.txt").write_text(
        (REPO_ROOT / "data/pretraining_corpus_zh.txt").read_text(encoding="utf-8"),
        encoding="utf-8",
    )


def write_first_sentences(source: Path, target: Path, count: int) -> None:
    """The first `count` sentences (blank-line separated) of a CoNLL file."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")
    sentences = [b for b in blocks if b.strip() and not b.startswith("-DOCSTART-")]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n\n".join(sentences[:count]) + "\n", encoding="utf-8")


def without_comments(text: str) -> str:
    """`text` with each comment (a `#` outside quotes, to the end of its line) removed."""
    while True:
        for cut in (m.start() for m in re.finditer(r"\s#", text)):
            try:
                shell_words(text[:cut])
            except ValueError:
                continue
            end = text.find("\n", cut)
            text = text[:cut] + ("" if end < 0 else text[end:])
            break
        else:
            return text


class ReadmeRun:
    """The README's runnable commands, run once each in README order in one scratch space
    (a later command reads what an earlier one wrote, as a reader following it would)."""

    def __init__(self, work: Path, env: dict):
        self.work = work
        self.env = env
        self.results: dict[int, subprocess.CompletedProcess] = {}
        self.server: tuple[Command, subprocess.Popen, int] | None = None

    def shell_text(self, command: Command) -> str:
        """The command as bash gets it: placeholders filled, comments dropped."""
        text = without_comments(command.text)
        if "..." in command.words:
            fills = matching(ELLIPSIS_FILLS, command)
            assert len(fills) == 1, f"README.md:{command.line}: say in ELLIPSIS_FILLS what ... is"
            text = re.sub(r"(?<=\s)\.\.\.(?=\s|$)", fills[0], text, count=1)
        text = re.sub(r"\[(--[^\]\s]+)\]", r"\1", text)  # [--optional] flags are used
        text = re.sub(r"<\w+>", "*", text)  # <timestamp>: the one directory there is
        text = re.sub(r"(?<![\w.])/tmp/", f"{self.work}/tmp/", text)
        for extra in matching(SHORTENED, command):
            text = f"{text.rstrip()} {extra}"
        if self.server is not None:
            text = text.replace("127.0.0.1:8501", f"127.0.0.1:{self.server[2]}")
        return text

    def result(self, command: Command) -> subprocess.CompletedProcess:
        """Runs every runnable command up to `command` not yet run; returns its result."""
        for earlier in RUN_ORDER[: RUN_ORDER.index(command) + 1]:
            if earlier.line not in self.results:
                if self.server and self.server[0].block != earlier.block:
                    self.stop_server()
                self.results[earlier.line] = self.run(earlier)
        if self.server and all(
            c.line in self.results for c in RUN_ORDER if c.block == self.server[0].block
        ):
            self.stop_server()
        return self.results[command.line]

    def run(self, command: Command) -> subprocess.CompletedProcess:
        if matching(SERVERS, command):
            return self.start_server(command)
        stdin = matching(STDIN, command)
        return subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + self.shell_text(command)],
            cwd=self.work,
            env=self.env,
            input=stdin[0] if stdin else "",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )

    def start_server(self, command: Command) -> subprocess.CompletedProcess:
        port_file = self.work / f"port-{command.line}"
        text = self.shell_text(command)
        text += " " + matching(SERVERS, command)[0].format(port_file=port_file)
        log = (self.work / f"server-{command.line}.log").open("w")
        process = subprocess.Popen(
            ["bash", "-c", "exec " + text],
            cwd=self.work,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 300
        while not port_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if not port_file.exists():
            process.kill()
            process.wait()
            output = Path(log.name).read_text()
            return subprocess.CompletedProcess(text, process.returncode or 1, output)
        self.server = (command, process, int(port_file.read_text()))
        # Replaced by the server's exit once its block is done (stop_server).
        return subprocess.CompletedProcess(text, 0, "serving")

    def stop_server(self) -> None:
        """SIGTERM, as the README says: the server answers what it accepted and exits 0."""
        command, process, _ = self.server
        self.server = None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output = (self.work / f"server-{command.line}.log").read_text()
        self.results[command.line] = subprocess.CompletedProcess(
            command.text, process.returncode, output
        )

    def close(self) -> None:
        if self.server:
            self.stop_server()


# Forward references: a command that reads what a later README command writes runs after it.
RUNS_AFTER = {
    # The fine-tuned run it converts is the "Your own data" command's --output_dir.
    "--input_dir=my_finetuned_run": "--do_predict --export_dir=/tmp/exported ...",
}


def run_order() -> list[Command]:
    order = [c for c in COMMANDS if exclusion(c) is None]
    for snippet, after in RUNS_AFTER.items():
        (command,) = [c for c in order if snippet in c.text]
        (before,) = [c for c in order if after in c.text and c is not command]
        order.remove(command)
        order.insert(order.index(before) + 1, command)
    return order


RUN_ORDER = run_order()


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("readme")
    for script in REPO_ROOT.glob("*.py"):
        (work / script.name).symlink_to(script)
    # data/ as in the repo, but data/ner_en cut to its first sentences (the README trains on
    # it for 3 epochs; all 500 sentences would take half a minute here).
    for path in (REPO_ROOT / "data").iterdir():
        if path.name != "ner_en":
            (work / "data" / path.name).parent.mkdir(exist_ok=True)
            (work / "data" / path.name).symlink_to(path)
    for split in ("train", "dev", "test"):
        write_first_sentences(
            REPO_ROOT / "data/ner_en" / f"{split}.txt", work / "data/ner_en" / f"{split}.txt", 40
        )
    (work / "tmp").mkdir()
    models = work / "models"
    write_bert_model(models / "bert")
    write_albert_model(models / "albert")
    import convert_checkpoint

    # transformers-layout copies of them, for the commands converting to TF.
    convert_checkpoint.convert_tf_to_safetensors(
        str(models / "bert"), str(work / "path/to/hf_model")
    )
    convert_checkpoint.convert_tf_to_safetensors(
        str(models / "albert"), str(work / "albert-base-v2")
    )
    write_data(work)
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(REPO_ROOT),
        TF_CPP_MIN_LOG_LEVEL="2",
        BERT=str(models / "bert"),
        BERT_ZH=str(models / "bert"),  # its vocab has the Chinese characters of the data
        ALBERT=str(models / "albert"),
        GLUE=str(work / "glue"),
        SQUAD=str(work / "squad"),
        RACE=str(work / "race"),
    )
    run = ReadmeRun(work, env)
    yield run
    run.close()


def run_cases():
    for command in RUN_ORDER:
        gaps = matching(KNOWN_GAPS, command)
        marks = [pytest.mark.xfail(reason=gaps[0], strict=True)] if gaps else []
        yield pytest.param(command, marks=marks, id=command.label)


@pytest.mark.slow
@pytest.mark.parametrize("command", run_cases())
def test_a_readme_command_runs_as_written(command, readme_run):
    result = readme_run.result(command)
    assert result.returncode == 0, (
        f"README.md:{command.line} failed ({result.returncode}):\n{result.args[-1]}\n"
        f"{result.stdout[-5000:]}"
    )
    if command.words[0] == "curl":
        check_answer(command, result.stdout)


def check_answer(command: Command, output: str) -> None:
    """A curl's answer: JSON without an "error" (curl -s exits 0 on a 404 too), holding the
    key the README's comment shows (`# {"predictions": ...}`); Prometheus text for /metrics."""
    if command.words[-1].endswith("/metrics"):
        assert "# TYPE" in output, output[:2000]
        return
    answer = json.loads(output)
    assert "error" not in answer, f"README.md:{command.line}: {answer}"
    shown = re.match(r'\{"(\w+)"', command.comment)
    if shown:
        assert shown.group(1) in answer, f"README.md:{command.line}: {output[:2000]}"


# Tags of the README's TensorBoard table that its tiny runs do not write: why.
TAGS_NOT_IN_THE_RUNS = {
    "global_step/sec": "TPUEstimator's: --use_tpu only",
    "loss_scale": "--precision=float16 only",
    "mcc": "CoLA's metric",
    "pearson": "STS-B's and regression's metric",
}


def readme_tensorboard_tags() -> dict[str, set[str]]:
    """{"train": tags, "eval": tags} of the table under "Watching a run: TensorBoard"."""
    text = README.read_text(encoding="utf-8").split("## Watching a run: TensorBoard", 1)[1]
    tags = {"train": set(), "eval": set()}
    for row in text.split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) == 3 and cells[1] in tags:
            tags[cells[1]].update(re.findall(r"`([^`]+)`", cells[0]))
    return tags


@pytest.mark.slow
def test_the_tensorboard_tags_the_readme_lists_are_written(readme_run):
    import tensorflow as tf

    readme_run.result(RUN_ORDER[-1])
    written = {"train": set(), "eval": set()}
    for path in readme_run.work.glob("**/events.out.tfevents*"):
        kind = "eval" if path.parent.name == "eval" else "train"
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            written[kind].update(value.tag for value in event.summary.value)
    listed = readme_tensorboard_tags()
    assert listed["train"] and listed["eval"]
    for kind in ("train", "eval"):
        missing = listed[kind] - written[kind] - set(TAGS_NOT_IN_THE_RUNS)
        assert not missing, f"README lists {kind} tags no run writes: {sorted(missing)}"


# What the README says a command writes: {snippet of the command: {path: keys or text it
# holds}}. Paths are in the scratch space (the README's /tmp/ is its tmp/).
README_OUTPUTS = {
    "--task_name=MRPC": {
        # "eval_accuracy, eval_loss, global_step, loss as before, plus ... F1 for MRPC"
        "tmp/mrpc/eval_results.txt": ["eval_accuracy", "eval_loss", "global_step", "loss", "f1"],
    },
    "--do_predict --export_dir=/tmp/exported ...": {
        "my_finetuned_run/test_results.tsv": [],
        "my_finetuned_run/test_predictions.tsv": [],
        "tmp/exported": [],
    },
    "--export_raw_text ...": {"tmp/exported_raw_text": []},
    "python run_squad.py": {
        "tmp/squad/predictions.json": [],
        "tmp/squad/nbest_predictions.json": [],
        "tmp/squad/eval_results.txt": ["exact_match", "f1"],
    },
    "python run_ner.py": {
        "tmp/ner/eval_results.txt": [
            "entity_precision",
            "entity_recall",
            "entity_f1",
            "PER_f1",
            "token_accuracy",
        ],
        "tmp/ner/test_predictions.txt": [],
        "tmp/ner/test_entities.jsonl": [],
    },
    "python run_multiple_choice.py": {
        "tmp/race/eval_results.txt": ["eval_accuracy"],
        "tmp/race/test_results.tsv": [],
        "tmp/race/test_predictions.jsonl": ["id", "prediction", "choice", "probabilities"],
        "tmp/race_export": [],
    },
    "python extract_features.py --input_file=input.txt": {
        "features.jsonl": ["linex_index", "layers"],
    },
    "--output_pb=model.pb": {"model.pb": []},
    "python tfhub.py": {"hub_tf2/saved_model.pb": []},
    "--output_file=out/data.tfrecord": {"out/data.tfrecord": []},
    "--output_file=out/zh.tfrecord": {"out/zh.tfrecord": []},
    "--output_dir=albert_tf": {"albert_tf/model.ckpt-best.index": [], "albert_tf/spiece.model": []},
    "--output_dir=albert_hf": {"albert_hf/model.safetensors": []},
}


@pytest.mark.slow
@pytest.mark.parametrize("snippet", README_OUTPUTS)
def test_a_readme_command_writes_the_files_the_readme_names(snippet, readme_run):
    (command,) = [c for c in RUN_ORDER if snippet in c.text]
    readme_run.result(command)
    for name, keys in README_OUTPUTS[snippet].items():
        path = readme_run.work / name
        assert path.exists(), f"README.md:{command.line}: no {name}"
        if keys:
            text = path.read_text(encoding="utf-8")
            missing = [key for key in keys if not re.search(rf"^{key} = |\"{key}\"", text, re.M)]
            assert not missing, f"README.md:{command.line}: {name} has no {missing}"


@pytest.mark.slow
def test_the_readme_conversion_gives_back_the_checkpoint_it_started_from(readme_run):
    """path/to/hf_model is $BERT converted by the library; the README's command converts it
    back to my_bert: every variable must come back bit for bit."""
    from helpers import load_variables

    (command,) = [c for c in RUN_ORDER if "--output_dir=my_bert" in c.text]
    assert readme_run.result(command).returncode == 0
    original = load_variables(readme_run.work / "models/bert/bert_model.ckpt")
    converted = load_variables(readme_run.work / "my_bert/bert_model.ckpt")
    assert sorted(converted) == sorted(original)
    for name, value in original.items():
        assert (converted[name] == value).all(), name
