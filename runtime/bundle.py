"""The bundle: the contract between `simulsa export` and the runtime (ARCHITECTURE.md, "The bundle").

A folder holding bundle.json, audio_encoder.onnx, decoder.onnx, the token embedding table and
tokenizer.json. bundle.json describes everything the runtime needs; the runtime never guesses.
Changing the layout means bumping SCHEMA_VERSION.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from simulsa.runtime.bundle_records import (
    DECODER_KINDS,
    AudioRecord,
    BundleError,
    BundleRecord,
    DecoderRecord,
    Dims,
    GraphIO,
    KVRecord,
    PromptRecord,
)

__all__ = ["DECODER_KINDS", "SCHEMA_VERSION", "Bundle", "BundleError", "BundleRecord", "DecoderRecord", "load_bundle",
           "open_session", "sha256_of"]

# 2: the decoder returns the last position's logits only; 3: whisper-tokens (ear graphs, ear fields);
# 4: the decoder record (`decoder.kind`: a fused graph over preallocated KV buffers, or the TorchScript graph);
# 5: every section a typed record (runtime/bundle_records.py), every tensor bound by name;
# 6: whisper-tokens: audio.ear.sentence_end_ids (the open tail of a segment still being spoken);
# 7: `vocabulary`: a pruned vocabulary, every token id in the kept tokens' numbering (export/vocabulary.py)
SCHEMA_VERSION = 8  # 8: decoder.dtype (float16 fused graphs)
BUNDLE_JSON = "bundle.json"

PAST_KEY = "past_key_values.{}.key"  # KV tensor names, per layer, in every decoder kind
PAST_VALUE = "past_key_values.{}.value"
PRESENT_KEY = "present.{}.key"
PRESENT_VALUE = "present.{}.value"
FUSED_INPUTS = ("inputs_embeds", "seqlens_k", "total_sequence_length")  # the fused decoder's inputs before the KV
KV_RECORD = KVRecord(past_key=PAST_KEY, past_value=PAST_VALUE, present_key=PRESENT_KEY, present_value=PRESENT_VALUE,
                     layout="(batch, kv_heads, sequence, head_dim)", empty_past="sequence length 0 on the first call")


@dataclasses.dataclass(frozen=True)
class Bundle:
    path: Path
    record: BundleRecord  # the parsed, checked bundle.json

    @property
    def family(self) -> str:
        return self.record.family

    @property
    def dims(self) -> Dims:
        return self.record.dims

    @property
    def audio(self) -> AudioRecord:
        return self.record.audio

    @property
    def prompt(self) -> PromptRecord:
        return self.record.prompt

    @property
    def decoder(self) -> DecoderRecord:
        return self.record.decoder

    @property
    def kv(self) -> KVRecord:
        return self.record.kv

    def file(self, role: str) -> Path:
        """Path of the file playing `role` (FILE_ROLES: audio_encoder, decoder, embed_tokens, embed_scales, tokenizer, ...)."""
        name = getattr(self.record.files, role, None)
        if name is None:
            raise BundleError(f"bundle {self.path} has no {role} file")
        return self.path / name

    def has_file(self, role: str) -> bool:
        return getattr(self.record.files, role, None) is not None

    def io(self, graph: str) -> GraphIO:
        """The input and output names of one graph (audio_encoder, ear_decoder, projector, decoder)."""
        if graph not in self.record.io:
            raise BundleError(f"bundle {self.path} describes no {graph} graph; re-export the bundle")
        return self.record.io[graph]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_bundle_json(folder: Path, record: BundleRecord) -> BundleRecord:
    """Hash every file beside bundle.json (sub-folders are not part of a bundle) and write bundle.json last.
    Both writers use it: the exporter (export/pipeline.py) and the torch-free default build."""
    from simulsa.runtime.files import write_json_atomic

    hashes = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != BUNDLE_JSON}
    record = dataclasses.replace(record, sha256=hashes)
    write_json_atomic(folder / BUNDLE_JSON, record.to_json())
    return record


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
    version = meta.get("schema_version") if isinstance(meta, dict) else None
    if version != SCHEMA_VERSION:
        raise BundleError(f"bundle {str(path)!r} has schema version {version}, this simulsa reads version "
                          f"{SCHEMA_VERSION}; re-export it with this simulsa")  # fmt: skip
    try:
        record = BundleRecord.from_json(meta)
    except BundleError as err:
        raise BundleError(f"bundle {str(path)!r}: {err}") from None
    for name, expected in record.sha256.items():
        _check_file(path, name, expected, verify_checksums)
    return Bundle(path=path, record=record)


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
    if "CUDAExecutionProvider" in chosen:
        _preload_cuda_libraries(ort)
    return ort.InferenceSession(str(file), sess_options=options, providers=chosen)


@functools.cache
def _preload_cuda_libraries(ort) -> None:
    """onnxruntime-gpu finds CUDA and cuDNN installed as pip packages (nvidia-*, e.g. beside torch) only when asked."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu 1.21+
    if preload is not None:
        preload()
