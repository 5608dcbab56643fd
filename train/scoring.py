"""The base model as SimulSA's judge: teacher-forced reference probabilities on truncated audio."""

from __future__ import annotations

import numpy as np
import torch

from simulsa.runtime.manifest import ManifestRow
from simulsa.train.data import SpeechCollator
from simulsa.train.families.base import SpeechLM


class ModelScorer:
    """`ReferenceScorer` backed by a SpeechLM: one batched forward pass, no sampling."""

    def __init__(self, model: SpeechLM) -> None:
        self.model = model.eval()
        self.vocab_size = len(model.tokenizer)  # V of tau = tau_scale / V (the tokenizer's size, as the paper)

    def encode(self, text: str) -> list[int]:
        return self.model.encode_text(text)

    def decode(self, ids: list[int]) -> str:
        return self.model.tokenizer.decode(ids)

    @torch.no_grad()
    def token_probabilities(self, audio: list[np.ndarray], rows: list[ManifestRow]) -> list[np.ndarray]:
        model = self.model
        tokens = [model.tokenize_row(r.target, r.src_lang, r.tgt_lang, with_end=False) for r in rows]
        # every clip here is cut mid-speech: the judge hears it as the runtime hears a segment still open
        items = [{"features": model.open_tail_features(model.audio_features(a)), "tokens": t} for a, t in zip(audio, tokens)]
        batch = SpeechCollator(model)(items)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        assembled = model.assemble(batch)
        logits = model.language_logits(assembled.inputs_embeds, assembled.attention_mask)  # (B, T, V)
        probs = []
        for b, row_tokens in enumerate(tokens):
            n = len(row_tokens.target_ids)
            start = int(assembled.target_start[b])
            step_logits = logits[b, start - 1 : start - 1 + n].float()  # (n, V): position j predicts token j+1
            target = torch.tensor(row_tokens.target_ids, device=step_logits.device)
            probs.append(step_logits.softmax(-1).gather(1, target[:, None])[:, 0].cpu().numpy())
        return probs
