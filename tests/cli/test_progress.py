"""The one progress display: stages in order with their times, a spinner on a terminal, the libraries' output in a log."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest

from simulsa.cli.progress import SPINNER, StageDisplay, quiet_output

LABELS = {"fetch": "download things", "make": "make things"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stages_in_a_log_are_one_line_at_the_start_and_one_with_the_time():
    out = io.StringIO()
    display = StageDisplay(LABELS, out)
    display.skip("fetch", "in the cache")
    with display.stage("make"):
        display.detail("part one")
        display.detail("part two")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("· [1/2] download things") and "in the cache" in lines[0]
    assert lines[1].startswith("  [2/2] make things") and lines[1].endswith("…")
    assert lines[2].startswith("✓ [2/2] make things") and "part one, part two" in lines[2] and lines[2].endswith(" s")
    assert len(lines) == 3


def test_a_failing_stage_is_marked_and_the_error_goes_on():
    out = io.StringIO()
    with pytest.raises(RuntimeError, match="broke"), StageDisplay(LABELS, out).stage("fetch"):
        raise RuntimeError("broke")
    assert out.getvalue().splitlines()[-1].startswith("✗ [1/2] download things")


def test_a_terminal_gets_a_spinner_and_a_clock():
    out = Terminal()
    with StageDisplay(LABELS, out).stage("fetch"):
        time.sleep(0.35)
    text = out.getvalue()
    assert any(frame in text for frame in SPINNER[:3]) and "\r\x1b[K" in text
    assert text.rstrip("\n").rsplit("\r\x1b[K", 1)[-1].startswith("✓ [1/2] download things")


def test_quiet_output_sends_python_and_c_level_writes_to_the_log(tmp_path, capfd):
    log = tmp_path / "logs" / "build.log"
    with quiet_output(log) as user:
        print("from print")
        sys.stderr.write("from sys.stderr\n")
        os.write(2, b"from descriptor 2\n")  # what onnxruntime's C++ log does
        os.write(1, b"from descriptor 1\n")
        user.write("for the user\n")
        user.flush()
    print("after")
    captured = capfd.readouterr()
    written = log.read_text()
    for text in ("from print", "from sys.stderr", "from descriptor 2", "from descriptor 1"):
        assert text in written and text not in captured.out + captured.err
    assert "for the user" in captured.err and "for the user" not in written
    assert "after" in captured.out  # descriptors restored
