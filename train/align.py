"""`simulsa align`: teach a fresh composite projector to hear before translation SFT.

A new projector's outputs mean nothing to the LM, and ordinary SFT has to discover the
mapping through the whole LM, one expensive step at a time (on a 2-core CPU, 200 steps of
Whisper-base + SmolLM2 did not get there). Here the projector learns with CTC to put, at
each audio token, the LM's own embedding of the English token being spoken: the logits are
dot products with the (frozen) token-embedding table, so what it learns to emit is what the
LM already reads. The LM itself never runs, and the frozen encoder runs once per utterance,
so an epoch costs seconds, not an hour.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from simulsa.runtime.audio import audio_duration_s
from simulsa.runtime.errors import AudioError, ManifestError, ModelError, SimulsaError
from simulsa.runtime.files import check_output_free
from simulsa.runtime.manifest import ManifestRow, rows_with_source
from simulsa.train.data import load_row_audio, row_context
from simulsa.train.families import load_speech_lm, save_model
from simulsa.train.families.base import SpeechLM
from simulsa.train.plots import plot_loss

SUMMARY_FILE = "align_summary.json"
WHY_SOURCE = "align learns from the spoken words, so every row needs it"
ENCODE_BATCH = 16  # utterances encoded together (their full blocks share one encoder call)


@dataclasses.dataclass(frozen=True)
class StateMasking:
    """SpecAugment on the frozen encoder states: the projector sees each utterance many times (an
    epoch costs seconds), and without masking it memorises them (train CTC 0.8 vs dev 3.3)."""

    time_masks: int = 0  # spans of frames zeroed per utterance
    time_mask_frames: int = 10  # widest span (20 ms frames)
    feature_masks: int = 0  # bands of state dimensions zeroed per utterance
    feature_mask_dims: int = 64  # widest band

    def __post_init__(self) -> None:
        values = {"--time-masks": self.time_masks, "--time-mask-frames": self.time_mask_frames,
                  "--feature-masks": self.feature_masks, "--feature-mask-dims": self.feature_mask_dims}  # fmt: skip
        for flag, value in values.items():
            if value < 0:
                raise SimulsaError(f"{flag} must be >= 0, got {value}")


@dataclasses.dataclass(frozen=True)
class AlignOptions:
    model: str  # a composite model folder (fresh from `simulsa compose`)
    manifest: Path  # rows with a "source" transcript
    out: Path  # the same model with the aligned projector
    dev_manifest: Path | None = None
    epochs: float = 8.0
    batch_size: int = 16
    lr: float = 2e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    masking: StateMasking = StateMasking()
    seed: int = 0
    force: bool = False

    def __post_init__(self) -> None:
        checks = {"--epochs": self.epochs > 0, "--batch-size": self.batch_size > 0, "--lr": self.lr > 0,
                  "--warmup-ratio": 0 <= self.warmup_ratio < 1, "--weight-decay": self.weight_decay >= 0}  # fmt: skip
        for flag, ok in checks.items():
            if not ok:
                raise SimulsaError(f"{flag} is out of range, got {getattr(self, flag[2:].replace('-', '_'))}")


@dataclasses.dataclass(frozen=True)
class AlignResult:
    out: Path
    steps: int
    train_loss: float
    dev_loss: float | None
    dev_token_error_rate: float | None  # greedy CTC path vs the source tokens
    dev_example: str | None  # one greedy transcript, to see what the projector hears
    seconds: float


@dataclasses.dataclass(frozen=True)
class Utterance:
    states: torch.Tensor  # (F, D) frozen encoder states, blocks side by side
    tokens: torch.Tensor  # (U,) source tokens as CTC classes (1..K; 0 = blank)


class CtcHead(nn.Module):
    """Projector output (n, T, H) -> CTC logits (n, T, 1 + K): blank, then the LM embeddings of K tokens."""

    def __init__(self, token_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("embeddings", token_embeddings.detach().clone())  # (K, H) frozen: the LM's own
        self.blank = nn.Parameter(torch.zeros(token_embeddings.shape[1]))
        self.blank_bias = nn.Parameter(torch.zeros(()))
        self.scale = nn.Parameter(torch.ones(()))  # sharpens the softmax without growing the embeddings

    def forward(self, projected: torch.Tensor) -> torch.Tensor:
        tokens = projected @ self.embeddings.T  # (n, T, K)
        blank = projected @ self.blank + self.blank_bias  # (n, T)
        return self.scale * torch.cat([blank[..., None], tokens], dim=-1)  # (n, T, 1 + K)


def run_alignment(options: AlignOptions) -> AlignResult:
    """1. check, 2. load, 3. encode every utterance once, 4. CTC-train the projector, 5. save the model."""
    check_output_free(options.out, options.force)
    torch.manual_seed(options.seed)
    model = load_speech_lm(options.model)
    if not hasattr(model, "projector") or not hasattr(model, "encode_audio"):
        raise ModelError(f"--model {options.model!r} is a {model.family!r} model; align trains a composite projector")
    train_rows = rows_with_source(options.manifest, WHY_SOURCE)
    dev_rows = rows_with_source(options.dev_manifest, WHY_SOURCE) if options.dev_manifest else []
    vocabulary = _vocabulary(model, [r.source for r in train_rows + dev_rows])
    train = _encode_all(model, options.manifest, train_rows, vocabulary, "encode train")
    dev = _encode_all(model, options.dev_manifest, dev_rows, vocabulary, "encode dev") if dev_rows else []
    head = CtcHead(model.embedding_table()[torch.tensor(sorted(vocabulary, key=vocabulary.get))])
    started = time.perf_counter()
    steps, history = _train(model, head, train, options)
    dev_loss, error_rate, example = _evaluate(model, head, dev, sorted(vocabulary, key=vocabulary.get)) if dev else (None,) * 3
    result = AlignResult(options.out, steps, history[-1][1], dev_loss, error_rate, example, time.perf_counter() - started)
    save_model(model, options.out, options.force)
    _write_summary(options, result, history)
    return result


def _vocabulary(model: SpeechLM, texts: list[str]) -> dict[int, int]:
    """LM token id -> CTC class (1..K) for the tokens these transcripts use (the full table is 49k wide)."""
    ids = sorted({i for text in texts for i in model.encode_text(text)})
    return {token: k + 1 for k, token in enumerate(ids)}


@torch.no_grad()
def _encode_all(model: SpeechLM, manifest: Path, rows: list[ManifestRow], vocabulary: dict[int, int], desc: str):
    from tqdm.auto import tqdm

    stack = model.simulsa_config.audio.stack
    rows = _by_duration(manifest, rows)
    utterances = []
    with tqdm(total=len(rows), desc=desc, unit="utt") as bar:
        for start in range(0, len(rows), ENCODE_BATCH):
            chunk = rows[start : start + ENCODE_BATCH]
            batch = model.collate_audio([model.audio_features(load_row_audio(manifest, row)) for row in chunk])
            for row, states in zip(chunk, model.encode_audio(**batch)):  # (F_i, D), a multiple of `stack`
                tokens = torch.tensor([vocabulary[i] for i in model.encode_text(row.source)])
                if states.shape[0] // stack >= _ctc_min_length(tokens):
                    utterances.append(Utterance(states, tokens))
            bar.update(len(chunk))
    if not utterances:
        raise ManifestError(f"{manifest}: no utterance is long enough for its transcript; check the 'source' fields")
    return utterances


def _by_duration(manifest: Path, rows: list[ManifestRow]) -> list[ManifestRow]:
    """Rows shortest first (header reads only).

    Why: a partial last block is encoded at its own length (as the runtime will), one encoder call
    per distinct length in a chunk; in manifest order nearly every row of a chunk has a different
    one. Sorted, a chunk's partial blocks share one or two lengths (there are only block_s / 0.16 s
    of them at stack 8), so the encoder runs a few batched calls instead of ~ENCODE_BATCH single ones.
    """
    def seconds(row: ManifestRow) -> float:
        try:
            return audio_duration_s(row.audio)
        except AudioError as err:
            raise AudioError(f"{row_context(manifest, row)}: {err}") from None

    return sorted(rows, key=seconds)


def _ctc_min_length(tokens: torch.Tensor) -> int:
    """CTC needs a frame per token plus a blank between repeated tokens."""
    return len(tokens) + int((tokens[1:] == tokens[:-1]).sum())


def _batch(model: SpeechLM, head: CtcHead, utterances: list[Utterance], augment=None) -> tuple[torch.Tensor, torch.Tensor]:
    """-> CTC loss (mean over utterances) and the (T, n, 1 + K) log-probabilities; `augment` alters the states."""
    stack = model.simulsa_config.audio.stack
    frames = max(u.states.shape[0] for u in utterances)
    states = torch.zeros(len(utterances), frames, utterances[0].states.shape[1])  # (n, F, D)
    for i, u in enumerate(utterances):
        states[i, : u.states.shape[0]] = u.states
    if augment is not None:
        states = augment(states)
    log_probs = head(model.projector(states)).log_softmax(-1).transpose(0, 1)  # (T, n, 1 + K)
    loss = nn.functional.ctc_loss(
        log_probs, torch.cat([u.tokens for u in utterances]),
        torch.tensor([u.states.shape[0] // stack for u in utterances]), torch.tensor([len(u.tokens) for u in utterances]),
        blank=0, reduction="mean", zero_infinity=True,
    )  # fmt: skip
    return loss, log_probs


def mask_states(states: torch.Tensor, masking: StateMasking, generator: torch.Generator) -> torch.Tensor:
    """(n, F, D) -> a copy with `time_masks` random frame spans and `feature_masks` random dimension bands zeroed."""
    if not (masking.time_masks or masking.feature_masks):
        return states  # off (the default): no mask tensor on every step
    n, frames, dims = states.shape
    keep = torch.ones(n, frames, dims, dtype=torch.bool)
    for count, widest, axis, size in ((masking.time_masks, masking.time_mask_frames, 1, frames),
                                      (masking.feature_masks, masking.feature_mask_dims, 2, dims)):  # fmt: skip
        for _ in range(count):
            width = torch.randint(0, min(widest, size) + 1, (n, 1), generator=generator)  # (n, 1)
            start = (torch.rand(n, 1, generator=generator) * (size - width + 1)).long()  # (n, 1)
            position = torch.arange(size)[None]  # (1, size)
            inside = (position >= start) & (position < start + width)  # (n, size)
            keep &= ~(inside[:, :, None] if axis == 1 else inside[:, None, :])
    return states * keep


def _train(model: SpeechLM, head: CtcHead, train: list[Utterance], options: AlignOptions) -> tuple[int, list[tuple[int, float]]]:
    from tqdm.auto import tqdm

    total = max(1, math.ceil(len(train) * options.epochs / options.batch_size))
    params = [*model.projector.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW([p for p in params if p.requires_grad], lr=options.lr, weight_decay=options.weight_decay)
    warmup = max(1, int(total * options.warmup_ratio))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, (total - s) / (total - warmup + 1)))
    generator = torch.Generator().manual_seed(options.seed)
    order: list[int] = []
    history: list[tuple[int, float]] = []
    bar = tqdm(range(total), desc="align", unit="step")
    for step in bar:
        if len(order) < options.batch_size:
            order += torch.randperm(len(train), generator=generator).tolist()
        picked, order = order[: options.batch_size], order[options.batch_size :]
        loss, _ = _batch(model, head, [train[i] for i in picked], lambda states: mask_states(states, options.masking, generator))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        history.append((step + 1, loss.item()))
        bar.set_postfix_str(f"ctc {np.mean([h[1] for h in history[-20:]]):.3f}")
    return total, history


@torch.no_grad()
def _evaluate(model: SpeechLM, head: CtcHead, dev: list[Utterance], token_of_class: list[int]):
    """Dev CTC loss, token error rate of the greedy path, and its first transcript."""
    losses, errors, lengths, example = [], 0, 0, None
    for start in range(0, len(dev), 16):
        chunk = dev[start : start + 16]
        loss, log_probs = _batch(model, head, chunk)
        losses.append(float(loss) * len(chunk))
        for i, u in enumerate(chunk):
            path = _greedy(log_probs[: u.states.shape[0] // model.simulsa_config.audio.stack, i])
            errors += _edit_distance(path, u.tokens.tolist())
            lengths += len(u.tokens)
            if example is None:
                example = model.tokenizer.decode([token_of_class[k - 1] for k in path])
    return sum(losses) / len(dev), errors / max(lengths, 1), example


def _greedy(log_probs: torch.Tensor) -> list[int]:
    """(T, 1 + K) -> the best path with repeats merged and blanks dropped."""
    best = log_probs.argmax(-1).tolist()
    return [k for i, k in enumerate(best) if k != 0 and (i == 0 or k != best[i - 1])]


def _edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def _write_summary(options: AlignOptions, result: AlignResult, history: list[tuple[int, float]]) -> None:
    summary = {**dataclasses.asdict(result), "out": str(result.out), "loss_history": history[::10],
               "options": {k: str(v) for k, v in dataclasses.asdict(options).items()}}  # fmt: skip
    (options.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    plot_loss(history, options.out / "align_loss.png")
