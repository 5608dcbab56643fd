"""int8: dynamic, per-channel weight quantization that runs integer kernels on the CPU.

onnxruntime's `quantize_dynamic` rewrites each MatMul with constant weights into
DynamicQuantizeLinear + MatMulInteger (fused into DynamicQuantizeMatMul when the session
loads), so decoding really multiplies int8 by int8. A weight-only QDQ graph would be folded
back to fp32 by the optimizer and gain nothing. optimum 2.x moved its onnxruntime tooling
into a separate package (optimum-onnx) whose quantizer wraps this same call, so we call
onnxruntime.quantization directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from simulsa.runtime.errors import SimulsaError

QUANTIZE_MODES = ("int8", "none")
QUANTIZED_OPS = ["MatMul", "Gemm"]  # convolutions stay fp32: ConvInteger is slower than fp32 Conv on CPUs
EMBED_SCALES_FILE = "embed_scales.npy"


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    mode: str = "int8"  # int8 or none
    keep_fp32: tuple[str, ...] = ()  # regexes on ONNX node names that stay fp32, e.g. "lm_head"

    def __post_init__(self) -> None:
        if self.mode not in QUANTIZE_MODES:
            raise SimulsaError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, got {self.mode!r}")
        for pattern in self.keep_fp32:
            try:
                re.compile(pattern)
            except re.error as err:
                raise SimulsaError(f"--keep-fp32 {pattern!r} is not a regular expression ({err})") from None


def _excluded_nodes(path: Path, patterns: tuple[str, ...]) -> list[str]:
    import onnx

    if not patterns:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if any(re.search(p, node.name) for p in patterns)]


def quantize_graph(source: Path, target: Path, options: QuantizeOptions) -> list[str]:
    """Write an int8 copy of `source`; return the names of the nodes kept in fp32 by request."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = _excluded_nodes(source, options.keep_fp32)
    with _quiet_root_logger():  # onnxruntime logs a generic "consider pre-processing" warning on the root logger
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=excluded,
                         extra_options={"MatMulConstBOnly": True})  # fmt: skip
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
