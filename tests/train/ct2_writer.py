"""Write a CTranslate2 WhisperSpec model.bin from transformers weights (the inverse of the converter, for tests)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}


def _string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack("<H", len(data)) + data


def write_model_bin(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str]) -> None:
    out = [struct.pack("<I", 6), _string("WhisperSpec"), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, array in variables.items():
        out += [_string(name), struct.pack("<B", array.ndim), struct.pack("<" + "I" * array.ndim, *array.shape),
                struct.pack("<B", DTYPE_CODES[array.dtype]), struct.pack("<I", array.nbytes), array.tobytes()]  # fmt: skip
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [_string(alias), _string(target)]
    Path(path).write_bytes(b"".join(out))


def whisper_to_ct2(state: dict[str, np.ndarray], config, dtype=np.float16) -> dict[str, np.ndarray]:
    """transformers Whisper state dict -> CTranslate2 variable names (fused attention, zero key bias)."""
    v: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(v, state, f"model.encoder.{conv}", f"encoder/{conv}")
    v["encoder/position_encodings/encodings"] = state["model.encoder.embed_positions.weight"]
    v["decoder/position_encodings/encodings"] = state["model.decoder.embed_positions.weight"]
    v["decoder/embeddings/weight"] = state["model.decoder.embed_tokens.weight"]
    for side, layers in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        _norm(v, state, f"model.{side}.layer_norm", f"{side}/layer_norm")
        for i in range(layers):
            src, dst = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            _norm(v, state, f"{src}.self_attn_layer_norm", f"{dst}/self_attention/layer_norm")
            a = f"{src}.self_attn"
            v[f"{dst}/self_attention/linear_0/weight"] = np.concatenate([state[f"{a}.{p}_proj.weight"] for p in "qkv"])
            zero = np.zeros_like(state[f"{a}.q_proj.bias"])
            v[f"{dst}/self_attention/linear_0/bias"] = np.concatenate([state[f"{a}.q_proj.bias"], zero, state[f"{a}.v_proj.bias"]])
            _linear(v, state, f"{a}.out_proj", f"{dst}/self_attention/linear_1")
            if side == "decoder":
                _norm(v, state, f"{src}.encoder_attn_layer_norm", f"{dst}/attention/layer_norm")
                c = f"{src}.encoder_attn"
                _linear(v, state, f"{c}.q_proj", f"{dst}/attention/linear_0")
                v[f"{dst}/attention/linear_1/weight"] = np.concatenate([state[f"{c}.k_proj.weight"], state[f"{c}.v_proj.weight"]])
                value_bias = state[f"{c}.v_proj.bias"]
                v[f"{dst}/attention/linear_1/bias"] = np.concatenate([np.zeros_like(value_bias), value_bias])
                _linear(v, state, f"{c}.out_proj", f"{dst}/attention/linear_2")
            _norm(v, state, f"{src}.final_layer_norm", f"{dst}/ffn/layer_norm")
            _linear(v, state, f"{src}.fc1", f"{dst}/ffn/linear_0")
            _linear(v, state, f"{src}.fc2", f"{dst}/ffn/linear_1")
    out = {k: np.ascontiguousarray(x.astype(dtype)) for k, x in v.items()}
    out["encoder/num_heads"] = np.array(config.encoder_attention_heads, dtype=np.int16)
    out["decoder/num_heads"] = np.array(config.decoder_attention_heads, dtype=np.int16)
    return out


def _norm(v, state, src, dst):
    v[f"{dst}/gamma"], v[f"{dst}/beta"] = state[f"{src}.weight"], state[f"{src}.bias"]


def _linear(v, state, src, dst):
    v[f"{dst}/weight"], v[f"{dst}/bias"] = state[f"{src}.weight"], state[f"{src}.bias"]
