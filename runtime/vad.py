"""Endpointing: voice-activity detectors with one interface (accept, speech_seen, endpoint, reset).

    energy   a 30 ms frame whose RMS level is above `threshold_db` dBFS is speech (numpy). Enough to
             cut clean speech at pauses; it is not a speech/noise classifier: a door slam is speech.
    silero   Silero VAD (MIT), its ONNX model run by onnxruntime (no torch): a speech probability per
             32 ms frame, with hysteresis. Tells speech from noise; fetched once from the pinned
             `silero-vad` wheel into the cache.

A segment ends after `min_silence_ms` of non-speech that follows speech.
"""

from __future__ import annotations

import dataclasses
import threading
import zipfile
from pathlib import Path

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.errors import SimulsaError

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


SILERO_WHEEL = ("silero-vad", "6.2.3", "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8")  # PyPI, MIT
SILERO_MEMBER = "silero_vad/data/silero_vad.onnx"
SILERO_FRAME = 512  # samples at 16 kHz (32 ms): the model's fixed input
SILERO_CONTEXT = 64  # samples of the previous frame the model sees before each frame
SILERO_HYSTERESIS = 0.15  # speech stays speech until the probability drops this far below the threshold
_silero_sessions: dict[Path, object] = {}
_silero_lock = threading.Lock()


def silero_model_path() -> Path:
    """The ONNX model in the cache, taken from the pinned wheel on first use (hash-checked, written atomically)."""
    from simulsa.runtime.default_model import cache_root
    from simulsa.runtime.files import write_bytes_atomic
    from simulsa.runtime.wheels import PinnedWheel, fetch_wheels

    name, version, sha256 = SILERO_WHEEL
    path = cache_root() / "vad" / f"silero_vad-{version}.onnx"
    if not path.is_file():
        (wheel,) = fetch_wheels((PinnedWheel(name, version, sha256),), offline_hint="or use --vad energy")
        with zipfile.ZipFile(wheel) as archive:
            write_bytes_atomic(path, archive.read(SILERO_MEMBER))
    return path


def _silero_session(path: Path):
    """One onnxruntime session per process, shared by every stream (run() is thread-safe)."""
    import onnxruntime as ort

    with _silero_lock:
        if path not in _silero_sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1  # a 2 MB model: threads cost more than they give
            try:
                _silero_sessions[path] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as error:
                raise SimulsaError(f"cannot load the Silero VAD model {path}: {error}; delete it to fetch it again") from None
        return _silero_sessions[path]


@dataclasses.dataclass
class SileroVad:
    threshold: float = 0.5  # speech probability at which a frame becomes speech
    min_silence_ms: int = 600
    model_path: Path | None = None  # default: silero_model_path()
    speech_seen: bool = False
    trailing_silence: int = 0
    speaking: bool = False
    _remainder: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise SimulsaError(f"Silero VAD threshold {self.threshold} must be between 0 and 1")
        self._session = _silero_session(self.model_path or silero_model_path())
        self._reset_model()

    def _reset_model(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)  # the model's recurrent state
        self._context = np.zeros(SILERO_CONTEXT, np.float32)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each whole 32 ms frame of `samples` (16 kHz), continuing the stream's state."""
        x = np.concatenate([self._remainder, samples.astype(np.float32)])
        n_frames = x.size // SILERO_FRAME
        self._remainder = x[n_frames * SILERO_FRAME :]
        out = np.empty(n_frames, np.float32)
        rate = np.array(SAMPLE_RATE, dtype=np.int64)
        for k in range(n_frames):
            frame = x[k * SILERO_FRAME : (k + 1) * SILERO_FRAME]
            window = np.concatenate([self._context, frame])[None]  # (1, 64 + 512)
            probability, self._state = self._session.run(None, {"input": window, "state": self._state, "sr": rate})
            out[k] = probability[0, 0]
            self._context = frame[-SILERO_CONTEXT:]
        return out

    def accept(self, samples: np.ndarray) -> None:
        for probability in self.probabilities(samples):
            if probability >= self.threshold or (self.speaking and probability >= self.threshold - SILERO_HYSTERESIS):
                self.speaking, self.speech_seen, self.trailing_silence = True, True, 0
            else:
                self.speaking = False
                self.trailing_silence += SILERO_FRAME

    @property
    def endpoint(self) -> bool:
        return self.speech_seen and self.trailing_silence * 1000 >= self.min_silence_ms * SAMPLE_RATE

    def reset(self) -> None:
        self.speech_seen, self.trailing_silence, self.speaking = False, 0, False
        self._remainder = np.zeros(0, np.float32)
        self._reset_model()


VADS = {  # --vad NAME -> a detector for a stream's options
    "energy": lambda options: EnergyVad(options.vad_threshold_db, options.min_silence_ms),
    "silero": lambda options: SileroVad(min_silence_ms=options.min_silence_ms),
}
