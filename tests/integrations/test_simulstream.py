"""The SimulStream speech processor (simulsa.integrations.simulstream) run by simulstream's own inference command on a
tiny bundle: the words it logs are the words simulsa's session commits on the same audio and options."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("simulstream", reason="simulstream is not installed: pip install '.[simulstream]' (.ci/run does)")

from simulsa.runtime.audio import load_audio
from simulsa.runtime.evaluation import run_stream
from simulsa.runtime.session import StreamOptions, Translator


def _logged_words(log_path) -> dict[int, list[str]]:
    words: dict[int, list[str]] = {}
    for line in log_path.read_text().splitlines():
        record = json.loads(line)
        if "generated_tokens" in record:
            assert record["deleted_tokens"] == []  # committed words are never revised
            words.setdefault(record["id"], []).extend(record["generated_tokens"])
    return words


def test_simulstream_inference_runs_a_bundle(tiny_bundles, toy_manifest, speech_like, tmp_path):
    from simulsa.runtime.audio import write_wav

    bundle = tiny_bundles["qwen2-audio", "int8"]  # the tiny composite says nothing on these sounds
    write_wav(tmp_path / "speech_like.wav", speech_like)  # 8 s: long enough for the tiny models to say something
    wavs = [str(toy_manifest.parent / json.loads(toy_manifest.read_text().splitlines()[0])["audio"]),
            str(tmp_path / "speech_like.wav")]
    (tmp_path / "wavs.txt").write_text("".join(w + "\n" for w in wavs))
    (tmp_path / "processor.yaml").write_text(
        "type: simulsa.integrations.simulstream.SimulsaSpeechProcessor\n"
        f"bundle: {bundle}\nspeech_chunk_size: 0.5\npolicy: hold\nhold: 0\n")  # fmt: skip
    inference = shutil.which("simulstream_inference") or sys.exit("no simulstream_inference")
    done = subprocess.run([inference, "--speech-processor-config", str(tmp_path / "processor.yaml"), "--wav-list-file",
                           str(tmp_path / "wavs.txt"), "--metrics-log-file", str(tmp_path / "log.jsonl"), "--tgt-lang", "es"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    logged = _logged_words(tmp_path / "log.jsonl")
    translator = Translator.from_bundle(bundle)
    for index, wav in enumerate(wavs):
        trace = run_stream(translator, load_audio(wav), StreamOptions(chunk_ms=500, policy="hold", hold=0), "es")
        assert logged.get(index, []) == trace.hypothesis.split(), wav
    assert any(logged.values())  # the tiny model says something, so the comparison is not of two empty lists
