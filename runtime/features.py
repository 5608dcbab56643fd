"""Audio -> encoder inputs, per family. Training and the runtime both call these (one source of truth)."""

from __future__ import annotations

import math

import numpy as np

from simulsa.runtime.audio import (
    ENCODER_STRIDE,
    HOP_LENGTH,
    SAMPLE_RATE,
    WHISPER_WINDOW_S,
    WHISPER_WINDOW_SAMPLES,
    log_mel,
)
from simulsa.runtime.errors import AudioError


def samples_per_token(stack: int) -> int:
    """Audio samples behind one composite audio token: stack * 2 mel frames (1280 = 80 ms for stack 4)."""
    return stack * ENCODER_STRIDE * HOP_LENGTH


def block_mels(samples: np.ndarray, block_s: float, stack: int, n_mels: int) -> list[np.ndarray]:
    """(T,) 16 kHz -> one (n_mels, F_i) log-mel per block of `block_s` seconds.

    Each block is computed alone; the last, partial block is padded with silence to a
    whole number of audio tokens, so a block's features never depend on later audio.
    """
    if samples.size == 0:
        raise AudioError("audio is empty; nothing to encode")
    block = round(block_s * SAMPLE_RATE)
    unit = samples_per_token(stack)
    mels = []
    for start in range(0, samples.size, block):
        piece = samples[start : start + block]
        padded = math.ceil(piece.size / unit) * unit
        mels.append(log_mel(np.pad(piece, (0, padded - piece.size)), n_mels))
    return mels


def window_mel(samples: np.ndarray, n_mels: int) -> tuple[np.ndarray, int]:
    """(T,) 16 kHz, T <= 30 s -> ((n_mels, 3000) log-mel of the zero-padded window, real mel frames)."""
    if samples.size == 0:
        raise AudioError("audio is empty; nothing to encode")
    if samples.size > WHISPER_WINDOW_SAMPLES:
        raise AudioError(f"audio of {samples.size / SAMPLE_RATE:.1f} s is longer than the {WHISPER_WINDOW_S} s window")
    window = np.pad(samples, (0, WHISPER_WINDOW_SAMPLES - samples.size))
    return log_mel(window, n_mels), math.ceil(samples.size / HOP_LENGTH)


def window_token_count(frames: int) -> int:
    """Audio tokens a Qwen2-Audio style encoder yields for `frames` real mel frames (conv stride 2, pool 2)."""
    conv = (frames - 1) // 2 + 1
    return (conv - 2) // 2 + 1
