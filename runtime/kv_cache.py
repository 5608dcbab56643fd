"""The decoder's KV cache between calls.

Shapes: for every layer i, keys[i] and values[i] are (1, kv_heads, length, head_dim) float32.
Invariants: every layer holds the same `length`; position p of the cache is sequence position p
(the decoder is always called with position ids that continue at `length`). onnxruntime returns
fresh `present` arrays on each call, so a step can run on top of the cache and simply drop its
result: that is how a streaming step rolls back its tentative tail for free.
"""

from __future__ import annotations

import numpy as np


class KVCache:
    def __init__(self, num_layers: int, kv_heads: int, head_dim: int) -> None:
        self.num_layers = num_layers
        empty = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
        self.tensors: list[np.ndarray] = [empty] * (2 * num_layers)  # k0, v0, k1, v1, ...

    @property
    def length(self) -> int:
        return self.tensors[0].shape[2]

    def replace(self, present: list[np.ndarray]) -> None:
        """Adopt the decoder's `present` outputs, which extend this cache by the positions just decoded."""
        if len(present) != 2 * self.num_layers:
            raise ValueError(f"expected {2 * self.num_layers} present tensors, got {len(present)}")
        if present[0].shape[2] < self.length:
            raise ValueError(f"present covers {present[0].shape[2]} positions, fewer than the cache's {self.length}")
        self.tensors = list(present)

    def truncate(self, length: int) -> None:
        """Keep the first `length` positions (copied, so the dropped tail's memory is released)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        self.tensors = [np.ascontiguousarray(t[:, :, :length]) for t in self.tensors]

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)
