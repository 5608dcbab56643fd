"""Latency and stability of simultaneous translation, from the definitions in SIMULSA.md ("Metrics").

Delays d_i are milliseconds of source audio read when target unit i was emitted; |X| is the
source duration in ms; units are words, or characters for languages written without spaces.
Computation-aware (_CA) variants pass `elapsed` (delay + compute time so far) instead of delays.
The `simuleval` package is the reference; tests/runtime/test_metrics.py checks agreement.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

CHARACTER_LANGUAGES = ("zh", "ja")  # scored in characters, as SimulEval and sacrebleu's zh tokenizer do


def units(text: str, lang: str | None) -> list[str]:
    """Latency units of `text`: characters for zh/ja (spaces dropped), else whitespace-separated words."""
    if lang in CHARACTER_LANGUAGES:
        return [c for c in text if not c.isspace()]
    return text.split()


def _lagging(delays: Sequence[float], source_ms: float, target_len: int) -> float:
    """(1/tau) * sum_{i <= tau} [d_i - (i-1) |X| / |Y|], tau = first i with d_i >= |X| (or the last)."""
    if not delays:
        raise ValueError("no delays: the hypothesis is empty")
    if delays[0] > source_ms:
        return float(delays[0])
    rate = source_ms / target_len  # ms of source per target unit at the ideal pace
    total, tau = 0.0, 0
    for i, delay in enumerate(delays):
        total += delay - i * rate
        tau = i + 1
        if delay >= source_ms:
            break
    return total / tau


def average_lagging(delays: Sequence[float], source_ms: float, reference_len: int) -> float:
    """AL with |Y| = the reference length."""
    return _lagging(delays, source_ms, reference_len)


def length_adaptive_average_lagging(delays: Sequence[float], source_ms: float, reference_len: int) -> float:
    """LAAL: AL with |Y| = max(|hypothesis|, |reference|), robust to over-generation."""
    return _lagging(delays, source_ms, max(len(delays), reference_len))


def yet_another_average_lagging(delays: Sequence[float], source_ms: float, reference_len: int,
                                 recording_end_ms: float = float("inf"), longform: bool = False) -> float | None:
    """YAAL (Polák et al. 2025, "Better Late Than Never"): LAAL's sum over the units emitted *before* the source ends,
    not through the first one at or after it. Long-form (LongYAAL, one re-segmented sentence of a stream): units after
    the sentence's end still count, up to the end of the recording. None when no unit qualifies."""
    if not delays:
        raise ValueError("no delays: the hypothesis is empty")
    cutoff = recording_end_ms if longform else min(source_ms, recording_end_ms)
    rate = source_ms / max(len(delays), reference_len)
    kept = [delay - i * rate for i, delay in enumerate(itertools.takewhile(lambda d: d < cutoff, delays))]
    return sum(kept) / len(kept) if kept else None


def average_proportion(delays: Sequence[float], source_ms: float) -> float:
    """AP = sum d_i / (|X| |hypothesis|)."""
    if not delays:
        raise ValueError("no delays: the hypothesis is empty")
    return sum(delays) / (source_ms * len(delays))


def differentiable_average_lagging(delays: Sequence[float], source_ms: float) -> float:
    """DAL: d'_1 = d_1, d'_i = max(d_i, d'_{i-1} + |X|/|hyp|); mean of d'_i - (i-1)|X|/|hyp|."""
    if not delays:
        raise ValueError("no delays: the hypothesis is empty")
    rate = source_ms / len(delays)
    total, previous = 0.0, 0.0
    for i, delay in enumerate(delays):
        current = delay if i == 0 else max(delay, previous + rate)
        total += current - i * rate
        previous = current
    return total / len(delays)


def normalized_erasure(displays: Sequence[Sequence[str]]) -> float:
    """Units deleted from one displayed output to the next, summed, over the final output's length.

    An update deletes the part of the previous display that is not a prefix of the new one.
    """
    if not displays or not displays[-1]:
        return 0.0
    erased = 0
    for before, after in itertools.pairwise(displays):
        common = 0
        for a, b in zip(before, after):
            if a != b:
                break
            common += 1
        erased += len(before) - common
    return erased / len(displays[-1])
