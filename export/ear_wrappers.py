"""whisper-tokens: the ear's three graphs (the LM decoder is DecoderWrapper, as for every family).

    mel (1, M, F) ──► ear_encoder ──► cross.{i}.key|value (1, heads, F/2, hd): computed once a step, read by every token
    input_ids (1, T) + self past (1, heads, P, hd) + cross ──► ear_decoder ──► top_logits, top_ids (1, T, k),
                                                                             hidden (1, T, D), self present (P + T)
    h_pred, h_read (n, D) + top_logits, top_ids (n, k) ──► projector ──► audio_embeds (n, H)

The decoder is written out layer by layer (not HF's WhisperDecoder with its cache classes) so that the graph has
explicit self-attention KV in and out, like the LM's; tests check it against HF's decoder.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from simulsa.export.ear_builder import (
    CROSS_KEY,
    CROSS_VALUE,
    SELF_PAST_KEY,
    SELF_PAST_VALUE,
    SELF_PRESENT_KEY,
    SELF_PRESENT_VALUE,
)
from simulsa.train.families.whisper_tokens import TOP_K, WhisperTokensSpeechLM


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, dim = x.shape  # (B, L, D) -> (B, heads, L, D / heads)
    return x.view(batch, length, heads, dim // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape  # (B, heads, L, hd) -> (B, L, heads * hd)
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class EarEncoderWrapper(nn.Module):
    def __init__(self, model: WhisperTokensSpeechLM) -> None:
        super().__init__()
        self.model = model
        self.layers = model.whisper.model.decoder.layers
        self.heads = model.whisper.config.decoder_attention_heads

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("mel",)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name.format(i) for i in range(len(self.layers)) for name in (CROSS_KEY, CROSS_VALUE))

    @property
    def dynamic_axes(self) -> dict:
        return {"mel": {2: "frames"}, **{name: {2: "positions"} for name in self.output_names}}

    def forward(self, mel: torch.Tensor):
        states = self.model.encode(mel)  # (1, F / 2, D)
        out = []
        for layer in self.layers:
            attn = layer.encoder_attn
            out += [_heads(attn.k_proj(states), self.heads), _heads(attn.v_proj(states), self.heads)]
        return tuple(out)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return (torch.randn(1, self.model.simulsa_config.audio.n_mels, round(self.model.simulsa_config.audio.window_s * 100)),)


class EarDecoderWrapper(nn.Module):
    def __init__(self, model: WhisperTokensSpeechLM) -> None:
        super().__init__()
        self.whisper = model.whisper
        self.decoder = model.whisper.model.decoder
        self.heads = model.whisper.config.decoder_attention_heads
        self.num_layers = len(self.decoder.layers)
        # Whisper ties its output head to the token table; traced as two ops the exporter writes two copies (2 x 106 MB
        # for Whisper-base). One (D, V) matrix serves both: rows are gathered along axis 1, logits are hidden @ it.
        self.register_buffer("table_t", self.decoder.embed_tokens.weight.detach().T.contiguous(), persistent=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        past = [n.format(i) for i in range(self.num_layers) for n in (SELF_PAST_KEY, SELF_PAST_VALUE)]
        cross = [n.format(i) for i in range(self.num_layers) for n in (CROSS_KEY, CROSS_VALUE)]
        return ("input_ids", *past, *cross)

    @property
    def output_names(self) -> tuple[str, ...]:
        present = [n.format(i) for i in range(self.num_layers) for n in (SELF_PRESENT_KEY, SELF_PRESENT_VALUE)]
        return ("top_logits", "top_ids", "hidden", *present)

    @property
    def dynamic_axes(self) -> dict:
        axes = {"input_ids": {1: "new"}, "top_logits": {1: "new"}, "top_ids": {1: "new"}, "hidden": {1: "new"}}
        axes.update({n: {2: "past"} for n in self.input_names[1 : 1 + 2 * self.num_layers]})
        axes.update({n: {2: "positions"} for n in self.input_names[1 + 2 * self.num_layers :]})
        axes.update({n: {2: "total"} for n in self.output_names[3:]})
        return axes

    def forward(self, input_ids: torch.Tensor, *kv: torch.Tensor):
        past, cross = kv[: 2 * self.num_layers], kv[2 * self.num_layers :]
        n_past, n_new = past[0].shape[2], input_ids.shape[1]
        dec = self.decoder
        token_rows = torch.index_select(self.table_t, 1, input_ids[0]).T[None]  # (1, T, D)
        x = token_rows * dec.embed_scale + dec.embed_positions.weight[n_past : n_past + n_new]  # (1, T, D)
        rows = torch.arange(n_new)[:, None] + n_past
        blocked = torch.arange(n_past + n_new)[None, :] > rows  # (T, P + T): a token sees the past and itself
        mask = torch.zeros(blocked.shape).masked_fill(blocked, torch.finfo(torch.float32).min)
        present = []
        for i, layer in enumerate(dec.layers):
            sa = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            key = torch.cat([past[2 * i], _heads(sa.k_proj(h), self.heads)], 2)  # (1, heads, P + T, hd)
            value = torch.cat([past[2 * i + 1], _heads(sa.v_proj(h), self.heads)], 2)
            present += [key, value]
            x = x + sa.out_proj(_attend(_heads(sa.q_proj(h) * sa.scaling, self.heads), key, value, mask))
            ca = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(x)
            x = x + ca.out_proj(_attend(_heads(ca.q_proj(h) * ca.scaling, self.heads), cross[2 * i], cross[2 * i + 1], None))
            x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
        hidden = dec.layer_norm(x)  # (1, T, D)
        top_logits, top_ids = (hidden @ self.table_t).topk(TOP_K, dim=-1)  # (1, T, k): the tied head
        return (top_logits, top_ids, hidden, *present)

    def example_inputs(self, positions: int = 250) -> tuple[torch.Tensor, ...]:
        heads, dim = self.heads, self.whisper.config.d_model
        past = [torch.randn(1, heads, 3, dim // heads) for _ in range(2 * self.num_layers)]
        cross = [torch.randn(1, heads, positions, dim // heads) for _ in range(2 * self.num_layers)]
        return (torch.tensor([[1, 2]]), *past, *cross)


def _attend(query, key, value, mask):
    scores = query @ key.transpose(-1, -2)  # (1, heads, T, S); the query is already scaled, as in Whisper
    if mask is not None:
        scores = scores + mask
    return _merge(torch.softmax(scores, dim=-1) @ value)


class EarProjectorWrapper(nn.Module):
    input_names = ("h_pred", "h_read", "top_logits", "top_ids")
    output_names = ("audio_embeds",)
    dynamic_axes: ClassVar[dict] = {name: {0: "tokens"} for name in (*input_names, *output_names)}

    def __init__(self, model: WhisperTokensSpeechLM) -> None:
        super().__init__()
        self.projector = model.projector
        self.dim = model.whisper.config.d_model

    def forward(self, h_pred, h_read, top_logits, top_ids):
        return self.projector(h_pred, h_read, top_logits, top_ids)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return (torch.randn(3, self.dim), torch.randn(3, self.dim), torch.randn(3, TOP_K), torch.randint(0, 10, (3, TOP_K)))
