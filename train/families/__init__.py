"""Model families behind one interface, dispatched through FAMILIES (ARCHITECTURE.md)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from simulsa.runtime.errors import ModelError
from simulsa.runtime.files import atomic_dir
from simulsa.train.families.base import LoadOptions, SpeechLM
from simulsa.train.families.composite import load_composite, tiny_composite
from simulsa.train.families.config import SimulsaConfig, read_config, write_config
from simulsa.train.families.notices import notice_files
from simulsa.train.families.qwen2_audio import default_qwen2_audio_config, load_qwen2_audio, tiny_qwen2_audio
from simulsa.train.families.whisper_tokens import load_whisper_tokens, tiny_whisper_tokens


@dataclasses.dataclass(frozen=True)
class Family:
    load: Callable[[Path, SimulsaConfig, LoadOptions], SpeechLM]  # a saved folder -> model
    tiny: Callable[[], SpeechLM]  # a random model of a few hundred thousand parameters


FAMILIES: dict[str, Family] = {
    "composite": Family(load=load_composite, tiny=tiny_composite),
    "qwen2-audio": Family(load=load_qwen2_audio, tiny=tiny_qwen2_audio),
    "whisper-tokens": Family(load=load_whisper_tokens, tiny=tiny_whisper_tokens),
}

# transformers model types that can be used without a simulsa.json, with the family's default config
PLAIN_HF_FAMILIES: dict[str, Callable[[], SimulsaConfig]] = {"qwen2_audio": default_qwen2_audio_config}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ModelError(f"unknown model family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def resolve_config(source: str) -> tuple[SimulsaConfig, str]:
    """(config, where) for a simulsa folder, a train output, or a plain HF folder/hub id of a known type."""
    folder = Path(source)
    if folder.is_dir():
        config = read_config(folder)
        if config is not None:
            return config, str(folder.resolve())
        model_type = _model_type(folder / "config.json")
    elif folder.exists():
        raise ModelError(f"model {source!r} is a file; give a model folder (made by simulsa compose or simulsa train)")
    else:
        model_type = _hub_model_type(source)
    if model_type not in PLAIN_HF_FAMILIES:
        raise ModelError(f"{source!r} is not a simulsa model (no simulsa.json); build one with `simulsa compose`")
    return PLAIN_HF_FAMILIES[model_type](), source


def _model_type(config_path: Path) -> str | None:
    if not config_path.is_file():
        return None
    try:
        return json.loads(config_path.read_text()).get("model_type")
    except json.JSONDecodeError:
        return None


def _hub_model_type(model_id: str) -> str | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_id).model_type
    except (OSError, ValueError) as err:
        raise ModelError(f"model {model_id!r}: no such folder, and not a hub id that could be fetched "
                         f"({type(err).__name__}); give a folder made by simulsa compose or simulsa train") from None


def load_speech_lm(source: str | Path, options: LoadOptions | None = None, trainable: bool = False) -> SpeechLM:
    """Load a model folder, a plain HF model of a known family, or a `simulsa train` output (base + adapter)."""
    from simulsa.train.lora import load_trained

    options = options or LoadOptions()
    config, where = resolve_config(str(source))
    if config.base_model is not None:
        base = load_speech_lm(config.base_model, options)
        return load_trained(base, Path(where), config, trainable)
    model = family(config.family).load(Path(where), config, options)
    model.notices = model.notices or {"": notice_files(where)}  # a single-folder model: its own LICENSE/NOTICE
    return model


def base_model_of(source: str | Path) -> str:
    """The folder or hub id holding the full weights behind `source` (itself, unless a train output)."""
    config, where = resolve_config(str(source))
    return config.base_model or where


def save_model(model: SpeechLM, out: Path, force: bool = False) -> None:
    """Write a complete model folder atomically (weights, tokenizer, simulsa.json)."""
    with atomic_dir(out, force) as tmp:
        model.save_base(tmp)
        write_config(tmp, model.simulsa_config)


def build_tiny(name: str) -> SpeechLM:
    return family(name).tiny()
