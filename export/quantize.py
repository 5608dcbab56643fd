"""int8 / int4: weights in 8- or 4-bit blocks, products computed with integer kernels on the CPU.

Fused decoder graphs are written quantized from the weights (export/fused_decoder.py, the same
onnxruntime block quantizer); TorchScript graphs are quantized here, after export.

Each MatMul with a constant weight becomes onnxruntime's `MatMulNBits` (8 bits, symmetric,
blocks of 32 along the input dimension, one fp32 scale per block) with `accuracy_level` 4:
activations are quantized to int8 per block at run time and the dot products run as int8
(a weight-only QDQ graph would be folded back to fp32 by the optimizer and gain nothing).

Why not `quantize_dynamic` (MatMulInteger / DynamicQuantizeMatMul): it scales activations
per tensor, and a real LM's activation outliers wreck that — on SmolLM2-135M it agreed with
fp32 on 0 % of next tokens (56-58 % with per-tensor or reduce-range weights), against 95 %
for 8-bit blocks, which also decode 1.9x faster than fp32 on this 2-core CPU. optimum 2.x moved
its onnxruntime tooling into the separate optimum-onnx package; we call onnxruntime directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from simulsa.runtime.bundle_records import DECODER_DTYPES
from simulsa.runtime.errors import SimulsaError

QUANTIZE_MODES = {"int8": 8, "int4": 4, "none": 0}  # mode -> decoder weight bits (4 bits: see docs/performance.md)
ENCODER_BITS = 8  # audio graphs stay 8-bit under int4: small, run on every step, and the transcript decides everything
BLOCK_SIZE = 32  # weights per scale along the input dimension
ACCURACY_LEVEL = 4  # MatMulNBits: int8 activations and int8 dot products
EMBED_SCALES_FILE = "embed_scales.npy"
# whisper-tokens: which ear graphs an int8/int4 export writes in 8 bits (export/families.py names the files). Measured on
# the default (docs/performance.md, 2026-12-05): "decoder" (Whisper's decoder and its 51,865-row table) cuts the
# stream --example peak 0.87 -> 0.65 GB for -0.9 BLEU at 1000 ms hold 3; "all" 0.55 GB for -2.4 (offline unchanged).
EAR_INT8_FILES = {"none": (), "decoder": ("ear_decoder.onnx",), "all": ("audio_encoder.onnx", "ear_decoder.onnx", "projector.onnx")}
EAR_QUANTIZE = tuple(EAR_INT8_FILES)


def ear_quantize_of(quantized_graphs: tuple[str, ...]) -> str:
    """The --ear-quantize choice a whisper-tokens bundle was exported with, from its quantization record's graphs."""
    ear = set(quantized_graphs) & {name for files in EAR_INT8_FILES.values() for name in files}
    for choice, files in EAR_INT8_FILES.items():
        if set(files) == ear:
            return choice
    raise SimulsaError(f"quantized graphs {sorted(quantized_graphs)} match no --ear-quantize choice; export the bundle again")


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    mode: str = "int8"  # int8, int4 or none
    keep_fp32: tuple[str, ...] = ()  # regexes on ONNX node names that stay fp32, e.g. "lm_head"
    block_size: int = BLOCK_SIZE  # MatMulNBits weights per scale
    head: str | None = None  # fused decoders: the output head's own mode (int8 over int4 layers); None: `mode`
    ear: str = "decoder"  # whisper-tokens: which ear graphs go 8-bit (EAR_QUANTIZE)
    dtype: str = "float32"  # the quantized fused decoder's compute and K/V dtype (float16: for the CUDA provider)

    def __post_init__(self) -> None:
        if self.mode not in QUANTIZE_MODES:
            raise SimulsaError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, got {self.mode!r}")
        if self.head is not None and self.head not in QUANTIZE_MODES:
            raise SimulsaError(f"--head-quantize must be one of {', '.join(QUANTIZE_MODES)}, got {self.head!r}")
        if self.ear not in EAR_QUANTIZE:
            raise SimulsaError(f"--ear-quantize must be one of {', '.join(EAR_QUANTIZE)}, got {self.ear!r}")
        if self.dtype not in DECODER_DTYPES:
            raise SimulsaError(f"--dtype must be one of {', '.join(DECODER_DTYPES)}, got {self.dtype!r}")
        if self.dtype != "float32" and self.mode == "none":
            raise SimulsaError(f"--dtype {self.dtype} applies to the quantized decoder; add --quantize int8 or int4")
        if self.block_size not in (16, 32, 64, 128, 256):
            raise SimulsaError(f"--block-size must be 16, 32, 64, 128 or 256, got {self.block_size}")
        for pattern in self.keep_fp32:
            try:
                re.compile(pattern)
            except re.error as err:
                raise SimulsaError(f"--keep-fp32 {pattern!r} is not a regular expression ({err})") from None

    @property
    def bits(self) -> int:
        return QUANTIZE_MODES[self.mode]


def _excluded_nodes(path: Path, patterns: tuple[str, ...]) -> list[str]:
    import onnx

    if not patterns:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if any(re.search(p, node.name) for p in patterns)]


def quantize_graph(source: Path, target: Path, options: QuantizeOptions, bits: int) -> list[str]:
    """Write a `bits`-bit copy of `source`; return the names of the nodes kept in fp32 by request."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    excluded = _excluded_nodes(source, options.keep_fp32)
    with _quiet_root_logger():  # the quantizer logs every node it visits on the root logger
        quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=bits, block_size=options.block_size, is_symmetric=True,
                                         accuracy_level=ACCURACY_LEVEL, nodes_to_exclude=excluded)  # fmt: skip
        quantizer.process()
        large = quantizer.model.model.ByteSize() > 2**31 - 2**20  # protobuf's 2 GB limit: weights go to a side file
        quantizer.model.save_model_to_file(str(target), use_external_data_format=large)
    return excluded


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_embeddings(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, H) float32 -> ((V, H) int8, (V,) float32 scales): symmetric, one scale per token row."""
    scales = np.abs(table).max(axis=1) / 127.0
    scales[scales == 0] = 1.0  # an all-zero row (a padding token) stays zero
    return np.round(table / scales[:, None]).astype(np.int8), scales.astype(np.float32)


def graph_weights_bytes(path: Path) -> int:
    """Bytes of a graph's initializers (its weights), not counting the graph's own structure."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return sum(numpy_helper.to_array(init).nbytes for init in model.graph.initializer)


def weights_bytes(folder: Path) -> int:
    """Bytes of model weights in a bundle folder: graph initializers and embedding tables."""
    graphs = sum(graph_weights_bytes(p) for p in folder.glob("*.onnx"))
    return graphs + sum(np.load(p, mmap_mode="r").nbytes for p in folder.glob("*.npy"))
