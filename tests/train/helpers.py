"""Batches for tests: the same collation the trainer uses."""

from __future__ import annotations

import numpy as np

from simulsa.train.data import SpeechCollator


def batch_for(model, audios: list[np.ndarray], targets: list[str]):
    items = [{"features": model.audio_features(a), "tokens": model.tokenize_row(t, None, None)}
             for a, t in zip(audios, targets)]  # fmt: skip
    return SpeechCollator(model)(items)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(np.float32)
