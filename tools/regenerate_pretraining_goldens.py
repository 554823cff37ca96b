"""Regenerates GOLDEN_DIGESTS of tests/test_create_pretraining_data.py from the ORIGINAL
google-research/bert create_pretraining_data.py.

  python tools/regenerate_pretraining_goldens.py /path/to/google-research-bert [--check]

Nothing of the original is kept in this repository. Its create_pretraining_data.py and
tokenization.py are copied into a temporary directory, where `import tensorflow as tf` becomes
`import tensorflow.compat.v1 as tf` (the one change TensorFlow 2 needs), and run there in a
fresh process on the corpus and vocab that the test writes (`write_corpus`), with the test's
GOLDEN_FLAGS and --output_file=out-0.tfrecord,out-1.tfrecord, once with
--do_whole_word_mask=false and once with true. Prints the digests as the test spells them, and
the versions they depend on (the committed ones: Python 3.11, TensorFlow 2.15.1, protobuf
4.25, original at commit eedf571). With --check, exits 1 unless they equal the test's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ORIGINAL_FILES = ("create_pretraining_data.py", "tokenization.py")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_original_for_tf2(original: Path, scratch: Path) -> Path:
    """The original's two files in `scratch`, importing TensorFlow's v1 API; returns the
    script's path."""
    for name in ORIGINAL_FILES:
        source = (original / name).read_text(encoding="utf-8")
        if "import tensorflow as tf\n" not in source:
            raise SystemExit(f"{original / name}: no `import tensorflow as tf` line to adapt")
        patched = source.replace("import tensorflow as tf\n", "import tensorflow.compat.v1 as tf\n")
        (scratch / name).write_text(patched, encoding="utf-8")
    return scratch / ORIGINAL_FILES[0]


def run_original(script: Path, work_dir: Path, golden_flags: dict, whole_word: bool, corpus):
    """Runs the original on the test's corpus; returns the SHA-256 of its two outputs."""
    input_file, vocab_file = corpus
    outputs = [work_dir / "out-0.tfrecord", work_dir / "out-1.tfrecord"]
    command = [
        sys.executable,
        str(script),
        f"--input_file={input_file}",
        f"--output_file={','.join(str(path) for path in outputs)}",
        f"--vocab_file={vocab_file}",
        f"--do_whole_word_mask={'true' if whole_word else 'false'}",
    ]
    command += [f"--{name}={value}" for name, value in golden_flags.items()]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(script.parent))
    completed = subprocess.run(
        command, cwd=script.parent, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"the original failed:\n{completed.stderr[-4000:]}")
    return tuple(sha256_of(path) for path in outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path, help="a checkout of google-research/bert")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless the test's digests are reproduced"
    )
    args = parser.parse_args(argv)
    sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
    import google.protobuf
    import tensorflow as tf
    import test_create_pretraining_data as golden

    print(f"Python {platform.python_version()}, TensorFlow {tf.__version__}, "
          f"protobuf {google.protobuf.__version__}")
    for name in ORIGINAL_FILES:
        print(f"original {name}: sha256 {sha256_of(args.original / name)}")
    digests = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        script = copy_original_for_tf2(args.original, scratch)
        corpus_dir = scratch / "corpus"
        corpus_dir.mkdir()
        corpus = golden.write_corpus(corpus_dir)
        for whole_word in (False, True):
            digests[whole_word] = run_original(
                script, scratch, golden.GOLDEN_FLAGS, whole_word, corpus
            )
    print("GOLDEN_DIGESTS = {")
    for whole_word, (first, second) in digests.items():
        print(f'    {whole_word}: (\n        "{first}",\n        "{second}",\n    ),')
    print("}")
    if args.check:
        if digests != golden.GOLDEN_DIGESTS:
            print("differs from tests/test_create_pretraining_data.py", file=sys.stderr)
            return 1
        print("matches tests/test_create_pretraining_data.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
