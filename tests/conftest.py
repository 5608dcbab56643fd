"""Shared fixtures: a toy manifest and tiny models of every family, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAMILY_NAMES = ("composite", "qwen2-audio")


@pytest.fixture(scope="session")
def toy_manifest(tmp_path_factory) -> Path:
    from simulsa.train.toy import make_toy_manifest

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
