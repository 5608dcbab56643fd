"""A segment's audio and its embeddings, split into what is final and what may still change.

composite: finished `block_s` blocks are encoded once and never change (stable); the partial
block is re-encoded each step (unstable). qwen2-audio: the encoder attends over the whole
30 s window, so every embedding may change as audio arrives: nothing is stable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.ear import open_tail_end

if TYPE_CHECKING:
    from simulsa.runtime.onnx_model import OnnxSpeechModel


class SegmentAudio:
    """Audio of the current segment; subclasses say which embeddings are stable."""

    def __init__(self, model: OnnxSpeechModel) -> None:
        self.model = model
        self.samples = np.zeros(0, dtype=np.float32)
        self.hidden = model.bundle.dims.hidden_size

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

    def unstable(self, open_end: bool = False) -> np.ndarray:
        """(m, H) embeddings of audio that may still change; recomputed on every call. `open_end`: the speaker is
        still talking (only whisper-tokens acts on it: the open tail)."""
        return self.model.encode_audio(self.samples) if self.samples.size else self._empty()

    def all_embeddings(self, open_end: bool = False) -> np.ndarray:
        """Every embedding of the segment, recomputed from the samples (the no-cache-reuse path)."""
        return self.model.encode_audio(self.samples) if self.samples.size else self._empty()


class BlockAudio(SegmentAudio):
    def __init__(self, model: OnnxSpeechModel) -> None:
        super().__init__(model)
        self.block = round(model.bundle.audio.block_s * SAMPLE_RATE)
        self.handed_out = 0  # finished blocks already returned by take_new_stable

    def take_new_stable(self) -> np.ndarray:
        finished = self.samples.size // self.block
        blocks = [self.model.encode_audio(self.samples[k * self.block : (k + 1) * self.block])
                  for k in range(self.handed_out, finished)]  # fmt: skip
        self.handed_out = finished
        return np.concatenate(blocks) if blocks else self._empty()

    def unstable(self, open_end: bool = False) -> np.ndarray:
        tail = self.samples[(self.samples.size // self.block) * self.block :]
        return self.model.encode_audio(tail) if tail.size else self._empty()


class TokenAudio(SegmentAudio):
    """whisper-tokens: one embedding per transcript token; a token two successive hearings agree on is frozen.

    Each step hears the segment once (forcing the frozen tokens as Whisper's prefix); the new tail's first tokens
    that equal the previous hearing's tail are frozen, projected once and never changed, so the LM's cache over
    them stays exact. Freezing happens in the hearing, not in `take_new_stable`, so that the no-cache-reuse path
    sees exactly the same embeddings (frozen + unstable) as the reuse path.
    """

    def __init__(self, model: OnnxSpeechModel) -> None:
        super().__init__(model)
        self.frozen: list[int] = []
        self.frozen_embeds = self._empty()  # (n_frozen, H)
        self.handed_out = 0  # frozen embeddings already returned by take_new_stable
        self.previous_tail: list[int] = []
        self._heard_at = -1
        self._heard = None

    def _hear(self):
        if self._heard_at != self.samples.size:
            ear = self.model.ear
            heard = ear.hear(self.samples, self.frozen)
            tail = heard.tokens[len(self.frozen) :]
            agreed = _common_prefix(tail, self.previous_tail)
            start = len(self.frozen)
            self.frozen_embeds = np.concatenate([self.frozen_embeds, ear.project(heard, start, start + agreed)])
            self.frozen += tail[:agreed]
            self.previous_tail = tail[agreed:]
            self._heard, self._heard_at = heard, self.samples.size
        return self._heard

    def take_new_stable(self) -> np.ndarray:
        if not self.samples.size:
            return self._empty()
        self._hear()
        new = self.frozen_embeds[self.handed_out :]
        self.handed_out = self.frozen_embeds.shape[0]
        return new

    def unstable(self, open_end: bool = False) -> np.ndarray:
        if not self.samples.size:
            return self._empty()
        heard, ear = self._hear(), self.model.ear
        start = len(self.frozen)
        end = open_tail_end(heard.tokens, start, ear.sentence_ends) if open_end else len(heard.tokens)
        return ear.project(heard, start, end)

    def all_embeddings(self, open_end: bool = False) -> np.ndarray:
        unstable = self.unstable(open_end)
        return np.concatenate([self.frozen_embeds, unstable])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n

