"""Sessions in different threads share one fused decoder; their single-token steps run as one batched call.

    model.decoder = StepBatcher(model.decoder, slots=8, max_batch=8, max_wait_ms=2)
    # every session's cache is a slot of one KVBuffer; a session's greedy step waits up to max_wait_ms
    # for the steps of other sessions, then one `decode_steps` call decodes them all

Decoding is bound by reading the weights: 4 sequences stepping together produce 3.6x the tokens of
stepping one by one (docs/performance.md, "Batched steps"). Calls with more than one new position
(prefills, a step's tail) run alone. Every call on the shared buffer holds one lock, because a
buffer that grows replaces its arrays.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from simulsa.runtime.decoders import FusedDecoder
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.kv_cache import BufferCache


@dataclasses.dataclass
class _Step:
    embed: np.ndarray  # (H,)
    cache: BufferCache
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: tuple[np.ndarray, BufferCache] | None = None
    error: BaseException | None = None


class StepBatcher:
    """The decoder interface (`new_cache`, `decode`, `release`) over one shared multi-slot KVBuffer."""

    def __init__(self, decoder: FusedDecoder, slots: int, max_batch: int, max_wait_ms: float) -> None:
        if slots < 1 or max_batch < 1 or max_wait_ms < 0:
            raise SimulsaError(f"batching needs slots >= 1, max_batch >= 1, max_wait_ms >= 0; got {slots}, {max_batch}, "
                               f"{max_wait_ms}")  # fmt: skip
        self.decoder, self.max_batch, self.max_wait_s = decoder, max_batch, max_wait_ms / 1000
        self.buffer = decoder.new_cache(slots=slots).buffer
        self.free_slots = list(range(slots))
        self.run_lock = threading.Lock()  # one call at a time on the shared buffer
        self.queue = threading.Condition()  # guards `pending` and `free_slots`
        self.pending: list[_Step] = []
        self.calls = self.batched_tokens = 0  # for /metrics and tests: how many calls, how many tokens they carried

    def new_cache(self) -> BufferCache:
        with self.queue:
            if not self.free_slots:
                raise SimulsaError(f"all {self.buffer.slots} decoder slots are taken; close a session first")
            return self.buffer.empty(self.free_slots.pop(0))

    def release(self, cache: BufferCache) -> None:
        """The session is done: its slot can serve a new one."""
        with self.queue:
            if cache.buffer is self.buffer and cache.slot not in self.free_slots:
                self.free_slots.append(cache.slot)

    def decode(self, embeds: np.ndarray, cache: BufferCache) -> tuple[np.ndarray, BufferCache]:
        if embeds.shape[0] != 1 or self.max_batch == 1:
            with self.run_lock:
                self.calls, self.batched_tokens = self.calls + 1, self.batched_tokens + 1
                return self.decoder.decode(embeds, cache)
        step = _Step(embeds[0], cache)
        with self.queue:
            self.pending.append(step)
            self.queue.notify_all()
            self._wait_for_company(step)
        while not step.done.is_set():
            with self.run_lock:  # whoever gets the lock runs what is pending (its own step, if no one took it)
                if not step.done.is_set():
                    self._run_batch()
        if step.error is not None:
            raise step.error
        return step.result

    def _wait_for_company(self, step: _Step) -> None:
        """Up to max_wait, for as many pending steps as there are open sessions (called holding `queue`, not the run
        lock: other sessions' prefills must be able to run meanwhile)."""
        deadline = time.perf_counter() + self.max_wait_s
        open_sessions = self.buffer.slots - len(self.free_slots)
        while not step.done.is_set() and len(self.pending) < min(self.max_batch, open_sessions):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self.queue.wait(remaining)

    def _run_batch(self) -> None:
        with self.queue:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
        if not batch:
            return
        try:
            logits, caches = self.decoder.decode_steps(np.stack([s.embed for s in batch]), [s.cache for s in batch])
            self.calls, self.batched_tokens = self.calls + 1, self.batched_tokens + len(batch)
            for step, row, cache in zip(batch, logits, caches):
                step.result = (row[None], cache)
        except BaseException as err:  # every waiting session gets the error, not a hang
            for step in batch:
                step.error = err
        for step in batch:
            step.done.set()
        with self.queue:
            self.queue.notify_all()  # waiters whose step was in this batch stop waiting
