"""Running a streaming session over one utterance and turning its events into what the metrics need.

Kept torch-free and separate from the CLI so the eval command, the benchmark and a SimulEval
agent can share it.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.metrics import units
from simulsa.runtime.session import StreamOptions, TranslationEvent, Translator


@dataclasses.dataclass(frozen=True)
class StreamTrace:
    hypothesis: str  # all committed text, segments joined by a space
    source_ms: float
    delays_ms: list[float]  # audio read when each target unit was complete
    elapsed_ms: list[float]  # the same plus compute time spent so far (computation-aware)
    displays: list[list[str]]  # units shown (committed + tentative) after every update
    compute_ms: float  # total model time for the utterance
    first_output_ms: float | None  # audio read when the first unit appeared


def run_stream(translator: Translator, samples: np.ndarray, options: StreamOptions, lang: str | None) -> StreamTrace:
    """Feed `samples` chunk by chunk as if in real time; audio time comes from chunk positions."""
    session = translator.session(options)
    chunk = len(samples) if options.chunk_ms == float("inf") else max(1, int(options.chunk_samples))
    tracker = _UnitTracker(lang)
    compute_ms = 0.0
    for start in range(0, len(samples), chunk):
        session.accept_audio(samples[start : start + chunk])
        started = time.perf_counter()
        events = session.step() if start + chunk < len(samples) else session.step() + session.finish()
        compute_ms += (time.perf_counter() - started) * 1000
        for event in events:
            tracker.update(event, compute_ms)
    if len(samples) == 0:
        for event in session.finish():
            tracker.update(event, compute_ms)
    return tracker.trace(len(samples) * 1000 / SAMPLE_RATE, compute_ms)


class _UnitTracker:
    """Which target units became complete at which event (a word is complete when followed by a space or final)."""

    def __init__(self, lang: str | None) -> None:
        self.lang = lang
        self.finished_segments: list[str] = []
        self.delays: list[float] = []
        self.elapsed: list[float] = []
        self.displays: list[list[str]] = []

    def _text(self, event: TranslationEvent) -> str:
        return " ".join([*self.finished_segments, event.segment_text]).strip()

    def update(self, event: TranslationEvent, compute_ms: float) -> None:
        text = self._text(event)
        complete = units(text, self.lang)
        if complete and not event.final and not text.endswith(" ") and self.lang not in ("zh", "ja"):
            complete = complete[:-1]  # the last word may still grow
        for _ in range(len(complete) - len(self.delays)):
            self.delays.append(event.t_audio_ms)
            self.elapsed.append(event.t_audio_ms + compute_ms)
        self.displays.append(units(f"{text} {event.tentative}", self.lang))
        if event.final and event.segment_text.strip():
            self.finished_segments.append(event.segment_text.strip())

    def trace(self, source_ms: float, compute_ms: float) -> StreamTrace:
        return StreamTrace(hypothesis=" ".join(self.finished_segments), source_ms=source_ms, delays_ms=self.delays,
                           elapsed_ms=self.elapsed, displays=self.displays, compute_ms=compute_ms,
                           first_output_ms=self.delays[0] if self.delays else None)  # fmt: skip
