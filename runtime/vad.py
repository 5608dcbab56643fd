"""Endpointing: a small energy voice-activity detector (numpy).

Speech is a 30 ms frame whose RMS level is above `threshold_db` dBFS; a segment ends after
`min_silence_ms` of non-speech that follows speech. Energy is enough to cut a stream at pauses;
it is not a speech/noise classifier.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE

FRAME_SAMPLES = SAMPLE_RATE * 30 // 1000  # 30 ms frames


@dataclasses.dataclass
class EnergyVad:
    threshold_db: float = -45.0  # frames louder than this (dBFS RMS) are speech
    min_silence_ms: int = 600  # this much silence after speech is an endpoint
    speech_seen: bool = False
    trailing_silence: int = 0  # samples of non-speech since the last speech frame
    _remainder: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))

    def accept(self, samples: np.ndarray) -> None:
        """Update with the next samples (any length; partial frames wait for the next call)."""
        x = np.concatenate([self._remainder, samples])
        n_frames = x.size // FRAME_SAMPLES
        frames = x[: n_frames * FRAME_SAMPLES].reshape(n_frames, FRAME_SAMPLES)
        self._remainder = x[n_frames * FRAME_SAMPLES :]
        rms_db = 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-10)
        for loud in rms_db > self.threshold_db:
            if loud:
                self.speech_seen, self.trailing_silence = True, 0
            else:
                self.trailing_silence += FRAME_SAMPLES

    @property
    def endpoint(self) -> bool:
        return self.speech_seen and self.trailing_silence * 1000 >= self.min_silence_ms * SAMPLE_RATE

    def reset(self) -> None:
        self.speech_seen, self.trailing_silence = False, 0
        self._remainder = np.zeros(0, np.float32)
