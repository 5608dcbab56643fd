"""What export does for each model family, in one record per family (the runtime's counterpart: runtime/families.py).

A family says which audio graphs are written (`audio_graphs`), which of its graphs an int8/int4
export quantizes (`quantized_graphs`, plus the ear graphs `--ear-quantize` picks, which `int8_writer` writes anew
from the weights instead of quantizing the fp32 file), and how its audio is described in bundle.json
(`audio_record`). The decoder graph is the same for every family (export/graphs.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from simulsa.export.graphs import (
    DECODER_FILE,
    EAR_DECODER_FILE,
    ENCODER_FILE,
    PROJECTOR_FILE,
    audio_encoder_graph,
    ear_graph_int8,
    ear_graphs,
)
from simulsa.export.quantize import EAR_INT8_FILES, EAR_QUANTIZE
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
    int8_writer: Callable[[SpeechLM, str, Path], None] | None = None  # (model, file name, path): audio graphs in 8 bits
    ear_int8: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # --ear-quantize -> files it writes

    def __post_init__(self) -> None:
        named = {name for files in self.ear_int8.values() for name in files}
        if bool(self.int8_writer) != bool(self.ear_int8) or (self.ear_int8 and set(self.ear_int8) != set(EAR_QUANTIZE)) \
                or not named <= {ENCODER_FILE, EAR_DECODER_FILE, PROJECTOR_FILE}:
            raise ValueError("an export family with an int8_writer names the ear files each --ear-quantize choice writes")

    def quantized(self, ear: str) -> tuple[str, ...]:
        """The graph files an int8/int4 export with `--ear-quantize ear` quantizes."""
        return (*self.ear_int8.get(ear, ()), *self.quantized_graphs)

    def written_int8(self, ear: str) -> tuple[str, ...]:
        return self.ear_int8.get(ear, ())


EXPORT_FAMILIES: dict[str, ExportFamily] = {
    "composite": ExportFamily(audio_graphs=_block_encoder, audio_record=_block_audio),
    "qwen2-audio": ExportFamily(audio_graphs=_window_encoder, audio_record=_window_audio),
    # whisper-tokens' ear graphs in 8-bit blocks (MatMulNBits, int8 token tables) as --ear-quantize chooses: measured
    # on the default in docs/performance.md (2026-12-05); dynamic int8 (MatMulInteger) had made Whisper-base's encoder
    # slower (0.84x), blocks do not. The LM decoder is quantized as in every family.
    "whisper-tokens": ExportFamily(audio_graphs=ear_graphs, audio_record=_ear_audio, quantized_graphs=(DECODER_FILE,),
                                   int8_writer=ear_graph_int8, ear_int8=EAR_INT8_FILES),
}


def export_family(model: SpeechLM) -> ExportFamily:
    if model.family not in EXPORT_FAMILIES:
        raise ModelError(f"model family {model.family!r} cannot be exported ({', '.join(EXPORT_FAMILIES)})")
    return EXPORT_FAMILIES[model.family]
