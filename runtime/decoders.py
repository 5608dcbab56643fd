"""The two decoder graph kinds behind one call: decode new embeddings on a cache state, get the last logits.

    decoder = DECODERS[bundle.decoder.kind](bundle, threads)
    cache = decoder.new_cache()                      # one per session: its own storage
    logits, cache = decoder.decode(embeds, cache)    # (T, H) -> (1, V), a state T positions longer

`FusedDecoder` also decodes a batch of single-token steps in one call (`decode_steps`): decoding
is bound by reading the weights, so B sequences stepping together cost little more than one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulsa.runtime.bundle import FUSED_INPUTS, Bundle, open_session
from simulsa.runtime.bundle_records import DECODER_DTYPES
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.kv_cache import BufferCache, ConcatCache, DeviceStorage, HostStorage, KVBuffer

DEFAULT_KV_CAPACITY = 512  # positions a session's buffer starts with (grows by doubling): prompt + segment + tokens


class TorchScriptDecoder:
    """past in, grown present out (the graph concatenates): every call copies the whole past."""

    def __init__(self, bundle: Bundle, threads: int | None = None, profile_prefix: str | None = None) -> None:
        self.session = open_session(bundle.file("decoder"), threads, profile_prefix=profile_prefix)
        self.dims = bundle.dims
        layers = [bundle.kv.names(i) for i in range(self.dims.num_layers)]  # (past k, present k, past v, present v)
        self.past_names = [name for past_k, _, past_v, _ in layers for name in (past_k, past_v)]
        self.output_names = ["logits"] + [name for _, present_k, _, present_v in layers for name in (present_k, present_v)]

    def new_cache(self) -> ConcatCache:
        return ConcatCache.empty(self.dims.num_layers, self.dims.num_kv_heads, self.dims.head_dim)

    def release(self, cache: ConcatCache) -> None:
        """Nothing to give back: every cache owns its arrays."""

    def decode(self, embeds: np.ndarray, cache: ConcatCache) -> tuple[np.ndarray, ConcatCache]:
        """(T, H) new embeddings after `cache` -> ((1, V) logits of the last position, the cache covering past + T)."""
        n_past, n_new = cache.length, embeds.shape[0]
        feeds = {"inputs_embeds": embeds[None].astype(np.float32),
                 "attention_mask": np.ones((1, n_past + n_new), dtype=np.int64),
                 "position_ids": np.arange(n_past, n_past + n_new, dtype=np.int64)[None]}  # fmt: skip
        feeds.update(zip(self.past_names, cache.tensors))
        logits, *present = self.session.run(self.output_names, feeds)
        return logits[0], ConcatCache(tuple(present))


class FusedDecoder:
    """GroupQueryAttention graph; K/V live in the session's KVBuffer, bound to both past and present.

    The buffers are where the graph runs: on the GPU when the session's first provider is CUDA (then a step
    moves only the new embeddings in and the logits out), else in host memory. `kv_device` overrides that
    choice ("cpu" binds host memory by address, the path CUDA takes, which lets a CPU test check it)."""

    def __init__(self, bundle: Bundle, threads: int | None = None, profile_prefix: str | None = None,
                 kv_capacity: int | None = None, kv_device: str | None = None) -> None:  # fmt: skip
        self.session = open_session(bundle.file("decoder"), threads, profile_prefix=profile_prefix)
        record = bundle.decoder
        self.max_length = record.max_length
        self.kv_capacity = min(kv_capacity or record.kv_capacity, self.max_length)
        self.kv_dtype = DECODER_DTYPES[record.dtype]
        self.dims = bundle.dims
        self.kv_names = [bundle.kv.names(i) for i in range(self.dims.num_layers)]  # (past k, present k, past v, present v)
        on_gpu = self.session.get_providers()[0] == "CUDAExecutionProvider"
        self.kv_storage = DeviceStorage(kv_device or "cuda") if on_gpu or kv_device else HostStorage()

    def new_cache(self, slots: int = 1) -> BufferCache:
        """An empty state on a new buffer of `slots` sequences (a session: 1; a server's StepBatcher: one per stream)."""
        dims = self.dims
        buffer = KVBuffer(dims.num_layers, dims.num_kv_heads, dims.head_dim, self.kv_capacity, self.max_length, slots,
                          dtype=self.kv_dtype, storage=self.kv_storage)  # fmt: skip
        return buffer.empty()

    def release(self, cache: BufferCache) -> None:
        """Nothing to give back: the session's own buffer goes when the session does (see StepBatcher for shared ones)."""

    def _binding(self, buffer: KVBuffer, first: int, last: int):
        """An IO binding with slots first..last of every layer bound to past and present (made once per buffer layout)."""
        key = (id(self.session), buffer.generation, first, last)
        binding = buffer.bindings.get(key)  # kept on the buffer: they die with it, and a grown buffer gets new ones
        if binding is None:
            buffer.bindings = {k: v for k, v in buffer.bindings.items() if k[1] == buffer.generation}
            binding = self.session.io_binding()
            binding.bind_output("logits")  # first: get_outputs() lists outputs in binding order; host memory
            buffer.bind(binding, self.kv_names, first, last)
            buffer.bindings[key] = binding
        return binding

    def _run(self, buffer: KVBuffer, first: int, last: int, embeds: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """embeds (B, S, H) for slots first..last, `ends` (B,) each row's length after the call -> logits (B, V)."""
        binding = self._binding(buffer, first, last)
        embeds_name, seqlens_name, total_name = FUSED_INPUTS
        binding.bind_cpu_input(embeds_name, np.ascontiguousarray(embeds, dtype=np.float32))
        binding.bind_cpu_input(seqlens_name, (ends - 1).astype(np.int32))
        binding.bind_cpu_input(total_name, np.array(int(ends.max()), dtype=np.int32))
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()[:, -1].copy()  # the bound output's memory is reused by the next run

    def decode(self, embeds: np.ndarray, cache: BufferCache) -> tuple[np.ndarray, BufferCache]:
        """(T, H) new embeddings after `cache` -> ((1, V) logits of the last position, the cache covering past + T)."""
        end = cache.length + embeds.shape[0]
        cache.buffer.reserve(end)
        logits = self._run(cache.buffer, cache.slot, cache.slot, embeds[None], np.array([end]))
        return logits, cache.extended(embeds.shape[0])

    def decode_steps(self, embeds: np.ndarray, caches: Sequence[BufferCache]) -> tuple[np.ndarray, list[BufferCache]]:
        """One token for each of B sequences in one call: embeds (B, H) -> logits (B, V), each cache one longer.

        The caches share one KVBuffer (one slot each). Slots between them that are not stepping get a
        zero row written at their scratch position (the buffer's last), which no sequence reads.
        """
        buffer = caches[0].buffer
        if any(c.buffer is not buffer for c in caches) or len({c.slot for c in caches}) != len(caches):
            raise SimulsaError("decode_steps needs caches in distinct slots of one KVBuffer")
        buffer.reserve(max(c.length for c in caches) + 1)
        first, last = min(c.slot for c in caches), max(c.slot for c in caches)
        rows = np.zeros((last - first + 1, 1, embeds.shape[1]), dtype=np.float32)  # (B', 1, H)
        ends = np.full(last - first + 1, buffer.capacity, dtype=np.int64)  # idle rows: write the scratch position
        for cache, embed in zip(caches, embeds):
            rows[cache.slot - first, 0], ends[cache.slot - first] = embed, cache.length + 1
        logits = self._run(buffer, first, last, rows, ends)
        return logits[[c.slot - first for c in caches]], [c.extended(1) for c in caches]


DECODERS = {"fused": FusedDecoder, "torchscript": TorchScriptDecoder}
