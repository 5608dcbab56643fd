"""Manifest rows -> model batches: audio features and `[prefix][audio][suffix][target]` token ids.

Text pairs (`simulsa corpus-text`) ride in the same batches: their source's token ids fill the
audio slot (`slot_ids`), so the LM practises the translation itself under the very prompt it
answers for speech.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simulsa.runtime.audio import audio_duration_s, load_audio
from simulsa.runtime.errors import AudioError, ManifestError
from simulsa.runtime.manifest import ManifestRow
from simulsa.train.families.base import SpeechLM, TokenizedRow


def row_context(manifest: Path, row: ManifestRow) -> str:
    return f"{manifest}:{row.line} (id {row.id!r})"


def load_row_audio(manifest: Path, row: ManifestRow) -> np.ndarray:
    """The row's audio, with any problem reported against its manifest line."""
    try:
        return load_audio(row.audio)
    except AudioError as err:
        raise AudioError(f"{row_context(manifest, row)}: {err}") from None


@dataclasses.dataclass(frozen=True)
class CheckedRows:
    rows: list[ManifestRow]  # usable rows, in manifest order
    durations: list[float]  # seconds, from the file headers
    too_long: int  # rows over the family's audio limit, skipped


def check_rows(manifest: Path, rows: list[ManifestRow], max_audio_s: float | None) -> CheckedRows:
    """Read every row's audio header up front so a bad file fails now, not an hour into training."""
    kept, durations, too_long = [], [], 0
    for row in rows:
        if not row.audio.is_file():
            raise AudioError(f"{row_context(manifest, row)}: audio file {str(row.audio)!r} does not exist")
        try:
            duration = audio_duration_s(row.audio)
        except AudioError as err:
            raise AudioError(f"{row_context(manifest, row)}: {err}") from None
        if duration <= 0:
            raise AudioError(f"{row_context(manifest, row)}: audio {str(row.audio)!r} is empty")
        if max_audio_s is not None and duration > max_audio_s:
            too_long += 1
            continue
        kept.append(row)
        durations.append(duration)
    if not kept:
        raise ManifestError(f"{manifest}: no usable rows (all {len(rows)} longer than {max_audio_s} s)")
    return CheckedRows(kept, durations, too_long)


class SpeechDataset(torch.utils.data.Dataset):
    """One item per manifest row: audio features (numpy) and token ids."""

    def __init__(self, manifest: Path, rows: list[ManifestRow], model: SpeechLM, durations: list[float] | None = None) -> None:
        self.manifest = manifest
        self.rows = rows
        self.model = model
        self.durations = durations

    @property
    def lengths(self) -> list[int]:
        """Rough sequence length per row, for length-grouped batches: ~12.5 audio tokens/s + ~1 token per 4 target chars."""
        if self.durations is None:
            raise ValueError("SpeechDataset.lengths needs the durations from check_rows")
        return [int(12.5 * d + len(r.target) / 4) for d, r in zip(self.durations, self.rows)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        samples = load_row_audio(self.manifest, row)
        try:
            features = self.model.audio_features(samples)
        except AudioError as err:
            raise AudioError(f"{row_context(self.manifest, row)}: {err}") from None
        if row.simulsa is not None:  # truncated by `simulsa augment`: heard as the runtime hears a segment still open
            features = self.model.open_tail_features(features)
        return {"features": features, "tokens": self.model.tokenize_row(row.target, row.src_lang, row.tgt_lang)}


TEXT_FIELDS = ("source", "target")


@dataclasses.dataclass(frozen=True)
class TextPair:
    source: str
    target: str
    src_lang: str | None = None
    tgt_lang: str | None = None


def read_text_pairs(path: Path) -> list[TextPair]:
    """JSONL `{"source", "target", "src_lang"?, "tgt_lang"?}`; every problem names the file and line."""
    if not path.is_file():
        raise ManifestError(f"text pairs {str(path)!r} do not exist; make them with `simulsa corpus-text`")
    pairs = []
    for line_no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{path}:{line_no}: not a JSON object ({err.msg})") from None
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) and record[k].strip() for k in TEXT_FIELDS):
            raise ManifestError(f"{path}:{line_no}: needs non-empty string fields 'source' and 'target'")
        pairs.append(TextPair(record["source"], record["target"], record.get("src_lang"), record.get("tgt_lang")))
    if not pairs:
        raise ManifestError(f"text pairs {str(path)!r} hold no rows")
    return pairs


def text_rows_for(pairs: list[TextPair], n_speech: int, fraction: float, seed: int) -> list[TextPair]:
    """A seeded sample of pairs making `fraction` (in (0, 1), checked by TrainOptions) of the rows next to `n_speech`."""
    wanted = round(n_speech * fraction / (1 - fraction))
    if wanted > len(pairs):
        print(f"--text-fraction {fraction} wants {wanted} text rows; the file has {len(pairs)}, using all")
    return random.Random(seed).sample(pairs, min(wanted, len(pairs)))


class TextPairDataset(torch.utils.data.Dataset):
    """One item per text pair: no audio; the source's token ids go where the audio embeddings would."""

    def __init__(self, pairs: list[TextPair], model: SpeechLM) -> None:
        self.pairs = pairs
        self.model = model

    @property
    def lengths(self) -> list[int]:
        return [int((len(p.source) + len(p.target)) / 4) for p in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        tokens = self.model.tokenize_row(pair.target, pair.src_lang, pair.tgt_lang)
        return {"features": None, "tokens": tokens, "slot_ids": self.model.encode_text(" " + pair.source)}


class MixedDataset(torch.utils.data.ConcatDataset):
    """Speech rows then text rows, with the lengths the length-grouped sampler needs."""

    @property
    def lengths(self) -> list[int]:
        return [n for dataset in self.datasets for n in dataset.lengths]


def _pad(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged id lists -> (B, L_max) zero-padded ids and (B,) lengths."""
    width = max(1, max(len(s) for s in sequences))
    ids = torch.zeros((len(sequences), width), dtype=torch.long)
    for b, seq in enumerate(sequences):
        ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids, torch.tensor([len(s) for s in sequences])


def collate_tokens(tokens: list[TokenizedRow]) -> dict[str, torch.Tensor]:
    batch = {}
    for part in ("prefix", "suffix", "target"):
        batch[f"{part}_ids"], batch[f"{part}_len"] = _pad([getattr(t, f"{part}_ids") for t in tokens])
    return batch


@dataclasses.dataclass
class SpeechCollator:
    model: SpeechLM

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        speech = [item["features"] for item in items if item["features"] is not None]
        batch = {f"audio_{key}": value for key, value in self.model.collate_audio(speech).items()} if speech else {}
        batch.update(collate_tokens([item["tokens"] for item in items]))
        if len(speech) < len(items):  # text rows present: their slot holds source tokens instead of audio
            batch["slot_ids"], batch["slot_len"] = _pad([item.get("slot_ids", []) for item in items])
            batch["slot_is_text"] = torch.tensor([item["features"] is None for item in items])
        return batch
