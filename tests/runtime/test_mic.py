"""The microphone wrapper against a fake sounddevice: blocks flow, overflows are counted, errors are one line."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from simulsa.runtime.mic import Microphone, MicrophoneError


class FakeStream:
    def __init__(self, callback, blocksize, **kwargs):
        self.callback, self.blocksize = callback, blocksize

    def start(self):
        status = types.SimpleNamespace(input_overflow=False)
        self.callback(np.full((self.blocksize, 1), 0.5, np.float32), self.blocksize, None, status)
        status.input_overflow = True
        self.callback(np.zeros((self.blocksize, 1), np.float32), self.blocksize, None, status)

    def stop(self):
        pass

    def close(self):
        pass


def _fake_sounddevice(check=None):
    module = types.ModuleType("sounddevice")
    module.InputStream = lambda **kwargs: FakeStream(**kwargs)
    module.check_input_settings = check or (lambda **kwargs: None)
    return module


def test_blocks_and_overflows(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice())
    with Microphone(block_ms=100) as mic:
        first, second = mic.read(), mic.read()
        assert first.shape == (1600,) and first[0] == 0.5 and second.shape == (1600,)
        assert mic.read(timeout=0.01).size == 0  # nothing more arrived
    assert mic.overflows == 1


def test_no_input_device_is_a_clear_error(monkeypatch):
    def no_device(**kwargs):
        raise ValueError("No input device matching")

    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice(no_device))
    with pytest.raises(MicrophoneError, match="no usable microphone"), Microphone():
        pass


def test_missing_sounddevice_or_portaudio(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    with pytest.raises(MicrophoneError, match=r"pip install 'simulsa\[mic\]'"), Microphone():
        pass
