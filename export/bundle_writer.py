"""bundle.json: everything the runtime needs to know, and the sha256 of every file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulsa.export.graphs import LmDims
from simulsa.runtime import __version__
from simulsa.runtime.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, WHISPER_WINDOW_S
from simulsa.runtime.bundle import BUNDLE_JSON, PAST_KEY, PAST_VALUE, PRESENT_KEY, PRESENT_VALUE, SCHEMA_VERSION, sha256_of
from simulsa.runtime.features import samples_per_token
from simulsa.runtime.files import write_json_atomic
from simulsa.train.families.base import SpeechLM
from simulsa.train.families.notices import copy_notices


def audio_meta(model: SpeechLM) -> dict[str, Any]:
    settings = model.simulsa_config.audio
    meta = {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH, "n_mels": settings.n_mels,
            "log_mel": "whisper", "block_s": settings.block_s, "stack": settings.stack,
            "window_s": None if settings.block_s else WHISPER_WINDOW_S}  # fmt: skip
    if settings.block_s:
        meta["samples_per_token"] = samples_per_token(settings.stack)
    if model.family == "whisper-tokens":
        config = model.whisper.config
        meta.update({"ear_window_s": settings.window_s, "decoder_prompt": list(settings.decoder_prompt),
                     "decoder_end": settings.decoder_end,
                     "ear": {"layers": config.decoder_layers, "heads": config.decoder_attention_heads,
                             "head_dim": config.d_model // config.decoder_attention_heads, "d_model": config.d_model}})  # fmt: skip
    return meta


def prompt_meta(model: SpeechLM) -> dict[str, Any]:
    template = model.simulsa_config.prompt
    tokens = model.tokenize_row("", None, None, with_end=False)
    return {"template": template.to_json(), "prefix_ids": tokens.prefix_ids, "suffix_ids": tokens.suffix_ids,
            "end_id": model.end_token_id(), "eos_id": model.tokenizer.eos_token_id,
            "pad_id": model.tokenizer.pad_token_id}  # fmt: skip


def bundle_meta(model: SpeechLM, io: dict, files: dict[str, str | None], quantization: dict, source: dict) -> dict:
    dims = LmDims.of(model)
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"simulsa {__version__}",
        "family": model.family,
        "dims": {"hidden_size": dims.hidden_size, "num_layers": dims.num_layers, "num_kv_heads": dims.num_kv_heads,
                 "head_dim": dims.head_dim, "vocab_size": dims.vocab_size},
        "audio": audio_meta(model),
        "prompt": prompt_meta(model),
        "files": files,
        "io": io,
        "kv": {"past_key": PAST_KEY, "past_value": PAST_VALUE, "present_key": PRESENT_KEY,
               "present_value": PRESENT_VALUE, "layout": "(batch, kv_heads, sequence, head_dim)",
               "empty_past": "sequence length 0 on the first call"},
        "quantization": quantization,
        "source": source,
    }


def write_notices(model: SpeechLM, folder: Path) -> list[str]:
    """The base weights' licence/notice files, as `<part>.<name>` beside bundle.json (hashed like every file)."""
    names = []
    for part, files in sorted(model.notices.items()):
        names += copy_notices(files, folder, f"{part}." if part else "")
    return names


def write_bundle_json(folder: Path, meta: dict) -> None:
    """Hash every file beside bundle.json (sub-folders are not part of a bundle) and write bundle.json last."""
    hashes = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != BUNDLE_JSON}
    write_json_atomic(folder / BUNDLE_JSON, {**meta, "sha256": hashes})
