"""StepBatcher: sessions in threads share one fused decoder; their single-token steps go through as one call."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from simulsa.runtime.batching import StepBatcher
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.runtime.session import StreamOptions, Translator


def _greedy(model, prompt: list[int], steps: int, ready: threading.Barrier | None = None) -> list[int]:
    cache = model.empty_cache()  # a session holds its slot before it decodes (as a server's sessions do)
    if ready is not None:
        ready.wait()
    logits, cache = model.decode(model.embed_tokens(prompt), cache)
    tokens = []
    for _ in range(steps):
        tokens.append(int(np.argmax(logits[-1])))
        logits, cache = model.decode(model.embed_tokens(tokens[-1:]), cache)
    model.release_cache(cache)
    return tokens


def test_steps_from_threads_are_batched_and_give_the_same_tokens(tiny_bundles):
    model = OnnxSpeechModel.from_path(tiny_bundles["composite", "none"])
    prompts = [[5, 9, 11], [7] * 6, [3, 4, 5, 6, 7, 8, 9, 10, 12]]  # three lengths: a length per batch row
    alone = [_greedy(model, prompt, 10) for prompt in prompts]
    model.decoder = batcher = StepBatcher(model.decoder, slots=3, max_batch=3, max_wait_ms=500)
    results: list[list[int] | None] = [None] * 3
    start = threading.Barrier(3)

    def run(i: int) -> None:
        results[i] = _greedy(model, prompts[i], 10, start)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == alone
    assert batcher.batched_tokens > batcher.calls  # some calls carried more than one session's step
    assert batcher.free_slots and len(batcher.free_slots) == 3  # every slot came back


def test_slots_are_leased_and_given_back(tiny_bundles):
    translator = Translator.from_bundle(tiny_bundles["composite", "none"])
    translator.model.decoder = StepBatcher(translator.model.decoder, slots=2, max_batch=2, max_wait_ms=1)
    first, second = translator.session(StreamOptions()), translator.session(StreamOptions())
    assert {first.empty_cache.slot, second.empty_cache.slot} == {0, 1}
    with pytest.raises(SimulsaError, match="all 2 decoder slots are taken; close a session first"):
        translator.session(StreamOptions())
    first.close()
    assert translator.session(StreamOptions()).empty_cache.slot == first.empty_cache.slot
    with pytest.raises(SimulsaError, match="batching needs slots >= 1"):
        StepBatcher(translator.model.decoder.decoder, slots=0, max_batch=2, max_wait_ms=1)
