"""One progress display for long multi-stage work (the first-run build of the default model).

    ✓ [1/5] download base-model wheels   whisper-base, gemma3-270m      41.2 s
    ⠙ [2/5] convert base models          gemma3-270m                    12 s

On a terminal the running stage has a spinner and a live clock; elsewhere (CI logs, pipes) each
stage is one line when it ends. `quiet_output` sends what the libraries print (their own progress
bars, warnings, onnxruntime's C++ log) to a log file, so the user sees this display alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
TICK_S = 0.1  # spinner frame interval
CLEAR_LINE = "\r\x1b[K"


class StageDisplay:
    """Numbered stages (a dict of name -> label, in order); `stage(name)` runs one, `detail` says what it is doing."""

    def __init__(self, labels: Mapping[str, str], stream: TextIO) -> None:
        self.labels, self.order = dict(labels), list(labels)
        self.stream = stream
        self.live = _isatty(stream)
        self.width = max(len(label) for label in self.labels.values())
        self._details: list[str] = []
        self._lock = threading.Lock()

    def _line(self, mark: str, name: str, seconds: float | None, note: str = "") -> str:
        number = f"[{self.order.index(name) + 1}/{len(self.order)}]"
        clock = "" if seconds is None else f"{seconds:8.1f} s"
        return f"{mark} {number} {self.labels[name]:<{self.width}}  {note or ', '.join(self._details):<44}{clock}"

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._details = []
        started = time.perf_counter()
        stop = threading.Event()
        spinner = threading.Thread(target=self._spin, args=(name, started, stop), daemon=True) if self.live else None
        if spinner:
            spinner.start()
        else:  # a log or a pipe: say what has started, since the line with its time comes only at the end
            self._write(self._line(" ", name, None).rstrip() + " …\n")
        try:
            yield
        except BaseException:
            self._end(stop, spinner, self._line("✗", name, time.perf_counter() - started))
            raise
        self._end(stop, spinner, self._line("✓", name, time.perf_counter() - started))

    def detail(self, text: str) -> None:
        with self._lock:
            self._details.append(text)

    def skip(self, name: str, why: str) -> None:
        self._write(self._line("·", name, None, why) + "\n")

    def _spin(self, name: str, started: float, stop: threading.Event) -> None:
        frame = 0
        while not stop.wait(TICK_S):
            with self._lock:
                line = self._line(SPINNER[frame % len(SPINNER)], name, None)
            self._write(f"{CLEAR_LINE}{line}{time.perf_counter() - started:8.0f} s")
            frame += 1

    def _end(self, stop: threading.Event, spinner: threading.Thread | None, line: str) -> None:
        stop.set()
        if spinner:
            spinner.join()
        self._write(f"{CLEAR_LINE if self.live else ''}{line}\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _fd_of(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None  # not backed by a file descriptor (a test runner's buffer)


@contextlib.contextmanager
def quiet_output(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout/stderr (Python's and the C-level descriptors 1 and 2) to `log_path`.

    Yields a stream that still reaches the user's stderr, for the progress display. Why both
    levels: tqdm and warnings write to sys.stderr, logging handlers keep the stream they were
    made with, and onnxruntime's C++ log writes to descriptor 2 directly.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    user_fd = _fd_of(sys.stderr)
    user = os.fdopen(os.dup(user_fd), "w", encoding="utf-8", buffering=1) if user_fd is not None else sys.stderr
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with log_path.open("w", encoding="utf-8") as log:
        try:
            for fd in saved:
                os.dup2(log.fileno(), fd)
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield user
        finally:
            log.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if user is not sys.stderr:
                user.close()
