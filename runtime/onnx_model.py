"""A bundle's ONNX graphs behind the calls a decoding loop needs: embed, encode audio, decode a step.

The streaming engine (runtime issue) builds on this; `simulsa export` uses it to verify a bundle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulsa.runtime.bundle import Bundle, load_bundle, open_session
from simulsa.runtime.decoders import DECODERS
from simulsa.runtime.families import runtime_family


class OnnxSpeechModel:
    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        self.bundle = bundle
        self.family = runtime_family(bundle)
        self.ear = self.family.ear(bundle, threads) if self.family.ear else None  # the family's own hearing
        self.encoder = None if self.ear else open_session(bundle.file("audio_encoder"), threads)
        self.decoder = DECODERS[bundle.decoder.kind](bundle, threads)  # bundle.json `decoder.kind`
        # (V, H) float32, or int8 with per-row scales; memory-mapped: a stream reads a few rows of a 262k-row table,
        # so only those pages become resident (Gemma 3's int8 table: 160 MB when loaded whole)
        self.embed_table = np.load(bundle.file("embed_tokens"), mmap_mode="r")
        self.embed_scales = np.load(bundle.file("embed_scales")) if bundle.has_file("embed_scales") else None  # (V,) float32
        self.num_layers = bundle.dims.num_layers

    @classmethod
    def from_path(cls, path: str | Path, threads: int | None = None, verify_checksums: bool = True) -> OnnxSpeechModel:
        return cls(load_bundle(path, verify_checksums), threads)

    def embed_tokens(self, ids: list[int] | np.ndarray) -> np.ndarray:
        """Token ids (n,) -> embeddings (n, H) float32."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = self.embed_table[ids].astype(np.float32)
        return rows * self.embed_scales[ids, None] if self.embed_scales is not None else rows

    def encode_audio(self, samples: np.ndarray) -> np.ndarray:
        """(T,) float32 16 kHz -> (n_audio_tokens, H) audio embeddings, the family's way."""
        return self.family.encode_audio(self, samples)

    def empty_cache(self):
        """An empty KV cache with storage of its own (one per session; see runtime/kv_cache.py)."""
        return self.decoder.new_cache()

    def release_cache(self, cache) -> None:
        """A session is done with the cache `empty_cache` gave it (a shared decoder reuses its slot)."""
        self.decoder.release(cache)

    def decode(self, embeds: np.ndarray, cache):
        """(T, H) new embeddings after `cache` -> ((1, V) logits of the last position, the cache covering past + T)."""
        return self.decoder.decode(embeds, cache)

    def greedy(self, prompt_embeds: np.ndarray, max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        """Prefill the prompt, then pick the most likely token until a stop id or the budget (KV cache reused)."""
        logits, past = self.decode(prompt_embeds, self.empty_cache())
        tokens: list[int] = []
        while len(tokens) < max_new_tokens:
            token = int(np.argmax(logits[-1]))
            tokens.append(token)
            if token in stop_ids:
                break
            logits, past = self.decode(self.embed_tokens([token]), past)
        return tokens

