"""Packaging a trained checkpoint as the shipped default model (`python -m simulsa.train.default_model CKPT ...`).

The shipped default lives in `runtime/default/` (`recipe.json`, `adapter/` (peft LoRA),
`trained_modules.safetensors` (the projector), the base models' terms); the runtime finds its
built bundle (`simulsa.runtime.default_model`) and `simulsa.cli.default_build` builds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from simulsa.runtime import default_model as shipped
from simulsa.runtime.errors import SimulsaError
from simulsa.train.families.notices import copy_notices, notice_files
from simulsa.train.pretrained.pull import MODELS, model_dir

RECIPE_AUDIO = {  # what the default build needs to compose the same base again
    "composite": lambda audio: {"block_s": audio.block_s, "stack": audio.stack},
    "whisper-tokens": lambda audio: {"window_s": audio.window_s},
}


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
    if getattr(config, "base_model", None) is None or config.family not in RECIPE_AUDIO:
        raise SimulsaError(f"{checkpoint} is not a `simulsa train` output of a {' or '.join(RECIPE_AUDIO)} model")
    recipe = {"version": version, "family": config.family, "encoder": encoder, "lm": lm,
              **RECIPE_AUDIO[config.family](config.audio), "prompt": config.prompt.to_json(), "built_with": built_with}  # fmt: skip
    with atomic_dir(shipped.DEFAULT_DIR, force=True) as tmp:
        if config.adapter:  # a projector-only default has none
            peft_card = shutil.ignore_patterns("README.md")  # peft's boilerplate model card
            shutil.copytree(Path(checkpoint) / config.adapter, tmp / "adapter", ignore=peft_card)
            _point_adapter_at(tmp / "adapter" / "adapter_config.json", lm)
        shutil.copy(Path(checkpoint) / config.trained_modules, tmp / "trained_modules.safetensors")
        for part, name in (("encoder", encoder), ("lm", lm)):  # e.g. Gemma's terms travel with weights derived from it
            copy_notices(notice_files(model_dir(name)), tmp, f"{part}.")
        write_json_atomic(tmp / shipped.RECIPE, recipe)
    return shipped.DEFAULT_DIR


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
