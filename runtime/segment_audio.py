"""A segment's audio and its embeddings, split into what is final and what may still change.

composite: finished `block_s` blocks are encoded once and never change (stable); the partial
block is re-encoded each step (unstable). qwen2-audio: the encoder attends over the whole
30 s window, so every embedding may change as audio arrives: nothing is stable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.onnx_model import OnnxSpeechModel


class SegmentAudio:
    """Audio of the current segment; subclasses say which embeddings are stable."""

    def __init__(self, model: OnnxSpeechModel) -> None:
        self.model = model
        self.samples = np.zeros(0, dtype=np.float32)
        self.hidden = model.bundle.dims["hidden_size"]

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE

    def append(self, samples: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, samples])

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.hidden), dtype=np.float32)

    def take_new_stable(self) -> np.ndarray:
        """(n, H) embeddings that became final since the last call (each handed out once)."""
        return self._empty()

    def unstable(self) -> np.ndarray:
        """(m, H) embeddings of audio that may still change; recomputed on every call."""
        return self.model.encode_audio(self.samples) if self.samples.size else self._empty()

    def all_embeddings(self) -> np.ndarray:
        """Every embedding of the segment, recomputed from the samples (the no-cache-reuse path)."""
        return self.model.encode_audio(self.samples) if self.samples.size else self._empty()


class BlockAudio(SegmentAudio):
    def __init__(self, model: OnnxSpeechModel) -> None:
        super().__init__(model)
        self.block = round(model.bundle.audio["block_s"] * SAMPLE_RATE)
        self.handed_out = 0  # finished blocks already returned by take_new_stable

    def take_new_stable(self) -> np.ndarray:
        finished = self.samples.size // self.block
        blocks = [self.model.encode_audio(self.samples[k * self.block : (k + 1) * self.block])
                  for k in range(self.handed_out, finished)]  # fmt: skip
        self.handed_out = finished
        return np.concatenate(blocks) if blocks else self._empty()

    def unstable(self) -> np.ndarray:
        tail = self.samples[(self.samples.size // self.block) * self.block :]
        return self.model.encode_audio(tail) if tail.size else self._empty()


SEGMENT_AUDIO: dict[str, Callable[[OnnxSpeechModel], SegmentAudio]] = {
    "composite": BlockAudio,
    "qwen2-audio": SegmentAudio,
}
