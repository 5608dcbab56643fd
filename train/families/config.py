"""`simulsa.json`: what a model folder is (family, prompt, audio settings, base + adapter)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from simulsa.runtime.errors import ModelError
from simulsa.runtime.prompt import PromptTemplate

CONFIG_NAME = "simulsa.json"
CONFIG_FORMAT = 1  # bump when the meaning of a field changes


@dataclasses.dataclass(frozen=True)
class AudioSettings:
    n_mels: int  # mel bins the encoder expects (80 for Whisper-base, 128 for Qwen2-Audio)
    block_s: float | None = None  # composite: seconds per independently encoded block; None = one 30 s window
    stack: int = 4  # composite: encoder frames stacked into one audio token (50 frames/s / 4 = 12.5 tokens/s)
    window_s: float | None = None  # whisper-tokens: audio is padded with silence to a whole number of these windows
    decoder_prompt: tuple[int, ...] | None = None  # whisper-tokens: Whisper's start/language/task/no-timestamps ids
    decoder_end: int | None = None  # whisper-tokens: Whisper's end-of-transcript id

    def __post_init__(self) -> None:
        if self.decoder_prompt is not None:  # JSON gives a list
            object.__setattr__(self, "decoder_prompt", tuple(int(i) for i in self.decoder_prompt))
        if self.window_s is not None and not 0 < self.window_s <= 30:
            raise ModelError(f"window_s must be in (0, 30] seconds, got {self.window_s}")
        if self.n_mels <= 0:
            raise ModelError(f"n_mels must be positive, got {self.n_mels}")
        if self.stack <= 0:
            raise ModelError(f"stack must be positive, got {self.stack}")
        if self.block_s is not None:
            _check_block_s(self.block_s, self.stack)


def _check_block_s(block_s: float, stack: int) -> None:
    """A block must hold a whole number of audio tokens: stack * 2 mel frames (80 ms for stack 4)."""
    token_ms = stack * 2 * 10
    block_ms = round(block_s * 1000)
    if block_s <= 0 or block_ms % token_ms or abs(block_ms - block_s * 1000) > 1e-6:
        raise ModelError(f"block_s must be a positive multiple of {token_ms / 1000} s, got {block_s}")


@dataclasses.dataclass(frozen=True)
class SimulsaConfig:
    family: str  # key of FAMILIES
    prompt: PromptTemplate
    audio: AudioSettings
    base_model: str | None = None  # a train output: path or hub id of the model its adapter applies to
    adapter: str | None = None  # a train output: sub-folder holding the peft adapter
    trained_modules: str | None = None  # a train output: safetensors of fully trained modules (the projector)
    format: int = CONFIG_FORMAT

    def to_json(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        return {key: value for key, value in record.items() if value is not None}

    @classmethod
    def from_json(cls, record: dict[str, Any], where: str) -> SimulsaConfig:
        if record.get("format") != CONFIG_FORMAT:
            raise ModelError(f"{where}: simulsa.json format {record.get('format')} is not {CONFIG_FORMAT}; rebuild the model")
        try:
            return cls(
                family=record["family"],
                prompt=PromptTemplate.from_json(record["prompt"]),
                audio=AudioSettings(**record["audio"]),
                base_model=record.get("base_model"),
                adapter=record.get("adapter"),
                trained_modules=record.get("trained_modules"),
            )
        except (KeyError, TypeError) as err:
            raise ModelError(f"{where}: malformed simulsa.json ({err}); rebuild the model") from None


def read_config(folder: Path) -> SimulsaConfig | None:
    """The folder's simulsa.json, or None when it has none."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelError(f"{path}: not valid JSON ({err.msg})") from None
    return SimulsaConfig.from_json(record, str(path))


def write_config(folder: Path, config: SimulsaConfig) -> None:
    (Path(folder) / CONFIG_NAME).write_text(json.dumps(config.to_json(), indent=2, ensure_ascii=False) + "\n")
