"""whisper-tokens' three ear graphs written from numpy weights (no torch), the same graphs export/ear_wrappers.py traces.

    mel (1, M, F) ──► audio_encoder ──► cross.{i}.key|value (1, heads, F/2, hd)
    input_ids (1, T) + self_past.{i}.* (1, heads, P, hd) + cross ──► ear_decoder ──► top_logits, top_ids (1, T, k),
                                                                                   hidden (1, T, D), self_present.{i}.*
    h_pred, h_read (n, D) + top_logits, top_ids (n, k) ──► projector ──► audio_embeds (n, H)

Weights by transformers' Whisper names (`model.encoder.layers.0.self_attn.q_proj.weight`, ...; what
train/pretrained/ctranslate2.py reads from a CTranslate2 model.bin) and the projector's own
(`log_temperature`, `mlp.0.weight`, ..., `table` (V, H) float16). Input and output names are the
wrappers' (SELF_PAST_KEY, ...), so a bundle built here is read exactly like a traced one; the test
checks the two against each other.

With `int8=True` (what an int8 bundle ships): every MatMul weight in 8-bit blocks (onnxruntime MatMulNBits, as the
LM decoder's), and the token tables (Whisper's 51,865 x 512 in the decoder, the projector's 51,865 x H) as int8 rows
with a float32 scale per row. Whisper's tied table is then written twice, as int8 rows to gather and as the head's
8-bit matrix: 26 + 27 MB instead of one 106 MB float32 copy. Measured on the default (docs/performance.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from simulsa.export.fused_decoder import _GraphWriter
from simulsa.export.quantize import ENCODER_BITS, QuantizeOptions, quantize_embeddings, quantize_graph
from simulsa.runtime.bundle_records import GraphIO

SELF_PAST_KEY, SELF_PAST_VALUE = "self_past.{}.key", "self_past.{}.value"
SELF_PRESENT_KEY, SELF_PRESENT_VALUE = "self_present.{}.key", "self_present.{}.value"
CROSS_KEY, CROSS_VALUE = "cross.{}.key", "cross.{}.value"
TOP_K = 8
ONNX_OPSET = 17
LAYER_NORM_EPS = 1e-5  # Whisper's


@dataclasses.dataclass(frozen=True)
class WhisperShape:
    d_model: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    n_mels: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @classmethod
    def from_config(cls, config: Mapping) -> WhisperShape:
        """From a transformers WhisperConfig dict (config.json)."""
        return cls(d_model=config["d_model"], heads=config["decoder_attention_heads"], encoder_layers=config["encoder_layers"],
                   decoder_layers=config["decoder_layers"], n_mels=config["num_mel_bins"])  # fmt: skip


class _Ops:
    """Small graph vocabulary over a _GraphWriter: names are hierarchical, as the exporter's are."""

    def __init__(self, weights: Mapping[str, np.ndarray], shape: WhisperShape) -> None:
        self.w, self.shape, self.g = weights, shape, _GraphWriter(None)

    def const(self, name: str, array: np.ndarray) -> str:
        return self.g.constant(name, np.ascontiguousarray(array))

    def op(self, op: str, inputs: list[str], name: str, outputs: int | list[str] = 1, domain: str = "", **attrs) -> str:
        return self.g.node(op, inputs, name, outputs, domain, **attrs)[0]

    def linear(self, x: str, prefix: str) -> str:
        """x (..., K) @ W.T (+ b): W (N, K) as transformers stores it."""
        y = self.op("MatMul", [x, self.const(f"{prefix}.weight_t", self.w[f"{prefix}.weight"].T)], f"/{prefix}/MatMul")
        if f"{prefix}.bias" in self.w:
            y = self.op("Add", [y, self.const(f"{prefix}.bias", self.w[f"{prefix}.bias"])], f"/{prefix}/Add")
        return y

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op("LayerNormalization", [x, self.const(f"{prefix}.weight", self.w[f"{prefix}.weight"]),
                                              self.const(f"{prefix}.bias", self.w[f"{prefix}.bias"])],
                       f"/{prefix}/LayerNorm", axis=-1, epsilon=LAYER_NORM_EPS)  # fmt: skip

    def gelu(self, x: str, name: str) -> str:
        """The exact (erf) GELU, as torch's default: 0.5 x (1 + erf(x / sqrt 2))."""
        scaled = self.op("Mul", [x, self.const(f"{name}.inv_sqrt2", np.array(2**-0.5, np.float32))], f"{name}/Mul")
        erf = self.op("Erf", [scaled], f"{name}/Erf")
        one_plus = self.op("Add", [erf, self.const(f"{name}.one", np.array(1.0, np.float32))], f"{name}/Add")
        half_x = self.op("Mul", [x, self.const(f"{name}.half", np.array(0.5, np.float32))], f"{name}/Mul_half")
        return self.op("Mul", [half_x, one_plus], f"{name}/Mul_out")

    def heads(self, x: str, name: str) -> str:
        """(1, L, D) -> (1, heads, L, hd)."""
        split = self.op("Reshape", [x, self.const(f"{name}.shape", np.array([0, 0, self.shape.heads, self.shape.head_dim]))],
                        f"{name}/Reshape")  # fmt: skip
        return self.op("Transpose", [split], f"{name}/Transpose", perm=[0, 2, 1, 3])

    def merge(self, x: str, name: str) -> str:
        """(1, heads, L, hd) -> (1, L, D)."""
        moved = self.op("Transpose", [x], f"{name}/Transpose", perm=[0, 2, 1, 3])
        return self.op("Reshape", [moved, self.const(f"{name}.shape", np.array([0, 0, self.shape.d_model]))], f"{name}/Reshape")

    def attend(self, query: str, key: str, value: str, mask: str | None, name: str) -> str:
        """Scaled query (1, h, T, hd) over key/value (1, h, S, hd) -> (1, T, D)."""
        key_t = self.op("Transpose", [key], f"{name}/Transpose_k", perm=[0, 1, 3, 2])
        scores = self.op("MatMul", [query, key_t], f"{name}/MatMul_scores")  # (1, h, T, S)
        if mask is not None:
            scores = self.op("Add", [scores, mask], f"{name}/Add_mask")
        weights = self.op("Softmax", [scores], f"{name}/Softmax", axis=-1)
        return self.merge(self.op("MatMul", [weights, value], f"{name}/MatMul_values"), name)

    def scaled_query(self, h: str, prefix: str) -> str:
        query = self.linear(h, f"{prefix}.q_proj")
        scale = self.const(f"{prefix}.scaling", np.array(self.shape.head_dim**-0.5, np.float32))
        return self.heads(self.op("Mul", [query, scale], f"/{prefix}/Mul_scale"), f"/{prefix}/q_heads")

    def int8_rows(self, table: np.ndarray, ids: str, name: str) -> str:
        """table[ids] from int8 rows x a float32 scale per row: ids (...) -> (..., D) float32."""
        from onnx import TensorProto

        rows, scales = quantize_embeddings(table.astype(np.float32))  # (V, D) int8, (V,)
        gathered = self.op("Cast", [self.op("Gather", [self.const(f"{name}.int8", rows), ids], f"{name}/Gather")],
                           f"{name}/Cast", to=TensorProto.FLOAT)  # fmt: skip
        scale = self.op("Gather", [self.const(f"{name}.scales", scales), ids], f"{name}/Gather_scales")
        axis = self.const(f"{name}.axis", np.array([-1], np.int64))
        return self.op("Mul", [gathered, self.op("Unsqueeze", [scale, axis], f"{name}/Unsqueeze")], f"{name}/Mul")

    def shape_of(self, x: str, axis: int, name: str) -> str:
        """x.shape[axis] as a (1,) int64 tensor."""
        return self.op("Shape", [x], f"{name}/Shape", start=axis, end=axis + 1)

    def save(self, path: Path, inputs: list, outputs: list, name: str) -> None:
        import onnx
        from onnx import helper

        graph = helper.make_graph(self.g.nodes, name, inputs, outputs, initializer=self.g.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="simulsa")
        model.ir_version = 8
        onnx.save(model, str(path))


def _value(name: str, dtype: int, dims: list) -> object:
    from onnx import helper

    return helper.make_tensor_value_info(name, dtype, dims)


def _in_8_bits(path: Path) -> None:
    """Replace the graph at `path` by its copy with every constant MatMul weight in 8-bit blocks."""
    partial = path.with_name(path.name + ".partial")
    quantize_graph(path, partial, QuantizeOptions(mode="int8"), bits=ENCODER_BITS)
    partial.replace(path)


def build_ear_encoder(weights: Mapping[str, np.ndarray], shape: WhisperShape, path: Path, int8: bool = False) -> GraphIO:
    """mel (1, M, F) -> cross-attention K/V of every decoder layer over the encoder's F/2 states."""
    from onnx import TensorProto

    o = _Ops(weights, shape)
    enc = "model.encoder"
    x = o.op("Conv", ["mel", o.const(f"{enc}.conv1.weight", weights[f"{enc}.conv1.weight"]),
                      o.const(f"{enc}.conv1.bias", weights[f"{enc}.conv1.bias"])], "/encoder/conv1/Conv", pads=[1, 1])  # fmt: skip
    x = o.gelu(x, "/encoder/gelu1")
    x = o.op("Conv", [x, o.const(f"{enc}.conv2.weight", weights[f"{enc}.conv2.weight"]),
                      o.const(f"{enc}.conv2.bias", weights[f"{enc}.conv2.bias"])], "/encoder/conv2/Conv",
             pads=[1, 1], strides=[2])  # fmt: skip
    x = o.op("Transpose", [o.gelu(x, "/encoder/gelu2")], "/encoder/Transpose", perm=[0, 2, 1])  # (1, F/2, D)
    length = o.shape_of(x, 1, "/encoder/length")
    zero = o.const("zero_1d", np.array([0], np.int64))
    positions = o.op("Slice", [o.const(f"{enc}.embed_positions.weight", weights[f"{enc}.embed_positions.weight"]), zero, length],
                     "/encoder/positions/Slice")  # fmt: skip
    x = o.op("Add", [x, positions], "/encoder/Add_positions")
    for i in range(shape.encoder_layers):
        p = f"{enc}.layers.{i}"
        h = o.layer_norm(x, f"{p}.self_attn_layer_norm")
        query = o.scaled_query(h, f"{p}.self_attn")
        key = o.heads(o.linear(h, f"{p}.self_attn.k_proj"), f"/{p}/k_heads")
        value = o.heads(o.linear(h, f"{p}.self_attn.v_proj"), f"/{p}/v_heads")
        attended = o.attend(query, key, value, None, f"/{p}/self_attn")
        x = o.op("Add", [x, o.linear(attended, f"{p}.self_attn.out_proj")], f"/{p}/Add_attn")
        h = o.gelu(o.linear(o.layer_norm(x, f"{p}.final_layer_norm"), f"{p}.fc1"), f"/{p}/gelu")
        x = o.op("Add", [x, o.linear(h, f"{p}.fc2")], f"/{p}/Add_mlp")
    states = o.layer_norm(x, f"{enc}.layer_norm")
    outputs = []
    for i in range(shape.decoder_layers):
        p = f"model.decoder.layers.{i}.encoder_attn"
        for proj, pattern in (("k_proj", CROSS_KEY), ("v_proj", CROSS_VALUE)):
            heads = o.heads(o.linear(states, f"{p}.{proj}"), f"/{p}/{proj}_heads")
            outputs.append(o.op("Identity", [heads], f"/{p}/{proj}_out", outputs=[pattern.format(i)]))
    dims = [1, shape.heads, "positions", shape.head_dim]
    o.save(path, [_value("mel", TensorProto.FLOAT, [1, shape.n_mels, "frames"])],
           [_value(n, TensorProto.FLOAT, dims) for n in outputs], "ear_encoder")  # fmt: skip
    if int8:
        _in_8_bits(path)
    return GraphIO(inputs=("mel",), outputs=tuple(outputs))


def build_ear_decoder(weights: Mapping[str, np.ndarray], shape: WhisperShape, path: Path, int8: bool = False) -> GraphIO:
    """input_ids (1, T) after a self-attention past of P positions, over the cross K/V -> Whisper's top-k, states, present."""
    from onnx import TensorProto

    o = _Ops(weights, shape)
    dec, layers = "model.decoder", range(shape.decoder_layers)
    past = [[pattern.format(i) for pattern in (SELF_PAST_KEY, SELF_PAST_VALUE)] for i in layers]
    cross = [[pattern.format(i) for pattern in (CROSS_KEY, CROSS_VALUE)] for i in layers]
    table = weights[f"{dec}.embed_tokens.weight"]  # (V, D), tied with the head
    if int8:  # int8 rows to gather, the head's own (D, V) matrix for the quantizer
        x = o.int8_rows(table, "input_ids", "/decoder/embed")  # (1, T, D)
        head_t = o.const("head_t", table.T)
    else:  # one (D, V) matrix for the tied table and head: rows gathered along axis 1 (one copy, not two)
        head_t = o.const("table_t", table.T)
        rows = o.op("Gather", [head_t, "input_ids"], "/decoder/embed/Gather", axis=1)  # (D, 1, T)
        x = o.op("Transpose", [rows], "/decoder/embed/Transpose", perm=[1, 2, 0])  # (1, T, D)
    n_past = o.shape_of(past[0][0], 2, "/decoder/n_past")
    n_new = o.shape_of("input_ids", 1, "/decoder/n_new")
    total = o.op("Add", [n_past, n_new], "/decoder/total")
    positions = o.op("Slice", [o.const(f"{dec}.embed_positions.weight", weights[f"{dec}.embed_positions.weight"]), n_past, total],
                     "/decoder/positions/Slice")  # fmt: skip
    x = o.op("Add", [x, positions], "/decoder/Add_positions")
    mask = _causal_mask(o, n_past, n_new, total)
    presents = []
    for i in layers:
        p = f"{dec}.layers.{i}"
        h = o.layer_norm(x, f"{p}.self_attn_layer_norm")
        query = o.scaled_query(h, f"{p}.self_attn")
        key = o.op("Concat", [past[i][0], o.heads(o.linear(h, f"{p}.self_attn.k_proj"), f"/{p}/k_heads")], f"/{p}/Concat_k",
                   outputs=[SELF_PRESENT_KEY.format(i)], axis=2)  # fmt: skip
        value = o.op("Concat", [past[i][1], o.heads(o.linear(h, f"{p}.self_attn.v_proj"), f"/{p}/v_heads")], f"/{p}/Concat_v",
                     outputs=[SELF_PRESENT_VALUE.format(i)], axis=2)  # fmt: skip
        presents += [key, value]
        x = o.op("Add", [x, o.linear(o.attend(query, key, value, mask, f"/{p}/self_attn"), f"{p}.self_attn.out_proj")],
                 f"/{p}/Add_self")  # fmt: skip
        h = o.layer_norm(x, f"{p}.encoder_attn_layer_norm")
        attended = o.attend(o.scaled_query(h, f"{p}.encoder_attn"), cross[i][0], cross[i][1], None, f"/{p}/encoder_attn")
        x = o.op("Add", [x, o.linear(attended, f"{p}.encoder_attn.out_proj")], f"/{p}/Add_cross")
        h = o.gelu(o.linear(o.layer_norm(x, f"{p}.final_layer_norm"), f"{p}.fc1"), f"/{p}/gelu")
        x = o.op("Add", [x, o.linear(h, f"{p}.fc2")], f"/{p}/Add_mlp")
    hidden = o.op("LayerNormalization", [x, o.const(f"{dec}.layer_norm.weight", weights[f"{dec}.layer_norm.weight"]),
                                         o.const(f"{dec}.layer_norm.bias", weights[f"{dec}.layer_norm.bias"])],
                  "/decoder/layer_norm", outputs=["hidden"], axis=-1, epsilon=LAYER_NORM_EPS)  # fmt: skip
    logits = o.op("MatMul", [hidden, head_t], "/decoder/head/MatMul")  # (1, T, V)
    o.g.node("TopK", [logits, o.const("top_k", np.array([TOP_K], np.int64))], "/decoder/TopK", ["top_logits", "top_ids"], axis=-1)
    kv = lambda name, length: _value(name, TensorProto.FLOAT, [1, shape.heads, length, shape.head_dim])  # noqa: E731
    inputs = [_value("input_ids", TensorProto.INT64, [1, "new"]), *[kv(n, "past") for pair in past for n in pair],
              *[kv(n, "positions") for pair in cross for n in pair]]  # fmt: skip
    outputs = [_value("top_logits", TensorProto.FLOAT, [1, "new", TOP_K]), _value("top_ids", TensorProto.INT64, [1, "new", TOP_K]),
               _value("hidden", TensorProto.FLOAT, [1, "new", shape.d_model]), *[kv(n, "total") for n in presents]]  # fmt: skip
    o.save(path, inputs, outputs, "ear_decoder")
    if int8:
        _in_8_bits(path)
    return GraphIO(inputs=tuple(v.name for v in inputs), outputs=tuple(v.name for v in outputs))


def _causal_mask(o: _Ops, n_past: str, n_new: str, total: str) -> str:
    """(T, P + T) additive mask: new token t sees the past and new tokens up to itself."""
    zero, one = o.const("zero", np.array(0, np.int64)), o.const("one", np.array(1, np.int64))
    scalar = lambda x, name: o.op("Squeeze", [x, o.const(f"{name}.axes", np.array([0], np.int64))], f"{name}/Squeeze")  # noqa: E731
    rows = o.op("Range", [zero, scalar(n_new, "/mask/n_new"), one], "/mask/rows")  # (T,)
    rows = o.op("Add", [o.op("Unsqueeze", [rows, o.const("/mask/axis1", np.array([1], np.int64))], "/mask/rows/Unsqueeze"),
                        scalar(n_past, "/mask/n_past")], "/mask/rows/Add")  # (T, 1): each row's own position
    cols = o.op("Range", [zero, scalar(total, "/mask/total"), one], "/mask/cols")  # (P + T,)
    blocked = o.op("Greater", [cols, rows], "/mask/Greater")  # (T, P + T)
    lowest = o.const("/mask/lowest", np.array(np.finfo(np.float32).min, np.float32))
    return o.op("Where", [blocked, lowest, o.const("/mask/zero_f", np.array(0.0, np.float32))], "/mask/Where")


def build_projector(weights: Mapping[str, np.ndarray], whisper_dim: int, path: Path, int8: bool = False) -> GraphIO:
    """softmax(top_logits / T) @ table[top_ids] + MLP([h_pred; h_read]) -> (n, H); the table float16 in the graph
    (int8: int8 rows x per-row scales, the MLP in 8-bit blocks)."""
    from onnx import TensorProto

    o = _Ops(weights, WhisperShape(whisper_dim, 1, 0, 0, 0))
    temperature = o.const("temperature", np.exp(weights["log_temperature"]).astype(np.float32))
    soft = o.op("Softmax", [o.op("Div", ["top_logits", temperature], "/projector/Div")], "/projector/Softmax", axis=-1)  # (n, k)
    if int8:
        rows = o.int8_rows(weights["table"], "top_ids", "/projector/table")  # (n, k, H)
    else:
        table = o.const("table", weights["table"].astype(np.float16))  # (V, H)
        rows = o.op("Cast", [o.op("Gather", [table, "top_ids"], "/projector/Gather")], "/projector/Cast", to=TensorProto.FLOAT)
    mixed = o.op("ReduceSum", [o.op("Mul", [o.op("Unsqueeze", [soft, o.const("axis_2", np.array([2], np.int64))],
                                                  "/projector/Unsqueeze"), rows], "/projector/Mul"),
                               o.const("axis_1", np.array([1], np.int64))], "/projector/ReduceSum", keepdims=0)  # fmt: skip
    both = o.op("Concat", ["h_pred", "h_read"], "/projector/Concat", axis=-1)
    residual = o.linear(o.gelu(o.linear(both, "mlp.0"), "/projector/gelu"), "mlp.2")
    o.op("Add", [mixed, residual], "/projector/Add", outputs=["audio_embeds"])
    lm_dim = weights["table"].shape[1]
    inputs = [_value("h_pred", TensorProto.FLOAT, ["tokens", whisper_dim]),
              _value("h_read", TensorProto.FLOAT, ["tokens", whisper_dim]),
              _value("top_logits", TensorProto.FLOAT, ["tokens", TOP_K]),
              _value("top_ids", TensorProto.INT64, ["tokens", TOP_K])]  # fmt: skip
    o.save(path, inputs, [_value("audio_embeds", TensorProto.FLOAT, ["tokens", lm_dim])], "projector")
    if int8:
        _in_8_bits(path)
    return GraphIO(inputs=tuple(v.name for v in inputs), outputs=("audio_embeds",))
