"""Shared fixtures: a toy manifest and tiny models of every family, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAMILY_NAMES = ("composite", "qwen2-audio", "whisper-tokens")


@pytest.fixture(scope="session")
def toy_manifest(tmp_path_factory) -> Path:
    from simulsa.runtime.toy import make_toy_manifest

    return make_toy_manifest(tmp_path_factory.mktemp("toy"), n=12, seed=0)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """One saved tiny model folder per family (seeded, so every session builds the same weights)."""
    import torch

    from simulsa.train.families import build_tiny, save_model

    folders = {}
    for name in FAMILY_NAMES:
        torch.manual_seed(0)
        folders[name] = tmp_path_factory.mktemp("models") / name
        save_model(build_tiny(name), folders[name])
    return folders


@pytest.fixture(scope="session")
def tiny_bundles(tiny_model_dirs, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(family, "none" | "int8") -> an exported bundle of the tiny model (verification is tested elsewhere)."""
    from simulsa.export.pipeline import ExportOptions, run_export
    from simulsa.export.quantize import QuantizeOptions

    root = tmp_path_factory.mktemp("tiny_bundles")
    bundles = {}
    for name in FAMILY_NAMES:
        for mode in ("none", "int8"):
            out = root / f"{name}-{mode}"
            run_export(ExportOptions(checkpoint=str(tiny_model_dirs[name]), out=out, quantize=QuantizeOptions(mode), verify=False))
            bundles[name, mode] = out
    return bundles


@pytest.fixture(scope="session")
def speech_like():
    """8 s of toy speech: tones with pauses between words, 16 kHz float32."""
    import numpy as np

    from simulsa.runtime.toy import toy_utterance

    words = ["one", "two", "red", "dog", "house", "water", "green", "three"] * 2
    return toy_utterance(words, np.random.default_rng(0))
