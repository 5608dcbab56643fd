"""The one small interface every model family implements (ARCHITECTURE.md, "Model families").

A SpeechLM lays a sequence out as `[prefix][audio][suffix][target][end]`, turns audio into
LM-space embeddings its own way (`embed_audio`), and otherwise behaves the same for every
family: the same batch layout, the same target-only loss, the same LoRA attachment.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from simulsa.runtime.errors import ModelError
from simulsa.train.families.config import SimulsaConfig

IGNORE_INDEX = -100  # label value the loss skips (prompt and audio positions)


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    quantization: str | None = None  # None, "4bit" or "8bit" (bitsandbytes; QLoRA)
    dtype: str = "float32"  # dtype of the weights that are not quantized: float32, bfloat16 or float16

    def __post_init__(self) -> None:
        if self.quantization not in (None, "4bit", "8bit"):
            raise ModelError(f"quantization must be 4bit, 8bit or none, got {self.quantization!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ModelError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


@dataclasses.dataclass(frozen=True)
class TokenizedRow:
    prefix_ids: list[int]  # prompt text before the audio
    suffix_ids: list[int]  # prompt text after the audio
    target_ids: list[int]  # translation tokens, the end token included when asked for


@dataclasses.dataclass
class AssembledBatch:
    inputs_embeds: torch.Tensor  # (B, T, H) right-padded
    attention_mask: torch.Tensor  # (B, T) 1 = real position
    labels: torch.Tensor  # (B, T) target ids at target positions, IGNORE_INDEX elsewhere
    target_start: torch.Tensor  # (B,) position of each row's first target token


def scaled_embedding_table(embed: nn.Module) -> torch.Tensor:
    """(V, H): embedding weights times the scale some LMs apply inside the embedding module.

    Gemma 3 multiplies every looked-up row by sqrt(hidden) in its embedding's forward; whoever reads
    the weight matrix directly (the runtime's table, the projector's target scale, align's CTC head)
    must apply it too, or text and audio reach the LM sqrt(hidden) times too quiet.
    """
    scale = getattr(embed, "embed_scale", 1.0)  # a 0-d tensor in Gemma 3, absent elsewhere
    return embed.weight * (scale.to(embed.weight.dtype) if torch.is_tensor(scale) else scale)


class SpeechLM(nn.Module, abc.ABC):
    """Audio encoder + LM behind one interface; subclasses are the families."""

    family: ClassVar[str]
    peft_root: ClassVar[str]  # attribute name of the module that LoRA wraps
    trained_fully: ClassVar[tuple[str, ...]] = ()  # parameter-name prefixes trained in full (not LoRA)

    def __init__(self, config: SimulsaConfig, tokenizer: Any) -> None:
        super().__init__()
        self.simulsa_config = config
        self.tokenizer = tokenizer
        self._prompt_ids: dict[tuple[str | None, str | None], tuple[list[int], list[int]]] = {}
        # part ("encoder", "lm"; "" for a single-folder model) -> licence/notice files of its base weights
        self.notices: dict[str, list[Path]] = {}

    # ---- family-specific -------------------------------------------------------------

    @abc.abstractmethod
    def audio_features(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """(T,) float32 16 kHz -> the numpy features of one utterance (torch-free work, run in data loading)."""

    def open_tail_features(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The features of audio that stops mid-speech (a SimulSA truncation), as the runtime hears an open segment.
        Most ears need nothing; one that closes what it hears as a finished sentence (whisper-tokens) marks them."""
        return features

    @abc.abstractmethod
    def collate_audio(self, features: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """Per-utterance features -> batched tensors, the keyword arguments of `embed_audio`."""

    @abc.abstractmethod
    def embed_audio(self, **audio: torch.Tensor) -> list[torch.Tensor]:
        """Batched audio tensors -> one (n_audio_tokens, H) embedding per utterance."""

    @abc.abstractmethod
    def lora_target_modules(self) -> str | list[str]:
        """peft `target_modules` inside `getattr(self, peft_root)`: the LM's linear layers."""

    @abc.abstractmethod
    def save_base(self, folder: Path) -> None:
        """Write the full weights and tokenizer (simulsa.json is written by the caller)."""

    @property
    @abc.abstractmethod
    def max_audio_s(self) -> float | None:
        """Longest audio the family accepts in one utterance (None: no limit)."""

    # ---- shared ------------------------------------------------------------------------

    @property
    def text_config(self) -> Any:
        """The language model's transformers config (layers, heads, hidden size)."""
        return self.lm_module.config

    @property
    def lm_module(self) -> nn.Module:
        return getattr(self, self.peft_root)

    def lm_state_dict(self) -> dict[str, torch.Tensor]:
        """The LM's weights only (the fused decoder builder reads them by transformers name)."""
        return self.lm_module.state_dict()

    @property
    def device(self) -> torch.device:
        return self.input_embeddings().weight.device

    def input_embeddings(self) -> nn.Embedding:
        return self.lm_module.get_input_embeddings()

    def embedding_table(self) -> torch.Tensor:
        """(V, H): the vector the LM reads for each token id (see `scaled_embedding_table`)."""
        return scaled_embedding_table(self.input_embeddings())

    def language_logits(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, keep_last: int = 0) -> torch.Tensor:
        """(B, T, H) embeddings -> (B, T, V) logits, or (B, keep_last, V) for the last positions only.

        No KV cache: training and scoring. `keep_last` spares the output head (a fifth of a
        135M LM's compute) the prompt and audio positions, which have no labels.
        """
        return self.lm_module(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False,
                              logits_to_keep=keep_last).logits  # fmt: skip

    def end_token_id(self) -> int:
        end = self.simulsa_config.prompt.end or self.tokenizer.eos_token
        ids = self.tokenizer(end, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ModelError(f"prompt end {end!r} is {len(ids)} tokens, expected 1; fix simulsa.json's prompt.end")
        return ids[0]

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def tokenize_row(self, target: str, src_lang: str | None, tgt_lang: str | None, with_end: bool = True) -> TokenizedRow:
        key = (src_lang, tgt_lang)
        if key not in self._prompt_ids:
            prefix, suffix = self.simulsa_config.prompt.render(src_lang, tgt_lang)
            self._prompt_ids[key] = (self.encode_text(prefix), self.encode_text(suffix))
        prefix_ids, suffix_ids = self._prompt_ids[key]
        target_ids = self.encode_text(target) + ([self.end_token_id()] if with_end else [])
        return TokenizedRow(prefix_ids, suffix_ids, target_ids)

    def assemble(self, batch: dict[str, torch.Tensor]) -> AssembledBatch:
        """Collated batch -> right-padded `[prefix][audio][suffix][target]` embeddings and labels.

        A text row (`slot_is_text`) puts its source's token embeddings where the audio would be.
        """
        audio_keys = {key[len("audio_") :]: value for key, value in batch.items() if key.startswith("audio_")}
        audio = iter(self.embed_audio(**audio_keys) if audio_keys else [])  # B_speech x (n_i, H)
        embed = self.input_embeddings()
        is_text = batch.get("slot_is_text", torch.zeros(batch["prefix_ids"].shape[0], dtype=torch.bool))  # (B,)
        rows, labels, starts = [], [], []
        for b in range(batch["prefix_ids"].shape[0]):
            audio_b = embed(batch["slot_ids"][b, : batch["slot_len"][b]]) if is_text[b] else next(audio)  # (n_b, H)
            prefix = batch["prefix_ids"][b, : batch["prefix_len"][b]]
            suffix = batch["suffix_ids"][b, : batch["suffix_len"][b]]
            target = batch["target_ids"][b, : batch["target_len"][b]]
            text = embed(torch.cat([prefix, suffix, target]))  # (Lp + Ls + Lt, H)
            lp, ls = prefix.numel(), suffix.numel()
            rows.append(torch.cat([text[:lp], audio_b.to(text.dtype), text[lp:]]))
            starts.append(lp + audio_b.shape[0] + ls)
            labels.append(torch.cat([torch.full((starts[-1],), IGNORE_INDEX, device=target.device), target]))
        return _pad_rows(rows, labels, starts)

    def forward(self, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        assembled = self.assemble(batch)
        width = assembled.labels.shape[1]
        keep = width - int(assembled.target_start.min()) + 1  # from the position predicting the first target token
        logits = self.language_logits(assembled.inputs_embeds, assembled.attention_mask, keep_last=keep)
        logits = logits[:, -keep:]  # (B, keep, V); a wrapper that ignores logits_to_keep (Qwen2-Audio) returns all T
        labels = assembled.labels[:, width - keep + 1 :]  # (B, keep - 1): the token each kept position predicts
        loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)
        return {"loss": loss, "logits": logits}


def _pad_rows(rows: list[torch.Tensor], labels: list[torch.Tensor], starts: list[int]) -> AssembledBatch:
    lengths = [row.shape[0] for row in rows]
    width, hidden = max(lengths), rows[0].shape[1]
    embeds = rows[0].new_zeros((len(rows), width, hidden))
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=rows[0].device)
    padded_labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long, device=rows[0].device)
    for b, (row, label, length) in enumerate(zip(rows, labels, lengths)):
        embeds[b, :length] = row
        mask[b, :length] = 1
        padded_labels[b, :length] = label
    return AssembledBatch(embeds, mask, padded_labels, torch.tensor(starts, device=rows[0].device))
