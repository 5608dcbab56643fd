"""Speak text pairs into a training manifest: more sentences and more voices for the same corpus.

Why: the projector's hearing is data-bound. On the same encoder states, align's dev token error
rate is 52 % after training on 1,350 utterances and 44 % on 2,700 (docs/default_model.md), and
WordNet holds only ~3,000 whole clauses apertium can translate. The ~12,000 text pairs of
`simulsa corpus-text` (fragments included: "a dark room" is as good to hear as a clause) are
cheap to speak (TTS runs at ~40 utterances/s on two cores) and several voices per phrase vary
the acoustics. The output's train.jsonl can carry an existing training manifest's rows too
(`--merge`), so one manifest feeds `simulsa align` and `simulsa train`.

Keep the test voice out of `--voice`: the test split's voice must stay unseen.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import atomic_dir
from simulsa.runtime.manifest import read_manifest
from simulsa.train.corpus.build import CorpusOptions, Utterance, audio_path, speak_plan
from simulsa.train.corpus.tts import Prosody, Voice, check_voices
from simulsa.train.data import TextPair, read_text_pairs


@dataclasses.dataclass(frozen=True)
class SpeakOptions:
    pairs: Path  # JSONL text pairs: source, target (simulsa corpus-text)
    voices: tuple[str, ...] = CorpusOptions.train_voices
    copies: int = 1  # distinct voices per pair
    max_pairs: int | None = None  # a seeded sample of the pairs; None speaks them all
    merge: tuple[Path, ...] = ()  # manifests whose rows go into train.jsonl as well
    speed_range: tuple[float, float] = CorpusOptions.speed_range
    pitch_range: tuple[float, float] = CorpusOptions.pitch_range
    workers: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.pairs.is_file():
            raise SimulsaError(f"--pairs {str(self.pairs)!r} does not exist; make text pairs with `simulsa corpus-text`")
        if not self.voices:
            raise SimulsaError("give at least one --voice")
        for voice in self.voices:
            Voice.parse(voice)
        if not 1 <= self.copies <= len(self.voices):
            raise SimulsaError(f"--copies {self.copies} must be between 1 and the number of voices ({len(self.voices)})")
        if self.max_pairs is not None and self.max_pairs <= 0:
            raise SimulsaError(f"--max-pairs {self.max_pairs} must be positive")
        for name, (low, high) in (("--speed-range", self.speed_range), ("--pitch-range", self.pitch_range)):
            if not 0 < low <= high:
                raise SimulsaError(f"{name} {low} {high} must be two positive factors, low <= high (1 1 keeps the voice as is)")
        if self.workers <= 0:
            raise SimulsaError(f"--workers {self.workers} must be positive")
        for manifest in self.merge:
            if not manifest.is_file():
                raise SimulsaError(f"--merge {str(manifest)!r} does not exist; give a training manifest (train.jsonl)")


def _plan(pairs: list[TextPair], options: SpeakOptions, rng: random.Random) -> list[tuple[Utterance, TextPair]]:
    """`copies` utterances a pair, each in a different voice, each with its own speed and pitch."""
    voices = [Voice.parse(v) for v in options.voices]
    plan = []
    for index, pair in enumerate(pairs):
        for copy, voice in enumerate(rng.sample(voices, options.copies)):
            prosody = Prosody(rng.uniform(*options.speed_range), rng.uniform(*options.pitch_range))
            plan.append((Utterance("train", f"spoken-{index:05d}-{copy}", pair.source, pair.target, voice, prosody), pair))
    return plan


def _row(utterance: Utterance, pair: TextPair) -> dict:
    return {"id": utterance.id, "audio": audio_path(utterance), "target": utterance.target, "source": utterance.source,
            "src_lang": pair.src_lang or "en", "tgt_lang": pair.tgt_lang or "es", "voice": utterance.voice.label}


def _merged_rows(manifests: tuple[Path, ...], out: Path) -> list[dict]:
    """The rows of `manifests` (validated), their audio paths re-pointed to stay valid from `out`."""
    return [row.to_json(out.resolve()) for manifest in manifests for row in read_manifest(manifest)]


def speak_pairs(out: Path, options: SpeakOptions, force: bool = False) -> dict:
    """Write out/audio/*.wav, out/train.jsonl (merged rows first) and out/corpus.json atomically; return the summary."""

    check_voices([Voice.parse(v) for v in options.voices])
    rng = random.Random(options.seed)
    pairs = read_text_pairs(options.pairs)
    if options.max_pairs is not None and options.max_pairs < len(pairs):
        pairs = rng.sample(pairs, options.max_pairs)
    plan = _plan(pairs, options, rng)
    merged = _merged_rows(options.merge, out)
    ids = [row["id"] for row in merged] + [utterance.id for utterance, _ in plan]
    if len(set(ids)) != len(ids):
        raise SimulsaError("--merge manifests share row ids with each other or with the spoken rows; ids must be unique")
    with atomic_dir(out, force) as tmp:
        durations = speak_plan([u for u, _ in plan], tmp, options.workers, "simulsa corpus-speak")
        spoken = [_row(utterance, pair) for utterance, pair in plan]
        (tmp / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in merged + spoken), "utf-8")
        summary = {"pairs": len(pairs), "spoken_utterances": len(plan), "spoken_hours": round(sum(durations) / 3600, 3),
                   "merged_rows": len(merged), "voices": sorted({u.voice.label for u, _ in plan}),
                   "options": {k: str(v) for k, v in dataclasses.asdict(options).items()}}  # fmt: skip
        (tmp / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
