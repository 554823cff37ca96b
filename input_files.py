"""Opening the user's files: one set of readers, so every bad file gets the same clear error.

Text is decoded with an explicit encoding (`--input_encoding`, UTF-8 by default; a leading
UTF-8 byte-order mark is dropped). A file that does not decode stops with
`path:line: not valid UTF-8 (byte 0xd6 at column 3); ...`, naming the line and column of the
first bad byte and the flag that fixes it. A git-lfs pointer (the ~130-byte stand-in that a
clone without `git lfs pull` leaves in place of a large file) is recognised wherever a file is
read, and reported as what it is.

Paths with a scheme (`gs://...`, `ram://...`) go through TensorFlow's file systems; local files
do not import TensorFlow, so the tokenizer stays usable without it.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
from collections.abc import Callable

from absl import flags

DEFAULT_ENCODING = "utf-8"
ENCODING_FLAG = "input_encoding"
# What a git-lfs pointer file starts with (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
_LFS_POINTER_PREFIX = b"version https://git-lfs"
# Bytes looked at to say what a file is instead of what was expected.
_SNIFF_BYTES = 512

ErrorType = Callable[[str], Exception]


class InputFileError(ValueError):
    """A file that cannot be read as what it should be; the message names the file."""


def define_input_encoding_flag(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines --input_encoding, shared by every script that reads the user's text data."""
    flags.DEFINE_string(
        ENCODING_FLAG,
        DEFAULT_ENCODING,
        "Encoding of the input text files (data, not the vocab): e.g. gbk for Chinese CSV "
        "files saved by Excel. A UTF-8 byte-order mark is dropped.",
        flag_values=flag_values,
    )


def check_encoding(encoding: str, flag_name: str = ENCODING_FLAG) -> str:
    """Returns the codec's canonical name; ValueError naming the flag if it is unknown or
    cannot be read line by line (UTF-16 and UTF-32 split a newline over several bytes).

    utf-8-sig becomes utf-8: a UTF-8 byte-order mark is dropped anyway.
    """
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"--{flag_name}={encoding}: unknown encoding") from None
    if name == "utf-8-sig":
        return DEFAULT_ENCODING
    if not "a\n".encode(name).endswith(b"a\n"):
        raise ValueError(
            f"--{flag_name}={encoding}: not supported, the files are read line by line; "
            "convert them to UTF-8 first"
        )
    return name


def _has_filesystem_scheme(path: str) -> bool:
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", path) is not None


def _not_found(path: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, f"{what} not found", path)


def read_bytes(path: str | os.PathLike, what: str = "File", limit: int | None = None) -> bytes:
    """The file's bytes (at most `limit` of them); FileNotFoundError names `what` and the path."""
    path = os.fspath(path)
    size = -1 if limit is None else limit
    if _has_filesystem_scheme(path):
        # Imported here so that local files never pay TensorFlow's import time.
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            raise _not_found(path, what)
        with tf.io.gfile.GFile(path, "rb") as reader:
            return reader.read(size)
    try:
        with open(path, "rb") as reader:
            return reader.read(size)
    except FileNotFoundError:
        raise _not_found(path, what) from None


def is_lfs_pointer(data: bytes) -> bool:
    """Whether `data` (a file's first bytes) is a git-lfs pointer rather than the real file."""
    return data.startswith(_LFS_POINTER_PREFIX)


def lfs_pointer_message(path: str, what: str) -> str:
    return (
        f"{path} is a git-lfs pointer file, not the {what} itself: the real file was never "
        "downloaded (run `git lfs pull` in its repository, or download it directly)"
    )


def check_not_lfs_pointer(
    path: str | os.PathLike, what: str, error_type: ErrorType = InputFileError
) -> None:
    """Raises `error_type` when `path` is a git-lfs pointer; cheap (reads a few bytes)."""
    path = os.fspath(path)
    if is_lfs_pointer(read_bytes(path, what, limit=len(_LFS_POINTER_PREFIX))):
        raise error_type(lfs_pointer_message(path, what))


def describe_content(path: str | os.PathLike) -> str:
    """What a file looks like from its first bytes, for saying what it is instead of what
    was expected: "an empty file", "a git-lfs pointer file", "a text file starting with ..."."""
    head = read_bytes(path, limit=_SNIFF_BYTES)
    if not head:
        return "an empty file"
    if is_lfs_pointer(head):
        return "a git-lfs pointer file (the real file was never downloaded: run `git lfs pull`)"
    # A multi-byte character may be cut at the end of the sample; that is not a decode error.
    text = head.decode("utf-8", "ignore") if _is_mostly_text(head) else None
    if text is not None and text.strip():
        first_line = text.strip().splitlines()[0][:60]
        return f"a text file starting with {first_line!r}"
    return f"a binary file starting with bytes {head[:16].hex(' ')}"


def _is_mostly_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return all(char.isprintable() or char in "\t\n\r" for char in text)


def encoding_hint(encoding: str) -> str:
    """The advice ending an undecodable-file error for files read with --input_encoding."""
    if codecs.lookup(encoding).name == DEFAULT_ENCODING:
        return (
            f"if the file is in another encoding, pass --{ENCODING_FLAG}=gbk (Chinese text "
            "saved by Excel is usually GBK) or the file's encoding"
        )
    return f"pass the file's real encoding as --{ENCODING_FLAG} (the default is utf-8)"


def _encoding_label(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "UTF-8" if name == DEFAULT_ENCODING else name.upper()


def decode(
    data: bytes,
    path: str,
    encoding: str = DEFAULT_ENCODING,
    hint: str | None = None,
    error_type: ErrorType = InputFileError,
    first_line: int = 1,
) -> str:
    """`data`, read from `path` and starting on line `first_line`, decoded as `encoding`.

    A UTF-8 byte-order mark at the start of the file is dropped. Undecodable bytes raise
    `error_type` with `path:line: not valid <ENCODING> (byte 0x.. at column c); <hint>`; the
    hint defaults to the --input_encoding advice.
    """
    codec = codecs.lookup(encoding).name
    if codec == DEFAULT_ENCODING and first_line == 1 and data.startswith(codecs.BOM_UTF8):
        # Dropped by hand rather than with utf-8-sig, whose error offsets skip the mark.
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        raise error_type(
            _decode_error_message(data, path, error, encoding, hint, first_line)
        ) from None


def _decode_error_message(
    data: bytes,
    path: str,
    error: UnicodeDecodeError,
    encoding: str,
    hint: str | None,
    first_line: int,
) -> str:
    line_start = data.rfind(b"\n", 0, error.start) + 1
    line = first_line + data.count(b"\n", 0, error.start)
    # Everything before the bad byte decoded, so it can be counted in characters.
    column = len(data[line_start : error.start].decode(error.encoding, "replace")) + 1
    hint = encoding_hint(encoding) if hint is None else hint
    return (
        f"{path}:{line}: not valid {_encoding_label(encoding)} "
        f"(byte 0x{data[error.start]:02x} at column {column}); {hint}"
    )


def read_text(
    path: str | os.PathLike,
    encoding: str = DEFAULT_ENCODING,
    what: str = "File",
    hint: str | None = None,
    error_type: ErrorType = InputFileError,
) -> str:
    """The whole file as text; errors as `decode`'s, and for a missing file or an lfs pointer.

    `what` names the file in errors ("Vocab file", "BERT config file"); pass a `hint` for
    files that --input_encoding does not govern.
    """
    path = os.fspath(path)
    data = read_bytes(path, what)
    if is_lfs_pointer(data):
        raise error_type(lfs_pointer_message(path, what.lower()))
    return decode(data, path, encoding, hint=hint, error_type=error_type)
