"""What a run prints: one line per event, shown once, with progress a user can act on.

Importing this module imports TensorFlow without its start-up chatter, so every script
imports it before anything else (ruff's isort keeps it first, see pyproject.toml):

- TensorFlow 2.15 prints three "Unable to register cuDNN/cuFFT/cuBLAS factory" errors, a
  TensorRT warning and CPU-feature notes on every start, GPU or not. They are read from
  stderr while `import tensorflow` runs and dropped; any other line is printed as it came.
- `TF_CPP_MIN_LOG_LEVEL` defaults to 1 (TensorFlow's C++ warnings and errors, no INFO);
  set it to 0 to see everything.

`configure()` (called by each script's main, once absl has parsed the flags) then makes the
Python log readable:

- every record once: TensorFlow's logger keeps its own `INFO:tensorflow:` handler (the
  lines users of the original grep for) and no longer also goes through absl's;
- `--verbosity` keeps its absl meaning: 0 (INFO, the default) shows this project's lines
  and TensorFlow's warnings; 1 (DEBUG) adds TensorFlow's own INFO lines (graph
  finalized, checkpoint saved...), the per-variable lists and the deprecation notices;
  -1 shows warnings only.

`Progress` reports a long loop (feature building, prediction) with counts and an ETA.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

# Lines TensorFlow 2.15 prints while it is imported on any machine: the CUDA plugins
# registering twice (a known TF 2.15 bug, harmless), TensorRT and CUDA probing, and notes
# on CPU instructions and oneDNN. (The fatal "compiled to use AVX instructions, but these
# aren't available" is not among them.)
_STARTUP_NOISE = re.compile(
    rb"Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|Could not find TensorRT"
    rb"|Could not find cuda drivers"
    rb"|This TensorFlow binary is optimized to use available CPU instructions"
    rb"|^To enable the following instructions"
    rb"|oneDNN custom operations are on"
)


def _stderr_filtered_while(action: Callable[[], None]) -> None:
    """Runs `action` with file descriptor 2 going through a pipe: a thread forwards each
    line to the real stderr as it arrives, start-up noise left out. Forwarding as lines
    come (not after `action`) keeps what a crash inside `action` prints."""
    sys.stderr.flush()
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr is not a file (a notebook)
        action()
        return
    real_stderr = os.dup(stderr_fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, stderr_fd)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not _STARTUP_NOISE.search(line):
                    os.write(real_stderr, line)

    forwarder = threading.Thread(target=forward, name="stderr filter", daemon=True)
    forwarder.start()
    try:
        action()
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, stderr_fd)  # the pipe's last writer gone: the thread ends
        forwarder.join()
        os.close(real_stderr)


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with the C++ start-up lines it prints filtered out of stderr."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

    def import_tensorflow() -> None:
        import tensorflow  # noqa: F401
        import tensorflow_estimator  # noqa: F401  (loads the TensorRT probe)

    _stderr_filtered_while(import_tensorflow)


_import_tensorflow_quietly()

import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
T = TypeVar("T")


def _package_dirs(*names: str) -> tuple[str, ...]:
    dirs = []
    for name in names:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)) + os.sep)
    return tuple(dirs)


# Where TensorFlow's own log records come from (their pathname is the caller's file).
_TENSORFLOW_PACKAGE_DIRS = _package_dirs("tensorflow", "tensorflow_estimator")

# TensorFlow's own INFO lines that stay at the default verbosity: the final loss, on TPU
# (where this project's progress hook does not run) TPUEstimator's loss and speed lines,
# and the notice that there is no trained model to evaluate or predict with.
_KEPT_TENSORFLOW_INFO = (
    "Loss for final step",
    "loss = ",
    "global_step/sec",
    "examples/sec",
    # Evaluation or prediction without a trained model (a wrong --output_dir, say).
    "Could not find trained model",
)
# TensorFlow warnings that say nothing to a user of these scripts: the Estimator API's
# deprecation notices (TF 2.15 is the last release with it; this project pins it).
_TENSORFLOW_NOISE_WARNINGS = re.compile(
    r"is deprecated and will be removed|is deprecated\. Please use|"
    r"This API was designed for TensorFlow v1"
)


class _DefaultVerbosityFilter(logging.Filter):
    """Passes what a user needs at INFO; everything else only at DEBUG."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self._logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        if self._logger.getEffectiveLevel() <= logging.DEBUG:
            return True
        if not os.path.abspath(record.pathname).startswith(_TENSORFLOW_PACKAGE_DIRS):
            return True  # this project's lines, and a user's own processor's: the level decides
        if record.levelno >= logging.WARNING:
            return not _TENSORFLOW_NOISE_WARNINGS.search(record.getMessage())
        return record.getMessage().startswith(_KEPT_TENSORFLOW_INFO)


def configure(verbosity: int | None = None) -> None:
    """Sets up the TensorFlow logger as the module docstring says.

    Args:
      verbosity: absl's scale (-1 WARNING, 0 INFO, 1 DEBUG); default: the parsed
        `--verbosity` flag, else 0.
    """
    if verbosity is None:
        verbosity = _absl_verbosity()
    level = logging.DEBUG if verbosity >= 1 else logging.INFO if verbosity == 0 else logging.WARNING
    logger = tf.get_logger()
    logger.setLevel(level)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
        logger.addHandler(handler)
    for existing in list(logger.filters):
        if isinstance(existing, _DefaultVerbosityFilter):
            logger.removeFilter(existing)
    logger.addFilter(_DefaultVerbosityFilter(logger))
    if level > logging.DEBUG:
        # tf.data's note, under a distribution strategy, that it cannot serialize a
        # dataset's options: internal to TensorFlow, nothing a user can change.
        warnings.filterwarnings("ignore", message="To make it possible to preserve tf.data")


def _absl_verbosity() -> int:
    from absl import flags

    if "verbosity" in flags.FLAGS and flags.FLAGS.is_parsed():
        return flags.FLAGS.verbosity
    return 0


_shown_once: set[str] = set()


def is_first_time(kind: str) -> bool:
    """True the first time `kind` comes up in this process."""
    first = kind not in _shown_once
    _shown_once.add(kind)
    return first


def first_time_level(kind: str) -> int:
    """INFO the first time `kind` comes up in this process, DEBUG afterwards: one example
    of the features a run writes is worth seeing, the next twenty are not."""
    return logging.INFO if is_first_time(kind) else logging.DEBUG


def info_once(kind: str, message: str, *args) -> None:
    """Logs at INFO the first time `kind` comes up in this process, at DEBUG afterwards
    (the checkpoint report each mode's model_fn makes, say)."""
    tf1.logging.log(first_time_level(kind), message, *args)


def format_duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h07m`: short enough for a progress line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts a long loop and logs `what: n / total (p%), r/s, ETA t` every `interval_s`
    seconds, and a closing line from `done()` when the loop wrote somewhere or took
    longer than one interval: a short loop that writes nothing prints nothing.

    Args:
      what: names the items and the work ("train features", "predictions").
      total: how many items to expect; None when unknown (no percent or ETA then).
      interval_s: seconds between progress lines.
    """

    def __init__(self, what: str, total: int | None = None, interval_s: float = 30.0):
        self.what = what
        self.total = total
        self.interval_s = interval_s
        self.count = 0
        self._start = time.monotonic()
        self._last_report = self._start

    def update(self, count: int = 1) -> None:
        self.count += count
        now = time.monotonic()
        if now - self._last_report >= self.interval_s:
            self._last_report = now
            tf1.logging.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line for the current count."""
        elapsed = (now or time.monotonic()) - self._start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {self.count}"
        if self.total:
            text += f" / {self.total} ({100.0 * self.count / self.total:.0f}%)"
        text += f", {rate:.1f}/s"
        if self.total and rate > 0:
            text += f", ETA {format_duration((self.total - self.count) / rate)}"
        return text

    def done(self, where: str | None = None) -> None:
        """Logs how many items took how long, and `where` they went."""
        elapsed = time.monotonic() - self._start
        if not where and elapsed < self.interval_s:
            return
        suffix = f" to {where}" if where else ""
        tf1.logging.info(
            "%s: %d done in %s%s", self.what, self.count, format_duration(elapsed), suffix
        )


def counted(items: Iterable[T], what: str, total: int | None = None) -> Iterator[T]:
    """Yields `items`, reporting them through a `Progress` as they pass."""
    progress = Progress(what, total)
    try:
        for item in items:
            progress.update()
            yield item
    finally:  # also when the caller stops early (prediction leaves the padding unread)
        progress.done()
