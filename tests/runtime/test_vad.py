"""Voice-activity detectors: the energy VAD, and Silero VAD run by onnxruntime (its model from the pinned wheel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulsa.runtime.audio import SAMPLE_RATE, load_audio
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.session import StreamOptions
from simulsa.runtime.vad import VADS, EnergyVad, SileroVad, silero_model_path
from simulsa.runtime.wheels import PullError

BECKETT = Path(__file__).parents[1] / "data" / "beckett.wav"  # "Ever tried. Ever failed. ..." read by a person
RNG = np.random.default_rng(0)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def noise(seconds: float, level: float) -> np.ndarray:
    return (level * RNG.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


@pytest.fixture(scope="module")
def silero_path():
    try:
        return silero_model_path()
    except PullError as error:  # no PyPI here: the model cannot be fetched
        pytest.skip(f"the Silero VAD model is not in the cache and could not be fetched: {error}")


def test_energy_vad_ends_a_segment_after_the_pause_and_takes_loud_noise_for_speech():
    vad = EnergyVad(threshold_db=-45.0, min_silence_ms=600)
    vad.accept(silence(1.0))
    assert not vad.speech_seen
    vad.accept(noise(0.5, 0.1))  # loud noise: energy cannot tell it from speech (why silero exists)
    assert vad.speech_seen and not vad.endpoint
    vad.accept(silence(0.5))
    assert not vad.endpoint
    vad.accept(silence(0.2))
    assert vad.endpoint
    vad.reset()
    assert not vad.speech_seen and not vad.endpoint


def test_silero_hears_speech_and_not_noise(silero_path):
    speech = load_audio(BECKETT)
    vad = SileroVad(model_path=silero_path)
    probabilities = vad.probabilities(speech)
    assert len(probabilities) == speech.size // 512
    assert (probabilities > 0.5).mean() > 0.3 and (probabilities < 0.2).mean() > 0.2  # words and the pauses between them
    noisy = SileroVad(model_path=silero_path)
    noisy.accept(noise(3.0, 0.1))  # the same burst the energy VAD takes for speech
    assert not noisy.speech_seen
    noisy.accept(speech[: 2 * SAMPLE_RATE])
    assert noisy.speech_seen
    noisy.accept(silence(0.7))
    assert noisy.endpoint


def test_silero_state_carries_across_calls_of_any_size(silero_path):
    speech = load_audio(BECKETT)[: 3 * SAMPLE_RATE]
    whole = SileroVad(model_path=silero_path).probabilities(speech)
    pieces = SileroVad(model_path=silero_path)
    parts = [pieces.probabilities(speech[k : k + 1000]) for k in range(0, speech.size, 1000)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_the_stream_options_choose_the_vad(silero_path):
    assert isinstance(VADS["silero"](StreamOptions(vad="silero", min_silence_ms=300)), SileroVad)
    assert VADS["energy"](StreamOptions(vad_threshold_db=-30.0)).threshold_db == -30.0
    with pytest.raises(SimulsaError, match="unknown vad 'webrtc'; choose one of energy, silero"):
        StreamOptions(vad="webrtc")
    with pytest.raises(SimulsaError, match="threshold 1.5 must be between 0 and 1"):
        SileroVad(threshold=1.5, model_path=silero_path)


def test_a_session_cuts_real_speech_at_silero_pauses(tiny_bundles, silero_path):
    from simulsa.runtime.session import Translator

    translator = Translator.from_bundle(tiny_bundles["whisper-tokens", "none"])
    speech = load_audio(BECKETT)  # six short phrases with pauses of ~0.7 s between them
    session = translator.session(StreamOptions(chunk_ms=500, vad="silero", min_silence_ms=500, loop_repeats=0))
    session.accept_audio(np.concatenate([noise(1.0, 0.05), speech]))  # noise first: not a segment of its own
    finals = [e for e in session.step() + session.finish() if e.final]
    starts = [e.segment_start_ms for e in finals]
    assert len(finals) >= 4 and starts[0] >= 1000 - 300  # the first segment starts at the speech (300 ms lead-in kept)
