"""Writing outputs so that a reader never sees half of one and a crash destroys nothing.

Every output of the project (TFRecords, JSON and TSV results, eval_results.txt, the best
checkpoint's directory, converted checkpoints) is written under a temporary name beside its
final place and renamed into it once complete. The same directory keeps the rename on one
file system, where it is atomic; the leading dot keeps partial files out of globs such as
`output*.tfrecord`. Paths go through `tf.io.gfile`, so `gs://` outputs work too (there a
rename is a copy, but still only of complete files).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import tensorflow as tf


def temporary_path_for(path: str) -> str:
    """A hidden, unique name in the directory of `path`."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def remove_quietly(path: str) -> None:
    """Deletes the file or directory at `path` if it exists, ignoring errors: used while
    cleaning up after a failure, which must not hide the failure itself."""
    with contextlib.suppress(OSError, tf.errors.OpError):
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        elif tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)


def make_parent_directory(path: str) -> None:
    """Creates the directory `path` is to be written in, as `mkdir -p` would."""
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)


@contextlib.contextmanager
def writing(path: str) -> Iterator[str]:
    """Yields a temporary path to write `path`'s content to; renames it to `path` when the
    block ends normally, deletes it when the block raises (the old `path` stays as it was).
    A missing directory of `path` is created."""
    make_parent_directory(path)
    temporary = temporary_path_for(path)
    try:
        yield temporary
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
        remove_quietly(temporary)
        raise


def write_text(path: str, text: str) -> None:
    """Writes `text` (UTF-8) to `path` through a temporary name and a rename."""
    with writing(path) as temporary, tf.io.gfile.GFile(temporary, "w") as writer:
        writer.write(text)


def replace_directory(staging_dir: str, final_dir: str) -> None:
    """Moves the complete directory `staging_dir` to `final_dir`, replacing what was there.

    The old directory is moved aside before the new one takes its place and deleted only
    afterwards, so at every moment one complete version exists under one of the two names.
    """
    if not tf.io.gfile.exists(final_dir):
        tf.io.gfile.rename(staging_dir, final_dir)
        return
    retired = temporary_path_for(final_dir)
    tf.io.gfile.rename(final_dir, retired)
    try:
        tf.io.gfile.rename(staging_dir, final_dir)
    except BaseException:
        tf.io.gfile.rename(retired, final_dir)
        raise
    remove_quietly(retired)


@contextlib.contextmanager
def new_local_directory(output_dir: str, overwrite: bool = False) -> Iterator[str]:
    """Yields an empty local directory that becomes `output_dir` when the block succeeds.

    On failure the half-written directory is deleted and an existing `output_dir` is left as
    it was. The new directory gets the permissions a plain `mkdir` would give (mkdtemp's are
    private to the user).

    Raises:
      FileExistsError: `output_dir` exists and `overwrite` is False.
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(
            f"--output_dir {output_dir} already exists; pass --overwrite to replace it"
        )
    parent, base = os.path.split(output_dir)
    os.makedirs(parent, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix=f".{base}.partial-", dir=parent)
    try:
        yield work_dir
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    _give_default_permissions(work_dir)
    replace_directory(work_dir, output_dir)


def _give_default_permissions(directory: str) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o666 & ~umask)
