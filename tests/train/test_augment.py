"""SimulSA augmentation: the truncation law, the tau cut, determinism and the written outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import stats

from simulsa.runtime.audio import SAMPLE_RATE
from simulsa.runtime.manifest import read_manifest
from simulsa.train.augment import (
    AugmentOptions,
    clean_prefix,
    kept_prefix_length,
    run_augment,
    sample_truncation_times,
)


class FakeScorer:
    """Known probabilities: the reference's i-th token gets `probs_for(audio, i)`; one char per token."""

    vocab_size = 100

    def __init__(self, probs_for):
        self.probs_for = probs_for
        self.calls = 0

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)

    def token_probabilities(self, audio, rows):
        self.calls += 1
        return [np.array([self.probs_for(a, i) for i in range(len(r.target))]) for a, r in zip(audio, rows)]


def test_truncation_times_follow_the_scaled_beta():
    options = AugmentOptions(min_s=0.5, max_s=5.0, alpha=1.0, beta=3.0)
    durations = np.full(4000, 12.0)  # long utterances: the upper bound is max_s
    times = sample_truncation_times(durations, options, np.random.default_rng(0))
    scaled = stats.beta(1.0, 3.0, loc=0.5, scale=4.5)
    assert stats.kstest(times, scaled.cdf).pvalue > 0.01
    assert stats.kstest(times, stats.uniform(loc=0.5, scale=4.5).cdf).pvalue < 1e-6  # the test can tell laws apart


def test_truncation_upper_bound_is_the_duration_when_shorter():
    durations = np.full(3000, 2.0)
    times = sample_truncation_times(durations, AugmentOptions(), np.random.default_rng(1))
    assert times.min() >= 0.5 and times.max() <= 2.0
    assert stats.kstest(times, stats.beta(1.0, 3.0, loc=0.5, scale=1.5).cdf).pvalue > 0.01


@pytest.mark.parametrize(
    ("probs", "tau", "kept"),
    [
        ([0.9, 0.8, 0.7], 0.5, 3),  # keep everything
        ([0.1, 0.9, 0.9], 0.5, 0),  # keep nothing: the model must wait
        ([0.9, 0.6, 0.4, 0.9], 0.5, 2),  # cut at the first improbable token, even if later ones are likely
        ([0.5, 0.5], 0.5, 2),  # the bound is inclusive
        ([], 0.5, 0),
    ],
)
def test_kept_prefix_length(probs, tau, kept):
    assert kept_prefix_length(np.array(probs), tau) == kept


def test_clean_prefix_drops_a_split_character():
    class Bytes(FakeScorer):
        def decode(self, ids):
            return bytes(ids).decode("utf-8", errors="replace")

    ids = list("sí".encode())  # s, 0xC3, 0xAD
    assert clean_prefix(Bytes(None), ids, 2) == ("s", 1)
    assert clean_prefix(Bytes(None), ids, 3) == ("sí", 3)


def _run(manifest: Path, out: Path, scorer, **kwargs) -> tuple:
    options = AugmentOptions(**{"count": 5, "seed": 3, **kwargs})
    return run_augment(manifest, out, scorer, options), out


def test_augment_writes_partial_rows_with_the_fake_model(toy_manifest, tmp_path):
    tau = 100 / FakeScorer.vocab_size / 2  # tau_scale 50 -> tau 0.5
    # audio-dependent probabilities: a token is supported when its index is below 4 * seconds heard
    scorer = FakeScorer(lambda audio, i: 0.9 if i < 4 * audio.size / SAMPLE_RATE else 0.1)
    summary, out = _run(toy_manifest, tmp_path / "aug", scorer, tau_scale=50)
    assert summary.augmented == 5 and summary.tau == pytest.approx(tau)
    new_rows = read_manifest(out / "augmented.jsonl")
    originals = {r.id: r for r in read_manifest(toy_manifest)}
    for row in new_rows:
        record = row.simulsa
        original = originals[record["orig_id"]]
        heard = sf.info(str(row.audio)).frames / SAMPLE_RATE
        assert sf.info(str(row.audio)).samplerate == SAMPLE_RATE
        assert heard == pytest.approx(record["truncate_s"], abs=1e-3)
        assert 0.5 <= record["truncate_s"] <= min(5.0, sf.info(str(original.audio)).duration)
        expected = min(len(original.target), int(np.ceil(4 * heard)))
        assert record["kept_tokens"] == expected and row.target == original.target[:expected]
        assert record["full_tokens"] == len(original.target)
    heard_share = [r.simulsa["truncate_s"] / sf.info(str(originals[r.simulsa["orig_id"]].audio)).duration for r in new_rows]
    assert summary.mean_heard_fraction == pytest.approx(np.mean(heard_share), abs=1e-3)
    assert summary.whole_targets == sum(r.simulsa["kept_tokens"] == r.simulsa["full_tokens"] for r in new_rows)
    mixed = read_manifest(out / "manifest.jsonl")
    assert len(mixed) == len(originals) + 5
    assert {r.id for r in mixed} == set(originals) | {r.id for r in new_rows}
    assert all(r.audio.is_file() for r in mixed)


def test_keep_nothing_and_keep_everything(toy_manifest, tmp_path):
    nothing, out = _run(toy_manifest, tmp_path / "none", FakeScorer(lambda a, i: 0.0))
    assert nothing.empty_targets == 5 and nothing.mean_kept_fraction == 0.0
    assert all(r.target == "" for r in read_manifest(out / "augmented.jsonl"))
    everything, out = _run(toy_manifest, tmp_path / "all", FakeScorer(lambda a, i: 1.0))
    assert everything.empty_targets == 0 and everything.mean_kept_fraction == 1.0
    # whole targets for cut audio: the summary says tau lets the targets run ahead of the audio
    assert everything.whole_targets == 5 and everything.mean_heard_fraction < 0.9 and everything.tau_too_permissive
    assert nothing.whole_targets == 0 and not nothing.tau_too_permissive


def test_same_seed_same_output_other_seed_other_output(toy_manifest, tmp_path):
    def scorer():
        return FakeScorer(lambda a, i: 0.9 if i < a.size / 4000 else 0.0)

    _run(toy_manifest, tmp_path / "a", scorer())
    _run(toy_manifest, tmp_path / "b", scorer())
    _run(toy_manifest, tmp_path / "c", scorer(), seed=4)
    for name in ("augmented.jsonl", "manifest.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert (tmp_path / "a" / "augmented.jsonl").read_text() != (tmp_path / "c" / "augmented.jsonl").read_text()
    for wav in (tmp_path / "a" / "audio").iterdir():
        assert wav.read_bytes() == (tmp_path / "b" / "audio" / wav.name).read_bytes()


def test_short_rows_are_skipped_and_counted(tmp_path):
    rows = []
    for i, seconds in enumerate([0.3, 0.4, 2.0, 3.0]):
        sf.write(tmp_path / f"{i}.wav", np.full(int(seconds * SAMPLE_RATE), 0.1, np.float32), SAMPLE_RATE)
        rows.append(json.dumps({"id": f"u{i}", "audio": f"{i}.wav", "target": "abc"}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    summary, _ = _run(tmp_path / "m.jsonl", tmp_path / "aug", FakeScorer(lambda a, i: 1.0), count=4)
    assert summary.too_short == 2 and summary.augmented == 2


def test_interrupted_augment_leaves_nothing(toy_manifest, tmp_path):
    def explode(audio, i):
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        _run(toy_manifest, tmp_path / "aug", FakeScorer(explode))
    assert list(tmp_path.iterdir()) == []


def test_missing_audio_names_the_manifest_line(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "gone", "audio": "gone.wav", "target": "x"}) + "\n")
    from simulsa.runtime.errors import AudioError

    with pytest.raises(AudioError, match=r"m.jsonl:1 \(id 'gone'\): audio file .* does not exist"):
        _run(tmp_path / "m.jsonl", tmp_path / "aug", FakeScorer(lambda a, i: 1.0))
    assert not (tmp_path / "aug").exists()


def test_options_are_validated():
    from simulsa.runtime.errors import SimulsaError

    with pytest.raises(SimulsaError, match="--max-s is out of range, got 0.2"):
        AugmentOptions(min_s=0.5, max_s=0.2)
    with pytest.raises(SimulsaError, match="--ratio"):
        AugmentOptions(ratio=1.5)
