"""Packaging a trained checkpoint as the shipped default (what `runtime/default/` holds)."""

from __future__ import annotations

import json

import pytest
import torch

from simulsa.runtime import default_model as shipped
from simulsa.train import default_model
from simulsa.train.families import load_speech_lm
from simulsa.train.lora import LoraOptions, attach_lora, save_trained


def test_package_default_ships_only_the_trained_parts(tmp_path, monkeypatch, tiny_model_dirs):
    from simulsa.runtime.errors import SimulsaError

    torch.manual_seed(0)
    model = attach_lora(load_speech_lm(tiny_model_dirs["composite"]), LoraOptions(r=4, alpha=8, dropout=0.0))
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    save_trained(model, checkpoint, str(tiny_model_dirs["composite"]))
    monkeypatch.setattr(shipped, "DEFAULT_DIR", tmp_path / "pkg" / "default")
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
