"""The torch model behind the runtime's model interface, so the same streaming session runs on PyTorch eager.

Used by `simulsa bench --torch-checkpoint` to compare our onnxruntime engine with the model it was
exported from, under the same policy and the same KV reuse; the bundle supplies prompt ids and names.
"""

from __future__ import annotations

import numpy as np
import torch

from simulsa.runtime.bundle import Bundle
from simulsa.runtime.kv_cache import ConcatCache
from simulsa.train.families.base import SpeechLM


class TorchSpeechModel:
    """`OnnxSpeechModel`'s calls (embed, encode audio, decode with a KV cache) computed by torch, eager."""

    def __init__(self, model: SpeechLM, bundle: Bundle) -> None:
        self.model = model.eval()
        self.bundle = bundle
        self.num_layers = bundle.dims.num_layers

    @torch.inference_mode()
    def embed_tokens(self, ids) -> np.ndarray:
        return self.model.input_embeddings()(torch.as_tensor(np.asarray(ids, dtype=np.int64))).numpy()

    @torch.inference_mode()
    def encode_audio(self, samples: np.ndarray) -> np.ndarray:
        audio = self.model.collate_audio([self.model.audio_features(samples)])
        return self.model.embed_audio(**audio)[0].numpy()

    def empty_cache(self) -> ConcatCache:
        dims = self.bundle.dims
        return ConcatCache.empty(self.num_layers, dims.num_kv_heads, dims.head_dim)

    def release_cache(self, cache: ConcatCache) -> None:
        """Nothing to give back (the runtime model's interface)."""

    @torch.inference_mode()
    def decode(self, embeds: np.ndarray, state: ConcatCache) -> tuple[np.ndarray, ConcatCache]:
        """(T, H) after `state` -> ((1, V) last-position logits, present K/V as numpy), like the ONNX decoder graph."""
        from transformers import DynamicCache

        past = state.tensors
        cache = DynamicCache()
        for i in range(self.num_layers):
            cache.update(torch.from_numpy(past[2 * i]), torch.from_numpy(past[2 * i + 1]), i)
        n_past, n_new = past[0].shape[2], embeds.shape[0]
        positions = torch.arange(n_past, n_past + n_new)[None]
        out = self.model.lm_module(inputs_embeds=torch.from_numpy(np.ascontiguousarray(embeds))[None],
                                   attention_mask=torch.ones(1, n_past + n_new, dtype=torch.long),
                                   position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)  # fmt: skip
        present = getattr(out, "cache", None) or out.past_key_values
        flat = tuple(t.numpy() for layer in present.layers for t in (layer.keys, layer.values))
        return out.logits[0, -1:].numpy(), ConcatCache(flat)
