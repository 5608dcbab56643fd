"""The shipped default model, seen from the runtime: where its bundle lives once built.

`runtime/default/` is the shipped model as one unit: `recipe.json` (version, base models, block
length, prompt, how it was trained), the trained weights (`adapter/`, `trained_modules.safetensors`)
and the base models' terms. The runtime reads only `recipe.json`, to name the cached bundle; the
weights are attached by the builder (`simulsa.cli.default_build`, which needs torch), so a
runtime-only install can use a default bundle that a full install built into the same cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from simulsa.runtime.bundle import SCHEMA_VERSION
from simulsa.runtime.errors import SimulsaError

DEFAULT_DIR = Path(__file__).parent / "default"
RECIPE = "recipe.json"
BUILD_EXTRAS = ("torch", "transformers", "peft", "gguf", "onnx", "onnx_ir")  # what building the bundle with torch imports
TORCH_FREE_EXTRAS = ("gguf", "onnx", "onnx_ir", "safetensors")  # what the torch-free build imports (pip install '.[build]')
BUILD_INPUTS = "build_inputs.json"  # shipped with a default the torch-free build can make (export/torch_free_default.py)


class NoDefaultModelError(SimulsaError):
    """This installation ships no trained default model."""


class DefaultNotBuiltError(SimulsaError):
    """The default bundle is not in the cache and this install cannot build it."""


def cache_root() -> Path:
    """$SIMULSA_CACHE, else $XDG_CACHE_HOME/simulsa, else ~/.cache/simulsa."""
    if os.environ.get("SIMULSA_CACHE"):
        return Path(os.environ["SIMULSA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "simulsa"


def recipe_path() -> Path:
    return DEFAULT_DIR / RECIPE


def read_recipe() -> dict:
    if not recipe_path().is_file():
        raise NoDefaultModelError("no --bundle given and this simulsa ships no trained default model yet; "
                                  "export one with `simulsa export` and pass --bundle")  # fmt: skip
    return json.loads(recipe_path().read_text(encoding="utf-8"))


def default_bundle_path() -> Path:
    """Where the default int8 bundle lives once built (named by the recipe and the bundle schema, so either update rebuilds)."""
    return cache_root() / "bundles" / f"default-{read_recipe()['version']}-schema{SCHEMA_VERSION}-int8"


def build_log_path() -> Path:
    """The libraries' own output during the last build of the default (kept for when something goes wrong)."""
    return cache_root() / "logs" / "build-default.log"


def builds_without_torch() -> bool:
    """The shipped default carries what the torch-free build needs (the recipe's base models are checked by the builder)."""
    return (DEFAULT_DIR / BUILD_INPUTS).is_file()


def build_extras() -> tuple[str, ...]:
    return TORCH_FREE_EXTRAS if builds_without_torch() else BUILD_EXTRAS


def missing_build_modules() -> list[str]:
    """The modules the build needs that this install cannot import (an import, not a lookup: a broken install counts)."""
    import importlib

    missing = []
    for name in build_extras():
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def not_built_error(missing: list[str]) -> DefaultNotBuiltError:
    return DefaultNotBuiltError(
        f"the default model is not built yet ({default_bundle_path()}) and building it once needs {', '.join(missing)}: "
        + ("pip install 'simulsa[build]' (in a checkout: '.[build]'; no torch needed)" if builds_without_torch() else
           "pip install 'simulsa[export]' (in a checkout: '.[export]'; torch first: pip install torch==2.13.0)")
        + ", then `simulsa models build-default`; or pass --bundle BUNDLE"
    )


def stale_cache_entries(include_wheels: bool = True) -> list[Path]:
    """Cache entries nothing needs any more: other versions' default bundles, composed bases (older
    simulsa kept one per version: 0.6-1.2 GB each), and, optionally, the downloaded wheels (the
    converted models stay; only `models pull --force` would need the wheels again)."""
    root = cache_root()
    current = default_bundle_path().name if recipe_path().is_file() else None
    stale = [p for p in sorted((root / "bundles").glob("default-*")) if p.name != current]
    stale += sorted((root / "models").glob("default-*-base"))
    if include_wheels and (root / "wheels").is_dir():
        stale.append(root / "wheels")
    return stale
