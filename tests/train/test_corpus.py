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


def _pairs_file(path, sources):
    path.write_text("".join(json.dumps({"source": s, "target": s.upper(), "src_lang": "en", "tgt_lang": "es"}) + "\n"
                            for s in sources))  # fmt: skip
    return path


def test_corpus_speak_speaks_pairs_in_distinct_voices_and_merges_a_manifest(fake_world, tmp_path):
    from simulsa.runtime.manifest import read_manifest
    from simulsa.train.corpus.speak import SpeakOptions, speak_pairs

    corpus = tmp_path / "corpus"
    build_corpus(corpus, CorpusOptions(train_voices=("flite:kal16",), max_sentences=10, dev_sentences=2, test_sentences=3,
                                       wordnet_dir=fake_world))  # fmt: skip
    pairs = _pairs_file(tmp_path / "pairs.jsonl", ["a dark room", "the cat sat", "open it"])
    options = SpeakOptions(pairs=pairs, voices=("flite:kal16", "flite:awb"), copies=2, merge=(corpus / "train.jsonl",))
    summary = speak_pairs(tmp_path / "more", options)
    rows = read_manifest(tmp_path / "more" / "train.jsonl")  # validates every audio path from the new folder
    assert summary["merged_rows"] == 5 and summary["spoken_utterances"] == 6 and len(rows) == 11
    assert all(row.audio.is_file() for row in rows)
    spoken = [row for row in rows if row.id.startswith("spoken-")]
    for source in ("a dark room", "the cat sat", "open it"):
        mine = [row for row in spoken if row.source == source]
        assert len(mine) == 2 and {row.target for row in mine} == {source.upper()}
        assert sorted(json.loads(line)["voice"] for line in (tmp_path / "more" / "train.jsonl").read_text().splitlines()
                      if json.loads(line)["source"] == source) == ["flite:awb", "flite:kal16"]  # fmt: skip
        info = sf.info(str(mine[0].audio))
        assert info.samplerate == 16000 and info.duration == pytest.approx(0.05 * len(source), abs=0.01)


def test_corpus_speak_refuses_bad_options_and_leaves_nothing_behind(fake_world, tmp_path):
    from simulsa.train.corpus.speak import SpeakOptions, speak_pairs

    pairs = _pairs_file(tmp_path / "pairs.jsonl", ["a dark room"])
    with pytest.raises(SimulsaError, match=r"--copies 3 must be between 1 and the number of voices \(2\)"):
        SpeakOptions(pairs=pairs, voices=("flite:kal16", "flite:awb"), copies=3)
    with pytest.raises(SimulsaError, match=r"--pairs '.*none.jsonl' does not exist; make text pairs with `simulsa corpus-text`"):
        SpeakOptions(pairs=tmp_path / "none.jsonl")
    with pytest.raises(SimulsaError, match=r"--pitch-range 1.5 0.9 must be two positive factors"):
        SpeakOptions(pairs=pairs, pitch_range=(1.5, 0.9))
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps({"id": "spoken-00000-0", "audio": "x.wav", "target": "X"}) + "\n")
    with pytest.raises(SimulsaError, match="ids must be unique"):
        speak_pairs(tmp_path / "more", SpeakOptions(pairs=pairs, voices=("flite:kal16",), merge=(clash,)))
    assert not list(tmp_path.glob("*more*"))


def test_corpus_speak_takes_a_manifest_as_pairs_for_more_voices_on_the_same_sentences(fake_world, tmp_path):
    from simulsa.runtime.manifest import read_manifest
    from simulsa.train.corpus.speak import SpeakOptions, speak_pairs

    corpus = tmp_path / "corpus"
    build_corpus(corpus, CorpusOptions(train_voices=("flite:kal16",), max_sentences=10, dev_sentences=2, test_sentences=3,
                                       wordnet_dir=fake_world))  # fmt: skip
    options = SpeakOptions(pairs=corpus / "train.jsonl", voices=("flite:awb", "flite:rms"), copies=2)
    summary = speak_pairs(tmp_path / "voices", options)
    original = read_manifest(corpus / "train.jsonl")
    spoken = read_manifest(tmp_path / "voices" / "train.jsonl")
    assert summary["voices"] == ["flite:awb", "flite:rms"] and len(spoken) == 2 * len(original)
    assert sorted(r.source for r in spoken) == sorted(r.source for r in original for _ in range(2))
    assert {(r.source, r.target) for r in spoken} == {(r.source, r.target) for r in original}


FAKE_PIPER = f"""#!{sys.executable}
# stand-in for piper: one 22.05 kHz noise wav per line of -i into -d (timestamp names, as piper), 0.05 s a character;
# logs each run so the test can count voice loads
import sys, time, pathlib, numpy as np, soundfile as sf
args = sys.argv[1:]
lines = pathlib.Path(args[args.index("-i") + 1]).read_text().splitlines()
out = pathlib.Path(args[args.index("-d") + 1]); out.mkdir(parents=True, exist_ok=True)
with open(pathlib.Path(sys.argv[0]).with_name("piper.runs"), "a") as log:
    log.write(str(len(lines)) + "\\n")
for line in lines:
    sf.write(str(out / f"{{time.monotonic_ns()}}.wav"), 0.1 * np.ones(int(0.05 * len(line) * 22050)), 22050)
"""


def test_corpus_speak_runs_piper_once_per_batch_and_maps_its_files_back_in_order(fake_world, tmp_path):
    from simulsa.runtime.manifest import read_manifest
    from simulsa.train.corpus.speak import SpeakOptions, speak_pairs

    bin_dir = tmp_path / "bin"
    _install(bin_dir, "piper", FAKE_PIPER)
    voice = tmp_path / "joe.onnx"
    voice.write_bytes(b"stand-in voice")
    sources = [f"sentence {'x' * n}" for n in range(1, 13)]  # every length different: a shuffled mapping shows
    pairs = _pairs_file(tmp_path / "pairs.jsonl", sources)
    summary = speak_pairs(tmp_path / "joe", SpeakOptions(pairs=pairs, voices=(f"piper:{voice}",), speed_range=(1.0, 1.0)))
    rows = read_manifest(tmp_path / "joe" / "train.jsonl")
    assert summary["voices"] == ["piper:joe"] and len(rows) == len(sources)
    for row in rows:
        info = sf.info(str(row.audio))
        assert info.samplerate == 16000 and info.duration == pytest.approx(0.05 * len(row.source), abs=0.01)
    assert (bin_dir / "piper.runs").read_text().split() == [str(len(sources))]  # one voice load for all 12 lines
