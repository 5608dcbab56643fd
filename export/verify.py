"""Parity between the torch model and its bundle, on the same audio.

fp32: logits agree (max abs difference <= LOGITS_RTOL x the logits' scale) and greedy outputs
are identical, or the export fails. int8: greedy-token agreement and top-1 match are reported.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.train.data import SpeechCollator
from simulsa.train.families.base import SpeechLM

LOGITS_RTOL = 1e-3  # allowed max |torch - onnx| as a share of max |torch logits|
GREEDY_TOKENS = 12  # tokens decoded greedily per case


@dataclasses.dataclass(frozen=True)
class CaseResult:
    name: str
    audio_s: float
    max_abs_diff: float  # over every position of prompt + greedy continuation
    logits_scale: float  # max |torch logits|
    top1_match: float  # share of positions whose most likely token agrees
    torch_tokens: list[int]
    onnx_tokens: list[int]  # decoded with the KV cache, one token a step

    @property
    def logits_ok(self) -> bool:
        return self.max_abs_diff <= LOGITS_RTOL * self.logits_scale

    @property
    def greedy_agreement(self) -> float:
        longest = max(len(self.torch_tokens), len(self.onnx_tokens), 1)
        return sum(a == b for a, b in zip(self.torch_tokens, self.onnx_tokens)) / longest


@dataclasses.dataclass(frozen=True)
class VerificationReport:
    precision: str  # "fp32" or "int8"
    cases: list[CaseResult]

    @property
    def passed(self) -> bool:
        """fp32 must match; int8 is measured, not judged."""
        if self.precision != "fp32":
            return True
        return all(c.logits_ok and c.torch_tokens == c.onnx_tokens for c in self.cases)

    def table(self) -> str:
        lines = [f"verification ({self.precision}): torch vs bundle",
                 f"{'case':<22}{'max|Δlogit|':>13}{'limit':>11}{'top-1':>8}{'greedy':>9}  result"]  # fmt: skip
        for c in self.cases:
            limit = f"{LOGITS_RTOL * c.logits_scale:.2e}" if self.precision == "fp32" else "-"
            ok = "ok" if (c.logits_ok and c.torch_tokens == c.onnx_tokens) else ("FAIL" if self.precision == "fp32" else "-")
            lines.append(f"{c.name:<22}{c.max_abs_diff:>13.2e}{limit:>11}{c.top1_match:>8.1%}{c.greedy_agreement:>9.1%}  {ok}")
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"precision": self.precision, "passed": self.passed, "logits_rtol": LOGITS_RTOL,
                "cases": [{**dataclasses.asdict(c), "greedy_agreement": c.greedy_agreement} for c in self.cases]}  # fmt: skip


def verification_audio(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Random noise, and a speech-length input of tones with pauses (a real utterance's shape)."""
    from simulsa.runtime.toy import TOY_LEXICON, toy_utterance

    rng = np.random.default_rng(seed)
    noise = (0.1 * rng.standard_normal(40_000)).astype(np.float32)  # 2.5 s
    words = [str(w) for w in rng.choice(list(TOY_LEXICON), size=16)]  # 16 words x 0.5 s = 8 s
    return [("random 2.5 s", noise), ("speech-length 8.0 s", toy_utterance(words, rng))]


@torch.no_grad()
def _torch_prompt(model: SpeechLM, samples: np.ndarray) -> torch.Tensor:
    """(T, H) torch embeddings of [prefix][audio][suffix] for one utterance."""
    tokens = model.tokenize_row("", None, None, with_end=False)
    batch = SpeechCollator(model)([{"features": model.audio_features(samples), "tokens": tokens}])
    return model.assemble(batch).inputs_embeds[0]


class TokenSpace:
    """The bundle's token ids against the torch model's: the same, or a pruned vocabulary's (export/vocabulary.py)."""

    def __init__(self, kept_tokens: tuple[int, ...] | None) -> None:
        self.kept = None if kept_tokens is None else torch.tensor(kept_tokens, dtype=torch.long)  # (K,) bundle id -> torch id

    def logits(self, torch_logits: torch.Tensor) -> torch.Tensor:
        """(..., V) torch logits -> (..., K) in the bundle's numbering."""
        return torch_logits if self.kept is None else torch_logits[..., self.kept]

    def torch_ids(self, bundle_ids: list[int]) -> torch.Tensor:
        ids = torch.tensor(bundle_ids, dtype=torch.long)
        return ids if self.kept is None else self.kept[ids]


@torch.no_grad()
def _torch_greedy(model: SpeechLM, prompt: torch.Tensor, stop: int, space: TokenSpace) -> list[int]:
    """Greedy decoding by full recomputation (no cache): an independent reference for the bundle's cached loop.
    Tokens are chosen among the bundle's and returned in its numbering."""
    embeds, tokens = prompt, []
    embed = model.input_embeddings()
    while len(tokens) < GREEDY_TOKENS:
        logits = model.language_logits(embeds[None], torch.ones(1, embeds.shape[0], dtype=torch.long))[0, -1]
        tokens.append(int(space.logits(logits).argmax()))
        if tokens[-1] == stop:
            break
        embeds = torch.cat([embeds, embed(space.torch_ids(tokens[-1:]))])
    return tokens


def _onnx_teacher_forced(onnx: OnnxSpeechModel, prompt: np.ndarray, tokens: list[int]) -> np.ndarray:
    """Prefill the prompt, then feed the given tokens one at a time through the KV cache -> (len(tokens) + 1, V) logits.

    The decoder returns only the last position's logits, so this is also the path the runtime takes.
    """
    logits, past = onnx.decode(prompt, onnx.empty_cache())
    rows = [logits[-1]]
    for token in tokens:
        logits, past = onnx.decode(onnx.embed_tokens([token]), past)
        rows.append(logits[-1])
    return np.stack(rows)


def verify_case(model: SpeechLM, onnx: OnnxSpeechModel, name: str, samples: np.ndarray,
                space: TokenSpace | None = None) -> CaseResult:  # fmt: skip
    space = space or TokenSpace(None)
    prompt = onnx.bundle.prompt
    stop = prompt.end_id
    torch_prompt = _torch_prompt(model, samples)
    torch_tokens = _torch_greedy(model, torch_prompt, stop, space)
    onnx_prompt = np.concatenate([onnx.embed_tokens(list(prompt.prefix_ids)), onnx.encode_audio(samples),
                                  onnx.embed_tokens(list(prompt.suffix_ids))])  # fmt: skip
    onnx_tokens = onnx.greedy(onnx_prompt, GREEDY_TOKENS, {stop})
    # teacher-forced comparison over prompt + the torch continuation
    with torch.no_grad():
        full = torch.cat([torch_prompt, model.input_embeddings()(space.torch_ids(torch_tokens))])
        logits = model.language_logits(full[None], torch.ones(1, full.shape[0], dtype=torch.long))[0]
        reference = space.logits(logits).float().numpy()
    ours = _onnx_teacher_forced(onnx, onnx_prompt, torch_tokens)  # (n + 1, V)
    reference = reference[-ours.shape[0] :]  # the same positions: the prompt's last, then each continuation token
    return CaseResult(name=name, audio_s=samples.size / 16000, max_abs_diff=float(np.abs(ours - reference).max()),
                      logits_scale=float(np.abs(reference).max()),
                      top1_match=float((ours.argmax(-1) == reference.argmax(-1)).mean()),
                      torch_tokens=torch_tokens, onnx_tokens=onnx_tokens)  # fmt: skip


def verify_bundle(model: SpeechLM, onnx: OnnxSpeechModel, precision: str,
                  kept_tokens: tuple[int, ...] | None = None) -> VerificationReport:  # fmt: skip
    """`kept_tokens`: a pruned bundle's original ids (its logits are compared with the torch logits of those tokens)."""
    space = TokenSpace(kept_tokens)
    return VerificationReport(precision, [verify_case(model, onnx, name, audio, space) for name, audio in verification_audio()])
