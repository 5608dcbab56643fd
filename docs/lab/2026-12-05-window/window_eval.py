"""How much silence the ear pads a segment with, against quality and speed (scratch, 2026-12-05, session 20).

The whisper-tokens ear pads each segment to a whole number of `audio.ear.window_s` windows (5 s in the default) and
re-encodes it every step: a 1.5 s segment-so-far costs a 5 s encoder pass. This scores the shipped default with the
padding granularity overridden in the runtime (weights untouched), so the quality cost of a shorter pad is measured
before anything is changed.
usage: window_eval.py WINDOW_S MANIFEST OUT CHUNKS_MS HOLD [LIMIT]
"""

import sys
from pathlib import Path

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.default_model import default_bundle_path
from simulsa.runtime.eval_run import EvalOptions, run_eval
from simulsa.runtime.session import Translator


def main(window_s: str, manifest: str, out: str, chunks_ms: str, hold: str, limit: str | None = None) -> None:
    translator = Translator.from_bundle(default_bundle_path())
    translator.model.ear.window = round(float(window_s) * SAMPLE_RATE)
    chunks = tuple(float(c) for c in chunks_ms.split(","))
    options = EvalOptions(chunks_ms=chunks, holds=(int(hold),), policies=("hold",), limit=int(limit) if limit else None)
    report = run_eval(Path(manifest), translator, Path(out), options, force=True)
    print(window_s, report)


if __name__ == "__main__":
    main(*sys.argv[1:])
