"""The hand-referenced test sets: their contents, and the builder with stand-in programs and packages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from simulsa.runtime.bundle import sha256_of
from simulsa.runtime.errors import SimulsaError
from simulsa.train.corpus import eval_sets
from simulsa.train.corpus.eval_sets import EvalSetOptions, build_eval_sets
from tests.train.test_corpus import fake_world  # noqa: F401  (stand-in flite and apertium on PATH)


def test_the_everyday_set_is_160_distinct_hand_translated_sentences():
    pairs = eval_sets.everyday_pairs()
    assert len(pairs) == 160 and len({p["id"] for p in pairs}) == 160 and len({p["english"] for p in pairs}) == 160
    assert {p["topic"] for p in pairs} == {"travel", "home", "work", "time", "numbers", "everyday"}
    assert all(p["spanish"].strip() and p["spanish"] != p["english"] for p in pairs)
    assert sum("¿" in p["spanish"] for p in pairs) == sum(p["english"].endswith("?") for p in pairs)  # questions kept


def test_real_recordings_are_pinned():
    recordings = eval_sets.real_recordings()
    assert len(recordings) >= 7 and {r["origin"] for r in recordings} <= set(eval_sets.ORIGINS)
    assert all(len(r["sha256"]) == 64 and r["source"] and r["target"] for r in recordings)


def test_builds_everyday_in_the_held_out_voices(fake_world, tmp_path, monkeypatch):  # noqa: F811
    first = eval_sets.everyday_pairs()[:4]  # the stand-in flite is a Python process per utterance: keep it short
    monkeypatch.setattr(eval_sets, "everyday_pairs", lambda: first)
    counts = build_eval_sets(tmp_path / "ev", EvalSetOptions(voices=("flite:slt", "flite:rms"), real=False,
                                                                  human=False))
    rows = [json.loads(line) for line in (tmp_path / "ev" / "everyday.jsonl").read_text().splitlines()]
    assert counts == {"everyday": 8} and len(rows) == 8
    assert {r["voice"] for r in rows} == {"flite:slt", "flite:rms"} and rows[0]["id"] == "ev001-flite-slt"
    assert rows[0]["source"] == "Where is the train station?" and rows[0]["target"] == "¿Dónde está la estación de tren?"
    assert sf.info(tmp_path / "ev" / rows[0]["audio"]).samplerate == 16000
    with pytest.raises(SimulsaError, match="voice 'slt' is not ENGINE:NAME"):
        EvalSetOptions(voices=("slt",))


def test_real_recordings_are_checked_against_their_pins(fake_world, tmp_path, monkeypatch):  # noqa: F811
    wav = tmp_path / "rec.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32), 48000)
    recording = {"id": "real-x", "origin": "pypi", "package": "p==1", "path": "a/rec.wav", "sha256": sha256_of(wav),
                 "source": "Hello there.", "target": "Hola."}  # fmt: skip
    monkeypatch.setitem(eval_sets.ORIGINS, "pypi", lambda package, path, scratch: wav.read_bytes())
    monkeypatch.setattr(eval_sets, "real_recordings", lambda: [recording])
    monkeypatch.setattr(eval_sets, "everyday_pairs", lambda: [])
    options = EvalSetOptions(voices=("flite:slt",), human=False)
    assert build_eval_sets(tmp_path / "ok", options)["real"] == 1
    row = json.loads((tmp_path / "ok" / "real.jsonl").read_text())
    assert row["voice"] == "human" and sf.info(tmp_path / "ok" / row["audio"]).samplerate == 16000  # 48 kHz resampled
    monkeypatch.setattr(eval_sets, "real_recordings", lambda: [{**recording, "sha256": "0" * 64}])
    with pytest.raises(SimulsaError, match=f"has sha256 {sha256_of(wav)}, not the pinned 0000"):
        build_eval_sets(tmp_path / "bad", options)
    assert not (tmp_path / "bad").exists()


def test_corpus_eval_command_refuses_bad_input_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from simulsa.cli.app import app

    (tmp_path / "taken").mkdir()
    for args, message in ((["--out", str(tmp_path / "taken")], "already exists; pass --force"),
                          (["--out", str(tmp_path / "new"), "--voice", "slt"], "voice 'slt' is not ENGINE:NAME")):  # fmt: skip
        result = CliRunner().invoke(app, ["corpus-eval", *args])
        assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "new").exists()


def test_speaks_the_held_out_human_pairs_in_the_held_out_voice(fake_world, tmp_path, monkeypatch):  # noqa: F811
    pairs = [{"id": "lo0123456789", "source": "Click the button to save the file.", "target": "Pulse el botón para guardar."}]
    asked = []
    monkeypatch.setattr(eval_sets, "load_human_pairs", lambda options: asked.append(options.test_size) or {"test": pairs})
    monkeypatch.setattr(eval_sets, "everyday_pairs", lambda: [])
    counts = build_eval_sets(tmp_path / "ev", EvalSetOptions(voices=("flite:rms",), real=False, human_voice="flite:slt",
                                                             human_size=1))  # fmt: skip
    row = json.loads((tmp_path / "ev" / "human.jsonl").read_text())
    assert counts == {"everyday": 0, "human": 1} and asked == [1]
    assert row["id"] == "lo0123456789-flite-slt" and row["voice"] == "flite:slt" and row["target"] == pairs[0]["target"]
    assert sf.info(tmp_path / "ev" / row["audio"]).samplerate == 16000
    with pytest.raises(SimulsaError, match="--human-size -1 must be positive"):
        EvalSetOptions(human_size=-1)
