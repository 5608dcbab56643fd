"""Audio in: loading, downmixing, resampling and the Whisper log-mel frontend (numpy only).

This module is the one source of truth for audio constants; train/ and export/ import them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from simulsa.runtime.errors import AudioError

SAMPLE_RATE = 16_000  # Hz; every model here hears 16 kHz mono
N_FFT = 400  # 25 ms analysis window at 16 kHz (Whisper)
HOP_LENGTH = 160  # 10 ms hop at 16 kHz -> 100 mel frames per second
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames/s
ENCODER_STRIDE = 2  # Whisper's second conv halves the frame rate: 50 encoder frames/s
LOG_MEL_FLOOR = 1e-10  # power floor before log10 (Whisper)
LOG_MEL_DYNAMIC_RANGE = 8.0  # log10 units kept below the loudest bin (Whisper)
WHISPER_WINDOW_S = 30  # seconds in a full Whisper input window
WHISPER_WINDOW_SAMPLES = WHISPER_WINDOW_S * SAMPLE_RATE  # 480,000 samples
WHISPER_WINDOW_FRAMES = WHISPER_WINDOW_SAMPLES // HOP_LENGTH  # 3,000 mel frames


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(T,) or (T, C) int/float samples -> (T,) float32 in [-1, 1], channels averaged."""
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    return x.mean(axis=1) if x.ndim == 2 else x


def resample(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) float32 at `sample_rate` -> (T',) float32 at SAMPLE_RATE (soxr, high quality)."""
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate == SAMPLE_RATE:
        return samples
    return soxr.resample(samples, sample_rate, SAMPLE_RATE).astype(np.float32, copy=False)


def check_finite(samples: np.ndarray, where: str) -> None:
    """Reject NaN/Inf samples: they silently poison every feature downstream."""
    if not np.all(np.isfinite(samples)):
        bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
        raise AudioError(f"{where}: {bad} samples are NaN or Inf; repair or drop this audio")


def load_audio(path: str | Path) -> np.ndarray:
    """Read any soundfile-supported file -> (T,) float32 mono at 16 kHz."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"audio {str(path)!r} is a folder; give one audio file (many files: a manifest for simulsa eval)")
    if not path.is_file():
        raise AudioError(f"audio file {str(path)!r} does not exist")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"cannot read audio {str(path)!r}: {err}") from None
    check_finite(data, str(path))
    return resample(to_mono(data), sample_rate)


def audio_duration_s(path: str | Path) -> float:
    """Duration from the file header, without decoding the samples."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"cannot read audio {str(path)!r}: {err}") from None
    return info.frames / info.samplerate


def write_wav(path: str | Path, samples: np.ndarray) -> None:
    """Write (T,) float samples as 16 kHz PCM16 wav."""
    sf.write(str(path), quantize_pcm16(samples), SAMPLE_RATE, subtype="PCM_16")


def quantize_pcm16(samples: np.ndarray) -> np.ndarray:
    """Round to the PCM16 grid so what a model hears equals what a written wav holds."""
    return (np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768) / 32768).astype(np.float32)


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa, htk=False)."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = freq / (200.0 / 3)
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    freq = mels * (200.0 / 3)
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[log_region] - 15.0))
    return freq


@lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, N_FFT // 2 + 1) slaney-normalised triangular filters, as Whisper's mel_filters.npz."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], n_mels + 2))
    ramps = edges[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    # periodic Hann, as torch.hann_window(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float64)


def log_mel(samples: np.ndarray, n_mels: int) -> np.ndarray:
    """(T,) float32 16 kHz -> (n_mels, T // HOP_LENGTH) Whisper-normalised log-mel.

    The dynamic-range clamp uses this array's own maximum, so a block encoded on its
    own never depends on audio outside it.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size <= N_FFT // 2:
        raise AudioError(f"audio of {x.size} samples is too short for a log-mel (need > {N_FFT // 2})")
    padded = np.pad(x, N_FFT // 2, mode="reflect")  # center=True framing
    n_frames = 1 + (padded.size - N_FFT) // HOP_LENGTH
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]  # (F, N_FFT)
    power = np.abs(np.fft.rfft(frames * _hann_window(), axis=-1)) ** 2  # (F, 201)
    mel = mel_filters(n_mels).astype(np.float64) @ power[:-1].T  # (n_mels, F - 1): Whisper drops the last frame
    log_spec = np.log10(np.maximum(mel, LOG_MEL_FLOOR))
    log_spec = np.maximum(log_spec, log_spec.max() - LOG_MEL_DYNAMIC_RANGE)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)
