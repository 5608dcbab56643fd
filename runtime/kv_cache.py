"""The decoder's KV cache, as immutable states over storage the decoder kind defines.

A state is "these first `length` positions": decoding T embeddings on a state returns a state
T longer. Position p of a cache is sequence position p. Two kinds (bundle.json `decoder.kind`):

- torchscript: `ConcatCache` holds the arrays; the graph returns a grown copy each call
  (k_i, v_i: (1, kv_heads, length, head_dim) float32).
- fused: `BufferCache` points into a `KVBuffer` the runtime owns: per layer one
  (slots, kv_heads, capacity, head_dim) array (the graph's K/V dtype) bound to the graph's past and
  present (onnxruntime IO binding), written in place. Where it lives is a storage: host numpy
  arrays for the CPU, onnxruntime device memory for the CUDA provider (the buffers never travel).
  Dropping a tail or rolling back to a prefix is a smaller `length` (no copy). Rule that keeps it
  exact: only the newest state of a slot is decoded on, or an older one whose later positions are no
  longer needed (a step's tentative tail).
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


class HostStorage:
    """K/V as numpy arrays in host memory; a slot range is bound as a view (the graph writes our memory)."""

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def shape(self, array: np.ndarray) -> tuple[int, ...]:
        return array.shape

    def grown(self, old: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        new = np.zeros(shape, dtype=old.dtype)
        new[:, :, : old.shape[2]] = old
        return new

    def to_numpy(self, array: np.ndarray) -> np.ndarray:
        return array

    def bind(self, binding, past: str, present: str, array: np.ndarray, first: int, last: int, dtype: np.dtype) -> None:
        import onnxruntime as ort

        value = ort.OrtValue.ortvalue_from_numpy(array[first : last + 1])  # a view: no copy in either direction
        binding.bind_ortvalue_input(past, value)
        binding.bind_ortvalue_output(present, value)


class DeviceStorage:
    """K/V in onnxruntime's memory on `device` (cuda: the GPU); a slot range is bound by address, so a step
    moves no past between host and device. Growing copies through the host once (rare: capacity doubles)."""

    def __init__(self, device: str = "cuda", device_id: int = 0) -> None:
        self.device, self.device_id = device, device_id

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype):
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=dtype), self.device, self.device_id)

    def shape(self, value) -> tuple[int, ...]:
        return tuple(value.shape())

    def grown(self, old, shape: tuple[int, ...]):
        import onnxruntime as ort

        host = HostStorage().grown(old.numpy(), shape)  # a fresh array: on "cpu" the new value wraps (and keeps) it
        return ort.OrtValue.ortvalue_from_numpy(host, self.device, self.device_id)

    def to_numpy(self, value) -> np.ndarray:
        return value.numpy()

    def bind(self, binding, past: str, present: str, value, first: int, last: int, dtype: np.dtype) -> None:
        _, *rest = self.shape(value)  # (slots, KV, M, D)
        slot_bytes = int(np.prod(rest)) * dtype.itemsize
        shape, address = [last - first + 1, *rest], value.data_ptr() + first * slot_bytes  # slots first..last
        binding.bind_input(past, self.device, self.device_id, dtype, shape, address)
        binding.bind_output(present, self.device, self.device_id, dtype, shape, address)


class KVBuffer:
    """Preallocated K/V storage for `slots` sequences; the last position of each slot is scratch (padding rows)."""

    def __init__(self, num_layers: int, kv_heads: int, head_dim: int, capacity: int, max_length: int, slots: int = 1,
                 dtype: type = np.float32, storage: HostStorage | DeviceStorage | None = None) -> None:  # fmt: skip
        if not 2 <= capacity <= max_length:
            raise SimulsaError(f"kv capacity must be between 2 and the decoder's max_length {max_length}, got {capacity}")
        self.num_layers, self.kv_heads, self.head_dim = num_layers, kv_heads, head_dim
        self.slots, self.max_length = slots, max_length
        self.dtype, self.storage = np.dtype(dtype), storage or HostStorage()
        self.generation = 0  # bumped when the arrays are replaced (bindings made for the old ones are stale)
        self.arrays = self._allocate(capacity)
        self.bindings: dict[tuple, object] = {}  # the decoder's onnxruntime IO bindings of these arrays

    def _allocate(self, capacity: int) -> list:
        shape = (self.slots, self.kv_heads, capacity, self.head_dim)  # (slots, KV, M, D)
        return [self.storage.zeros(shape, self.dtype) for _ in range(2 * self.num_layers)]

    @property
    def capacity(self) -> int:
        return self.storage.shape(self.arrays[0])[2]

    def bind(self, binding, names: list[tuple[str, str, str, str]], first: int, last: int) -> None:
        """Bind slots first..last of every layer to the graph's past and present (names per layer: past k, present k,
        past v, present v)."""
        for i, (past_k, present_k, past_v, present_v) in enumerate(names):
            self.storage.bind(binding, past_k, present_k, self.arrays[2 * i], first, last, self.dtype)
            self.storage.bind(binding, past_v, present_v, self.arrays[2 * i + 1], first, last, self.dtype)

    def host_copy(self, index: int) -> np.ndarray:
        """Array `index` (k0, v0, k1, ...) in host memory (a copy when it lives on a device): for tests and checks."""
        return self.storage.to_numpy(self.arrays[index])

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
        shape = (self.slots, self.kv_heads, min(capacity, self.max_length), self.head_dim)  # (slots, KV, M', D)
        self.arrays = [self.storage.grown(old, shape) for old in self.arrays]
        self.generation += 1

    def nbytes(self) -> int:
        return sum(int(np.prod(self.storage.shape(a))) for a in self.arrays) * self.dtype.itemsize


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
        per_position = 2 * self.buffer.num_layers * self.buffer.kv_heads * self.buffer.head_dim * self.buffer.dtype.itemsize
        return self.length * per_position


def _check_length(length: int, current: int) -> None:
    if not 0 <= length <= current:
        raise SimulsaError(f"cannot truncate a cache of {current} positions to {length}")
