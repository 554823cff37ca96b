"""Small builders shared by the tests: vocabularies, tiny configs, running scripts."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab_for_texts(path: Path, texts, do_lower_case: bool = True, min_count: int = 1):
    """Writes a WordPiece vocab covering `texts`: special tokens, every word seen at least
    `min_count` times, and every character alone and as a `##` continuation."""
    import tokenization

    basic = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    counts = collections.Counter()
    chars = set()
    for text in texts:
        for word in basic.tokenize(text):
            counts[word] += 1
            chars.update(word)
    words = sorted(word for word, count in counts.items() if count >= min_count)
    pieces = sorted(chars) + ["##" + char for char in sorted(chars)]
    vocab = list(dict.fromkeys(SPECIAL_TOKENS + words + pieces))
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


def write_bert_config(path: Path, vocab_size: int, **overrides) -> dict:
    """Writes a tiny bert_config.json (2 layers, hidden 32) and returns its values."""
    config = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 128,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
    }
    config.update(overrides)
    path.write_text(json.dumps(config, indent=2))
    return config


def run_script(
    script: str,
    flags: dict,
    timeout: float = 600,
    env: dict | None = None,
    expect_failure: bool = False,
):
    """Runs a top-level script in a fresh Python process, as a user would, and returns the
    CompletedProcess (stdout and stderr merged). Fails the test when the exit status is not
    the expected one (zero, or non-zero with `expect_failure`)."""
    command = [sys.executable, str(REPO_ROOT / script)]
    for name, value in flags.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        command.append(f"--{name}={value}")
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT))
    full_env.update(env or {})
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if expect_failure:
        if result.returncode == 0:
            raise AssertionError(f"{script} should have failed:\n{result.stdout[-6000:]}")
    elif result.returncode != 0:
        raise AssertionError(f"{script} exited with {result.returncode}:\n{result.stdout[-6000:]}")
    return result


def read_eval_results(path: Path) -> dict[str, float]:
    """Parses an eval_results.txt of `key = value` lines."""
    results = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" = ")
        results[key] = float(value)
    return results
