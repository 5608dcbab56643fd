"""simulsa eval on a tiny bundle: every configuration reported, incremental instances, skipped rows, delays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulsa.runtime.errors import OutputExistsError, SimulsaError
from simulsa.runtime.eval_run import EvalOptions, run_eval
from simulsa.runtime.evaluation import run_stream
from simulsa.runtime.session import StreamOptions, Translator


@pytest.fixture()
def manifest_with_a_missing_file(toy_manifest, tmp_path):
    lines = toy_manifest.read_text().splitlines()[:3]
    rows = [json.loads(line) for line in lines]
    for row in rows:
        row["audio"] = str(toy_manifest.parent / row["audio"])
    rows.append({"id": "gone", "audio": str(tmp_path / "gone.wav"), "target": "nada", "tgt_lang": "es"})
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_reports_every_configuration(tiny_bundles, manifest_with_a_missing_file, tmp_path):
    translator = Translator.from_bundle(tiny_bundles["qwen2-audio", "int8"])
    options = EvalOptions(chunks_ms=(500, float("inf")), holds=(0, 3), policies=("hold", "local-agreement"))
    report = run_eval(manifest_with_a_missing_file, translator, tmp_path / "ev", options)
    assert set(report["configs"]) == {"hold-b0-500ms", "hold-b3-500ms", "local-agreement-500ms", "offline"}
    assert report["skipped"] == 1 and "gone" in report["skipped_reasons"]
    for scores in report["configs"].values():
        assert scores["utterances"] == 3 and 0 <= scores["BLEU"] <= 100 and scores["RTF"] > 0
        if scores["empty"] < 3:
            assert scores["LAAL_CA"] >= scores["LAAL"]  # compute time only adds latency
    instances = [json.loads(x) for x in (tmp_path / "ev" / "instances.jsonl").read_text().splitlines()]
    assert len(instances) == 4 * 3
    for inst in instances:
        assert len(inst["delays_ms"]) == len(inst["hypothesis"].split())
        assert inst["delays_ms"] == sorted(inst["delays_ms"]) and all(d <= inst["source_ms"] for d in inst["delays_ms"])
    offline = [i for i in instances if i["config"] == "offline"]
    assert all(set(i["delays_ms"]) <= {i["source_ms"]} for i in offline)  # offline: every word after the whole source
    assert (tmp_path / "ev" / "curve.png").stat().st_size > 1000
    assert "| offline |" in (tmp_path / "ev" / "report.md").read_text()
    with pytest.raises(OutputExistsError):
        run_eval(manifest_with_a_missing_file, translator, tmp_path / "ev", options)


def test_word_delays_follow_the_events(tiny_bundles, speech_like):
    translator = Translator.from_bundle(tiny_bundles["qwen2-audio", "int8"])
    trace = run_stream(translator, speech_like, StreamOptions(chunk_ms=1000, hold=0), "es")
    assert trace.source_ms == 8000 and trace.compute_ms > 0
    assert len(trace.delays_ms) == len(trace.hypothesis.split()) and len(trace.displays) == 9
    assert set(trace.delays_ms) <= {1000.0 * k for k in range(1, 9)}  # words appear at chunk boundaries
    assert all(e >= d for d, e in zip(trace.delays_ms, trace.elapsed_ms))


def test_bad_options():
    with pytest.raises(SimulsaError, match="unknown policy 'wait-k'"):
        EvalOptions(policies=("wait-k",))
    with pytest.raises(SimulsaError, match="--chunk-ms must be positive"):
        EvalOptions(chunks_ms=(0,))
    assert [c.name for c in EvalOptions(chunks_ms=(np.inf,)).configs()] == ["offline"]
