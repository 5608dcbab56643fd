"""Long-form evaluation (runtime/longform.py, runtime/longform_eval.py): streams, mWER re-segmentation, StreamLAAL and
LongYAAL by hand and against omnisteval on the same log, and `simulsa eval --longform` end to end on a tiny bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simulsa.runtime.audio import SAMPLE_RATE, write_wav
from simulsa.runtime.errors import ManifestError
from simulsa.runtime.longform import (
    LongStream,
    ReferenceSentence,
    join_utterances,
    long_yaal,
    read_long_streams,
    resegment,
    sentence_results,
    stream_laal,
)
from simulsa.runtime.manifest import read_manifest
from simulsa.runtime.metrics import yet_another_average_lagging

needs_mweralign = pytest.mark.skipif(shutil.which("mweralign") is None,
                                     reason="mweralign is not on PATH: pip install mweralign==1.4.1 (.ci/run does)")  # fmt: skip
needs_omnisteval = pytest.mark.skipif(shutil.which("omnisteval") is None,
                                      reason="omnisteval is not on PATH: pip install '.[dev]' installs it")  # fmt: skip

# three reference sentences of one 7.5 s recording, and an output whose words arrive at these times (ms)
SENTENCES = (ReferenceSentence("Hola mundo .", 0.0, 2000.0), ReferenceSentence("Adiós amigo mío .", 2700.0, 1500.0),
             ReferenceSentence("El tren sale a las cuatro .", 5000.0, 2500.0))  # fmt: skip
WORDS = ["Hola", "mundo", ".", "Adiós", "amigo", ".", "El", "tren", "sale", "a", "las", "cuatro"]
DELAYS = [1000.0, 1500, 2000, 3500, 4000, 4200, 6000, 6500, 7000, 7500, 8000, 8400]
ELAPSED = [d + 100 * (i + 1) for i, d in enumerate(DELAYS)]


def _stream() -> LongStream:
    return LongStream("talk", np.zeros(int(8.5 * SAMPLE_RATE), np.float32), SENTENCES, "es")


def test_yaal_by_hand():
    # source 2000 ms, reference 4 words, 3 emitted: rate 2000 / 4 = 500 ms a word
    assert yet_another_average_lagging([500, 1500, 2500], 2000, 4) == pytest.approx((500 + 1000) / 2)  # stops at the end
    assert yet_another_average_lagging([500, 1500, 2500], 2000, 4, 9000, longform=True) == pytest.approx(
        (500 + 1000 + 1500) / 3)  # long-form: the late word counts, up to the recording's end  # fmt: skip
    assert yet_another_average_lagging([500, 1500, 2500], 2000, 4, 2200, longform=True) == pytest.approx(750)
    assert yet_another_average_lagging([2100], 2000, 4) is None  # nothing before the end: no score


def test_stream_laal_and_long_yaal_by_hand():
    groups = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10, 11]]
    results = sentence_results(_stream(), WORDS, DELAYS, ELAPSED, groups)
    assert results[1].delays_ms == (800.0, 1300.0, 1500.0) and results[2].to_recording_end_ms == 2500.0
    # sentence 2: 1500 ms, 4 reference words -> rate 375; LAAL = mean(800, 1300 - 375, 1500 - 750) (stops at 1500)
    second = (800 + 925 + 750) / 3
    first = (1000 + (1500 - 2000 / 3) + (2000 - 2 * 2000 / 3)) / 3
    third_delays = [1000, 1500, 2000, 2500]  # LAAL stops at the first delay >= 2500; 7 reference words > 6 output
    third = np.mean([d - i * 2500 / 7 for i, d in enumerate(third_delays)])
    assert stream_laal(results, "es") == pytest.approx(np.mean([first, second, third]))
    assert stream_laal(results, "es", computation_aware=True) > stream_laal(results, "es")
    # LongYAAL counts the third sentence's words at 2500 and 3000 ms (past its end, before the recording's, 2500 ms
    # after its start): only the one at 3400 is cut... at 2500 the recording has ended, so 1000, 1500, 2000 remain
    third_yaal = np.mean([d - i * 2500 / 7 for i, d in enumerate([1000, 1500, 2000])])
    assert long_yaal(results, "es") == pytest.approx(np.mean([first, second, third_yaal]))


def test_joined_utterances_have_their_offsets(toy_manifest):
    rows = read_manifest(toy_manifest)[:3]
    stream = join_utterances(rows, 500.0, "joined")
    starts = [s.start_ms for s in stream.sentences]
    ends = [s.start_ms + s.duration_ms for s in stream.sentences]
    assert starts[0] == 0 and all(b - a == pytest.approx(500, abs=0.1) for a, b in zip(ends, starts[1:]))
    assert stream.duration_ms == pytest.approx(ends[-1], abs=0.1)


def test_segmented_recordings_and_bad_manifests(tmp_path):
    write_wav(tmp_path / "talk.wav", np.zeros(5 * SAMPLE_RATE, np.float32))
    rows = [{"id": "s1", "audio": "talk.wav", "target": "uno", "offset": 0.5, "duration": 1.0},
            {"id": "s2", "audio": "talk.wav", "target": "dos", "offset": 2.0, "duration": 2.5}]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (stream,) = read_long_streams(tmp_path / "m.jsonl")
    assert stream.name == "talk" and [s.start_ms for s in stream.sentences] == [500.0, 2000.0]
    del rows[1]["offset"]
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ManifestError, match="some rows have offset/duration and some do not"):
        read_long_streams(tmp_path / "mixed.jsonl")
    outside = [{**rows[0], "offset": 4.5, "duration": 2.0}]
    (tmp_path / "outside.jsonl").write_text(json.dumps(outside[0]) + "\n")
    with pytest.raises(ManifestError, match="outside the 5.00 s recording"):
        read_long_streams(tmp_path / "outside.jsonl")


@needs_mweralign
def test_mweralign_resegments_to_the_reference_sentences():
    groups = resegment(WORDS, [s.text for s in SENTENCES])
    assert groups == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert resegment([], ["a", "b"]) == [[], []]


def _omnisteval(folder: Path, stream: LongStream, delays: list[float], elapsed: list[float]) -> tuple[dict, list]:
    """omnisteval's own long-form run on our log: its scores and its re-segmentation (word indices per sentence)."""
    segments = [{"wav": "talk.wav", "offset": s.start_ms / 1000, "duration": s.duration_ms / 1000} for s in stream.sentences]
    (folder / "segments.json").write_text(json.dumps(segments))
    (folder / "refs.txt").write_text("".join(s.text + "\n" for s in stream.sentences))
    log = {"source": ["talk.wav"], "prediction": " ".join(WORDS), "delays": delays, "elapsed": elapsed,
           "source_length": stream.duration_ms}  # fmt: skip
    (folder / "hyp.jsonl").write_text(json.dumps(log) + "\n")
    subprocess.run(["omnisteval", "longform", "--speech_segmentation", str(folder / "segments.json"), "--ref_sentences_file",
                    str(folder / "refs.txt"), "--hypothesis_file", str(folder / "hyp.jsonl"), "--word_level",
                    "--output_folder", str(folder / "om")], check=True, capture_output=True)  # fmt: skip
    rows = (folder / "om" / "scores.tsv").read_text().splitlines()[1:]
    scores = {name: float(value) for name, value in (row.split("\t") for row in rows)}
    groups, at = [], 0
    for line in (folder / "om" / "instances.resegmented.jsonl").read_text().splitlines():
        n = len(json.loads(line)["prediction"].split())
        groups.append(list(range(at, at + n)))
        at += n
    return scores, groups


@needs_omnisteval
@pytest.mark.parametrize("late", [0.0, 2500.0])
def test_our_long_form_latencies_equal_omnistevals_on_the_same_log(tmp_path, late):
    """omnisteval re-segments and scores our log; our StreamLAAL / LongYAAL on its re-segmentation are its numbers
    (StreamLAAL is LAAL on re-segmented sentences: omnisteval's LongLAAL). late: words spill past their sentences and
    past the recording's end, which LongYAAL must cut."""
    stream = _stream()
    delays, elapsed = [d + late for d in DELAYS], [e + late for e in ELAPSED]
    theirs, groups = _omnisteval(tmp_path, stream, delays, elapsed)
    results = sentence_results(stream, WORDS, delays, elapsed, groups)
    ours = {"LongYAAL (CU)": long_yaal(results, "es"), "LongYAAL (CA)": long_yaal(results, "es", computation_aware=True),
            "LongLAAL (CU)": stream_laal(results, "es"), "LongLAAL (CA)": stream_laal(results, "es", computation_aware=True)}
    for name, value in ours.items():
        assert value == pytest.approx(theirs[name], abs=1e-3), name


@needs_mweralign
def test_eval_longform_on_a_tiny_bundle(tiny_bundles, toy_manifest, tmp_path):
    """The CLI end to end: four toy utterances joined into one stream, two configurations, every output file."""
    from typer.testing import CliRunner

    from simulsa.cli.app import app

    lines = toy_manifest.read_text().splitlines()[:4]
    rows = [{**json.loads(line), "audio": str(toy_manifest.parent / json.loads(line)["audio"])} for line in lines]
    manifest = tmp_path / "talk.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ev"
    args = ["eval", "--longform", "--manifest", manifest, "--bundle", tiny_bundles["composite", "int8"], "--out", out,
            "--chunk-ms", "1000,2000", "--hold", "3", "--pause-ms", "400"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "| hold-b3-1000ms |" in result.output and "StreamLAAL" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["streams"][0]["sentences"] == 4 and set(report["configs"]) == {"hold-b3-1000ms", "hold-b3-2000ms"}
    for line in (out / "instances.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert len(record["delays"]) == len(record["prediction"].split()) == len(record["elapsed"])
        assert sum(len(s["hypothesis"].split()) for s in record["sentences"]) == len(record["delays"])  # every word placed
    segments = json.loads((out / "segments.json").read_text())
    assert len(segments) == 4 == len((out / "references.txt").read_text().splitlines())
    assert (out / "audio" / "talk.wav").is_file() and (out / "curve.png").stat().st_size > 1000
    assert sorted(p.name for p in (out / "omnisteval").iterdir()) == ["hold-b3-1000ms.jsonl", "hold-b3-2000ms.jsonl"]
    result = CliRunner().invoke(app, [str(a) for a in [*args[:-2], "--limit", "2", "--force"]])
    assert result.exit_code == 1 and "--limit cuts a manifest into rows" in result.output


@pytest.mark.parametrize("kind", ["short-form", "long-form"])
def test_without_sacrebleu_a_report_has_latencies_no_scores_and_says_what_to_install(tmp_path, monkeypatch, kind):
    import sys

    from simulsa.runtime.eval_run import corpus_quality, write_report
    from simulsa.runtime.longform_eval import write_longform_report

    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # `import sacrebleu` now fails as in a runtime-only install
    quality = corpus_quality(["hola"], ["hola"], "es")
    assert quality == {"BLEU": None, "chrF": None}
    config = {"policy": "hold", "chunk_ms": 1000.0, "hold": 3, **quality, "LAAL": 900.0, "StreamLAAL": 900.0,
              "LongYAAL": 950.0}  # fmt: skip
    if kind == "short-form":
        write_report(tmp_path, {"rows": 1, "skipped": 0, "peak_rss_mb": 1.0, "configs": {"hold-b3-1000ms": config}})
    else:
        write_longform_report(tmp_path, {"streams": [{"name": "s", "duration_s": 1.0, "sentences": 1}],
                                         "configs": {"hold-b3-1000ms": config}})  # fmt: skip
    report = (tmp_path / "report.md").read_text()
    assert "| hold-b3-1000ms | - | - |" in report and "pip install 'simulsa[eval]'" in report
    assert not (tmp_path / "curve.png").exists()  # no BLEU, no BLEU-against-latency curve
