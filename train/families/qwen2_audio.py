"""`qwen2-audio`: `Qwen2AudioForConditionalGeneration` (the paper's base model).

Its encoder needs the full 30 s mel window; the features are padded to it and the
encoder is told the real length through an attention mask, exactly as transformers does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simulsa.runtime.audio import WHISPER_WINDOW_FRAMES, WHISPER_WINDOW_S
from simulsa.runtime.features import window_mel
from simulsa.runtime.prompt import CHATML_PROMPT
from simulsa.train.families.base import LoadOptions, SpeechLM
from simulsa.train.families.config import AudioSettings, SimulsaConfig

# LoRA on the language model's projections only; the audio tower and projector keep their weights.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
N_MELS = 128  # Qwen2-Audio's Whisper-large-v3 style frontend


class Qwen2AudioSpeechLM(SpeechLM):
    family = "qwen2-audio"
    peft_root = "hf"

    def __init__(self, config: SimulsaConfig, tokenizer: Any, hf_model: nn.Module) -> None:
        super().__init__(config, tokenizer)
        self.hf = hf_model

    @property
    def max_audio_s(self) -> float | None:
        return float(WHISPER_WINDOW_S)

    def _unwrapped(self) -> nn.Module:
        """The Qwen2AudioForConditionalGeneration under any peft wrapper."""
        return self.hf.get_base_model() if hasattr(self.hf, "get_base_model") else self.hf

    @property
    def text_config(self) -> Any:
        return self._unwrapped().config.text_config

    def lm_state_dict(self) -> dict[str, torch.Tensor]:
        """The language model and its head, without the audio tower (whose layers share the LM's names)."""
        weights = self._unwrapped().state_dict()
        return {k: v for k, v in weights.items() if "language_model." in k or k.startswith("lm_head.")}

    def audio_features(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        mel, frames = window_mel(samples, self.simulsa_config.audio.n_mels)
        return {"mel": mel, "frames": np.array(frames)}

    def collate_audio(self, features: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return {
            "input_features": torch.from_numpy(np.stack([f["mel"] for f in features])),  # (B, 128, 3000)
            "feature_frames": torch.tensor([int(f["frames"]) for f in features]),  # (B,) real mel frames
        }

    def embed_audio(self, input_features: torch.Tensor, feature_frames: torch.Tensor) -> list[torch.Tensor]:
        from transformers.masking_utils import create_bidirectional_mask

        model = self._unwrapped().model
        tower = model.audio_tower
        conv_lengths, token_lengths = tower._get_feat_extract_output_lengths(feature_frames)
        positions = WHISPER_WINDOW_FRAMES // 2  # 1500 encoder positions in the window
        valid = (torch.arange(positions, device=conv_lengths.device)[None] < conv_lengths[:, None]).long()  # (B, 1500)
        dummy = torch.zeros((valid.shape[0], positions, 1), dtype=tower.conv1.weight.dtype, device=valid.device)
        mask = create_bidirectional_mask(config=tower.config, inputs_embeds=dummy, attention_mask=valid)
        states = tower(input_features.to(tower.conv1.weight.dtype), attention_mask=mask).last_hidden_state  # (B, 750, D)
        embeds = model.multi_modal_projector(states)  # (B, 750, H)
        return [embeds[b, : token_lengths[b]] for b in range(embeds.shape[0])]

    def lora_target_modules(self) -> str | list[str]:
        return LORA_TARGETS

    def save_base(self, folder: Path) -> None:
        self.hf.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))


def load_qwen2_audio(folder: Path | str, config: SimulsaConfig, options: LoadOptions) -> Qwen2AudioSpeechLM:
    from transformers import AutoTokenizer, Qwen2AudioForConditionalGeneration

    from simulsa.train.families.quantization import quantized_load_kwargs

    hf = Qwen2AudioForConditionalGeneration.from_pretrained(str(folder), **quantized_load_kwargs(options))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return Qwen2AudioSpeechLM(config, tokenizer, hf)


def default_qwen2_audio_config() -> SimulsaConfig:
    """For a plain Qwen2-Audio folder or hub id that has no simulsa.json (the paper's ChatML prompt)."""
    return SimulsaConfig(family="qwen2-audio", prompt=CHATML_PROMPT, audio=AudioSettings(n_mels=N_MELS))


def tiny_qwen2_audio() -> Qwen2AudioSpeechLM:
    """A random Qwen2-Audio of a few hundred thousand parameters (no download)."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    from simulsa.train.tokenizer import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    vocab = len(tokenizer)
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", "d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 2,
                      "encoder_ffn_dim": 64, "num_mel_bins": N_MELS, "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": vocab,
                     "max_position_embeddings": 4096, "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
                     "pad_token_id": tokenizer.pad_token_id},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )  # fmt: skip
    return Qwen2AudioSpeechLM(default_qwen2_audio_config(), tokenizer, Qwen2AudioForConditionalGeneration(config))
