"""`composite`: a Whisper encoder (frozen by default) + projector + any HF causal LM.

Audio is encoded in independent blocks of `block_s` seconds, each with the Whisper
positional embeddings sliced to the block's length, so a finished block's embeddings
never change while more audio arrives: that is what makes KV reuse across chunks exact.
The last, partial block is padded with silence to a whole audio token (80 ms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from simulsa.runtime.errors import ModelError
from simulsa.runtime.features import block_mels
from simulsa.runtime.prompt import AUDIO_PLACEHOLDER, PLAIN_PROMPT, PromptTemplate
from simulsa.train.families.base import LoadOptions, SpeechLM, scaled_embedding_table
from simulsa.train.families.config import AudioSettings, SimulsaConfig
from simulsa.train.families.notices import copy_notices, notice_files

ENCODER_DIR = "encoder"  # WhisperEncoder weights + config
LM_DIR = "lm"  # causal LM weights + config + tokenizer
PROJECTOR_FILE = "projector.safetensors"
DEFAULT_BLOCK_S = 2.0  # seconds per independently encoded block
DEFAULT_STACK = 4  # encoder frames per audio token: 50 frames/s -> 12.5 tokens/s


def whisper_encode(enc: nn.Module, mel: torch.Tensor) -> torch.Tensor:
    """(n, M, F) -> (n, F / 2, D): a Whisper encoder with its positions sliced to the input (whisper.cpp audio_ctx)."""
    x = nn.functional.gelu(enc.conv1(mel.to(enc.conv1.weight.dtype)))  # (n, D, F)
    x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)  # (n, F / 2, D)
    x = x + enc.embed_positions.weight[: x.shape[1]]
    for layer in enc.layers:
        x = layer(x, None)
    return enc.layer_norm(x)


class Projector(nn.Module):
    """Encoder frames -> LM embeddings: stack `stack` frames, LayerNorm, Linear-GELU-Linear, LayerNorm.

    Why the norms: Whisper states have a norm of ~31 a frame while a small LM's token embeddings
    have ~3 (measured on Whisper-base + SmolLM2); unnormalised, a fresh projector hands the LM
    inputs ten times larger than any token it knows, and 200 steps did not teach it to listen.
    `out_norm`'s gain starts at the LM's embedding RMS (`match_embedding_scale`).
    """

    def __init__(self, encoder_dim: int, lm_dim: int, stack: int) -> None:
        super().__init__()
        self.stack = stack
        self.in_norm = nn.LayerNorm(encoder_dim * stack)
        self.up = nn.Linear(encoder_dim * stack, lm_dim)
        self.act = nn.GELU()
        self.down = nn.Linear(lm_dim, lm_dim)
        self.out_norm = nn.LayerNorm(lm_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, length, dim = frames.shape  # (n, F, D) with F a multiple of stack
        stacked = frames.reshape(n, length // self.stack, dim * self.stack)  # (n, F / stack, stack * D)
        return self.out_norm(self.down(self.act(self.up(self.in_norm(stacked)))))  # (n, F / stack, H)

    @torch.no_grad()
    def match_embedding_scale(self, embeddings: torch.Tensor) -> None:
        """Start the output at the RMS of the LM's (V, H) token embeddings."""
        self.out_norm.weight.fill_(float(embeddings.float().pow(2).mean().sqrt()))


class CompositeSpeechLM(SpeechLM):
    family = "composite"
    peft_root = "lm"
    trained_fully = ("projector.",)

    def __init__(self, config: SimulsaConfig, tokenizer: Any, encoder: nn.Module, projector: Projector, lm: nn.Module):
        super().__init__(config, tokenizer)
        self.encoder = encoder
        self.projector = projector
        self.lm = lm
        self.encoder.requires_grad_(False)  # frozen: the projector and LoRA adapt around it

    @property
    def max_audio_s(self) -> float | None:
        return None

    def audio_features(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """(T,) -> {"mel": (M, sum F_i) blocks side by side, "block_frames": (n_blocks,) F_i}."""
        audio = self.simulsa_config.audio
        mels = block_mels(samples, audio.block_s, audio.stack, audio.n_mels)
        return {"mel": np.concatenate(mels, axis=1), "block_frames": np.array([m.shape[1] for m in mels])}

    def collate_audio(self, features: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        frames = np.concatenate([f["block_frames"] for f in features])
        blocks = np.zeros((frames.size, self.simulsa_config.audio.n_mels, frames.max()), dtype=np.float32)
        i = 0
        for feature in features:
            for piece in np.split(feature["mel"], np.cumsum(feature["block_frames"])[:-1], axis=1):
                blocks[i, :, : piece.shape[1]] = piece
                i += 1
        return {
            "mel_blocks": torch.from_numpy(blocks),  # (N, M, F_max) all blocks of the batch
            "block_frames": torch.from_numpy(frames),  # (N,)
            "blocks_per_utt": torch.tensor([f["block_frames"].size for f in features]),  # (B,)
        }

    def encode_blocks(self, mel: torch.Tensor) -> torch.Tensor:
        """(n, M, F) mel blocks of one length -> (n, F / 2, D) Whisper encoder states."""
        return whisper_encode(self.encoder, mel)

    def encode_audio(self, mel_blocks: torch.Tensor, block_frames: torch.Tensor, blocks_per_utt: torch.Tensor) -> list:
        """Blocks grouped by length (a partial block is encoded alone, as the runtime will) -> B x (F_i, D) encoder states."""
        per_block: list[torch.Tensor | None] = [None] * mel_blocks.shape[0]
        for frames in block_frames.unique().tolist():
            index = (block_frames == frames).nonzero().flatten()
            with torch.set_grad_enabled(torch.is_grad_enabled() and self._encoder_trainable()):
                states = self.encode_blocks(mel_blocks[index, :, :frames])  # (n, F / 2, D)
            for j, block_index in enumerate(index.tolist()):
                per_block[block_index] = states[j]
        bounds = np.cumsum([0, *blocks_per_utt.tolist()])
        return [torch.cat(per_block[bounds[b] : bounds[b + 1]]) for b in range(len(bounds) - 1)]

    def embed_audio(self, mel_blocks: torch.Tensor, block_frames: torch.Tensor, blocks_per_utt: torch.Tensor):
        """-> B x (n_i, H): every block's frames are a multiple of `stack`, so projecting whole utterances is exact."""
        states = self.encode_audio(mel_blocks, block_frames, blocks_per_utt)  # B x (F_i, D)
        dtype = self.projector.up.weight.dtype
        return [self.projector(s[None].to(dtype))[0] for s in states]

    def _encoder_trainable(self) -> bool:
        return any(p.requires_grad for p in self.encoder.parameters())

    def lora_target_modules(self) -> str | list[str]:
        return "all-linear"  # every linear layer of the LM except its output head

    def save_base(self, folder: Path) -> None:
        self.encoder.save_pretrained(str(folder / ENCODER_DIR))
        self.lm.save_pretrained(str(folder / LM_DIR))
        self.tokenizer.save_pretrained(str(folder / LM_DIR))
        save_file({k: v.contiguous() for k, v in self.projector.state_dict().items()}, str(folder / PROJECTOR_FILE))
        for part, files in self.notices.items():
            copy_notices(files, folder / part)  # the base weights' terms stay beside them


def load_composite(folder: Path, config: SimulsaConfig, options: LoadOptions) -> CompositeSpeechLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from simulsa.train.families.quantization import quantized_load_kwargs

    encoder = WhisperEncoder.from_pretrained(str(folder / ENCODER_DIR), dtype=options.torch_dtype)
    lm = AutoModelForCausalLM.from_pretrained(str(folder / LM_DIR), **quantized_load_kwargs(options))
    tokenizer = AutoTokenizer.from_pretrained(str(folder / LM_DIR))
    projector = Projector(encoder.config.d_model, lm.config.hidden_size, config.audio.stack)
    projector.load_state_dict(load_file(str(folder / PROJECTOR_FILE)))
    model = CompositeSpeechLM(config, tokenizer, encoder, projector.to(options.torch_dtype), lm)
    model.notices = {part: notice_files(folder / part) for part in (ENCODER_DIR, LM_DIR)}
    return model


def compose_composite(encoder_id: str, lm_id: str, block_s: float, src_lang: str, tgt_lang: str,
                      stack: int = DEFAULT_STACK) -> CompositeSpeechLM:
    """A composite from a pretrained Whisper (hub id or folder) and causal LM; the projector is new."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, WhisperModel

    encoder_type = AutoConfig.from_pretrained(encoder_id).model_type
    if encoder_type != "whisper":
        raise ModelError(f"--encoder {encoder_id!r} is a {encoder_type!r} model; give a Whisper model")
    encoder = WhisperModel.from_pretrained(encoder_id).get_encoder()
    lm = AutoModelForCausalLM.from_pretrained(lm_id)
    tokenizer = AutoTokenizer.from_pretrained(lm_id)
    prompt = _prompt_for(tokenizer, src_lang, tgt_lang)
    audio = AudioSettings(n_mels=encoder.config.num_mel_bins, block_s=block_s, stack=stack)
    config = SimulsaConfig(family="composite", prompt=prompt, audio=audio)
    projector = Projector(encoder.config.d_model, lm.config.hidden_size, stack)
    projector.match_embedding_scale(scaled_embedding_table(lm.get_input_embeddings()))
    model = CompositeSpeechLM(config, tokenizer, encoder, projector, lm)
    model.notices = {ENCODER_DIR: notice_files(encoder_id), LM_DIR: notice_files(lm_id)}  # hub ids: none
    return model


def _prompt_for(tokenizer: Any, src_lang: str, tgt_lang: str) -> PromptTemplate:
    """Use the LM's chat template when it has one (instruction-tuned LMs answer better in their own format)."""
    end = tokenizer.eos_token or ""
    if not getattr(tokenizer, "chat_template", None):
        return PromptTemplate(PLAIN_PROMPT.prefix, PLAIN_PROMPT.suffix, end, src_lang, tgt_lang)
    request = f"{AUDIO_PLACEHOLDER}\nTranslate the {{src}} speech into {{tgt}}."
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": request}], tokenize=False, add_generation_prompt=True)
    prefix, suffix = rendered.split(AUDIO_PLACEHOLDER)
    return PromptTemplate(prefix, suffix, end, src_lang, tgt_lang)


def _tiny_llama(tokenizer: Any) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                        num_key_value_heads=1, vocab_size=len(tokenizer), max_position_embeddings=4096,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                        bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True))  # fmt: skip


def _tiny_gemma3(tokenizer: Any) -> nn.Module:
    """Gemma 3's quirks in small: embeddings scaled by sqrt(hidden) inside the module, sliding-window layers."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    return Gemma3ForCausalLM(Gemma3TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                              num_key_value_heads=1, head_dim=32, vocab_size=len(tokenizer),
                                              max_position_embeddings=4096, sliding_window=16,
                                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                              bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True))  # fmt: skip


TINY_LMS = {"llama": _tiny_llama, "gemma3": _tiny_gemma3}


def tiny_composite(block_s: float = DEFAULT_BLOCK_S, lm: str = "llama") -> CompositeSpeechLM:
    """A random composite of a few hundred thousand parameters (no download); `lm` picks the LM's architecture."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from simulsa.train.tokenizer import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    encoder = WhisperEncoder(WhisperConfig(d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128,
                                           decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=128,
                                           num_mel_bins=80, max_source_positions=1500, vocab_size=len(tokenizer),
                                           pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=0))  # fmt: skip
    language_model = TINY_LMS[lm](tokenizer)
    prompt = PromptTemplate(PLAIN_PROMPT.prefix, PLAIN_PROMPT.suffix, tokenizer.eos_token)
    config = SimulsaConfig(family="composite", prompt=prompt, audio=AudioSettings(n_mels=80, block_s=block_s))
    projector = Projector(64, 64, DEFAULT_STACK)
    projector.match_embedding_scale(scaled_embedding_table(language_model.get_input_embeddings()))
    return CompositeSpeechLM(config, tokenizer, encoder, projector, language_model)
