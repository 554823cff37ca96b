"""Running the repo's scripts from a bench and reading what they print (a helper of the
bench scripts, not a bench).

Since the scripts print each log line once, as `INFO:tensorflow:...` (see bert_logging.py),
their lines carry no timestamps. `run_stamped` therefore stamps each line itself, with this
process's clock, when the line arrives through the pipe: the scripts' log handlers flush
every record, and `PYTHONUNBUFFERED=1` makes the children's prints do the same, so a line
arrives within milliseconds of being written, and the same markers time the same phases
in a checkout of any age (the absl timestamps of older checkouts are not needed).

Training speed comes from the training hook's lines (their steps, timed by their arrival;
see `measured_intervals`), in either of two formats:

- this checkout's TrainingProgressHook, every --log_every_steps steps and at the last:
  `step 40/40 (100%): loss = 0.69, 1.234 steps/s, 9.9 examples/s, ETA 0s`;
- the ThroughputHook of checkouts before it (every 100 steps, printed twice, once by
  TensorFlow's handler and once by absl's): `step 40: 1.234 steps/s, 9.9 examples/s`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import threading
import time

# The step, its steps/s and examples/s, in either hook's line (the new one adds the total
# steps, the percentage and the loss, which may be `nan`, `inf` or `1.2e-05`).
HOOK_LINE = re.compile(
    r"step (\d+)(?:/\d+ \(\d+%\))?: (?:loss = \S+, )?([0-9.]+) steps/s, ([0-9.]+) examples/s"
)


@dataclasses.dataclass
class StampedRun:
    """A finished subprocess: its exit code, and each line of its merged stdout and stderr
    with the seconds from the start of the process to the line's arrival."""

    returncode: int
    lines: list[tuple[float, str]]
    seconds: float  # from the start to the process's exit
    timed_out: bool = False

    @property
    def text(self) -> str:
        return "".join(line + "\n" for _, line in self.lines)


def run_stamped(
    command: list[str],
    log_path: str,
    cwd: str,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    header: str | None = None,
) -> StampedRun:
    """Runs `command`, stamping each output line on arrival, and writes them to `log_path`
    as `[  12.345 s] line` (after `header`, when given). A run past `timeout` seconds is
    killed (`timed_out`, and a non-zero exit code)."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    lines: list[tuple[float, str]] = []
    start = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        if header:
            log.write(header.rstrip("\n") + "\n")
            log.flush()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            process.kill()

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        try:
            for line in process.stdout:
                stamp = time.monotonic() - start
                line = line.rstrip("\n")
                lines.append((stamp, line))
                log.write(f"[{stamp:9.3f} s] {line}\n")
            returncode = process.wait()
        finally:
            if timer:
                timer.cancel()
    return StampedRun(returncode, lines, time.monotonic() - start, killed.is_set())


def first_stamp_after(run: StampedRun, marker: str, after: str | None = None) -> float:
    """The stamp of the first line holding `marker` (after the first line holding `after`,
    when given)."""
    seen_after = after is None
    for stamp, line in run.lines:
        seen_after = seen_after or after in line
        if seen_after and marker in line:
            return stamp
    where = f" after {after!r}" if after else ""
    raise ValueError(f"no line with {marker!r}{where} in the log")


def phase_seconds(run: StampedRun, start_marker: str, end_marker: str) -> float:
    """Seconds between the arrival of the first line holding `start_marker` and of the last
    line holding `end_marker` after it."""
    start = first_stamp_after(run, start_marker)
    ends = [stamp for stamp, line in run.lines if end_marker in line and stamp >= start]
    if not ends:
        raise ValueError(f"no line with {end_marker!r} after {start_marker!r} in the log")
    return ends[-1] - start


@dataclasses.dataclass
class HookReport:
    """One training-hook line: the step, the steps/s and examples/s the hook computed,
    and the line's arrival (seconds from the process's start)."""

    step: int
    steps_per_sec: float
    examples_per_sec: float
    stamp: float


def hook_reports(run: StampedRun) -> list[HookReport]:
    """The training-hook lines of a run, in order, one per step: the first line of each
    step. An old checkout printed every line twice; the new hook, with gradient
    accumulation, logs a step again after the next micro-batch (at 0 steps/s, since the
    global step has not moved)."""
    reports: dict[int, HookReport] = {}
    for stamp, line in run.lines:
        if match := HOOK_LINE.search(line):
            step, steps, examples = match.groups()
            reports.setdefault(
                int(step), HookReport(int(step), float(steps), float(examples), stamp)
            )
    return list(reports.values())


def measured_intervals(reports: list[HookReport]) -> list[tuple[int, float]]:
    """(steps, seconds) between consecutive reports, the first report's interval (from the
    hook's first step, when its clock starts: the warm-up) left out.

    The seconds are those between the lines' arrivals, not the hook's own figures: the
    hook restarts its clock at a repeated line, so with gradient accumulation its steps/s
    leaves out one micro-batch of the interval after it (the arrival times cover every
    run; in runs without repeats the two agree to about 1 %, see bench/README.md)."""
    if len(reports) < 2:
        raise ValueError("no training-hook line after the warm-up one")
    return [
        (report.step - previous.step, report.stamp - previous.stamp)
        for report, previous in zip(reports[1:], reports[:-1], strict=True)
    ]


def has_progress_hook(repo_root: str) -> bool:
    """Whether the checkout at `repo_root` logs with TrainingProgressHook (and so takes
    --log_every_steps), rather than the older ThroughputHook."""
    with open(os.path.join(repo_root, "estimator_builder.py"), encoding="utf-8") as f:
        return "class TrainingProgressHook" in f.read()
