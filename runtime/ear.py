"""whisper-tokens: Whisper's encoder and decoder as the ear, one projected LM embedding per transcript token.

    samples ─► pad to whole windows ─► log-mel ─► ear_encoder ─► cross K/V
    prompt + frozen tokens ─► ear_decoder (one call) ─► greedy, one token a call ─► Heard (tokens, states, top-k)
    Heard rows [a, b) ─► projector ─► (b - a, H) LM embeddings

Tokens already frozen into the LM's cache are forced as the decoder's prefix, so the transcript Whisper continues is
the one the LM has read; only the tail after them is new. Start-over cut and token cap as in training
(train/families/whisper_tokens.py); both sides import them from here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulsa.runtime.audio import SAMPLE_RATE, log_mel
from simulsa.runtime.bundle import Bundle, BundleError, open_session

MAX_TOKENS_PER_S = 8  # a transcript longer than this per second of (padded) audio is a loop; Whisper-base says ~3/s
SENTENCE_END_TEXTS = frozenset({".", "?", "!", "...", "\u2026", "\u3002", '."', '?"', '!"'})  # as Whisper spells them


def sentence_end_ids(texts: list[str]) -> tuple[int, ...]:
    """Ids of the Whisper tokens that close a sentence (".", " ?", '."', ...), from each token's text."""
    return tuple(i for i, text in enumerate(texts) if text.strip() in SENTENCE_END_TEXTS)


def open_tail_end(tokens: list[int], start: int, sentence_ends: frozenset[int]) -> int:
    """Where the LM's view of `tokens[start:]` ends while the speaker is still talking: before the trailing
    sentence-end tokens. Why: Whisper closes the transcript of audio cut mid-sentence ("Bye, have a good day." from
    0.6 s), so the LM reads a finished sentence and says all of it; the final hearing of a segment keeps them."""
    end = len(tokens)
    while end > start and tokens[end - 1] in sentence_ends:
        end -= 1
    return end


def start_over(tokens: list[int]) -> int:
    """Length of the first pass when a transcript says its own beginning again (a short window can loop)."""
    for period in range(3, len(tokens) // 2 + 1):
        if tokens[period : 2 * period] == tokens[:period]:
            return period
    return len(tokens)


def token_cap(padded_samples: int) -> int:
    """Most transcript tokens decoded for audio padded to `padded_samples`."""
    return int(MAX_TOKENS_PER_S * padded_samples / SAMPLE_RATE) + 4


def padded_length(samples: int, window: int) -> int:
    return max(1, -(-samples // window)) * window


@dataclasses.dataclass(frozen=True)
class Heard:
    tokens: list[int]  # the whole transcript: forced prefix + new tokens
    h_pred: np.ndarray  # (n, D) the decoder state that chose each token
    h_read: np.ndarray  # (n, D) the state after reading it
    top_logits: np.ndarray  # (n, k) Whisper's top-k logits where each token was chosen
    top_ids: np.ndarray  # (n, k) int64


class WhisperEar:
    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        ear = bundle.audio.ear
        if ear is None:
            raise BundleError(f"bundle {str(bundle.path)!r} has no audio.ear record; re-export the bundle")
        self.window = round(ear.window_s * SAMPLE_RATE)
        self.n_mels = bundle.audio.n_mels
        self.prompt, self.end = list(ear.decoder_prompt), ear.decoder_end
        self.layers, self.heads, self.head_dim = ear.layers, ear.heads, ear.head_dim
        self.encoder = open_session(bundle.file("audio_encoder"), threads)
        self.decoder = open_session(bundle.file("ear_decoder"), threads)
        self.projector = open_session(bundle.file("projector"), threads)
        # bound by the names bundle.json states: encoder (mel) -> cross K/V; decoder (ids, past, cross) ->
        # (top_logits, top_ids, hidden, present); projector (h_pred, h_read, top_logits, top_ids) -> embeddings
        self.encoder_io, self.decoder_io, self.projector_io = (bundle.io(g) for g in ("audio_encoder", "ear_decoder", "projector"))
        self.lm_hidden = bundle.dims.hidden_size
        self.sentence_ends = frozenset(ear.sentence_end_ids)

    def cross(self, samples: np.ndarray) -> list[np.ndarray]:
        """(T,) -> cross-attention K/V per decoder layer, (1, heads, frames / 2, hd) each."""
        padded = np.pad(samples.astype(np.float32), (0, padded_length(samples.size, self.window) - samples.size))
        (mel,) = self.encoder_io.inputs
        return self.encoder.run(list(self.encoder_io.outputs), {mel: log_mel(padded, self.n_mels)[None]})

    def _empty_past(self) -> list[np.ndarray]:
        return [np.zeros((1, self.heads, 0, self.head_dim), np.float32) for _ in range(2 * self.layers)]

    def _run(self, ids: list[int], past: list[np.ndarray], cross: list[np.ndarray]):
        feeds = dict(zip(self.decoder_io.inputs, [np.array([ids], np.int64), *past, *cross]))
        top_logits, top_ids, hidden, *present = self.decoder.run(list(self.decoder_io.outputs), feeds)
        return top_logits[0], top_ids[0], hidden[0], present  # (T, k), (T, k), (T, D)

    def hear(self, samples: np.ndarray, forced: list[int]) -> Heard:
        """Transcribe the segment, continuing after the `forced` tokens; greedy, cut where it starts over."""
        cross = self.cross(samples)
        cap = token_cap(padded_length(samples.size, self.window))
        top_logits, top_ids, hidden, past = self._run(self.prompt + forced, self._empty_past(), cross)
        logits_rows, id_rows, hidden_rows = [top_logits], [top_ids], [hidden]
        tokens = list(forced)
        while len(tokens) < cap:
            token = int(id_rows[-1][-1, 0])
            if token == self.end:
                break
            tokens.append(token)
            top_logits, top_ids, hidden, past = self._run([token], past, cross)
            logits_rows.append(top_logits), id_rows.append(top_ids), hidden_rows.append(hidden)
        kept = len(forced) + start_over(tokens[len(forced) :])
        states = np.concatenate(hidden_rows)  # (P + n_fed, D): one row per position fed
        logits, ids = np.concatenate(logits_rows), np.concatenate(id_rows)
        chose = np.arange(len(self.prompt) - 1, len(self.prompt) - 1 + kept)  # the position that chose token i
        return Heard(tokens[:kept], states[chose], states[chose + 1], logits[chose], ids[chose])

    def project(self, heard: Heard, start: int, end: int) -> np.ndarray:
        """LM embeddings (end - start, H) of heard tokens [start, end)."""
        if end <= start:
            return np.zeros((0, self.lm_hidden), np.float32)
        rows = slice(start, end)
        values = (heard.h_pred[rows], heard.h_read[rows], heard.top_logits[rows], heard.top_ids[rows].astype(np.int64))
        return self.projector.run(list(self.projector_io.outputs), dict(zip(self.projector_io.inputs, values)))[0]
