"""Long-form evaluation: one unsegmented stream, its output re-segmented to the reference sentences.

The way IWSLT's simultaneous tracks score systems since 2025: a whole recording is streamed with no
segmentation help; the output words are aligned to the reference sentences by mWER (mweralign, run as an
external program: it is GPL), each sentence's delays are taken from the sentence's start, and

- StreamLAAL (Papi et al. 2024; simulstream's `stream_laal`): LAAL per re-segmented sentence, the sentence's
  duration as the source length, averaged over sentences with output;
- LongYAAL (Polák et al. 2025; omnisteval): YAAL per sentence, counting the words emitted after the
  sentence's end up to the end of the recording;

both also computation-aware (elapsed = delay + compute so far), and BLEU/chrF on the re-segmented output.

A stream is either a long recording with its reference segments (manifest rows carrying `offset` and
`duration` in seconds, as IWSLT's segmentation YAML does), or consecutive utterances joined with pauses
(rows without them, in manifest order).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE, load_audio
from simulsa.runtime.errors import ManifestError, SimulsaError
from simulsa.runtime.manifest import read_manifest
from simulsa.runtime.metrics import length_adaptive_average_lagging, units, yet_another_average_lagging

MWERALIGN_INSTALL = "pip install mweralign==1.4.1 (GPL-3.0: simulsa runs it as a program, never imports it)"


@dataclasses.dataclass(frozen=True)
class ReferenceSentence:
    text: str
    start_ms: float  # from the start of the recording
    duration_ms: float


@dataclasses.dataclass(frozen=True)
class LongStream:
    name: str  # the recording's name (its wav's stem): omnisteval matches hypotheses to segments by it
    samples: np.ndarray  # (T,) float32 at 16 kHz
    sentences: tuple[ReferenceSentence, ...]
    tgt_lang: str | None

    @property
    def duration_ms(self) -> float:
        return len(self.samples) * 1000 / SAMPLE_RATE


def read_long_streams(manifest: Path, pause_ms: float = 700.0) -> list[LongStream]:
    """The manifest's streams: one per long recording (rows with offset/duration), or one of joined utterances."""
    rows = read_manifest(manifest)
    raw = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    timed = ["offset" in r and "duration" in r for r in raw]
    if any(timed) and not all(timed):
        first = timed.index(False) if timed[0] else timed.index(True)
        raise ManifestError(f"{manifest}:{rows[first].line}: some rows have offset/duration and some do not; "
                            "a long-form manifest is either segments of recordings or consecutive utterances")  # fmt: skip
    if all(timed):
        return _segmented_recordings(rows, raw)
    return [join_utterances(rows, pause_ms, manifest.stem)]


def join_utterances(rows, pause_ms: float, name: str) -> LongStream:
    """Consecutive utterances with `pause_ms` of silence between them, as one stream."""
    pause = np.zeros(int(pause_ms * SAMPLE_RATE / 1000), np.float32)
    pieces, sentences, at = [], [], 0
    for i, row in enumerate(rows):
        samples = load_audio(row.audio)
        if i:
            pieces.append(pause)
            at += len(pause)
        sentences.append(ReferenceSentence(row.target, at * 1000 / SAMPLE_RATE, len(samples) * 1000 / SAMPLE_RATE))
        pieces.append(samples)
        at += len(samples)
    return LongStream(name, np.concatenate(pieces), tuple(sentences), rows[0].tgt_lang)


def _segmented_recordings(rows, raw: list[dict]) -> list[LongStream]:
    by_audio: dict[Path, list[tuple]] = {}
    for row, record in zip(rows, raw):
        by_audio.setdefault(row.audio, []).append((row, float(record["offset"]), float(record["duration"])))
    streams = []
    for audio, segments in by_audio.items():
        samples = load_audio(audio)
        end_s = len(samples) / SAMPLE_RATE
        for row, offset, duration in segments:
            if offset < 0 or duration <= 0 or offset + duration > end_s + 0.05:
                raise ManifestError(f"{row.audio}: segment {row.id!r} at {offset} s for {duration} s is outside the "
                                    f"{end_s:.2f} s recording; fix its offset/duration (seconds)")  # fmt: skip
        sentences = tuple(ReferenceSentence(r.target, o * 1000, d * 1000) for r, o, d in sorted(segments, key=lambda s: s[1]))
        streams.append(LongStream(audio.stem, samples, sentences, segments[0][0].tgt_lang))
    return streams


# ---- re-segmentation ----------------------------------------------------------------------


def mweralign_program() -> str:
    program = shutil.which("mweralign")
    if program is None:
        raise SimulsaError(f"long-form scoring re-segments with mweralign, which is not on PATH; {MWERALIGN_INSTALL}")
    return program


def resegment(hypothesis_words: list[str], references: list[str]) -> list[list[int]]:
    """Indices of the hypothesis words that mWER alignment gives each reference sentence (in order, all of them)."""
    if not hypothesis_words:
        return [[] for _ in references]
    with tempfile.TemporaryDirectory() as scratch:
        ref_file, hyp_file, out_file = (Path(scratch) / name for name in ("ref.txt", "hyp.txt", "out.txt"))
        ref_file.write_text("".join(_one_line(r) + "\n" for r in references), encoding="utf-8")
        hyp_file.write_text(" ".join(hypothesis_words) + "\n", encoding="utf-8")
        command = [mweralign_program(), "-r", str(ref_file), "-t", str(hyp_file), "-o", str(out_file), "--tokenizer", "none"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SimulsaError(f"mweralign failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        lines = out_file.read_text(encoding="utf-8").splitlines()
    return _word_indices(lines, hypothesis_words, len(references))


def _one_line(text: str) -> str:
    return " ".join(text.split())  # a reference with a line break would shift every later sentence


def _word_indices(lines: list[str], hypothesis_words: list[str], n_references: int) -> list[list[int]]:
    if len(lines) != n_references:
        raise SimulsaError(f"mweralign wrote {len(lines)} lines for {n_references} reference sentences")
    groups, at = [], 0
    for line in lines:
        words = line.split()
        if words != hypothesis_words[at : at + len(words)]:
            raise SimulsaError(f"mweralign changed the hypothesis near word {at} ({words[:3]} vs "
                               f"{hypothesis_words[at : at + 3]}); run it with --tokenizer none")  # fmt: skip
        groups.append(list(range(at, at + len(words))))
        at += len(words)
    if at != len(hypothesis_words):
        raise SimulsaError(f"mweralign placed {at} of {len(hypothesis_words)} hypothesis words")
    return groups


# ---- scores -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SentenceResult:
    """One reference sentence and the output words re-segmented to it, delays from the sentence's start (ms)."""

    reference: str
    hypothesis: str
    source_ms: float  # the sentence's duration
    to_recording_end_ms: float
    delays_ms: tuple[float, ...]
    elapsed_ms: tuple[float, ...]


def sentence_results(stream: LongStream, words: list[str], delays: list[float], elapsed: list[float],
                     groups: list[list[int]]) -> list[SentenceResult]:  # fmt: skip
    results = []
    # the recording "ends" where its last reference sentence does, as omnisteval takes it (trailing silence aside)
    end_ms = max(s.start_ms + s.duration_ms for s in stream.sentences)
    for sentence, indices in zip(stream.sentences, groups):
        start = sentence.start_ms
        results.append(SentenceResult(
            reference=sentence.text, hypothesis=" ".join(words[i] for i in indices), source_ms=sentence.duration_ms,
            to_recording_end_ms=end_ms - start, delays_ms=tuple(delays[i] - start for i in indices),
            elapsed_ms=tuple(elapsed[i] - start for i in indices)))  # fmt: skip
    return results


def stream_laal(results: list[SentenceResult], lang: str | None, computation_aware: bool = False) -> float | None:
    """StreamLAAL: LAAL of every re-segmented sentence that has output, averaged."""
    scores = [length_adaptive_average_lagging(_delays(r, computation_aware), r.source_ms, len(units(r.reference, lang)))
              for r in results if r.delays_ms]  # fmt: skip
    return float(np.mean(scores)) if scores else None


def long_yaal(results: list[SentenceResult], lang: str | None, computation_aware: bool = False) -> float | None:
    """LongYAAL: YAAL of every re-segmented sentence, words after its end counted up to the recording's end."""
    scores = [yet_another_average_lagging(_delays(r, computation_aware), r.source_ms, len(units(r.reference, lang)),
                                          r.to_recording_end_ms, longform=True) for r in results if r.delays_ms]  # fmt: skip
    scores = [s for s in scores if s is not None]
    return float(np.mean(scores)) if scores else None


def _delays(result: SentenceResult, computation_aware: bool) -> tuple[float, ...]:
    return result.elapsed_ms if computation_aware else result.delays_ms
