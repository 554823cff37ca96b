"""A classifier SavedModel that takes raw text: strings in, probabilities out.

The graph tokenizes in TensorFlow (tensorflow_text's regex split and WordPiece ops), builds
`[CLS] a [SEP] (b [SEP])` the way `classifier_data.convert_single_example` does, and runs the
classifier on it, so a client needs neither the vocab nor `tokenization.py`. The vocab ships
inside the SavedModel as an asset.

Signatures (outputs `probabilities` and `logits`, `[batch_size, num_labels]`):
- `serving_default`: string `text_a` and `text_b`, each `[batch_size]`; an empty `text_b`
  makes a single-sentence example, as an empty text_b does in `classifier_data`;
- `single_text`: `text_a` only.

A process loading the SavedModel must `import tensorflow_text` first, which registers the ops.

The token ids equal `tokenization.FullTokenizer`'s on English, Chinese, accented, punctuated
and mixed-case text, control and zero-width characters included (tests/test_raw_text_export.py).
Lower-casing is ICU's full mapping (`tf.strings.lower`), which agrees with Python's `str.lower`
there (final sigma, "İ" too). Where they could part: characters whose Unicode category or case
differs between the Unicode versions of RE2 / ICU and of Python's `unicodedata` (recently
added characters), and texts that are not valid UTF-8, which `tokenization.py` decodes with
replacement characters (dropped) but the graph's ops reject.
"""

from __future__ import annotations

import os
import tempfile
import time

import tensorflow as tf
import tensorflow_text as tf_text

import estimator_builder
import tokenization

tf1 = tf.compat.v1

TEXT_A, TEXT_B = "text_a", "text_b"
SINGLE_TEXT_SIGNATURE = "single_text"
VOCAB_ASSET = "vocab_ids.tsv"

# What BasicTokenizer turns into a space: tab, newline, CR and the Zs spaces.
_WHITESPACE = r"[\t\n\r\p{Zs}]"
# What BasicTokenizer drops: NUL, the replacement character and Cc / Cf characters (the
# whitespace among them has already become spaces).
_DROPPED = r"[\x{0}\x{FFFD}\p{Cc}\p{Cf}]"
# Splitting: runs of whitespace (Python's str.split also splits on the line and paragraph
# separators, which cleaning keeps) go; each punctuation mark (every ASCII non-alphanumeric
# and Unicode P*) and each CJK ideograph is kept as a word of its own.
_SPACES = r"[ \x{2028}\x{2029}]+"
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_CJK = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
_KEPT_DELIMITERS = f"{_PUNCTUATION}|{_CJK}"
_DELIMITERS = f"{_SPACES}|{_KEPT_DELIMITERS}"
# tokenization.WordpieceTokenizer's limit: a longer word becomes [UNK] whole.
_MAX_CHARS_PER_WORD = 200


def write_vocab_asset(vocab_file: str, path: str) -> dict[str, int]:
    """Writes `token<TAB>id` lines of `vocab_file` as `tokenization.load_vocab` reads it
    (stripped lines; a repeated token keeps its last id) and returns that vocab."""
    tokenizer = tokenization.FullTokenizer(vocab_file)
    # [UNK] too: the in-graph lookup table needs an id for words without pieces.
    tokenization.require_tokens(
        tokenizer, (*tokenization.FEATURE_TOKENS, tokenization.UNK_TOKEN), "the raw-text export"
    )
    vocab = tokenizer.vocab
    with open(path, "w", encoding="utf-8") as writer:
        for token, index in vocab.items():
            if "\t" in token or "\n" in token or "\r" in token:
                raise ValueError(
                    f"{vocab_file}: token {token!r} (id {index}) holds a tab or line break, "
                    "which the raw-text export's vocab table cannot hold"
                )
            writer.write(f"{token}\t{index}\n")
    return vocab


def vocab_table(asset_path: str, unk_id: int) -> tf.lookup.StaticHashTable:
    """The token -> id table over `write_vocab_asset`'s file. Its path is registered as a
    SavedModel asset, so the export copies the file and the loaded graph reads the copy."""
    path = tf.constant(asset_path, name="vocab_asset_path")
    tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, path)
    initializer = tf.lookup.TextFileInitializer(path, tf.string, 0, tf.int64, 1, delimiter="\t")
    return tf.lookup.StaticHashTable(initializer, default_value=unk_id)


def basic_words(texts: tf.Tensor, do_lower_case: bool) -> tf.RaggedTensor:
    """`tokenization.BasicTokenizer` in graph: cleans, lower-cases and strips accents when
    `do_lower_case`, and splits on whitespace, punctuation and CJK ideographs.

    Args:
      texts: string `[batch_size]`, UTF-8.

    Returns:
      string `[batch_size, (num_words)]`.
    """
    texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
    texts = tf.strings.regex_replace(texts, _DROPPED, "")
    if do_lower_case:
        texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    return tf_text.regex_split(texts, _DELIMITERS, _KEPT_DELIMITERS)


def wordpiece_ids(
    words: tf.RaggedTensor, table: tf.lookup.StaticHashTable, unk_token: str = "[UNK]"
) -> tf.RaggedTensor:
    """Greedy longest-match-first WordPiece ids of each word, flattened per text.

    Args:
      words: string `[batch_size, (num_words)]`.

    Returns:
      int64 `[batch_size, (num_tokens)]`.
    """
    too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > _MAX_CHARS_PER_WORD
    # The unknown token is in the vocab, so a word replaced by it maps to its id whole.
    words = words.with_flat_values(tf.where(too_long, unk_token, words.flat_values))
    tokenizer = tf_text.WordpieceTokenizer(
        table,
        suffix_indicator="##",
        # A byte limit that never binds before the character limit above (UTF-8 needs at
        # most 4 bytes a character).
        max_bytes_per_word=4 * _MAX_CHARS_PER_WORD,
        token_out_type=tf.int64,
        unknown_token=unk_token,
    )
    return tokenizer.tokenize(words).merge_dims(-2, -1)


def kept_lengths(
    len_a: tf.Tensor, len_b: tf.Tensor, max_seq_length: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """How many tokens of a and b survive `classifier_data`'s truncation.

    A single text (`len_b == 0`) keeps `max_seq_length - 2` tokens. A pair is cut to
    `max_seq_length - 3` by removing one token at a time from the longer text (from b on a
    tie); the closed form of that loop: the shorter text stays whole when it fits in half
    the budget, else a gets the rounded-up half and b the rest.

    Args:
      len_a, len_b: int `[batch_size]` token counts.

    Returns:
      `(kept_a, kept_b)`, int `[batch_size]`.
    """
    single_budget = max_seq_length - 2
    budget = max_seq_length - 3
    fits = len_a + len_b <= budget
    half_a, half_b = (budget + 1) // 2, budget // 2
    kept_a = tf.where(
        fits | (2 * len_a <= budget),
        len_a,
        tf.where(2 * len_b <= budget, budget - len_b, half_a),
    )
    kept_b = tf.where(
        fits | (2 * len_b <= budget),
        len_b,
        tf.where(2 * len_a <= budget, budget - len_a, half_b),
    )
    is_single = tf.equal(len_b, 0)
    kept_a = tf.where(is_single, tf.minimum(len_a, single_budget), kept_a)
    return kept_a, tf.where(is_single, tf.zeros_like(len_b), kept_b)


def _first(ids: tf.RaggedTensor, counts: tf.Tensor) -> tf.RaggedTensor:
    """The first `counts[i]` ids of each row i."""
    return tf.ragged.boolean_mask(ids, tf.ragged.range(ids.row_lengths()) < counts[:, None])


def classifier_features(
    ids_a: tf.RaggedTensor,
    ids_b: tf.RaggedTensor,
    max_seq_length: int,
    cls_id: int,
    sep_id: int,
) -> dict[str, tf.Tensor]:
    """`convert_single_example`'s features from token ids: `[CLS] a [SEP] (b [SEP])`
    truncated as `kept_lengths` says and zero-padded.

    Args:
      ids_a, ids_b: int64 `[batch_size, (num_tokens)]`; an empty row of b makes a single
        text.

    Returns:
      int32 `input_ids`, `input_mask` and `segment_ids`, each `[batch_size, max_seq_length]`.
    """
    kept_a, kept_b = kept_lengths(ids_a.row_lengths(), ids_b.row_lengths(), max_seq_length)
    part_a, part_b = _first(ids_a, kept_a), _first(ids_b, kept_b)
    batch_size = tf.shape(kept_a, out_type=tf.int64)[0]
    has_b = tf.cast(kept_b > 0, tf.int64)
    cls = tf.RaggedTensor.from_row_lengths(
        tf.fill([batch_size], tf.cast(cls_id, tf.int64)), tf.ones_like(kept_a)
    )
    sep = tf.RaggedTensor.from_row_lengths(
        tf.fill([batch_size], tf.cast(sep_id, tf.int64)), tf.ones_like(kept_a)
    )
    sep_b = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(has_b)], tf.cast(sep_id, tf.int64)), has_b
    )
    first_segment = tf.concat([cls, part_a, sep], axis=1)
    second_segment = tf.concat([part_b, sep_b], axis=1)
    ids = tf.concat([first_segment, second_segment], axis=1)
    segments = tf.concat([tf.zeros_like(first_segment), tf.ones_like(second_segment)], axis=1)
    shape = [None, max_seq_length]
    return {
        "input_ids": tf.cast(ids.to_tensor(0, shape=shape), tf.int32),
        "input_mask": tf.cast(tf.ones_like(ids).to_tensor(0, shape=shape), tf.int32),
        "segment_ids": tf.cast(segments.to_tensor(0, shape=shape), tf.int32),
    }


def text_inputs() -> tuple[tf.Tensor, tf.Tensor]:
    """The `[batch_size]` string placeholders; `text_b` defaults to empty strings, so a
    client may feed `text_a` alone."""
    text_a = tf1.placeholder(tf.string, [None], name=TEXT_A)
    text_b = tf1.placeholder_with_default(tf.fill(tf.shape(text_a), ""), [None], name=TEXT_B)
    return text_a, text_b


def raw_text_features(
    text_a: tf.Tensor,
    text_b: tf.Tensor,
    asset_path: str,
    vocab: dict[str, int],
    do_lower_case: bool,
    max_seq_length: int,
) -> dict[str, tf.Tensor]:
    """The classifier's int32 `[batch_size, max_seq_length]` features of `[batch_size]`
    texts, tokenized in graph with the vocab of `asset_path`."""
    table = vocab_table(asset_path, vocab["[UNK]"])
    ids_a, ids_b = (
        wordpiece_ids(basic_words(text, do_lower_case), table) for text in (text_a, text_b)
    )
    return classifier_features(ids_a, ids_b, max_seq_length, vocab["[CLS]"], vocab["[SEP]"])


def _timestamped_dir(export_dir_base: str) -> str:
    """`export_dir_base/<seconds since the epoch>`, the next free one."""
    stamp = int(time.time())
    while tf.io.gfile.exists(os.path.join(export_dir_base, str(stamp))):
        stamp += 1
    return os.path.join(export_dir_base, str(stamp))


def export_raw_text_saved_model(
    model_fn: estimator_builder.ModelFn,
    checkpoint_path: str,
    export_dir_base: str,
    max_seq_length: int,
    vocab_file: str,
    do_lower_case: bool,
) -> str:
    """Writes the raw-text SavedModel of the classifier at `checkpoint_path` under
    `export_dir_base/<timestamp>/` and returns its path.

    `model_fn` is the classifier's TPUEstimator-style model_fn; its PREDICT spec must name
    `probabilities` and `logits` in `export_outputs["serving_default"]`.
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS] a [SEP]), got {max_seq_length}")
    export_dir = _timestamped_dir(export_dir_base)
    with tempfile.TemporaryDirectory() as scratch, tf.Graph().as_default():
        asset_path = os.path.join(scratch, VOCAB_ASSET)
        vocab = write_vocab_asset(vocab_file, asset_path)
        text_a, text_b = text_inputs()
        features = raw_text_features(
            text_a, text_b, asset_path, vocab, do_lower_case, max_seq_length
        )
        spec = model_fn(features, None, tf.estimator.ModeKeys.PREDICT, {})
        outputs = spec.export_outputs["serving_default"].outputs
        output_infos = {
            key: tf1.saved_model.build_tensor_info(outputs[key])
            for key in ("probabilities", "logits")
        }

        def signature(inputs):
            return tf1.saved_model.build_signature_def(
                inputs={key: tf1.saved_model.build_tensor_info(t) for key, t in inputs.items()},
                outputs=output_infos,
                method_name=tf1.saved_model.PREDICT_METHOD_NAME,
            )

        signatures = {
            tf1.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature(
                {TEXT_A: text_a, TEXT_B: text_b}
            ),
            SINGLE_TEXT_SIGNATURE: signature({TEXT_A: text_a}),
        }
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, checkpoint_path)
            builder = tf1.saved_model.Builder(export_dir)
            builder.add_meta_graph_and_variables(
                session,
                [tf1.saved_model.tag_constants.SERVING],
                signature_def_map=signatures,
                assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS),
                main_op=tf1.tables_initializer(),
            )
            builder.save()
    tf1.logging.info("Exported %s as a raw-text SavedModel to %s", checkpoint_path, export_dir)
    return export_dir
