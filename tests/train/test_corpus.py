"""The corpus builder with stand-in programs on PATH (the real ones are Debian packages CI may lack)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
import soundfile as sf

from simulsa.runtime.errors import SimulsaError
from simulsa.train.corpus.build import CorpusOptions, build_corpus
from simulsa.train.corpus.programs import MissingProgramError, require
from simulsa.train.corpus.sentences import clean_sentences
from simulsa.train.corpus.translate import clean_translation
from simulsa.train.corpus.tts import Voice

FAKE_APERTIUM = """#!/bin/sh
# stand-in for apertium: upper-cases, marks words containing 'zz' as unknown, keeps blank lines
sed -e 's/\\([A-Za-z]*zz[A-Za-z]*\\)/*\\1/g' | tr 'a-z' 'A-Z'
"""
FAKE_FLITE = f"""#!{sys.executable}
# stand-in for flite: writes 22.05 kHz noise, 0.05 s per character of the text after -t
import sys, numpy as np, soundfile as sf
args = sys.argv[1:]
text, out = args[args.index("-t") + 1], args[args.index("-o") + 1]
sf.write(out, 0.1 * np.random.default_rng(len(text)).standard_normal(int(0.05 * len(text) * 22050)), 22050)
"""


def _install(folder, name, script):
    path = folder / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture()
def fake_world(tmp_path, monkeypatch):
    bin_dir, wordnet = tmp_path / "bin", tmp_path / "wordnet"
    bin_dir.mkdir()
    wordnet.mkdir()
    _install(bin_dir, "apertium", FAKE_APERTIUM)
    _install(bin_dir, "flite", FAKE_FLITE)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    numbers = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
    examples = [f'"The dog number {w} drinks cold water"' for w in numbers]
    examples += ['"in the house"', '"The buzzer rang twice today"', '"2 cats"']  # a fragment, an unknown word, a digit
    (wordnet / "data.noun").write_text("00001 x | gloss; " + "; ".join(examples) + "\n")
    return wordnet


def test_builds_splits_with_unseen_sentences_and_voice(fake_world, tmp_path):
    options = CorpusOptions(train_voices=("flite:kal16", "flite:awb"), test_voice="flite:slt", max_sentences=10,
                            dev_sentences=2, test_sentences=3, wordnet_dir=fake_world, workers=2)  # fmt: skip
    summary = build_corpus(tmp_path / "corpus", options)
    folder = tmp_path / "corpus"
    rows = {s: [json.loads(x) for x in (folder / f"{s}.jsonl").read_text().splitlines()] for s in ("train", "dev", "test")}
    assert [len(rows[s]) for s in ("train", "dev", "test")] == [5, 2, 3]
    assert summary["dropped_unknown_words"] == 1  # 'buzzer' is unknown to the stand-in
    assert {r["voice"] for r in rows["test"]} == {"flite:slt"}
    assert "flite:slt" not in {r["voice"] for r in rows["train"] + rows["dev"]}
    test_sources = {r["source"] for r in rows["test"]}
    assert not test_sources & {r["source"] for r in rows["train"] + rows["dev"]}
    for row in rows["train"]:
        assert row["target"] == row["source"].upper()
        info = sf.info(str(tmp_path / "corpus" / row["audio"]))
        assert info.samplerate == 16000 and info.duration == pytest.approx(0.05 * len(row["source"]), abs=0.01)


def test_missing_program_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed
    with pytest.raises(MissingProgramError, match=r"apertium not found: install the Debian packages apertium and apertium-eng-spa"):
        build_corpus(tmp_path / "c", CorpusOptions(max_sentences=10, dev_sentences=1, test_sentences=1))
    assert not (tmp_path / "c").exists()
    with pytest.raises(MissingProgramError, match="espeak-ng not found: install the Debian package espeak-ng"):
        require("espeak-ng")


def test_sentence_filter_and_cleaning():
    kept = clean_sentences(["The dog barked all night", "the dog barked all night.", "in the house", "Call 911 now please",
                            "The dog barked all night.", "A  very   spaced out sentence here"])  # fmt: skip
    assert kept == ["The dog barked all night.", "A very spaced out sentence here."]
    assert clean_translation("el perro #ladró toda la noche .") == "El perro ladró toda la noche."


def test_options_and_voices_are_validated():
    with pytest.raises(SimulsaError, match="must be unseen"):
        CorpusOptions(train_voices=("flite:slt",), test_voice="flite:slt")
    with pytest.raises(SimulsaError, match="voice 'festival:kal' is not ENGINE:NAME"):
        Voice.parse("festival:kal")
    assert Voice.parse("piper:/v/en_US-joe-medium.onnx").label == "piper:en_US-joe-medium"


def test_text_pairs_hold_out_dev_and_test_sentences(fake_world, tmp_path):
    from simulsa.train.corpus.text_pairs import TextPairOptions, build_text_pairs

    held_out = tmp_path / "test.jsonl"
    row = {"id": "t0", "audio": "x.wav", "target": "X", "source": "The dog number two drinks cold water."}
    held_out.write_text(json.dumps(row) + "\n")
    counts = build_text_pairs(tmp_path / "pairs.jsonl", TextPairOptions(exclude=(held_out,), wordnet_dir=fake_world))
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    sources = [p["source"] for p in pairs]
    assert "The dog number two drinks cold water" not in sources  # held out despite the missing period
    assert "The dog number one drinks cold water" in sources and "in the house" in sources  # fragments are kept for text
    assert "2 cats" not in sources and counts["dropped_unknown_words"] == 1  # digits filtered; 'buzzer' unknown
    assert counts["pairs"] == len(pairs) == 12 and all(p["target"] == p["source"].upper() for p in pairs)


def test_text_pairs_refuse_a_held_out_manifest_without_sources(fake_world, tmp_path):
    from simulsa.train.corpus.text_pairs import TextPairOptions, build_text_pairs

    manifest = tmp_path / "test.jsonl"
    manifest.write_text(json.dumps({"id": "t0", "audio": "x.wav", "target": "X"}) + "\n")
    with pytest.raises(SimulsaError, match=r"row 't0' has no 'source'"):
        build_text_pairs(tmp_path / "pairs.jsonl", TextPairOptions(exclude=(manifest,), wordnet_dir=fake_world))
    assert not (tmp_path / "pairs.jsonl").exists()


def test_text_pairs_from_your_own_sentences(fake_world, tmp_path):
    from simulsa.train.corpus.text_pairs import TextPairOptions, build_text_pairs

    mine = tmp_path / "mine.txt"
    mine.write_text("The pump needs a new seal.\nThe pump needs a new seal\nCheck 3 valves.\n\nClose the tap.\n")
    counts = build_text_pairs(tmp_path / "pairs.jsonl", TextPairOptions(sentences=mine, wordnet_dir=fake_world))
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [p["source"] for p in pairs] == ["The pump needs a new seal.", "Close the tap."]  # deduplicated, digits dropped
    assert counts == {"phrases": 2, "pairs": 2, "dropped_unknown_words": 0}
    with pytest.raises(SimulsaError, match=r"--sentences '.*none.txt' does not exist"):
        TextPairOptions(sentences=tmp_path / "none.txt")
