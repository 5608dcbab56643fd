"""What each model family does at run time, in one record per family (ARCHITECTURE.md, "Model families").

A family says how a segment's audio becomes LM embeddings (`encode_audio`), which of those
embeddings are final and which may still change as audio arrives (`segment_audio`), and which
ear, if any, hears for it. Adding a family to the runtime means adding one `RuntimeFamily` here;
export's counterpart is `export/families.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from simulsa.runtime.bundle import Bundle, BundleError
from simulsa.runtime.ear import WhisperEar
from simulsa.runtime.features import block_mels, window_mel, window_token_count
from simulsa.runtime.segment_audio import BlockAudio, SegmentAudio, TokenAudio

if TYPE_CHECKING:
    from simulsa.runtime.onnx_model import OnnxSpeechModel


def _encode_blocks(model: OnnxSpeechModel, samples: np.ndarray) -> np.ndarray:
    """composite: each block_s block through the encoder on its own -> (blocks x tokens per block, H)."""
    audio = model.bundle.audio
    mels = block_mels(samples, audio.block_s, audio.stack, audio.n_mels)
    (name,) = model.bundle.io("audio_encoder").outputs
    return np.concatenate([model.encoder.run([name], {"mel": mel[None]})[0][0] for mel in mels])


def _encode_window(model: OnnxSpeechModel, samples: np.ndarray) -> np.ndarray:
    """qwen2-audio: the whole 30 s window, cut back to the tokens the audio covers -> (n, H)."""
    mel, frames = window_mel(samples, model.bundle.audio.n_mels)
    feeds = {"input_features": mel[None], "valid_frames": np.array([frames], dtype=np.int64)}
    (name,) = model.bundle.io("audio_encoder").outputs
    return model.encoder.run([name], feeds)[0][0, : window_token_count(frames)]


def _encode_tokens(model: OnnxSpeechModel, samples: np.ndarray) -> np.ndarray:
    """whisper-tokens: transcribe, then one projected embedding per transcript token -> (tokens, H)."""
    heard = model.ear.hear(samples, [])
    return model.ear.project(heard, 0, len(heard.tokens))


@dataclasses.dataclass(frozen=True)
class RuntimeFamily:
    encode_audio: Callable[[OnnxSpeechModel, np.ndarray], np.ndarray]  # a segment's samples (T,) -> (n, H)
    segment_audio: Callable[[OnnxSpeechModel], SegmentAudio]  # a segment's audio, split into final and changing
    ear: Callable[[Bundle, int | None], WhisperEar] | None = None  # None: one audio_encoder graph does the hearing


RUNTIME_FAMILIES: dict[str, RuntimeFamily] = {
    "composite": RuntimeFamily(encode_audio=_encode_blocks, segment_audio=BlockAudio),
    "qwen2-audio": RuntimeFamily(encode_audio=_encode_window, segment_audio=SegmentAudio),
    "whisper-tokens": RuntimeFamily(encode_audio=_encode_tokens, segment_audio=TokenAudio, ear=WhisperEar),
}


def runtime_family(bundle: Bundle) -> RuntimeFamily:
    if bundle.family not in RUNTIME_FAMILIES:
        raise BundleError(f"bundle {str(bundle.path)!r} is of family {bundle.family!r}, which this runtime does not run "
                          f"({', '.join(RUNTIME_FAMILIES)}); upgrade simulsa")  # fmt: skip
    return RUNTIME_FAMILIES[bundle.family]
