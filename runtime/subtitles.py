"""Subtitles (SRT, WebVTT) from the final event of each segment."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from simulsa.runtime.session import TranslationEvent


@dataclasses.dataclass(frozen=True)
class Cue:
    start_ms: float
    end_ms: float
    text: str


def cues_from_events(events: Iterable[TranslationEvent]) -> list[Cue]:
    return [Cue(e.segment_start_ms, e.t_audio_ms, e.segment_text.strip()) for e in events if e.final and e.segment_text.strip()]


def _timestamp(ms: float, separator: str) -> str:
    total = round(ms)
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def render_srt(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_timestamp(c.start_ms, ',')} --> {_timestamp(c.end_ms, ',')}\n{c.text}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def render_vtt(cues: list[Cue]) -> str:
    blocks = [f"{_timestamp(c.start_ms, '.')} --> {_timestamp(c.end_ms, '.')}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


SUBTITLE_FORMATS = {"srt": render_srt, "vtt": render_vtt}
