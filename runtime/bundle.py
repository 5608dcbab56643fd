"""The bundle: the contract between `simulsa export` and the runtime (ARCHITECTURE.md, "The bundle").

A folder holding bundle.json, audio_encoder.onnx, decoder.onnx, the token embedding table and
tokenizer.json. bundle.json describes everything the runtime needs; the runtime never guesses.
Changing the layout means bumping SCHEMA_VERSION.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from simulsa.runtime.errors import SimulsaError

# 2: the decoder returns the last position's logits only; 3: whisper-tokens (ear graphs, ear fields);
# 4: the decoder record (`decoder.kind`: a fused graph over preallocated KV buffers, or the TorchScript graph)
SCHEMA_VERSION = 4
BUNDLE_JSON = "bundle.json"

PAST_KEY = "past_key_values.{}.key"  # KV tensor names, per layer, in every decoder kind
PAST_VALUE = "past_key_values.{}.value"
PRESENT_KEY = "present.{}.key"
PRESENT_VALUE = "present.{}.value"
FUSED_INPUTS = ("inputs_embeds", "seqlens_k", "total_sequence_length")  # the fused decoder's inputs before the KV
DECODER_KINDS = ("fused", "torchscript")  # fused: KV in buffers the runtime binds; torchscript: past in, grown present out


class BundleError(SimulsaError):
    """A bundle that is missing, corrupt, or of another schema version."""


@dataclasses.dataclass(frozen=True)
class DecoderRecord:
    """bundle.json `decoder`: which decoder graph this is and how the runtime binds it (docs/bundle.md)."""

    kind: str  # fused | torchscript (DECODER_KINDS)
    files: tuple[str, ...]  # decoder.onnx (+ decoder.onnx.data when the weights are external)
    inputs: tuple[str, ...]  # graph inputs before the K/V
    outputs: tuple[str, ...]  # graph outputs before the K/V
    kv_layout: str
    max_length: int | None = None  # fused: the longest sequence (rotary tables)
    kv_capacity: int | None = None  # fused: positions a session's buffer starts with

    def __post_init__(self) -> None:
        if self.kind not in DECODER_KINDS:
            raise BundleError(f"decoder kind {self.kind!r} is not one of {', '.join(DECODER_KINDS)}; re-export the bundle")
        if self.kind == "fused" and not (self.max_length and self.kv_capacity):
            raise BundleError("a fused decoder record needs max_length and kv_capacity; re-export the bundle")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> DecoderRecord:
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.name not in entry]
        if missing:
            raise BundleError(f"its decoder record lacks {', '.join(missing)}; re-export the bundle with this simulsa")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Bundle:
    path: Path
    meta: dict[str, Any]  # the parsed bundle.json

    @property
    def family(self) -> str:
        return self.meta["family"]

    @property
    def dims(self) -> dict[str, int]:
        return self.meta["dims"]

    @property
    def audio(self) -> dict[str, Any]:
        return self.meta["audio"]

    @property
    def prompt(self) -> dict[str, Any]:
        return self.meta["prompt"]

    @property
    def decoder(self) -> DecoderRecord:
        return DecoderRecord.from_json(self.meta["decoder"])

    @property
    def decoder_kind(self) -> str:
        return self.decoder.kind

    def file(self, role: str) -> Path:
        """Path of the file playing `role` (audio_encoder, decoder, embed_tokens, embed_scales, tokenizer)."""
        name = self.meta["files"].get(role)
        if name is None:
            raise BundleError(f"bundle {self.path} has no {role} file")
        return self.path / name

    def io_names(self, graph: str) -> tuple[list[str], list[str]]:
        entry = self.meta["io"][graph]
        return entry["inputs"], entry["outputs"]

    def kv_names(self, kind: str, layer: int) -> str:
        """kind: past_key, past_value, present_key, present_value."""
        return self.meta["kv"][kind].format(layer)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_bundle(path: str | Path, verify_checksums: bool = True) -> Bundle:
    """Read and check bundle.json: schema version, every listed file present, sha256 unchanged."""
    path = Path(path)
    meta_path = path / BUNDLE_JSON
    if not meta_path.is_file():
        raise BundleError(f"{str(path)!r} is not a bundle (no {BUNDLE_JSON}); build one with `simulsa export`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BundleError(f"{meta_path}: corrupt bundle.json ({err.msg}); re-export the bundle") from None
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(f"bundle {str(path)!r} has schema version {version}, this simulsa reads version "
                          f"{SCHEMA_VERSION}; re-export it with this simulsa")  # fmt: skip
    try:
        DecoderRecord.from_json(meta.get("decoder") or {})
    except BundleError as err:
        raise BundleError(f"bundle {str(path)!r}: {err}") from None
    for name, expected in meta.get("sha256", {}).items():
        _check_file(path, name, expected, verify_checksums)
    return Bundle(path=path, meta=meta)


def _check_file(folder: Path, name: str, expected: str, verify_checksum: bool) -> None:
    file = folder / name
    if not file.is_file():
        raise BundleError(f"bundle {str(folder)!r} is missing {name}; re-export the bundle")
    if verify_checksum and sha256_of(file) != expected:
        raise BundleError(f"checksum mismatch for {name} in bundle {str(folder)!r}: the file was changed; "
                          "re-export the bundle (or pass --skip-checksum to load it anyway)")  # fmt: skip


def open_session(file: Path, threads: int | None = None, providers: list[str] | None = None, profile_prefix: str | None = None):
    """An onnxruntime session; the CUDA provider when onnxruntime-gpu sees a GPU, else the CPU.

    `profile_prefix` turns on onnxruntime's per-node profiler (bench uses it to say where time goes).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    if threads:
        options.intra_op_num_threads = threads
    available = ort.get_available_providers()
    chosen = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(file), sess_options=options, providers=chosen)
