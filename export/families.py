"""What export does for each model family, in one record per family (the runtime's counterpart: runtime/families.py).

A family says which audio graphs are written (`audio_graphs`), which of its graphs an int8/int4
export quantizes (`quantized_graphs`), and how its audio is described in bundle.json
(`audio_record`). The decoder graph is the same for every family (export/graphs.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from simulsa.export.graphs import DECODER_FILE, ENCODER_FILE, audio_encoder_graph, ear_graphs
from simulsa.export.wrappers import BlockEncoderWrapper, WindowEncoderWrapper
from simulsa.runtime.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, WHISPER_WINDOW_S
from simulsa.runtime.bundle_records import AudioRecord, EarRecord, GraphIO
from simulsa.runtime.ear import sentence_end_ids
from simulsa.runtime.errors import ModelError
from simulsa.runtime.features import samples_per_token
from simulsa.train.families.base import SpeechLM

AudioGraphs = Callable[[SpeechLM, Path], tuple[dict[str, GraphIO], dict[str, str]]]  # -> (io per graph, file per role)


def _mel_fields(model: SpeechLM) -> dict:
    return {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH,
            "n_mels": model.simulsa_config.audio.n_mels, "log_mel": "whisper"}  # fmt: skip


def _block_audio(model: SpeechLM) -> AudioRecord:
    settings = model.simulsa_config.audio
    if settings.block_s:
        return AudioRecord(**_mel_fields(model), block_s=settings.block_s, stack=settings.stack,
                           samples_per_token=samples_per_token(settings.stack))  # fmt: skip
    return _window_audio(model)  # a composite without blocks hears one 30 s window


def _window_audio(model: SpeechLM) -> AudioRecord:
    return AudioRecord(**_mel_fields(model), window_s=WHISPER_WINDOW_S)


def _ear_audio(model: SpeechLM) -> AudioRecord:
    settings, config = model.simulsa_config.audio, model.whisper.config
    ear = EarRecord(window_s=settings.window_s, decoder_prompt=tuple(settings.decoder_prompt), decoder_end=settings.decoder_end,
                    layers=config.decoder_layers, heads=config.decoder_attention_heads,
                    head_dim=config.d_model // config.decoder_attention_heads, d_model=config.d_model,
                    sentence_end_ids=sentence_end_ids(model.whisper_texts()))  # fmt: skip
    return AudioRecord(**_mel_fields(model), window_s=WHISPER_WINDOW_S, ear=ear)  # a segment stays within Whisper's 30 s


def _block_encoder(model: SpeechLM, folder: Path) -> tuple[dict[str, GraphIO], dict[str, str]]:
    return audio_encoder_graph(BlockEncoderWrapper(model), model, folder)


def _window_encoder(model: SpeechLM, folder: Path) -> tuple[dict[str, GraphIO], dict[str, str]]:
    return audio_encoder_graph(WindowEncoderWrapper(model), model, folder)


@dataclasses.dataclass(frozen=True)
class ExportFamily:
    audio_graphs: AudioGraphs
    audio_record: Callable[[SpeechLM], AudioRecord]
    quantized_graphs: tuple[str, ...] = (ENCODER_FILE, DECODER_FILE)  # graph files an int8/int4 export quantizes


EXPORT_FAMILIES: dict[str, ExportFamily] = {
    "composite": ExportFamily(audio_graphs=_block_encoder, audio_record=_block_audio),
    "qwen2-audio": ExportFamily(audio_graphs=_window_encoder, audio_record=_window_audio),
    # whisper-tokens keeps its ear in fp32: the encoder runs every step and int8 made Whisper-base's encoder slower
    # (0.84x, docs/performance.md), and the transcript decides everything downstream.
    "whisper-tokens": ExportFamily(audio_graphs=ear_graphs, audio_record=_ear_audio, quantized_graphs=(DECODER_FILE,)),
}


def export_family(model: SpeechLM) -> ExportFamily:
    if model.family not in EXPORT_FAMILIES:
        raise ModelError(f"model family {model.family!r} cannot be exported ({', '.join(EXPORT_FAMILIES)})")
    return EXPORT_FAMILIES[model.family]
