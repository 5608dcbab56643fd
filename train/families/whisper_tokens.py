"""`whisper-tokens`: Whisper (encoder + decoder, frozen) hears; the LM reads one embedding per transcript token.

    segment audio ─► Whisper encoder over whole `window_s` windows ─► Whisper decoder, greedy ─► tokens t_1..t_n
    for each t_i: h_pred (the decoder state that chose t_i), h_read (the state after reading it), (512,) each
    projector(h_pred, h_read) = softmax(top-k Whisper logits of h_pred / T) @ M  +  MLP([h_pred; h_read])
                                └── M[w]: the LM's own embedding of Whisper token w's text ──┘

Why: measured on hand-referenced sentences, Whisper-base's decoder hears them nearly right (WER 7-16 %) while a
fresh projector over encoder frames does not (41 % token errors); and the LM already translates text. The soft
token path makes the ear start as the transcript (the MLP's output layer starts at zero); training through the
LM refines it. Streaming: transcript tokens that two successive steps agree on are frozen, so their embeddings
never change and KV reuse stays exact (runtime/segment_audio.py). Windows: 5 s of padding-with-silence works
(11.4 % WER on 24 utterances) where Whisper's own 30 s costs 6x and the utterance's own length loops.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from simulsa.runtime.audio import HOP_LENGTH, SAMPLE_RATE, log_mel
from simulsa.runtime.ear import open_tail_end, padded_length, sentence_end_ids, start_over, token_cap
from simulsa.runtime.errors import ModelError
from simulsa.runtime.prompt import PromptTemplate
from simulsa.train.families.base import LoadOptions, SpeechLM, scaled_embedding_table
from simulsa.train.families.composite import whisper_encode
from simulsa.train.families.config import AudioSettings, SimulsaConfig
from simulsa.train.families.notices import copy_notices, notice_files

WHISPER_DIR = "whisper"  # WhisperForConditionalGeneration weights + config + tokenizer.json
LM_DIR = "lm"
PROJECTOR_FILE = "projector.safetensors"
DEFAULT_WINDOW_S = 5.0
TOP_K = 8  # Whisper candidates mixed by the soft-token path
FEW_SHOT_PROMPT = PromptTemplate(  # the 3-shot prompt the base LM translates best with (measured, docs/default_model.md)
    prefix="English: Where is the station?\nSpanish: ¿Dónde está la estación?\n"
    "English: I am very tired today.\nSpanish: Hoy estoy muy cansado.\n"
    "English: We bought bread and cheese.\nSpanish: Compramos pan y queso.\nEnglish:",
    suffix="\n{tgt}:", end="\n")


class TokenProjector(nn.Module):
    """(n, D) h_pred, (n, D) h_read, (n, k) top-k logits and ids of h_pred -> (n, H) LM embeddings."""

    def __init__(self, whisper_dim: int, lm_dim: int, whisper_vocab: int, hidden: int = 1024) -> None:
        super().__init__()
        # (V_w, H) set by fill_table, not trained; float16 halves the bundle's copy (133 -> 66 MB for Whisper-base x Gemma 3)
        self.register_buffer("table", torch.zeros(whisper_vocab, lm_dim, dtype=torch.float16))
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.mlp = nn.Sequential(nn.Linear(2 * whisper_dim, hidden), nn.GELU(), nn.Linear(hidden, lm_dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, h_pred: torch.Tensor, h_read: torch.Tensor, top_logits: torch.Tensor, top_ids: torch.Tensor):
        weights = torch.softmax(top_logits / self.log_temperature.exp(), dim=-1)  # (n, k)
        soft = (weights[..., None] * self.table[top_ids].to(weights.dtype)).sum(-2)  # (n, H)
        return soft + self.mlp(torch.cat([h_pred, h_read], -1))

    @torch.no_grad()
    def fill_table(self, whisper_texts: list[str], lm_tokenizer: Any, lm_embeddings: torch.Tensor) -> None:
        """M[w] = mean of the LM's (scaled) embeddings of the pieces of Whisper token w's text; 0 for specials."""
        self.table.zero_()
        for w, text in enumerate(whisper_texts):
            ids = lm_tokenizer(text, add_special_tokens=False).input_ids if text else []
            if ids:
                self.table[w] = lm_embeddings[torch.tensor(ids)].float().mean(0).half()


class WhisperTokensSpeechLM(SpeechLM):
    family = "whisper-tokens"
    peft_root = "lm"
    trained_fully = ("projector.",)

    def __init__(self, config: SimulsaConfig, tokenizer: Any, whisper: nn.Module, projector: TokenProjector, lm: nn.Module):
        super().__init__(config, tokenizer)
        self.whisper = whisper
        self.projector = projector
        self.lm = lm
        self.whisper.requires_grad_(False)  # frozen: it already hears; the projector and LoRA adapt around it

    @property
    def max_audio_s(self) -> float | None:
        return 30.0  # Whisper's positional table: 1500 encoder positions

    @property
    def window_samples(self) -> int:
        return round(self.simulsa_config.audio.window_s * SAMPLE_RATE)

    # ---- features and batching ----------------------------------------------------------

    def audio_features(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """(T,) -> {"mel": (M, F)}: the audio padded with silence to a whole number of windows."""
        padded = np.pad(samples.astype(np.float32), (0, padded_length(samples.size, self.window_samples) - samples.size))
        return {"mel": log_mel(padded, self.simulsa_config.audio.n_mels)}

    def open_tail_features(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Whisper writes a full stop after audio cut mid-sentence; the runtime hides it from the LM while the segment
        is open (`StreamOptions.open_tail`), so truncated training audio is heard the same way."""
        return {**features, "open_tail": np.ones((), dtype=bool)}

    def collate_audio(self, features: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        frames = max(f["mel"].shape[1] for f in features)
        mel = np.zeros((len(features), self.simulsa_config.audio.n_mels, frames), dtype=np.float32)
        for b, f in enumerate(features):
            mel[b, :, : f["mel"].shape[1]] = f["mel"]
        open_tail = torch.tensor([bool(f.get("open_tail", False)) for f in features])  # (B,)
        return {"mel": torch.from_numpy(mel), "frames": torch.tensor([f["mel"].shape[1] for f in features]),
                "open_tail": open_tail}

    # ---- hearing ----------------------------------------------------------------------------

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, M, F) -> (B, F / 2, D) encoder states, positions sliced to the input (whole windows)."""
        return whisper_encode(self.whisper.model.encoder, mel)

    def decoder_states(self, enc: torch.Tensor, tokens: list[list[int]]) -> torch.Tensor:
        """Teacher-forced: (B, S, D) states over prompt + tokens (right-padded with the end token)."""
        audio = self.simulsa_config.audio
        longest = max(map(len, tokens))
        ids = torch.tensor([list(audio.decoder_prompt) + t + [audio.decoder_end] * (longest - len(t) + 1) for t in tokens])
        return self.whisper.model.decoder(input_ids=ids, encoder_hidden_states=enc).last_hidden_state

    def transcribe(self, enc: torch.Tensor, max_tokens: int) -> list[list[int]]:
        """Greedy transcripts of a batch of encoder states, each cut where it starts over."""
        audio = self.simulsa_config.audio
        batch = enc.shape[0]
        tokens: list[list[int]] = [[] for _ in range(batch)]
        done = [False] * batch
        decoder = self.whisper.model.decoder
        out = decoder(input_ids=torch.tensor([list(audio.decoder_prompt)] * batch), encoder_hidden_states=enc, use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        for _ in range(max_tokens):
            chosen = self.whisper.proj_out(out.last_hidden_state[:, -1]).argmax(-1).tolist()
            for b, token in enumerate(chosen):
                done[b] = done[b] or token == audio.decoder_end
                if not done[b]:
                    tokens[b].append(token)
            if all(done):
                break
            out = decoder(input_ids=torch.tensor([[t] for t in chosen]), encoder_hidden_states=enc, cache=cache,
                          use_cache=True)  # fmt: skip
            cache = getattr(out, "cache", None) or out.past_key_values
        return [t[: start_over(t)] for t in tokens]

    def hear(self, mel: torch.Tensor, frames: torch.Tensor,
             open_tail: torch.Tensor | None = None) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """Per utterance: (tokens, h_pred (n, D), h_read (n, D)); utterances grouped by window count.
        open_tail (B,) bool: that utterance was cut mid-speech, so its trailing sentence-end tokens are dropped."""
        result: list = [None] * mel.shape[0]
        prompt = len(self.simulsa_config.audio.decoder_prompt)
        open_tail = torch.zeros(mel.shape[0], dtype=torch.bool) if open_tail is None else open_tail
        with torch.no_grad():
            for count in frames.unique().tolist():
                index = (frames == count).nonzero().flatten().tolist()
                enc = self.encode(mel[index, :, :count])
                tokens = self.transcribe(enc, max_tokens=token_cap(count * HOP_LENGTH))
                tokens = [t[: open_tail_end(t, 0, self.sentence_ends)] if open_tail[b] else t for t, b in zip(tokens, index)]
                states = self.decoder_states(enc, tokens)  # (b, S, D)
                for j, b in enumerate(index):
                    pos = torch.arange(prompt, prompt + len(tokens[j]))
                    result[b] = (tokens[j], states[j, pos - 1], states[j, pos])
        return result

    def project(self, h_pred: torch.Tensor, h_read: torch.Tensor) -> torch.Tensor:
        """(n, D) x2 -> (n, H)."""
        logits = self.whisper.proj_out(h_pred)  # (n, V_w)
        top_logits, top_ids = logits.topk(TOP_K, dim=-1)
        return self.projector(h_pred, h_read, top_logits, top_ids)

    def embed_audio(self, mel: torch.Tensor, frames: torch.Tensor, open_tail: torch.Tensor | None = None) -> list[torch.Tensor]:
        return [self.project(h_pred, h_read) for _, h_pred, h_read in self.hear(mel, frames, open_tail)]

    @functools.cached_property
    def sentence_ends(self) -> frozenset[int]:
        """Whisper ids that close a sentence, the same set the exporter writes as `audio.ear.sentence_end_ids`."""
        return frozenset(sentence_end_ids(self.whisper_texts()))

    # ---- the rest of the interface ----------------------------------------------------------

    def tokenize_row(self, target: str, src_lang: str | None, tgt_lang: str | None, with_end: bool = True):
        """The target follows "Spanish:" after a space, as in the text the LM learned from (not a trailing-space prompt)."""
        row = super().tokenize_row(" " + target if target else target, src_lang, tgt_lang, with_end)
        bos = self.tokenizer.bos_token_id
        if bos is not None and self.tokenizer("a").input_ids[:1] == [bos] and row.prefix_ids[:1] != [bos]:
            # an LM whose tokenizer starts every text with <bos> (Gemma) reads a prompt without it badly: measured on
            # everyday sentences 1-80, the same weights: BLEU 8.16 without it, 24.37 with it
            row = dataclasses.replace(row, prefix_ids=[bos, *row.prefix_ids])
        return row

    def lora_target_modules(self) -> str | list[str]:
        return "all-linear"

    def save_base(self, folder: Path) -> None:
        self.whisper.save_pretrained(str(folder / WHISPER_DIR))
        self.whisper_tokenizer.save(str(folder / WHISPER_DIR / "tokenizer.json"))  # decodes Whisper ids for the table
        self.lm.save_pretrained(str(folder / LM_DIR))
        self.tokenizer.save_pretrained(str(folder / LM_DIR))
        save_file({k: v.contiguous() for k, v in self.projector.state_dict().items()}, str(folder / PROJECTOR_FILE))
        for part, files in self.notices.items():
            copy_notices(files, folder / part)

    def whisper_texts(self) -> list[str]:
        """Each Whisper token's text; '' for special tokens (they never reach the LM)."""
        return whisper_token_texts(self.whisper_tokenizer, self.whisper.config.vocab_size, self.simulsa_config.audio)

    whisper_tokenizer: Any = None


def whisper_token_texts(tokenizer: Any, vocab_size: int, audio: AudioSettings) -> list[str]:
    specials = set(audio.decoder_prompt) | {audio.decoder_end}
    first_special = min(specials)
    texts = tokenizer.decode_batch([[i] for i in range(min(first_special, vocab_size))])
    return texts + [""] * (vocab_size - len(texts))


def _whisper_tokenizer(folder: Path) -> Any:
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"{folder}: no tokenizer.json beside the Whisper weights; pull whisper-base with `simulsa models pull`")
    return Tokenizer.from_file(str(path))


def load_whisper_tokens(folder: Path, config: SimulsaConfig, options: LoadOptions) -> WhisperTokensSpeechLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer, WhisperForConditionalGeneration

    from simulsa.train.families.quantization import quantized_load_kwargs

    whisper = WhisperForConditionalGeneration.from_pretrained(str(folder / WHISPER_DIR), dtype=options.torch_dtype)
    lm = AutoModelForCausalLM.from_pretrained(str(folder / LM_DIR), **quantized_load_kwargs(options))
    tokenizer = AutoTokenizer.from_pretrained(str(folder / LM_DIR))
    projector = TokenProjector(whisper.config.d_model, lm.config.hidden_size, whisper.config.vocab_size)
    projector.load_state_dict(load_file(str(folder / PROJECTOR_FILE)))
    model = WhisperTokensSpeechLM(config, tokenizer, whisper, projector, lm)
    model.whisper_tokenizer = _whisper_tokenizer(folder / WHISPER_DIR)
    model.notices = {part: notice_files(folder / part) for part in (WHISPER_DIR, LM_DIR)}
    return model


WHISPER_PROMPT_TOKENS = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")


def whisper_settings(whisper: nn.Module, whisper_tokenizer: Any, window_s: float) -> AudioSettings:
    """The decoder prompt <|startoftranscript|><|en|><|transcribe|><|notimestamps|>, ids read from Whisper's tokenizer."""
    ids = [whisper_tokenizer.token_to_id(token) for token in WHISPER_PROMPT_TOKENS]
    if None in ids:
        missing = [t for t, i in zip(WHISPER_PROMPT_TOKENS, ids) if i is None]
        raise ModelError(f"the Whisper tokenizer has no {', '.join(missing)}; give a multilingual Whisper (e.g. whisper-base)")
    return AudioSettings(n_mels=whisper.config.num_mel_bins, window_s=window_s, decoder_prompt=tuple(ids),
                         decoder_end=whisper.config.eos_token_id)  # fmt: skip


def compose_whisper_tokens(whisper_id: str, lm_id: str, src_lang: str, tgt_lang: str,
                           window_s: float = DEFAULT_WINDOW_S) -> WhisperTokensSpeechLM:
    """Whisper (hub id or folder, with tokenizer.json) + a causal LM; the projector starts as the transcript."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, WhisperForConditionalGeneration

    if AutoConfig.from_pretrained(whisper_id).model_type != "whisper":
        raise ModelError(f"--encoder {whisper_id!r} is not a Whisper model; give a Whisper model")
    whisper = WhisperForConditionalGeneration.from_pretrained(whisper_id)
    lm = AutoModelForCausalLM.from_pretrained(lm_id)
    tokenizer = AutoTokenizer.from_pretrained(lm_id)
    prompt = PromptTemplate(FEW_SHOT_PROMPT.prefix, FEW_SHOT_PROMPT.suffix, FEW_SHOT_PROMPT.end, src_lang, tgt_lang)
    whisper_tokenizer = _whisper_tokenizer(Path(whisper_id)) if Path(whisper_id).is_dir() else _hub_whisper_tokenizer(whisper_id)
    config = SimulsaConfig(family="whisper-tokens", prompt=prompt, audio=whisper_settings(whisper, whisper_tokenizer, window_s))
    model = _assemble(config, tokenizer, whisper, lm, whisper_tokenizer)
    model.notices = {WHISPER_DIR: notice_files(whisper_id), LM_DIR: notice_files(lm_id)}
    return model


def _hub_whisper_tokenizer(whisper_id: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(whisper_id).backend_tokenizer


def _assemble(config: SimulsaConfig, tokenizer: Any, whisper: nn.Module, lm: nn.Module, whisper_tokenizer: Any):
    projector = TokenProjector(whisper.config.d_model, lm.config.hidden_size, whisper.config.vocab_size)
    model = WhisperTokensSpeechLM(config, tokenizer, whisper, projector, lm)
    model.whisper_tokenizer = whisper_tokenizer
    projector.fill_table(model.whisper_texts(), tokenizer, scaled_embedding_table(lm.get_input_embeddings()))
    return model


def tiny_whisper_tokens(lm: str = "llama") -> WhisperTokensSpeechLM:
    """A random whisper-tokens model of a few hundred thousand parameters, byte tokenizers on both sides."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from simulsa.train.families.composite import TINY_LMS
    from simulsa.train.tokenizer import build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    vocab = len(tokenizer)  # the byte tokenizer's ids; the four prompt ids and the end id are its top ids
    prompt_ids = (vocab, vocab + 1, vocab + 2, vocab + 3)
    whisper = WhisperForConditionalGeneration(WhisperConfig(
        d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=2,
        decoder_attention_heads=2, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=448, vocab_size=vocab + 5, pad_token_id=vocab + 4, bos_token_id=vocab + 4,
        eos_token_id=vocab + 4, decoder_start_token_id=vocab))  # fmt: skip
    audio = AudioSettings(n_mels=80, window_s=DEFAULT_WINDOW_S, decoder_prompt=prompt_ids, decoder_end=vocab + 4)
    prompt = PromptTemplate(FEW_SHOT_PROMPT.prefix[-40:], FEW_SHOT_PROMPT.suffix, tokenizer.eos_token)
    config = SimulsaConfig(family="whisper-tokens", prompt=prompt, audio=audio)
    return _assemble(config, tokenizer, whisper.eval(), TINY_LMS[lm](tokenizer), tokenizer.backend_tokenizer)
