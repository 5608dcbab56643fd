"""The decoder's KV cache, as immutable states over storage the decoder kind defines.

A state is "these first `length` positions": decoding T embeddings on a state returns a state
T longer. Position p of a cache is sequence position p. Two kinds (bundle.json `decoder.kind`):

- torchscript: `ConcatCache` holds the arrays; the graph returns a grown copy each call
  (k_i, v_i: (1, kv_heads, length, head_dim) float32).
- fused: `BufferCache` points into a `KVBuffer` the runtime owns: per layer one
  (slots, kv_heads, capacity, head_dim) float32 array bound to the graph's past and present
  (onnxruntime IO binding), written in place. Dropping a tail or rolling back to a prefix is a
  smaller `length` (no copy). Rule that keeps it exact: only the newest state of a slot is decoded
  on, or an older one whose later positions are no longer needed (a step's tentative tail).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulsa.runtime.errors import SimulsaError

GROWTH = 2  # a full buffer grows to this many times its capacity (one copy), up to the graph's max_length


@dataclasses.dataclass(frozen=True)
class ConcatCache:
    tensors: tuple[np.ndarray, ...]  # k0, v0, k1, v1, ...: (1, kv_heads, length, head_dim)

    @classmethod
    def empty(cls, num_layers: int, kv_heads: int, head_dim: int) -> ConcatCache:
        return cls((np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32),) * (2 * num_layers))

    @property
    def length(self) -> int:
        return self.tensors[0].shape[2]

    def truncated(self, length: int) -> ConcatCache:
        """The first `length` positions (copied, so the dropped tail's memory is released)."""
        _check_length(length, self.length)
        return ConcatCache(tuple(t[:, :, :length].copy() for t in self.tensors))

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


class KVBuffer:
    """Preallocated K/V storage for `slots` sequences; the last position of each slot is scratch (padding rows)."""

    def __init__(self, num_layers: int, kv_heads: int, head_dim: int, capacity: int, max_length: int, slots: int = 1) -> None:
        if not 2 <= capacity <= max_length:
            raise SimulsaError(f"kv capacity must be between 2 and the decoder's max_length {max_length}, got {capacity}")
        self.num_layers, self.kv_heads, self.head_dim = num_layers, kv_heads, head_dim
        self.slots, self.max_length = slots, max_length
        self.generation = 0  # bumped when the arrays are replaced (bindings made for the old ones are stale)
        self.arrays = self._allocate(capacity)
        self.bindings: dict[tuple, object] = {}  # the decoder's onnxruntime IO bindings of these arrays

    def _allocate(self, capacity: int) -> list[np.ndarray]:
        shape = (self.slots, self.kv_heads, capacity, self.head_dim)  # (slots, KV, M, D)
        return [np.zeros(shape, dtype=np.float32) for _ in range(2 * self.num_layers)]

    @property
    def capacity(self) -> int:
        return self.arrays[0].shape[2]

    def empty(self, slot: int = 0) -> BufferCache:
        if not 0 <= slot < self.slots:
            raise SimulsaError(f"slot {slot} is outside this buffer's {self.slots} slots")
        return BufferCache(self, slot, 0)

    def reserve(self, length: int) -> None:
        """Make room for sequences of `length` positions (+ the scratch one), growing (one copy) if needed."""
        if length + 1 <= self.capacity:
            return
        if length + 1 > self.max_length:
            raise SimulsaError(f"a sequence of {length} positions exceeds the decoder's max_length {self.max_length}; "
                               "lower max_segment_s, max_segment_tokens or context_tokens, or re-export with a larger "
                               "--max-length")  # fmt: skip
        capacity = self.capacity
        while capacity < length + 1:
            capacity *= GROWTH
        grown = self._allocate(min(capacity, self.max_length))
        for new, old in zip(grown, self.arrays):
            new[:, :, : old.shape[2]] = old
        self.arrays, self.generation = grown, self.generation + 1

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


@dataclasses.dataclass(frozen=True)
class BufferCache:
    buffer: KVBuffer
    slot: int
    length: int

    def truncated(self, length: int) -> BufferCache:
        _check_length(length, self.length)
        return dataclasses.replace(self, length=length)

    def extended(self, new: int) -> BufferCache:
        return dataclasses.replace(self, length=self.length + new)

    def nbytes(self) -> int:
        """Bytes this sequence's positions occupy (the buffer itself is allocated once per session)."""
        per_position = 2 * self.buffer.num_layers * self.buffer.kv_heads * self.buffer.head_dim * 4
        return self.length * per_position


def _check_length(length: int, current: int) -> None:
    if not 0 <= length <= current:
        raise SimulsaError(f"cannot truncate a cache of {current} positions to {length}")
