"""A runtime-only install, for real: the CLI in a subprocess where importing torch, transformers or peft fails.

Hiding them from `find_spec` is not enough (an earlier test did that and passed while the real
install broke): here a `sitecustomize` on PYTHONPATH makes every such import raise ImportError.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_blocker import blocker_source
from tests.installed_extras import modules_outside

BLOCKED = modules_outside(())  # a runtime-only install: all that `pip install .` would not install
HOOK = blocker_source(BLOCKED)


@pytest.fixture()
def runtime_only(tmp_path):
    """Run `simulsa ARGS` as a runtime-only install would, with its own cache; returns (run, cache)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": str(hook), "SIMULSA_CACHE": str(tmp_path / "cache")}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "simulsa.cli", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

    return run, tmp_path / "cache"


def test_the_hook_really_blocks_the_training_stack(runtime_only, tmp_path):
    hook = tmp_path / "hook"
    code = "import simulsa\nfrom simulsa import StreamOptions, Translator\nimport torch\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(hook)})  # fmt: skip
    assert result.returncode == 1 and "No module named 'torch' (a runtime-only install)" in result.stderr


def test_without_the_default_bundle_it_says_what_to_install_and_run(runtime_only):
    run, _ = runtime_only
    for args in (("stream", "--example"), ("translate", Path(__file__).parents[1] / "data" / "beckett.wav")):
        result = run(*args)
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "the default model is not built yet" in errors[0] and "gguf, onnx" in errors[0]  # the torch-free build's needs
        assert "pip install 'simulsa[build]' (in a checkout: '.[build]'; no torch needed)" in errors[0]
        assert "`simulsa models build-default`" in errors[0]


def test_with_the_default_bundle_built_it_translates_streams_evaluates_benches(runtime_only, tiny_bundles, toy_manifest,
                                                                               tmp_path, monkeypatch):  # fmt: skip
    from simulsa.runtime import default_model

    run, cache = runtime_only
    monkeypatch.setenv("SIMULSA_CACHE", str(cache))
    shutil.copytree(tiny_bundles["composite", "int8"], default_model.default_bundle_path())  # as a full install leaves it
    beckett = Path(__file__).parents[1] / "data" / "beckett.wav"
    result = run("translate", beckett, "--json", "--keep-line-breaks")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["audio"] == str(beckett) and record["audio_s"] > 9 and isinstance(record["text"], str)
    result = run("stream", "--example", "--chunk-ms", "2000", "--jsonl", tmp_path / "ev.jsonl")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert events and events[-1]["final"] and "Traceback" not in result.stderr
    result = run("eval", "--manifest", toy_manifest, "--out", tmp_path / "ev", "--chunk-ms", "1000", "--hold", "3",
                 "--policy", "hold", "--limit", "1")  # fmt: skip
    assert result.returncode == 0 and "| hold-b3-1000ms | - | - |" in result.stdout, result.stderr  # no sacrebleu: no scores
    assert "pip install 'simulsa[eval]'" in result.stdout and "Traceback" not in result.stderr
    result = run("bench", "--out", tmp_path / "bench", "--lengths", "2", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "bench" / "bench.json").read_text())["streaming"]["rtf"] > 0
