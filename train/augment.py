"""SimulSA: Simultaneous Self-Augmentation (SIMULSA.md).

1. pick a few utterances (`ratio` or `count`) among those long enough to truncate;
2. cut each at t = min_s + Beta(alpha, beta) * (min(max_s, duration) - min_s);
3. force-decode the full reference on the truncated audio with the base model and keep
   the longest prefix whose every token has probability >= tau_scale / V;
4. write the truncated audio and the partial rows; mix them into the input manifest.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE, quantize_pcm16, write_wav
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import atomic_dir
from simulsa.runtime.manifest import ManifestRow, read_manifest, shuffled, write_manifest
from simulsa.train.data import check_rows, load_row_audio

AUGMENTED_NAME = "augmented.jsonl"  # the new rows only
MIXED_NAME = "manifest.jsonl"  # input rows + new rows, shuffled
SUMMARY_NAME = "augment.json"
PERMISSIVE_MARGIN = 0.1  # kept share of the targets above the heard share of the audio by more than this: raise τ
AUDIO_DIR = "audio"


@dataclasses.dataclass(frozen=True)
class AugmentOptions:
    ratio: float | None = 0.01  # share of rows to augment (paper: ~1%)
    count: int | None = None  # exact number of rows to augment; overrides ratio
    seed: int = 0
    min_s: float = 0.5  # shortest truncation (paper: 0.5 s)
    max_s: float = 5.0  # longest truncation (paper: 5 s)
    alpha: float = 1.0  # Beta shape; (1, 3) skews toward short prefixes (paper)
    beta: float = 3.0
    tau_scale: float = 100.0  # keep tokens with probability >= tau_scale / V (paper: 100 / V)
    batch_size: int = 8  # utterances per teacher-forced pass

    def __post_init__(self) -> None:
        checks = {
            "--min-s": self.min_s > 0, "--max-s": self.max_s > self.min_s, "--alpha": self.alpha > 0,
            "--beta": self.beta > 0, "--tau-scale": self.tau_scale > 0, "--batch-size": self.batch_size > 0,
            "--ratio": self.ratio is None or 0 < self.ratio <= 1, "--count": self.count is None or self.count > 0,
        }  # fmt: skip
        for flag, ok in checks.items():
            if not ok:
                value = getattr(self, flag[2:].replace("-", "_"))
                raise SimulsaError(f"{flag} is out of range, got {value} (need min-s > 0, max-s > min-s, ratio in (0, 1])")
        if self.ratio is None and self.count is None:
            raise SimulsaError("give --ratio or --count: how many utterances to augment")

    def wanted(self, n_rows: int) -> int:
        return self.count if self.count is not None else max(1, round(self.ratio * n_rows))


class ReferenceScorer(Protocol):
    """What SimulSA needs from the base model: tokens, and their teacher-forced probabilities."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def token_probabilities(self, audio: list[np.ndarray], rows: list[ManifestRow]) -> list[np.ndarray]:
        """For each (truncated audio, row): P(reference token i | audio, reference tokens < i), shape (n_i,)."""
        ...


@dataclasses.dataclass(frozen=True)
class AugmentSummary:
    rows_in: int
    augmented: int
    too_short: int  # rows no longer than min_s: nothing to truncate
    mean_kept_fraction: float
    empty_targets: int  # partial targets with no token kept ("wait")
    tau: float
    mean_heard_fraction: float = 0.0  # share of each chosen utterance's audio that was kept
    whole_targets: int = 0  # truncated rows whose whole reference was kept

    @property
    def tau_too_permissive(self) -> bool:
        """Targets kept far beyond the audio heard: measured on Gemma 3 (262k tokens), 100/V kept 0.58 of the targets
        for 0.42 of the audio and 30 % whole; 1000/V kept 0.42 and 12 % whole (docs/training.md, "Choosing τ")."""
        return self.augmented > 0 and self.mean_kept_fraction > self.mean_heard_fraction + PERMISSIVE_MARGIN


def sample_truncation_times(durations: np.ndarray, options: AugmentOptions, rng: np.random.Generator) -> np.ndarray:
    """Seconds at which to cut each utterance: Beta(alpha, beta) scaled to [min_s, min(max_s, duration)]."""
    upper = np.minimum(options.max_s, durations)
    return options.min_s + rng.beta(options.alpha, options.beta, size=durations.shape) * (upper - options.min_s)


def kept_prefix_length(token_probs: np.ndarray, tau: float) -> int:
    """Length of the longest prefix whose every token has probability >= tau."""
    below = np.flatnonzero(np.asarray(token_probs) < tau)
    return int(below[0]) if below.size else int(np.asarray(token_probs).size)


def clean_prefix(scorer: ReferenceScorer, ids: list[int], kept: int) -> tuple[str, int]:
    """Decode the kept prefix, dropping tokens that end inside a multi-byte character."""
    while kept > 0 and scorer.decode(ids[:kept]).endswith("\ufffd"):
        kept -= 1
    return scorer.decode(ids[:kept]), kept


def _safe_name(index: int, row_id: str) -> str:
    return f"{index:06d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', row_id)[:80]}.wav"


def _select(durations: np.ndarray, options: AugmentOptions, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Indices of the rows to truncate (sorted) and the number of rows too short to truncate."""
    eligible = np.flatnonzero(durations > options.min_s)
    wanted = min(options.wanted(durations.size), eligible.size)
    return np.sort(rng.choice(eligible, size=wanted, replace=False)), int(durations.size - eligible.size)


def augment_rows(manifest: Path, rows: list[ManifestRow], durations: np.ndarray, scorer: ReferenceScorer,
                 options: AugmentOptions, audio_dir: Path) -> tuple[list[ManifestRow], AugmentSummary]:  # fmt: skip
    """Steps 1-3 for rows already checked; writes truncated wavs into `audio_dir`."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(options.seed)
    chosen, too_short = _select(durations, options, rng)
    cut_s = sample_truncation_times(durations[chosen], options, rng)
    tau = options.tau_scale / scorer.vocab_size
    new_rows: list[ManifestRow] = []
    with tqdm(total=len(chosen), desc="simulsa augment", unit="utt") as bar:
        for start in range(0, len(chosen), options.batch_size):
            batch = [(rows[i], float(t)) for i, t in zip(chosen[start : start + options.batch_size], cut_s[start:])]
            new_rows += _augment_batch(manifest, batch, scorer, tau, audio_dir, len(new_rows))
            bar.update(len(batch))
    heard = cut_s / durations[chosen] if chosen.size else cut_s  # (n_chosen,)
    return new_rows, _summarize(len(rows), new_rows, too_short, tau, heard)


def _augment_batch(manifest: Path, batch: list[tuple[ManifestRow, float]], scorer: ReferenceScorer, tau: float,
                   audio_dir: Path, first_index: int) -> list[ManifestRow]:  # fmt: skip
    audio = [quantize_pcm16(load_row_audio(manifest, row)[: round(t * SAMPLE_RATE)]) for row, t in batch]
    probs = scorer.token_probabilities(audio, [row for row, _ in batch])
    out = []
    for k, ((row, t), samples, p) in enumerate(zip(batch, audio, probs)):
        ids = scorer.encode(row.target)
        text, kept = clean_prefix(scorer, ids, kept_prefix_length(p, tau))
        path = audio_dir / _safe_name(first_index + k, row.id)
        write_wav(path, samples)
        record = {"orig_id": row.id, "truncate_s": round(t, 4), "kept_tokens": kept, "full_tokens": len(ids)}
        out.append(dataclasses.replace(row, id=f"{row.id}#simulsa", audio=path, target=text, source=None, simulsa=record))
    return out


def _summarize(rows_in: int, new_rows: list[ManifestRow], too_short: int, tau: float, heard: np.ndarray) -> AugmentSummary:
    fractions = [r.simulsa["kept_tokens"] / max(1, r.simulsa["full_tokens"]) for r in new_rows]
    return AugmentSummary(rows_in=rows_in, augmented=len(new_rows), too_short=too_short,
                          mean_kept_fraction=float(np.mean(fractions)) if fractions else 0.0,
                          empty_targets=sum(r.simulsa["kept_tokens"] == 0 for r in new_rows), tau=tau,
                          mean_heard_fraction=float(np.mean(heard)) if heard.size else 0.0,
                          whole_targets=sum(r.simulsa["kept_tokens"] == r.simulsa["full_tokens"] for r in new_rows))  # fmt: skip


def run_augment(manifest: Path, out: Path, scorer: ReferenceScorer, options: AugmentOptions,
                max_audio_s: float | None = None, force: bool = False) -> AugmentSummary:  # fmt: skip
    """Read, augment and write `out/` atomically: augmented.jsonl, manifest.jsonl, audio/, augment.json."""
    rows = read_manifest(manifest)
    checked = check_rows(manifest, rows, max_audio_s)
    with atomic_dir(out, force) as tmp:
        (tmp / AUDIO_DIR).mkdir()
        new_rows, summary = augment_rows(manifest, checked.rows, np.array(checked.durations), scorer, options, tmp / AUDIO_DIR)
        final_rows = [dataclasses.replace(r, audio=out.resolve() / AUDIO_DIR / r.audio.name) for r in new_rows]
        _write_outputs(tmp, out.resolve(), checked.rows, final_rows, options, summary)
    return summary


def _write_outputs(tmp: Path, final: Path, rows: list[ManifestRow], new_rows: list[ManifestRow],
                   options: AugmentOptions, summary: AugmentSummary) -> None:  # fmt: skip
    """Manifests are written with paths relative to the *final* folder, so they stay valid after the rename."""
    write_manifest(tmp / AUGMENTED_NAME, new_rows, relative_to=final)
    write_manifest(tmp / MIXED_NAME, shuffled(rows + new_rows, options.seed), relative_to=final)
    record = {"options": dataclasses.asdict(options), "summary": dataclasses.asdict(summary)}
    (tmp / SUMMARY_NAME).write_text(json.dumps(record, indent=2) + "\n")

