"""Speech from TTS programs (flite, espeak-ng, piper), each voice with speed and pitch variation, at 16 kHz."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from simulsa.runtime.audio import load_audio, write_wav
from simulsa.runtime.errors import SimulsaError
from simulsa.train.corpus.programs import require, run


@dataclasses.dataclass(frozen=True)
class Voice:
    engine: str  # flite | espeak | piper
    name: str  # flite voice (kal16, slt, ...), espeak-ng voice (en-us, ...), or a piper .onnx model path

    @property
    def label(self) -> str:
        return f"{self.engine}:{Path(self.name).stem if self.engine == 'piper' else self.name}"

    @classmethod
    def parse(cls, spec: str) -> Voice:
        engine, _, name = spec.partition(":")
        if engine not in ENGINES or not name:
            raise SimulsaError(f"voice {spec!r} is not ENGINE:NAME with ENGINE one of {', '.join(ENGINES)}")
        return cls(engine, name)


@dataclasses.dataclass(frozen=True)
class Prosody:
    speed: float = 1.0  # > 1 speaks faster
    pitch: float = 1.0  # > 1 speaks higher


def _flite(voice: Voice, text: str, prosody: Prosody, out: Path) -> None:
    run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / prosody.speed:.3f}",
         "--setf", f"int_f0_target_mean={110 * prosody.pitch:.1f}", "-t", text, "-o", str(out)])  # fmt: skip


def _espeak(voice: Voice, text: str, prosody: Prosody, out: Path) -> None:
    run(["espeak-ng", "-v", voice.name, "-s", str(round(165 * prosody.speed)), "-p", str(round(50 * prosody.pitch)),
         "-w", str(out), text])  # fmt: skip


def _piper(voice: Voice, text: str, prosody: Prosody, out: Path) -> None:
    run(["piper", "-m", voice.name, "--length-scale", f"{1 / prosody.speed:.3f}", "-f", str(out)], text_input=text)


ENGINES: dict[str, tuple[str, Callable[[Voice, str, Prosody, Path], None]]] = {
    "flite": ("flite", _flite),
    "espeak": ("espeak-ng", _espeak),
    "piper": ("piper", _piper),
}


def check_voices(voices: list[Voice]) -> None:
    for voice in voices:
        require(ENGINES[voice.engine][0])
        if voice.engine == "piper" and not Path(voice.name).is_file():
            raise SimulsaError(f"piper voice model {voice.name!r} does not exist; give the path of a .onnx voice")


PIPER_BATCH = 100  # lines per piper process: loading the voice costs ~1.2 s, a line ~0.15 s (2-core CPU)
PIPER_SPEED_STEP = 0.05  # piper takes one --length-scale per process, so speeds are rounded to share one


def piper_speed(prosody: Prosody) -> float:
    return round(prosody.speed / PIPER_SPEED_STEP) * PIPER_SPEED_STEP


def synthesize_piper_batch(voice: Voice, texts: list[str], speed: float, outs: list[Path]) -> list[float]:
    """One piper process for many lines -> 16 kHz wavs at `outs`; durations in s.

    Piper has no pitch control (pitch variation does not apply to it). Its timestamp-named
    output files come out one per non-empty line, in line order, so sorting them maps them back.
    """
    with tempfile.TemporaryDirectory() as scratch:
        lines, wavs = Path(scratch) / "lines.txt", Path(scratch) / "wavs"
        lines.write_text("".join(" ".join(text.split()) + "\n" for text in texts), encoding="utf-8")
        run(["piper", "-m", voice.name, "--length-scale", f"{1 / speed:.3f}", "-i", str(lines), "-d", str(wavs)],
            timeout=60 + 5 * len(texts))  # fmt: skip
        written = sorted(wavs.glob("*.wav"), key=lambda path: int(path.stem)) if wavs.is_dir() else []
        if len(written) != len(texts):
            raise SimulsaError(f"piper wrote {len(written)} files for {len(texts)} lines; is every text non-empty?")
        return [_as_16k(raw, out) for raw, out in zip(written, outs)]


def synthesize(voice: Voice, text: str, prosody: Prosody, out: Path) -> float:
    """Render `text` to a 16 kHz PCM16 wav at `out`; returns its duration in seconds."""
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.wav"
        ENGINES[voice.engine][1](voice, text, prosody, raw)
        return _as_16k(raw, out)


def _as_16k(raw: Path, out: Path) -> float:
    """An engine's wav (any rate) -> a 16 kHz mono PCM16 wav at `out`; its duration in s."""
    samples = load_audio(raw)
    write_wav(out, samples)
    return samples.size / 16000
