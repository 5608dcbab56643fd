"""The LM as one fused onnxruntime graph written from its weights: numpy + onnx, no torch.

onnxruntime-genai's model builder is the model for this (its graphs are built from fused
contrib ops); writing the graph here keeps it torch-free (the default builds on a runtime-only
install) and lets the bundle describe it. One layer:

    x ─► [Skip]SimplifiedLayerNorm ─► MatMulNBits(q|k|v) ─► Split ─► (q/k RMSNorm, Gemma)
        ─► GroupQueryAttention(rotary inside; past and present share one buffer) ─► MatMulNBits(o)
        ─► (post-attention norm, Gemma) ─► SkipSimplifiedLayerNorm ─► MatMulNBits(gate|up) ─► act(gate) * up
        ─► MatMulNBits(down) ─► (post-MLP norm, Gemma) ─► next layer's SkipSimplifiedLayerNorm

Graph inputs and outputs (names in runtime/bundle.py):

    inputs_embeds (B, S, H) float32 ──────────────┐
    seqlens_k (B,) int32: total length - 1 per row ┤
    total_sequence_length () int32: max over rows ─┼─► logits (B, 1, V): the last position only
    past_key_values.{i}.key|value (B, KV, M, D) ───┘   present.{i}.key|value: the same buffers, written in place

With `dtype="float16"` attention, MLP and head compute in half precision and the K/V buffers are float16,
as the CUDA provider's GroupQueryAttention needs; the residual stream and its norms stay float32 (Gemma 3's
residual passes float16's range), with a Cast at each block's edges.

M is the buffer the runtime allocates and binds to both past and present (IO binding): a step
writes only its S new positions, so no past is copied, and "roll back to a prefix" is a smaller
length. onnxruntime's GroupQueryAttention takes S > 1 on top of a past only for B = 1, so batched
calls are single-token steps (or first prompts).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from simulsa.export.lm_architecture import LmArchitecture
from simulsa.runtime.bundle import (
    FUSED_INPUTS,
    PAST_KEY,
    PAST_VALUE,
    PRESENT_KEY,
    PRESENT_VALUE,
)
from simulsa.runtime.bundle_records import DECODER_DTYPES
from simulsa.runtime.errors import SimulsaError

DECODER_OPSET = 17
MS_DOMAIN = "com.microsoft"
WEIGHT_BITS = {"none": 0, "int8": 8, "int4": 4}  # quantization mode -> MatMulNBits bits (0: fp32 MatMul)
EXTERNAL_DATA_ABOVE = 1_800_000_000  # bytes of weights past which they go to a side file (protobuf stops at 2 GB)
DATA_ALIGNMENT = 4096  # side-file offsets aligned so onnxruntime can map each tensor directly


@dataclasses.dataclass(frozen=True)
class FusedDecoderOptions:
    quantize: str = "none"  # none | int8 | int4: MatMulNBits weights (the head included)
    block_size: int = 32  # weights per scale along the input dimension (MatMulNBits block)
    accuracy_level: int = 4  # MatMulNBits: 4 = int8 activations and int8 dot products on the CPU
    max_length: int = 4096  # positions the rotary tables cover: the longest sequence the graph can decode
    head_quantize: str | None = None  # the output head's own mode (e.g. int8 over int4 layers); None: `quantize`
    keep_fp32: tuple[str, ...] = ()  # regexes on projection names (e.g. "lm_head", "layers\\.0\\.") kept as fp32 MatMul
    dtype: str = "float32"  # float16: half activations and K/V (onnxruntime's CUDA GroupQueryAttention needs it)

    def __post_init__(self) -> None:
        for name, mode in (("quantize", self.quantize), ("head_quantize", self.head_quantize or self.quantize)):
            if mode not in WEIGHT_BITS:
                raise SimulsaError(f"{name} must be one of {', '.join(WEIGHT_BITS)}, got {mode!r}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise SimulsaError(f"block_size must be a power of two >= 16, got {self.block_size}")
        if self.max_length < 16:
            raise SimulsaError(f"max_length must be at least 16, got {self.max_length}")
        if self.dtype not in DECODER_DTYPES:
            raise SimulsaError(f"dtype must be one of {', '.join(DECODER_DTYPES)}, got {self.dtype!r}")


class WeightSource(Protocol):
    """An LM's weights by transformers name relative to the decoder stack: `layers.0.self_attn.q_proj.weight`,
    `embed_tokens.weight`, `norm.weight`, `lm_head.weight` (float32 arrays, read when asked for)."""

    def get(self, name: str) -> np.ndarray: ...

    def has(self, name: str) -> bool: ...


ROW_BLOCK = 16384  # rows of a vocabulary-sized matrix handled at a time: 16k x 640 float32 = 42 MB for Gemma 3 270M


def row_blocks(weights: WeightSource, name: str, rows: int, block: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(start, rows (n, K) float32) over a matrix, a block at a time. A source that reads rows (`rows(name, start,
    stop)`: the GGUF) never holds the matrix in float32 whole; any other is read once and sliced."""
    block = block or ROW_BLOCK
    read_rows = getattr(weights, "rows", None)
    whole = None if read_rows else weights.get(name)
    if whole is not None and whole.shape[0] != rows:
        raise SimulsaError(f"{name} has {whole.shape[0]} rows, the LM's config says {rows}; export from a matching config")
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        yield start, (read_rows(name, start, stop) if read_rows else whole[start:stop])


class StateDictSource:
    """Weights from a full state dict (any prefix: `model.`, `model.language_model.`, ...), converted on demand."""

    def __init__(self, tensors: Mapping[str, object], to_numpy: Callable[[object], np.ndarray] = np.asarray) -> None:
        self.tensors, self.to_numpy = tensors, to_numpy
        self.names = {self._relative(name): name for name in tensors}

    @staticmethod
    def _relative(name: str) -> str:
        if name.startswith("lm_head.") or ".lm_head." in name:
            return "lm_head." + name.rsplit("lm_head.", 1)[1]
        for anchor in ("layers.", "embed_tokens.", "norm."):
            index = name.find(anchor)
            if index == 0 or (index > 0 and name[index - 1] == "."):
                return name[index:]
        return name

    def has(self, name: str) -> bool:
        return name in self.names

    def get(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise SimulsaError(f"the LM's weights have no {name!r}")
        return np.asarray(self.to_numpy(self.tensors[self.names[name]]), dtype=np.float32)


class _GraphWriter:
    """Nodes and initializers with hierarchical names; weights inline or streamed into a side file.

    Floating constants are stored in the graph's compute dtype (scales, rotary tables, biases and fp32-kept
    weights follow the activations they meet) unless a caller names another (the residual stream's norms)."""

    def __init__(self, data_path: Path | None, float_dtype: type = np.float32) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.data_path = data_path
        self.data = data_path.open("wb") if data_path else None
        self.float_dtype = float_dtype

    def constant(self, name: str, array: np.ndarray, float_dtype: type | None = None) -> str:
        """`array` as an initializer; a floating one in `float_dtype` (default: the graph's compute dtype)."""
        from onnx import TensorProto, numpy_helper

        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(float_dtype or self.float_dtype)
        array = np.ascontiguousarray(array)
        if self.data is None or array.nbytes < 1024:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        tensor = TensorProto(name=name, dims=list(array.shape), data_type=_onnx_type(array.dtype),
                             data_location=TensorProto.EXTERNAL)  # fmt: skip
        offset = -self.data.tell() % DATA_ALIGNMENT
        self.data.write(b"\0" * offset)
        start = self.data.tell()
        self.data.write(array.tobytes())
        for key, value in (("location", self.data_path.name), ("offset", str(start)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(tensor)
        return name

    def node(self, op: str, inputs: list[str], name: str, outputs: int | list[str] = 1, domain: str = "", **attrs) -> list[str]:
        from onnx import helper

        names = outputs if isinstance(outputs, list) else [f"{name}/output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=name, domain=domain, **attrs))
        return names

    def close(self) -> None:
        if self.data:
            self.data.close()


def _onnx_type(dtype: np.dtype) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def quantize_blocks(weight: np.ndarray, bits: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) float32 Linear weight -> MatMulNBits' packed (N, K/block, block*bits/8) uint8 and scales (N * K/block,).

    onnxruntime's own block quantizer (the kernel its MatMulNBitsQuantizer calls), symmetric.
    """
    from onnxruntime.capi import _pybind_state as ort_c

    n, k = weight.shape
    k_blocks = -(-k // block_size)
    source = np.zeros((k_blocks * block_size, n), dtype=np.float32)  # (K padded, N): the quantizer reads B of x @ B
    source[:k] = weight.T
    packed = np.zeros((n, k_blocks, block_size * bits // 8), dtype=np.uint8)
    scales = np.zeros((n, k_blocks), dtype=np.float32)
    zero_points = np.zeros((n, -(-k_blocks // (8 // bits))), dtype=np.uint8)  # unused when symmetric
    quantize = {8: ort_c.quantize_matmul_8bits, 4: ort_c.quantize_matmul_4bits}[bits]
    quantize(packed, source, scales, zero_points, block_size, n, k, True)
    return packed, scales.reshape(-1)


class _DecoderBuilder:
    def __init__(self, arch: LmArchitecture, weights: WeightSource, options: FusedDecoderOptions, out: _GraphWriter) -> None:
        self.arch, self.weights, self.options, self.g = arch, weights, options, out
        self.bits = WEIGHT_BITS[options.quantize]
        self.kept_fp32: list[str] = []  # node names kept in fp32 by request
        self.rotary: dict[float, tuple[str, str]] = {}  # rotary base -> its (cos, sin) tables, shared by its layers

    # ---- pieces ---------------------------------------------------------------------------

    def linear(self, x: str, weight: np.ndarray, name: str, bits: int | None = None) -> str:
        """x (..., K) @ weight.T -> (..., N); weight (N, K) as transformers stores it; `bits` overrides the mode's."""
        n, k = weight.shape
        bits = self.bits if bits is None else bits
        if not bits or any(re.search(pattern, name) for pattern in self.options.keep_fp32):
            w = self.g.constant(f"{name}.weight", np.ascontiguousarray(weight.T))  # (K, N)
            if bits:
                self.kept_fp32.append(f"{name}/MatMul")
            return self.g.node("MatMul", [x, w], f"{name}/MatMul")[0]
        packed, scales = quantize_blocks(weight, bits, self.options.block_size)
        return self.quantized(x, packed, scales, n, k, name, bits)

    def blocked_linear(self, x: str, weight_name: str, n: int, k: int, name: str, bits: int | None) -> str:
        """`linear` for a vocabulary-sized matrix (the head): quantized a block of rows at a time, so its float32 copy
        and the quantizer's transposed one are never whole (0.7 + 0.7 GB for Gemma's tied 262k x 640 head)."""
        if not bits or any(re.search(pattern, name) for pattern in self.options.keep_fp32):
            return self.linear(x, self.weights.get(weight_name), name, bits)
        k_blocks = -(-k // self.options.block_size)
        packed = np.empty((n, k_blocks, self.options.block_size * bits // 8), dtype=np.uint8)
        scales = np.empty((n, k_blocks), dtype=np.float32)
        for start, rows in row_blocks(self.weights, weight_name, n):
            packed[start : start + len(rows)], block_scales = quantize_blocks(rows, bits, self.options.block_size)
            scales[start : start + len(rows)] = block_scales.reshape(len(rows), k_blocks)
        return self.quantized(x, packed, scales.reshape(-1), n, k, name, bits)

    def quantized(self, x: str, packed: np.ndarray, scales: np.ndarray, n: int, k: int, name: str, bits: int) -> str:
        inputs = [x, self.g.constant(f"{name}.weight_q{bits}", packed), self.g.constant(f"{name}.scales", scales)]
        return self.g.node("MatMulNBits", inputs, f"{name}/MatMulNBits", domain=MS_DOMAIN, K=k, N=n, bits=bits,
                           block_size=self.options.block_size, accuracy_level=self.options.accuracy_level)[0]  # fmt: skip

    def gamma(self, name: str, dtype: type = np.float32) -> str:
        return self.g.constant(name, self.weights.get(name) + self.arch.traits.norm_offset, dtype)

    def rms_norm(self, x: str, weight: str, name: str, dtype: type = np.float32) -> str:
        """RMSNorm of x, which is `dtype` (float32: the residual stream's norms, whatever the compute dtype)."""
        return self.g.node("SimplifiedLayerNormalization", [x, self.gamma(weight, dtype)], f"{name}/SimplifiedLayerNorm",
                           axis=-1, epsilon=self.arch.rms_eps)[0]  # fmt: skip

    def skip_norm(self, x: str, residual: str, weight: str, name: str) -> tuple[str, str]:
        """(normed x + residual, x + residual): the residual add fused with the next norm."""
        out, _, _, total = self.g.node("SkipSimplifiedLayerNormalization", [x, residual, self.gamma(weight)],
                                       f"{name}/SkipSimplifiedLayerNorm", outputs=4, domain=MS_DOMAIN,
                                       epsilon=self.arch.rms_eps)  # fmt: skip
        return out, total

    def head_norm(self, x: str, heads: int, weight: str, name: str) -> str:
        """Gemma's q/k norm: RMSNorm over each head's D values. (B, S, heads*D) -> same shape."""
        d = self.arch.head_dim
        heads_shape = self.g.constant(f"{name}.heads_shape", np.array([0, 0, heads, d]))
        split = self.g.node("Reshape", [x, heads_shape], f"{name}/Reshape")[0]
        normed = self.rms_norm(split, weight, name, self.g.float_dtype)  # inside the block: the compute dtype
        return self.g.node("Reshape", [normed, self.g.constant(f"{name}.flat_shape", np.array([0, 0, heads * d]))],
                           f"{name}/Reshape_back")[0]  # fmt: skip

    def rotary_tables(self, theta: float) -> tuple[str, str]:
        if theta in self.rotary:
            return self.rotary[theta]
        name, d = f"rotary.theta_{theta:g}", self.arch.head_dim
        inverse = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)  # (D/2,)
        angles = (np.arange(self.options.max_length, dtype=np.float64) / self.arch.rope_factor)[:, None] * inverse  # (M, D/2)
        self.rotary[theta] = (self.g.constant(f"{name}.cos", np.cos(angles).astype(np.float32)),
                              self.g.constant(f"{name}.sin", np.sin(angles).astype(np.float32)))  # fmt: skip
        return self.rotary[theta]

    # ---- blocks ---------------------------------------------------------------------------

    def attention(self, i: int, x: str) -> str:
        arch, w, prefix = self.arch, self.weights, f"layers.{i}.self_attn"
        projections = ("q_proj", "k_proj", "v_proj")
        qkv = self.linear(x, np.concatenate([w.get(f"{prefix}.{p}.weight") for p in projections]), f"{prefix}.qkv_proj")
        if arch.traits.qkv_bias:
            bias = np.concatenate([w.get(f"{prefix}.{p}.bias") for p in projections])
            qkv = self.g.node("Add", [qkv, self.g.constant(f"{prefix}.qkv_proj.bias", bias)], f"{prefix}/qkv_bias")[0]
        q_width, kv_width = arch.num_heads * arch.head_dim, arch.num_kv_heads * arch.head_dim
        q, k, v = self.g.node("Split", [qkv, self.g.constant(f"{prefix}.qkv_split", np.array([q_width, kv_width, kv_width]))],
                              f"{prefix}/Split", outputs=3, axis=-1)  # fmt: skip
        if arch.traits.qk_norm:
            q = self.head_norm(q, arch.num_heads, f"{prefix}.q_norm.weight", f"{prefix}.q_norm")
            k = self.head_norm(k, arch.num_kv_heads, f"{prefix}.k_norm.weight", f"{prefix}.k_norm")
        cos, sin = self.rotary_tables(arch.rope_thetas[i])
        inputs = [q, k, v, PAST_KEY.format(i), PAST_VALUE.format(i), *FUSED_INPUTS[1:], cos, sin]
        out, _, _ = self.g.node("GroupQueryAttention", inputs, f"{prefix}/GroupQueryAttention",
                                outputs=[f"{prefix}/attn_out", PRESENT_KEY.format(i), PRESENT_VALUE.format(i)],
                                domain=MS_DOMAIN, num_heads=arch.num_heads, kv_num_heads=arch.num_kv_heads,
                                scale=arch.attn_scale, do_rotary=1, rotary_interleaved=0,
                                local_window_size=arch.windows[i])  # fmt: skip
        return self.linear(out, w.get(f"{prefix}.o_proj.weight"), f"{prefix}.o_proj")

    def mlp(self, i: int, x: str) -> str:
        w, prefix = self.weights, f"layers.{i}.mlp"
        gate_up = self.linear(x, np.concatenate([w.get(f"{prefix}.gate_proj.weight"), w.get(f"{prefix}.up_proj.weight")]),
                              f"{prefix}.gate_up_proj")  # fmt: skip
        halves = self.g.constant(f"{prefix}.gate_up_split", np.array([self.arch.intermediate_size] * 2))
        gate, up = self.g.node("Split", [gate_up, halves], f"{prefix}/Split", outputs=2, axis=-1)
        activated = ACTIVATION_NODES[self.arch.traits.activation](self.g, gate, prefix)
        product = self.g.node("Mul", [activated, up], f"{prefix}/Mul")[0]
        return self.linear(product, w.get(f"{prefix}.down_proj.weight"), f"{prefix}.down_proj")

    def head(self, x: str) -> str:
        """(B, S, H) -> (B, 1, V): the last position's logits."""
        slice_of_last = (("starts", -1), ("ends", 2**62), ("axes", 1))
        bounds = [self.g.constant(f"last.{key}", np.array([value])) for key, value in slice_of_last]
        last = self.g.node("Slice", [x, *bounds], "last_position/Slice")[0]
        name = "lm_head.weight" if self.weights.has("lm_head.weight") else "embed_tokens.weight"  # tied: the same tensor
        head_bits = WEIGHT_BITS[self.options.head_quantize or self.options.quantize]
        return self.blocked_linear(last, name, self.arch.vocab_size, self.arch.hidden_size, "lm_head", head_bits)

    def build(self) -> str:
        """The layers and the head. The residual stream and its norms stay float32 whatever the compute dtype (Gemma
        3 270M's residual reaches 1e5, past float16's 65,504); attention, MLP and head compute in it, cast at their
        edges. Embeddings in and logits out are float32."""
        arch, sandwich = self.arch, self.arch.traits.sandwich_norms
        residual = FUSED_INPUTS[0]
        x = self.rms_norm(residual, "layers.0.input_layernorm.weight", "layers.0.input_layernorm")
        for i in range(arch.num_layers):
            attn = self.to_stream(self.attention(i, self.to_compute(x, f"layers.{i}.self_attn")), f"layers.{i}.self_attn")
            if sandwich:
                attn = self.rms_norm(attn, f"layers.{i}.post_attention_layernorm.weight", f"layers.{i}.post_attention_layernorm")
            pre_mlp = f"layers.{i}.pre_feedforward_layernorm" if sandwich else f"layers.{i}.post_attention_layernorm"
            x, residual = self.skip_norm(attn, residual, f"{pre_mlp}.weight", pre_mlp)
            mlp = self.to_stream(self.mlp(i, self.to_compute(x, f"layers.{i}.mlp")), f"layers.{i}.mlp")
            if sandwich:
                mlp = self.rms_norm(mlp, f"layers.{i}.post_feedforward_layernorm.weight", f"layers.{i}.post_feedforward_layernorm")
            following = f"layers.{i + 1}.input_layernorm" if i + 1 < arch.num_layers else "norm"
            x, residual = self.skip_norm(mlp, residual, f"{following}.weight", following)
        return self.to_stream(self.head(self.to_compute(x, "lm_head")), "lm_head")

    def to_compute(self, x: str, name: str) -> str:
        """A float32 stream value into a block's compute dtype (no node in a float32 graph)."""
        return self.cast(x, self.g.float_dtype, f"{name}/Cast_in")

    def to_stream(self, x: str, name: str) -> str:
        """A block's output back to float32 (no node in a float32 graph)."""
        return self.cast(x, np.float32, f"{name}/Cast_out")

    def cast(self, x: str, dtype: type, name: str) -> str:
        if self.g.float_dtype == np.float32:
            return x
        return self.g.node("Cast", [x], name, to=_onnx_type(dtype))[0]


def _silu(g: _GraphWriter, x: str, prefix: str) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x], f"{prefix}/Sigmoid")[0]], f"{prefix}/SiLU")[0]


def _gelu_tanh(g: _GraphWriter, x: str, prefix: str) -> str:
    return g.node("FastGelu", [x], f"{prefix}/FastGelu", domain=MS_DOMAIN)[0]  # the tanh approximation


ACTIVATION_NODES: dict[str, Callable[[_GraphWriter, str, str], str]] = {"silu": _silu, "gelu_tanh": _gelu_tanh}


def weight_bytes(arch: LmArchitecture, options: FusedDecoderOptions) -> int:
    bits = WEIGHT_BITS[options.quantize] or np.dtype(DECODER_DTYPES[options.dtype]).itemsize * 8
    return arch.parameter_count() * bits // 8


def build_fused_decoder(arch: LmArchitecture, weights: WeightSource, options: FusedDecoderOptions, path: Path
                        ) -> tuple[list[str], list[str]]:  # fmt: skip
    """Write the decoder graph to `path` (+ `path`.data when the weights pass ~1.8 GB).

    Returns the files written and the nodes kept in fp32 by `keep_fp32`."""
    import onnx
    from onnx import TensorProto, helper

    external = weight_bytes(arch, options) > EXTERNAL_DATA_ABOVE
    writer = _GraphWriter(path.with_name(path.name + ".data") if external else None, DECODER_DTYPES[options.dtype])
    try:
        builder = _DecoderBuilder(arch, weights, options, writer)
        builder.build()
    finally:
        writer.close()
    writer.nodes[-1].output[0] = "logits"  # the head's product is the graph output
    kv_shape = ["batch", arch.num_kv_heads, "max_length", arch.head_dim]
    kv_type = _onnx_type(DECODER_DTYPES[options.dtype])
    embeds, seqlens, total = FUSED_INPUTS
    inputs = [helper.make_tensor_value_info(embeds, TensorProto.FLOAT, ["batch", "new", arch.hidden_size]),
              helper.make_tensor_value_info(seqlens, TensorProto.INT32, ["batch"]),
              helper.make_tensor_value_info(total, TensorProto.INT32, [])]  # fmt: skip
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, arch.vocab_size])]
    for i in range(arch.num_layers):
        for past, present in ((PAST_KEY, PRESENT_KEY), (PAST_VALUE, PRESENT_VALUE)):
            inputs.append(helper.make_tensor_value_info(past.format(i), kv_type, kv_shape))
            outputs.append(helper.make_tensor_value_info(present.format(i), kv_type, kv_shape))
    graph = helper.make_graph(writer.nodes, "simulsa_fused_decoder", inputs, outputs, writer.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DECODER_OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
                              producer_name="simulsa")  # fmt: skip
    model.ir_version = 8  # onnxruntime 1.17+ reads it; newer IR versions buy nothing here
    onnx.save_model(model, str(path))
    return [path.name] + ([writer.data_path.name] if external else []), builder.kept_fp32
