"""Microphone input and speaker output through sounddevice (PortAudio), with clear errors and overflow counting."""

from __future__ import annotations

import dataclasses
import queue

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.errors import SimulsaError


class MicrophoneError(SimulsaError):
    """No PortAudio, no sounddevice, or no input device."""


@dataclasses.dataclass
class Microphone:
    """Blocks of 16 kHz mono float32 from the default input device, through a queue filled by PortAudio."""

    block_ms: float = 100.0
    device: int | str | None = None
    overflows: int = 0  # input overflows reported by PortAudio (audio was lost)

    def __post_init__(self) -> None:
        self.blocks: queue.Queue[np.ndarray] = queue.Queue()
        self._stream = None

    def __enter__(self) -> Microphone:
        sounddevice = _import_sounddevice()
        try:
            sounddevice.check_input_settings(device=self.device, samplerate=SAMPLE_RATE, channels=1, dtype="float32")
            self._stream = sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                                   blocksize=int(SAMPLE_RATE * self.block_ms / 1000),
                                                   device=self.device, callback=self._callback)  # fmt: skip
            self._stream.start()
        except Exception as err:  # PortAudioError and ValueError both mean "no usable input device"
            raise MicrophoneError(f"no usable microphone ({err}); check the input device or use an audio file") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()

    def _callback(self, data: np.ndarray, frames: int, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        self.blocks.put(data[:, 0].copy())

    def read(self, timeout: float = 1.0) -> np.ndarray:
        """The next block, or an empty array when none arrived within `timeout` seconds."""
        try:
            return self.blocks.get(timeout=timeout)
        except queue.Empty:
            return np.zeros(0, dtype=np.float32)


def start_playback(samples: np.ndarray) -> None:
    """Play 16 kHz mono samples on the default output device without blocking (the stream paces itself)."""
    sounddevice = _import_sounddevice("--play")
    try:
        sounddevice.play(samples, SAMPLE_RATE)
    except Exception as err:  # PortAudioError and ValueError both mean "no usable output device"
        raise MicrophoneError(f"--play found no usable output device ({err}); drop --play (--realtime paces the same)") from None


def _import_sounddevice(flag: str = "--mic"):
    try:
        import sounddevice
    except ImportError:
        raise MicrophoneError(f"{flag} needs sounddevice: pip install 'simulsa[mic]'") from None
    except OSError as err:  # sounddevice is there but PortAudio is not
        raise MicrophoneError(f"{flag} needs the PortAudio library ({err}); install libportaudio2") from None
    return sounddevice
