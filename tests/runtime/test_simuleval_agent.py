"""A simulsa bundle as a SimulEval agent, run by the real `simuleval` command on two utterances."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def test_simuleval_runs_a_bundle(tiny_bundles, tmp_path):
    pytest.importorskip("simuleval.cli", reason="pip install --no-deps simuleval==1.1.4 (and tornado) for this check")
    from simulsa.runtime.metrics import length_adaptive_average_lagging
    from simulsa.runtime.toy import toy_utterance

    rng = np.random.default_rng(0)
    sources, targets = [], ["uno dos", "rojo perro casa"]
    for i, words in enumerate([["one", "two"], ["red", "dog", "house"]]):
        sf.write(tmp_path / f"{i}.wav", toy_utterance(words, rng), 16000)
        sources.append(str(tmp_path / f"{i}.wav"))
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n")
    (tmp_path / "tgt.txt").write_text("\n".join(targets) + "\n")
    executable = shutil.which("simuleval") or str(Path(sys.executable).parent / "simuleval")
    command = [executable, "--agent-class", "simulsa.runtime.simuleval_agent.SimulsaAgent",
               "--bundle", str(tiny_bundles["qwen2-audio", "int8"]), "--source", str(tmp_path / "src.txt"),
               "--target", str(tmp_path / "tgt.txt"), "--source-type", "speech", "--target-type", "text",
               "--source-segment-size", "500", "--output", str(tmp_path / "out")]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    instances = [json.loads(line) for line in (tmp_path / "out" / "instances.log").read_text().splitlines()]
    assert len(instances) == 2
    for instance, reference in zip(instances, targets):
        delays = instance["delays"]
        assert len(delays) == len(instance["prediction"].split()) > 0
        assert delays == sorted(delays) and max(delays) <= instance["source_length"]
        ours = length_adaptive_average_lagging(delays, instance["source_length"], len(reference.split()))
        assert ours >= 0
    assert (tmp_path / "out" / "scores.tsv").read_text().startswith("BLEU")
