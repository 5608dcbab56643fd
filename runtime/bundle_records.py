"""bundle.json as typed records: what `simulsa export` writes and the runtime reads (docs/bundle.md).

Every section of bundle.json is one frozen dataclass below; `BundleRecord` is the whole file. The
exporter builds the records and writes `BundleRecord.to_json()`; the runtime reads
`BundleRecord.from_json()`, which checks every field's presence and type in one place and names the
field that is wrong. Tensors are bound by the names these records state, never by position.
Changing a record means bumping `SCHEMA_VERSION` (runtime/bundle.py).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

import numpy as np

from simulsa.runtime.errors import SimulsaError

DECODER_DTYPES = {"float32": np.float32, "float16": np.float16}  # decoder.dtype -> the graph's compute and K/V dtype
DECODER_KINDS = ("fused", "torchscript")  # fused: KV in buffers the runtime binds; torchscript: past in, grown present out
FILE_ROLES = ("audio_encoder", "ear_decoder", "projector", "decoder", "embed_tokens", "embed_scales", "tokenizer")


class BundleError(SimulsaError):
    """A bundle that is missing, corrupt, or of another schema version."""


@dataclasses.dataclass(frozen=True)
class Dims:
    """The LM's shapes."""

    hidden_size: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int  # rows of embed_tokens and of the decoder's logits


@dataclasses.dataclass(frozen=True)
class EarRecord:
    """whisper-tokens: Whisper's decoder as the ear (runtime/ear.py)."""

    window_s: float  # the encoder hears the segment padded with silence to a whole number of these windows
    decoder_prompt: tuple[int, ...]  # <|startoftranscript|><|en|><|transcribe|><|notimestamps|>
    decoder_end: int  # <|endoftext|>
    layers: int
    heads: int
    head_dim: int
    d_model: int
    sentence_end_ids: tuple[int, ...]  # tokens that close a sentence: dropped from the open tail (runtime/ear.py)


@dataclasses.dataclass(frozen=True)
class AudioRecord:
    """How samples become features; which of the family fields are set says how the audio is cut."""

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    log_mel: str  # "whisper": Whisper's log-mel (runtime/audio.py)
    block_s: float | None = None  # composite: fixed blocks encoded once each
    stack: int | None = None  # composite: frames stacked per audio token
    samples_per_token: int | None = None  # composite
    window_s: float | None = None  # qwen2-audio: the encoder's whole window (a segment may not exceed it)
    ear: EarRecord | None = None  # whisper-tokens

    def __post_init__(self) -> None:
        if self.block_s is not None and not (self.stack and self.samples_per_token):
            raise BundleError("audio: block_s needs stack and samples_per_token; re-export the bundle")


@dataclasses.dataclass(frozen=True)
class PromptRecord:
    """The token ids around the audio embeddings (precomputed: the runtime never encodes text)."""

    template: dict[str, Any]  # runtime/prompt.py PromptTemplate.to_json()
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    end_id: int  # the token that ends a translation
    eos_id: int | None = None
    pad_id: int | None = None

    def __post_init__(self) -> None:
        if not self.suffix_ids:
            raise BundleError("prompt: the suffix is empty; the decoder needs at least one token after the audio")


@dataclasses.dataclass(frozen=True)
class FilesRecord:
    """Which file plays each role (None: the bundle has no such file)."""

    decoder: str
    embed_tokens: str  # (V, H) float32, or int8 rows with embed_scales
    tokenizer: str
    audio_encoder: str | None = None
    ear_decoder: str | None = None
    projector: str | None = None
    embed_scales: str | None = None  # (V,) float32 per-row scales of an int8 table


@dataclasses.dataclass(frozen=True)
class GraphIO:
    """A graph's input and output names, in the order the graph declares them."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class KVRecord:
    """The decoder's K/V tensor names, per layer (`{}` is the layer index)."""

    past_key: str
    past_value: str
    present_key: str
    present_value: str
    layout: str
    empty_past: str

    def names(self, layer: int) -> tuple[str, str, str, str]:
        """(past key, present key, past value, present value) of one layer."""
        return (self.past_key.format(layer), self.present_key.format(layer),
                self.past_value.format(layer), self.present_value.format(layer))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DecoderRecord:
    """Which decoder graph this is and how the runtime binds it."""

    kind: str  # fused | torchscript (DECODER_KINDS)
    files: tuple[str, ...]  # decoder.onnx (+ decoder.onnx.data when the weights are external)
    inputs: tuple[str, ...]  # graph inputs before the K/V
    outputs: tuple[str, ...]  # graph outputs before the K/V
    kv_layout: str
    max_length: int | None = None  # fused: the longest sequence (rotary tables)
    kv_capacity: int | None = None  # fused: positions a session's buffer starts with
    dtype: str = "float32"  # the graph's compute dtype and its K/V buffers' (float16: fused only; logits stay float32)

    def __post_init__(self) -> None:
        if self.kind not in DECODER_KINDS:
            raise BundleError(f"decoder kind {self.kind!r} is not one of {', '.join(DECODER_KINDS)}; re-export the bundle")
        if self.kind == "fused" and not (self.max_length and self.kv_capacity):
            raise BundleError("a fused decoder record needs max_length and kv_capacity; re-export the bundle")
        if self.dtype not in DECODER_DTYPES or (self.dtype != "float32" and self.kind != "fused"):
            raise BundleError(f"decoder dtype {self.dtype!r} is not one this {self.kind} graph can have; re-export the bundle")


@dataclasses.dataclass(frozen=True)
class QuantizationRecord:
    """How the weights were quantized (mode none: fp32 throughout)."""

    mode: str  # none | int8 | int4
    method: str | None = None
    bits: int | None = None
    block_size: int | None = None
    head: str | None = None  # the output head's mode
    ops: tuple[str, ...] = ()
    graphs: tuple[str, ...] = ()  # the graph files that were quantized
    keep_fp32_patterns: tuple[str, ...] = ()
    fp32_nodes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    embed_tokens: str | None = None


@dataclasses.dataclass(frozen=True)
class TokenizerRecord:
    decode_only: bool  # BPE merges dropped: it decodes every id, it cannot encode


@dataclasses.dataclass(frozen=True)
class VocabularyRecord:
    """A pruned vocabulary (export/vocabulary.py): the bundle's token ids number only the kept tokens."""

    kept: int  # tokens the bundle carries (= dims.vocab_size)
    original_size: int  # tokens of the model it was exported from
    file: str  # (kept,) int32: the original id of each of the bundle's ids
    chosen_by: str  # what chose the kept tokens


@dataclasses.dataclass(frozen=True)
class SourceRecord:
    """Where the weights came from, and the licence files that travel with them."""

    model: str
    base_model: str | None = None
    adapter: str | None = None
    notices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class BundleRecord:
    """The whole of bundle.json."""

    schema_version: int
    created_by: str
    family: str
    dims: Dims
    audio: AudioRecord
    prompt: PromptRecord
    files: FilesRecord
    io: dict[str, GraphIO]  # graph role (audio_encoder, ear_decoder, projector, decoder) -> its names
    kv: KVRecord
    decoder: DecoderRecord
    quantization: QuantizationRecord
    tokenizer: TokenizerRecord
    source: SourceRecord
    sha256: dict[str, str] = dataclasses.field(default_factory=dict)  # every file beside bundle.json
    vocabulary: VocabularyRecord | None = None  # None: the model's whole vocabulary

    def __post_init__(self) -> None:
        if self.vocabulary is not None and self.vocabulary.kept != self.dims.vocab_size:
            raise BundleError(f"vocabulary.kept is {self.vocabulary.kept} but dims.vocab_size is {self.dims.vocab_size}; "
                              "re-export the bundle")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_json(cls, entry: Any) -> BundleRecord:
        return from_json(cls, entry, "bundle.json")


# ---- (de)serialisation: one generic walk over the records' type hints ------------------------------


def to_json(value: Any) -> Any:
    """A record (or a tuple/dict of them) as plain JSON values; None fields are left out."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}  # fmt: skip
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(kind: Any, entry: Any, where: str) -> Any:
    """`entry` read as `kind` (a record, tuple[...], dict[str, ...], X | None or a scalar); errors name `where`."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if entry is None else from_json(options[0], entry, where)
    if dataclasses.is_dataclass(kind):
        return _record(kind, entry, where)
    if origin is tuple:
        _expect(entry, list, where, "a list")
        return tuple(from_json(typing.get_args(kind)[0], v, f"{where}[{i}]") for i, v in enumerate(entry))
    if origin is dict:
        _expect(entry, dict, where, "an object")
        value_kind = typing.get_args(kind)[1]
        return {k: from_json(value_kind, v, f"{where}.{k}") for k, v in entry.items()}
    return _scalar(kind, entry, where)


def _record(kind: type, entry: Any, where: str) -> Any:
    _expect(entry, dict, where, "an object")
    hints = typing.get_type_hints(kind)
    fields = dataclasses.fields(kind)
    missing = [f.name for f in fields if f.name not in entry and _required(f)]
    if missing:
        raise BundleError(f"{where} lacks {', '.join(missing)}; re-export the bundle with this simulsa")
    values = {f.name: from_json(hints[f.name], entry[f.name], f"{where}.{f.name}") for f in fields if f.name in entry}
    try:
        return kind(**values)
    except BundleError as err:
        raise BundleError(f"{where}: {err}") from None


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


_SCALARS = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _scalar(kind: Any, entry: Any, where: str) -> Any:
    if kind is Any:
        return entry
    accepted = _SCALARS[kind]
    if (isinstance(entry, bool) and kind is not bool) or not isinstance(entry, accepted):
        raise BundleError(f"{where} is {entry!r}, expected {kind.__name__}; re-export the bundle")
    return float(entry) if kind is float else entry


def _expect(entry: Any, kind: type, where: str, what: str) -> None:
    if not isinstance(entry, kind):
        raise BundleError(f"{where} is {type(entry).__name__}, expected {what}; re-export the bundle")
