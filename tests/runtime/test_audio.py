import numpy as np
import pytest
import soundfile as sf

from simulsa.runtime.audio import SAMPLE_RATE, WHISPER_WINDOW_SAMPLES, load_audio, log_mel, to_mono
from simulsa.runtime.errors import AudioError


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_transformers_whisper_frontend(n_mels):
    transformers = pytest.importorskip("transformers", reason="the reference frontend lives in transformers")
    rng = np.random.default_rng(n_mels)
    audio = (0.1 * rng.standard_normal(SAMPLE_RATE * 7)).astype(np.float32)
    reference = transformers.WhisperFeatureExtractor(feature_size=n_mels)(audio, sampling_rate=SAMPLE_RATE,
                                                                         return_tensors="np").input_features[0]
    ours = log_mel(np.pad(audio, (0, WHISPER_WINDOW_SAMPLES - audio.size)), n_mels)
    assert ours.shape == reference.shape == (n_mels, 3000)
    assert np.abs(ours - reference).max() < 1e-4


def test_log_mel_matches_transformers_on_real_speech():
    transformers = pytest.importorskip("transformers", reason="the reference frontend lives in transformers")
    from pathlib import Path

    speech = load_audio(Path(__file__).parents[1] / "data" / "beckett.wav")
    assert 9.9 < speech.size / SAMPLE_RATE < 10.0
    reference = transformers.WhisperFeatureExtractor(feature_size=80)(speech, sampling_rate=SAMPLE_RATE,
                                                                      return_tensors="np").input_features[0]
    ours = log_mel(np.pad(speech, (0, WHISPER_WINDOW_SAMPLES - speech.size)), 80)
    assert np.abs(ours - reference).max() < 1e-4


def test_load_audio_downmixes_and_resamples(tmp_path):
    t = np.arange(44_100) / 44_100
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1) * 0.5, 44_100)
    audio = load_audio(tmp_path / "stereo.wav")
    assert audio.dtype == np.float32
    assert abs(audio.size - SAMPLE_RATE) <= 1
    assert 0.2 < np.abs(audio).max() < 0.3  # the silent channel halves the tone


def test_int16_input_scaled():
    assert np.allclose(to_mono(np.array([16384, -32768], dtype=np.int16)), [0.5, -1.0])


def test_nan_audio_rejected(tmp_path):
    samples = np.zeros(1600, dtype=np.float32)
    samples[10] = np.nan
    sf.write(tmp_path / "nan.wav", samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        load_audio(tmp_path / "nan.wav")


def test_missing_and_unreadable_audio(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "absent.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="cannot read audio"):
        load_audio(tmp_path / "junk.wav")
