"""The default model path with a tiny stand-in: recipe + shipped weights -> bundle built once -> translate without --bundle."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from simulsa.cli.app import app
from simulsa.runtime.bundle import SCHEMA_VERSION
from simulsa.train import default_model
from simulsa.train.families import load_speech_lm
from simulsa.train.lora import LoraOptions, attach_lora, save_trained
from tests.cli.test_cli import _tiny_parts


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A recipe and trained weights in a fake package-data folder; `models pull` answers with tiny parts."""
    parts = _tiny_parts(tmp_path / "parts")
    (parts["lm"] / "NOTICE.md").write_text("LM terms: these travel with derived weights\n")  # as `models pull gemma3-270m` leaves
    monkeypatch.setenv("SIMULSA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(default_model, "pull_model", lambda name: parts[name])
    # train a stand-in adapter + projector over the composed base, as the real recipe did
    recipe = {"version": "test1", "encoder": "whisper", "lm": "lm", "block_s": 0.96, "stack": 8,
              "prompt": {"prefix": "<|im_start|>user\n", "suffix": "\nTo {tgt}:<|im_end|>\n<|im_start|>assistant\n",
                         "end": "<|im_end|>", "src_lang": "en", "tgt_lang": "es"}}  # fmt: skip
    shipped_dir = tmp_path / "default"
    shipped_dir.mkdir()
    (shipped_dir / "recipe.json").write_text(json.dumps(recipe))
    monkeypatch.setattr(default_model, "DEFAULT_DIR", shipped_dir)
    base = default_model._compose_base(recipe, tmp_path / "base")
    torch.manual_seed(0)
    model = attach_lora(load_speech_lm(base), LoraOptions(r=4, alpha=8, dropout=0.0))
    trained = tmp_path / "trained"
    trained.mkdir()
    save_trained(model, trained, str(base))
    shutil.copytree(trained / "adapter", shipped_dir / "adapter")
    shutil.copy(trained / "trained_modules.safetensors", shipped_dir)
    return tmp_path


def test_translate_without_bundle_builds_the_default_once(shipped, monkeypatch):
    sf.write(shipped / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32), 16000)
    runner = CliRunner()
    result = runner.invoke(app, ["translate", str(shipped / "a.wav"), "--json"])
    assert result.exit_code == 0, result.output
    bundle = default_model.default_bundle_path()
    assert (bundle / "bundle.json").is_file() and bundle.name == f"default-test1-schema{SCHEMA_VERSION}-int8"
    assert json.loads((bundle / "bundle.json").read_text())["audio"]["stack"] == 8  # the recipe's, not the default 4
    assert json.loads((bundle / "verification.json").read_text())[0]["passed"]
    assert sorted(p.name for p in (shipped / "cache").iterdir()) == ["bundles"]  # no composed copy of the base kept
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["source"]["notices"] == ["lm.NOTICE.md"] and "lm.NOTICE.md" in meta["sha256"]
    assert (bundle / "lm.NOTICE.md").read_text().startswith("LM terms")  # compose -> base folder -> int8 bundle
    built = []
    monkeypatch.setattr(default_model, "build_default_bundle", lambda force=False: built.append(1))
    assert runner.invoke(app, ["translate", str(shipped / "a.wav")]).exit_code == 0 and not built  # cached


def test_runtime_only_install_gets_the_command_to_build_it(shipped, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    sf.write(shipped / "a.wav", np.zeros(1600, np.float32), 16000)
    result = CliRunner().invoke(app, ["translate", str(shipped / "a.wav")])
    assert result.exit_code == 1 and "pip install 'simulsa[export]' and run `simulsa models build-default`" in result.output


def test_no_shipped_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(default_model, "DEFAULT_DIR", tmp_path / "nothing")
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    result = CliRunner().invoke(app, ["translate", str(tmp_path / "a.wav")])
    assert result.exit_code == 1 and "ships no trained default model yet" in result.output


def test_package_default_ships_only_the_trained_parts(tmp_path, monkeypatch, tiny_model_dirs):
    from simulsa.runtime.errors import SimulsaError

    torch.manual_seed(0)
    model = attach_lora(load_speech_lm(tiny_model_dirs["composite"]), LoraOptions(r=4, alpha=8, dropout=0.0))
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    save_trained(model, checkpoint, str(tiny_model_dirs["composite"]))
    monkeypatch.setattr(default_model, "DEFAULT_DIR", tmp_path / "pkg" / "default")
    pulled = {"whisper-base": tmp_path / "pulled-whisper", "gemma3-270m": tmp_path / "pulled-lm"}
    pulled["gemma3-270m"].mkdir()
    (pulled["gemma3-270m"] / "X_TERMS.html").write_text("<p>terms</p>")
    monkeypatch.setattr(default_model, "model_dir", pulled.__getitem__)
    folder = default_model.package_default(checkpoint, "v9", {"steps": 3})
    listing = ["adapter", "lm.X_TERMS.html", "recipe.json", "trained_modules.safetensors"]
    assert sorted(p.name for p in folder.iterdir()) == listing  # the LM's terms travel in the package data
    assert sorted(p.name for p in (folder / "adapter").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    adapter_config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "gemma3-270m"
    recipe = json.loads((folder / "recipe.json").read_text())
    assert recipe["version"] == "v9" and recipe["block_s"] == model.simulsa_config.audio.block_s
    assert recipe["stack"] == model.simulsa_config.audio.stack
    assert recipe["prompt"] == model.simulsa_config.prompt.to_json() and recipe["built_with"] == {"steps": 3}
    with pytest.raises(SimulsaError, match="is not a `simulsa train` output"):
        default_model.package_default(tiny_model_dirs["composite"], "v9", {})


def test_models_clean_removes_only_what_nothing_needs(shipped):
    cache = shipped / "cache"
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
