"""Read CTranslate2 `model.bin` files and turn a Whisper one into transformers weights.

Format (binary version 6, little-endian): u32 version; string spec; u32 revision; u32 n_vars;
per variable: string name, u8 rank, u32 x rank dims, u8 dtype, u32 n_bytes, raw data; then
u32 n_aliases and (alias, target) string pairs. A string is a u16 length (counting a final NUL)
and its bytes. Whisper specifics: self-attention q/k/v are fused along the output dimension
(k has no bias in the original model, stored as zeros), cross-attention k/v are fused, and the
output projection is an alias of the token embedding.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from simulsa.runtime.errors import ModelError

SUPPORTED_VERSION = 6
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 (bf16) is not used by Whisper files


def _read(handle: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize("<" + fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ModelError("CTranslate2 model.bin ends early; the download is incomplete")
    return struct.unpack("<" + fmt, data)


def _read_string(handle: BinaryIO) -> str:
    (length,) = _read(handle, "H")
    return handle.read(length)[:-1].decode("utf-8")


def read_model_bin(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, variables by name with aliases resolved) of a CTranslate2 model.bin."""
    with Path(path).open("rb") as handle:
        (version,) = _read(handle, "I")
        if version != SUPPORTED_VERSION:
            raise ModelError(f"{path}: CTranslate2 binary version {version}, expected {SUPPORTED_VERSION}")
        spec = _read_string(handle)
        _read(handle, "I")  # spec revision
        (count,) = _read(handle, "I")
        variables = dict(_read_variable(handle, path) for _ in range(count))
        (n_aliases,) = _read(handle, "I")
        for _ in range(n_aliases):
            alias, target = _read_string(handle), _read_string(handle)
            variables[alias] = variables[target]
    return spec, variables


def _read_variable(handle: BinaryIO, path: Path) -> tuple[str, np.ndarray]:
    name = _read_string(handle)
    (rank,) = _read(handle, "B")
    dims = _read(handle, "I" * rank)
    (dtype_code,) = _read(handle, "B")
    (n_bytes,) = _read(handle, "I")
    if dtype_code not in DTYPES:
        raise ModelError(f"{path}: variable {name!r} has unsupported dtype code {dtype_code}")
    array = np.frombuffer(handle.read(n_bytes), dtype=DTYPES[dtype_code])
    return name, array.reshape(dims) if rank else array.reshape(())


def _split(array: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(array, parts, axis=0)


def _attention(prefix: str, source: dict[str, np.ndarray], fused: str, target: str, out: dict) -> None:
    """Fused q/k/v (self-attention) or q + fused k/v (cross-attention) -> separate projections."""
    if fused == "qkv":
        for name, w, b in zip(("q", "k", "v"), _split(source[f"{prefix}/linear_0/weight"], 3),
                              _split(source[f"{prefix}/linear_0/bias"], 3)):  # fmt: skip
            out[f"{target}.{name}_proj.weight"] = w
            if name != "k":  # Whisper's key projection has no bias
                out[f"{target}.{name}_proj.bias"] = b
        out_linear = "linear_1"
    else:
        out[f"{target}.q_proj.weight"] = source[f"{prefix}/linear_0/weight"]
        out[f"{target}.q_proj.bias"] = source[f"{prefix}/linear_0/bias"]
        k, v = _split(source[f"{prefix}/linear_1/weight"], 2)
        _, v_bias = _split(source[f"{prefix}/linear_1/bias"], 2)
        out.update({f"{target}.k_proj.weight": k, f"{target}.v_proj.weight": v, f"{target}.v_proj.bias": v_bias})
        out_linear = "linear_2"
    out[f"{target}.out_proj.weight"] = source[f"{prefix}/{out_linear}/weight"]
    out[f"{target}.out_proj.bias"] = source[f"{prefix}/{out_linear}/bias"]


def _norm(source: dict, prefix: str, target: str, out: dict) -> None:
    out[f"{target}.weight"], out[f"{target}.bias"] = source[f"{prefix}/gamma"], source[f"{prefix}/beta"]


def _linear(source: dict, prefix: str, target: str, out: dict) -> None:
    out[f"{target}.weight"], out[f"{target}.bias"] = source[f"{prefix}/weight"], source[f"{prefix}/bias"]


def _layer_count(source: dict, side: str) -> int:
    return len({name.split("/")[1] for name in source if re.match(rf"{side}/layer_\d+/", name)})


def whisper_state_dict(source: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CTranslate2 WhisperSpec variables -> `WhisperForConditionalGeneration` state dict (float32)."""
    out: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(source, f"encoder/{conv}", f"model.encoder.{conv}", out)
    out["model.encoder.embed_positions.weight"] = source["encoder/position_encodings/encodings"]
    out["model.decoder.embed_positions.weight"] = source["decoder/position_encodings/encodings"]
    out["model.decoder.embed_tokens.weight"] = source["decoder/embeddings/weight"]
    for side in ("encoder", "decoder"):
        _norm(source, f"{side}/layer_norm", f"model.{side}.layer_norm", out)
        for i in range(_layer_count(source, side)):
            src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            _norm(source, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", out)
            _attention(f"{src}/self_attention", source, "qkv", f"{dst}.self_attn", out)
            if side == "decoder":
                _norm(source, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", out)
                _attention(f"{src}/attention", source, "q+kv", f"{dst}.encoder_attn", out)
            _norm(source, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", out)
            _linear(source, f"{src}/ffn/linear_0", f"{dst}.fc1", out)
            _linear(source, f"{src}/ffn/linear_1", f"{dst}.fc2", out)
    return {name: np.asarray(value, dtype=np.float32) for name, value in out.items()}


def whisper_config_kwargs(source: dict[str, np.ndarray]) -> dict[str, int]:
    """WhisperConfig dimensions read off the tensors."""
    d_model = source["encoder/conv1/weight"].shape[0]
    return {
        "d_model": int(d_model), "num_mel_bins": int(source["encoder/conv1/weight"].shape[1]),
        "encoder_layers": _layer_count(source, "encoder"), "decoder_layers": _layer_count(source, "decoder"),
        "encoder_attention_heads": int(source["encoder/num_heads"]), "decoder_attention_heads": int(source["decoder/num_heads"]),
        "encoder_ffn_dim": int(source["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(source["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "vocab_size": int(source["decoder/embeddings/weight"].shape[0]),
        "max_source_positions": int(source["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(source["decoder/position_encodings/encodings"].shape[0]),
    }  # fmt: skip


def convert_whisper(model_bin: Path, out: Path, special_ids: dict[str, int] | None = None) -> None:
    """Write a transformers `WhisperForConditionalGeneration` folder from a CTranslate2 Whisper model.bin."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    spec, variables = read_model_bin(model_bin)
    if spec != "WhisperSpec":
        raise ModelError(f"{model_bin}: a CTranslate2 {spec}, not a WhisperSpec")
    config = WhisperConfig(**whisper_config_kwargs(variables), **(special_ids or {}))
    model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(v.copy()) for k, v in whisper_state_dict(variables).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]  # tied to the token embedding
    if missing or unexpected:
        raise ModelError(f"{model_bin}: conversion left missing {missing[:3]} / unexpected {unexpected[:3]} weights")
    model.save_pretrained(str(out))
