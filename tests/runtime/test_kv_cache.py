"""KV cache states: the TorchScript kind's arrays, and the fused kind's preallocated buffers."""

from __future__ import annotations

import numpy as np
import pytest

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.kv_cache import ConcatCache, KVBuffer


def test_concat_cache_truncates_by_copy():
    cache = ConcatCache(tuple(np.arange(40, dtype=np.float32).reshape(1, 1, 10, 4) for _ in range(4)))
    short = cache.truncated(3)
    assert short.length == 3 and cache.length == 10  # states are immutable
    assert all(t.shape == (1, 1, 3, 4) and t.base is None for t in short.tensors)  # copied: the tail's memory is freed
    assert ConcatCache.empty(2, 1, 4).length == 0
    with pytest.raises(SimulsaError, match="cannot truncate a cache of 10 positions to 11"):
        cache.truncated(11)


def test_buffer_grows_by_copy_and_keeps_what_was_written():
    buffer = KVBuffer(num_layers=2, kv_heads=1, head_dim=4, capacity=8, max_length=64, slots=2)
    buffer.arrays[0][1, 0, :7] = 5.0  # slot 1 holds 7 positions
    generation = buffer.generation
    buffer.reserve(7)  # 7 positions + the scratch one fit in 8: no growth
    assert buffer.capacity == 8 and buffer.generation == generation
    buffer.reserve(20)
    assert buffer.capacity == 32 and buffer.generation == generation + 1  # doubled until 21 fit
    assert (buffer.arrays[0][1, 0, :7] == 5.0).all() and (buffer.arrays[0][1, 0, 7:] == 0).all()
    with pytest.raises(SimulsaError, match="a sequence of 64 positions exceeds the decoder's max_length 64"):
        buffer.reserve(64)


def test_buffer_states_roll_back_for_free():
    buffer = KVBuffer(num_layers=1, kv_heads=1, head_dim=4, capacity=16, max_length=16)
    state = buffer.empty().extended(10)
    assert state.truncated(4).length == 4 and state.length == 10
    assert state.truncated(4).buffer is buffer  # same storage: nothing copied
    assert state.nbytes() == 10 * 2 * 4 * 4
    with pytest.raises(SimulsaError, match="slot 1 is outside this buffer's 1 slots"):
        buffer.empty(1)
    with pytest.raises(SimulsaError, match="kv capacity must be between 2 and the decoder's max_length 16"):
        KVBuffer(num_layers=1, kv_heads=1, head_dim=4, capacity=32, max_length=16)


def test_cuda_libraries_are_preloaded_once_and_only_where_onnxruntime_gpu_offers_it():
    """onnxruntime-gpu finds pip-installed CUDA/cuDNN only after preload_dlls(); CPU builds have no such function."""
    import types

    from simulsa.runtime.bundle import _preload_cuda_libraries

    calls = []
    gpu_build = types.ModuleType("onnxruntime_gpu_stand_in")  # a module, as onnxruntime is
    gpu_build.preload_dlls = lambda: calls.append(1)
    _preload_cuda_libraries(gpu_build)
    _preload_cuda_libraries(gpu_build)
    _preload_cuda_libraries(types.ModuleType("onnxruntime_cpu_stand_in"))  # a CPU build: nothing to call, no error
    assert calls == [1]
