"""An LM's weights read from a GGUF file with numpy (no torch, no transformers), under transformers' names.

    source = GgufWeights(path)                    # a WeightSource (export/fused_decoder.py)
    source.get("layers.0.self_attn.q_proj.weight")  # (out, in) float32, de-quantized when asked for

llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w (its norm multiplies by the weight
alone); transformers reads them as w and adds the 1 in the layer, so they are given back minus 1
here, as transformers' own GGUF loader does. Matrices are stored (out, in) as transformers has them;
llama.cpp reorders Llama's q/k rows for its rotary kernel; they are put back (`unpermute_rotary`);
Gemma's are stored as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simulsa.runtime.errors import SimulsaError

# GGUF tensor name (blk.N.x) -> transformers name relative to the decoder stack
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}  # fmt: skip
_GLOBAL_NAMES = {"token_embd": "embed_tokens", "output_norm": "norm", "output": "lm_head"}
# architectures whose norm weights llama.cpp stores as 1 + w (transformers' Gemma RMSNorm scales by 1 + w)
_NORM_PLUS_ONE = {"gemma", "gemma2", "gemma3"}
# architectures whose q/k rows llama.cpp reorders from rotary halves to interleaved pairs
_ROTARY_PERMUTED = {"llama"}
_Q8_0_BLOCK = 32  # Q8_0: blocks of one float16 scale + 32 int8 weights


class GgufWeights:
    def __init__(self, path: str | Path) -> None:
        from gguf import GGUFReader

        self.path = Path(path)
        try:
            self.reader = GGUFReader(str(self.path))
        except (OSError, ValueError) as err:
            raise SimulsaError(f"{str(self.path)!r} is not a readable GGUF file ({err}); pull the model again") from None
        fields = self.reader.fields
        # the reader parses every vocabulary entry into numpy views (~0.7 GB resident for Gemma's 262k tokens): keep
        # the tokens as plain strings and the other metadata's values, and let the parsed fields go
        self.metadata = {key: field.contents() for key, field in fields.items() if not key.startswith("tokenizer.ggml.")}
        self.vocabulary = list(fields["tokenizer.ggml.tokens"].contents()) if "tokenizer.ggml.tokens" in fields else None
        self.reader.fields = {}
        del fields
        self.architecture = self._field("general.architecture")
        self.tensors = {_hf_name(t.name): t for t in self.reader.tensors}

    def _field(self, key: str):
        if key not in self.metadata:
            raise SimulsaError(f"{self.path}: GGUF metadata has no {key}")
        return self.metadata[key]

    def has(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> np.ndarray:
        if name not in self.tensors:
            raise SimulsaError(f"{self.path}: the GGUF has no tensor for {name!r}")
        tensor = self.tensors[name]
        shape = tuple(int(d) for d in reversed(tensor.shape))  # GGUF lists the fastest dimension first
        array = _dequantize(self._stored(tensor), tensor.tensor_type).reshape(shape)
        if self.architecture in _NORM_PLUS_ONE and name.endswith("norm.weight"):
            array = array - np.float32(1.0)
        if self.architecture in _ROTARY_PERMUTED and name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = self._field(f"{self.architecture}.attention.head_count" + ("_kv" if "k_proj" in name else ""))
            array = unpermute_rotary(array, int(heads))
        return array

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a matrix, float32, de-quantizing only their bytes (a GGUF stores a matrix row by
        row): the 262k-row embedding table and tied head are built a block at a time, never whole in float32."""
        tensor = self.tensors.get(name)
        if tensor is None or len(tensor.shape) != 2 or self._transformed(name):
            return self.get(name)[start:stop]
        stored = self._stored(tensor, start, stop)
        return _dequantize(stored, tensor.tensor_type).reshape(stop - start, int(tensor.shape[0]))

    def _stored(self, tensor, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A tensor's stored rows [start, stop) read from the file into memory of their own. Through the reader's
        memory map every page read stays resident while the file is open: the whole ~300 MB GGUF by the build's end."""
        view = tensor.data  # a view of the memory map: its shape and dtype, no bytes read
        stop = view.shape[0] if stop is None else stop
        row_bytes = view.nbytes // max(view.shape[0], 1)
        buffer = bytearray((stop - start) * row_bytes)
        with self.path.open("rb") as file:
            file.seek(tensor.data_offset + start * row_bytes)
            if file.readinto(buffer) != len(buffer):
                raise SimulsaError(f"{self.path}: the file ends inside tensor {tensor.name}; pull the model again")
        return np.frombuffer(buffer, dtype=view.dtype).reshape((stop - start, *view.shape[1:]))

    def _transformed(self, name: str) -> bool:
        """Whether `get` changes the stored values (norms minus one, rotary rows put back): `rows` does not."""
        plus_one = self.architecture in _NORM_PLUS_ONE and name.endswith("norm.weight")
        return plus_one or (self.architecture in _ROTARY_PERMUTED and name.endswith(("q_proj.weight", "k_proj.weight")))

    def tokens(self) -> list[str]:
        if self.vocabulary is None:
            raise SimulsaError(f"{self.path}: GGUF metadata has no tokenizer.ggml.tokens")
        return list(self.vocabulary)


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """transformers' (out, in) q/k rows -> llama.cpp's order (what its converter writes for Llama)."""
    out = weight.shape[0]
    return weight.reshape(heads, 2, out // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def unpermute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of `permute_rotary`: llama.cpp's q/k rows back in transformers' order."""
    out = weight.shape[0]
    return weight.reshape(heads, out // heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _hf_name(gguf_name: str) -> str:
    layer = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", gguf_name)
    if layer and layer.group(2) in _LAYER_NAMES:
        return f"layers.{layer.group(1)}.{_LAYER_NAMES[layer.group(2)]}.{layer.group(3)}"
    stem, _, kind = gguf_name.rpartition(".")
    return f"{_GLOBAL_NAMES.get(stem, stem)}.{kind}"


def _dequantize(data: np.ndarray, tensor_type) -> np.ndarray:
    """float32, flat. Q8_0 (Gemma's 262k-row table) by a vectorised path: gguf's generic one takes ~17 s for it."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    if tensor_type == GGMLQuantizationType.Q8_0:
        return _dequantize_q8_0(np.asarray(data, dtype=np.uint8).reshape(-1, 2 + _Q8_0_BLOCK)).reshape(-1)
    return np.asarray(dequantize(data, tensor_type), dtype=np.float32).reshape(-1)


def _dequantize_q8_0(blocks: np.ndarray) -> np.ndarray:
    """(n_blocks, 34) uint8 -> (n_blocks, 32) float32; one float32 copy (the int8 -> float32 product written in place)."""
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    values = blocks[:, 2:].view(np.int8).astype(np.float32)
    values *= scales
    return values
