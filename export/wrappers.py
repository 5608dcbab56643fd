"""Small torch modules with explicit signatures, exported to ONNX one graph each.

Every wrapper states its graph's inputs and outputs with shapes; the names are the
bundle's contract with the runtime (runtime/bundle.py reads them from bundle.json).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from simulsa.runtime.audio import WHISPER_WINDOW_FRAMES
from simulsa.runtime.bundle import PAST_KEY, PAST_VALUE, PRESENT_KEY, PRESENT_VALUE
from simulsa.train.families.base import SpeechLM


class BlockEncoderWrapper(nn.Module):
    """composite: one mel block -> LM-space audio embeddings (projector included).

        mel (B, n_mels, F) ──► Whisper encoder, positions sliced to F/2 ──► stack s + MLP ──► audio_embeds (B, F/2s, H)

    F is dynamic (any multiple of 2s mel frames up to the block length).
    """

    input_names = ("mel",)
    output_names = ("audio_embeds",)
    dynamic_axes: ClassVar[dict] = {"mel": {0: "batch", 2: "frames"}, "audio_embeds": {0: "batch", 1: "audio_tokens"}}

    def __init__(self, model: SpeechLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model.projector(self.model.encode_blocks(mel))

    def example_inputs(self, n_mels: int) -> tuple[torch.Tensor, ...]:
        audio = self.model.simulsa_config.audio
        frames = round(audio.block_s * 100) if audio.block_s else 50 * audio.stack  # a multiple of 2 * stack mel frames
        return (torch.randn(1, n_mels, frames),)


class WindowEncoderWrapper(nn.Module):
    """qwen2-audio: the fixed 30 s window, padded frames masked out of attention.

        input_features (B, 128, 3000) ──┐
        valid_frames (B,) int64 ────────┴─► audio tower ──► avg-pool ──► projector ──► audio_embeds (B, 750, H)

    Only the first window_token_count(valid_frames) embeddings are meaningful; the runtime slices them.
    """

    input_names = ("input_features", "valid_frames")
    output_names = ("audio_embeds",)
    dynamic_axes: ClassVar[dict] = {"input_features": {0: "batch"}, "valid_frames": {0: "batch"}, "audio_embeds": {0: "batch"}}

    def __init__(self, model: SpeechLM) -> None:
        super().__init__()
        base = model._unwrapped().model
        self.tower = base.audio_tower
        self.projector = base.multi_modal_projector

    def forward(self, input_features: torch.Tensor, valid_frames: torch.Tensor) -> torch.Tensor:
        positions = WHISPER_WINDOW_FRAMES // 2  # 1500 encoder positions after the stride-2 conv
        conv_frames = (valid_frames - 1) // 2 + 1  # (B,)
        keep = torch.arange(positions, device=valid_frames.device)[None] < conv_frames[:, None]  # (B, 1500)
        dtype = self.tower.conv1.weight.dtype
        additive = torch.zeros(keep.shape, dtype=dtype).masked_fill(~keep, torch.finfo(dtype).min)  # (B, 1500)
        states = self.tower(input_features, attention_mask=additive[:, None, None, :]).last_hidden_state  # (B, 750, D)
        return self.projector(states)

    def example_inputs(self, n_mels: int) -> tuple[torch.Tensor, ...]:
        return torch.randn(1, n_mels, WHISPER_WINDOW_FRAMES), torch.tensor([900])


class DecoderWrapper(nn.Module):
    """The LM with an explicit KV cache; one graph for prefill and decode (an empty past on the first call).

        inputs_embeds (B, T, H) ─────────────────┐
        attention_mask (B, P + T) int64 ─────────┤
        position_ids (B, T) int64 ───────────────┼─► LM ──► logits (B, 1, V): the last position only
        past_key_values.{i}.key|value (B, KV, P, D) ┘        present.{i}.key|value (B, KV, P + T, D)

    Only the last position's logits (schema 2): decoding never reads the others, and with a 262k
    vocabulary the head over a 125-position prefill costs 21 G multiply-adds and 130 MB of logits.
    """

    def __init__(self, model: SpeechLM, num_layers: int) -> None:
        super().__init__()
        self.lm = model.lm_module
        self.num_layers = num_layers

    @property
    def input_names(self) -> tuple[str, ...]:
        past = [name.format(i) for i in range(self.num_layers) for name in (PAST_KEY, PAST_VALUE)]
        return ("inputs_embeds", "attention_mask", "position_ids", *past)

    @property
    def output_names(self) -> tuple[str, ...]:
        present = [name.format(i) for i in range(self.num_layers) for name in (PRESENT_KEY, PRESENT_VALUE)]
        return ("logits", *present)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {"inputs_embeds": {0: "batch", 1: "new"}, "attention_mask": {0: "batch", 1: "total"},
                "position_ids": {0: "batch", 1: "new"}, "logits": {0: "batch"}}  # fmt: skip
        axes.update({name: {0: "batch", 2: "past"} for name in self.input_names[3:]})
        axes.update({name: {0: "batch", 2: "total"} for name in self.output_names[1:]})
        return axes

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        from transformers import DynamicCache

        cache = DynamicCache()
        for i in range(self.num_layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                      cache=cache, use_cache=True, logits_to_keep=1)  # fmt: skip
        present = getattr(out, "cache", None) or out.past_key_values
        flat = [t for layer in present.layers for t in (layer.keys, layer.values)]
        return (out.logits[:, -1:], *flat)  # (B, 1, V); a no-op where the LM honoured logits_to_keep

    def example_inputs(self, hidden: int, kv_heads: int, head_dim: int) -> tuple[torch.Tensor, ...]:
        new, past = 5, 3  # a non-empty past so the trace keeps the concat; dynamic axes free both lengths
        past_kv = [torch.randn(1, kv_heads, past, head_dim) for _ in range(2 * self.num_layers)]
        return (torch.randn(1, new, hidden), torch.ones(1, past + new, dtype=torch.long),
                torch.arange(past, past + new)[None], *past_kv)  # fmt: skip
