"""Hearing or translating? Score a model from speech and from the gold source text in the audio slot.

A speech translation model can fail at either half. The probe decodes every row twice with the
same prompt and greedy search: once from the row's audio, once with the token embeddings of its
`source` transcript where the audio embeddings go (what `simulsa train --text-train` trains on).
Text far better than speech: the model translates but does not hear (work on the audio side).
Both bad: the LM has not learned the translation (more text pairs, a larger LM).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.manifest import ManifestRow, rows_with_source
from simulsa.train.data import load_row_audio
from simulsa.train.families.base import SpeechLM


@dataclasses.dataclass(frozen=True)
class ProbeOptions:
    model: str
    manifest: Path
    limit: int | None = 100  # first rows of the manifest; None: all
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise SimulsaError(f"--limit {self.limit} must be positive")
        if self.max_new_tokens <= 0:
            raise SimulsaError(f"--max-new-tokens {self.max_new_tokens} must be positive")


@dataclasses.dataclass(frozen=True)
class ProbeRow:
    source: str
    reference: str
    from_speech: str
    from_text: str


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    rows: list[ProbeRow]
    scores: dict[str, dict[str, float]]  # "speech"/"text" -> {"BLEU", "chrF"}


@torch.no_grad()
def greedy_from_slot(model: SpeechLM, slot: torch.Tensor, row: ManifestRow, max_new_tokens: int) -> str:
    """Greedy translation of `[prefix][slot][suffix]`, slot (n, H) in the LM's embedding space."""
    tokens = model.tokenize_row("", row.src_lang, row.tgt_lang, with_end=False)
    embed = model.input_embeddings()
    prefix, suffix = embed(torch.tensor(tokens.prefix_ids)), embed(torch.tensor(tokens.suffix_ids))  # (Lp, H), (Ls, H)
    inputs = torch.cat([prefix, slot.to(prefix.dtype), suffix])[None]  # (1, Lp + n + Ls, H)
    end = model.end_token_id()
    out = model.lm_module.generate(inputs_embeds=inputs, attention_mask=torch.ones(inputs.shape[:2], dtype=torch.long),
                                   max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end, pad_token_id=end)  # fmt: skip
    return model.tokenizer.decode([i for i in out[0].tolist() if i != end], skip_special_tokens=True).strip()


def _speech_slot(model: SpeechLM, manifest: Path, row: ManifestRow) -> torch.Tensor:
    batch = model.collate_audio([model.audio_features(load_row_audio(manifest, row))])
    return model.embed_audio(**batch)[0]  # (n_audio, H)


def _text_slot(model: SpeechLM, row: ManifestRow) -> torch.Tensor:
    return model.input_embeddings()(torch.tensor(model.encode_text(" " + row.source)))  # (n_tokens, H)


def _scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    from simulsa.runtime.eval_run import corpus_quality

    scores = corpus_quality(hypotheses, references, lang="")  # "": a language scored in words (13a)
    if scores["BLEU"] is None:
        raise SimulsaError("the probe scores with sacrebleu: pip install 'simulsa[eval]'")
    return scores


def run_probe(options: ProbeOptions, load: Callable[[str], SpeechLM] | None = None) -> ProbeResult:
    from tqdm.auto import tqdm

    from simulsa.train.families import load_speech_lm

    rows = rows_with_source(options.manifest, "the probe needs the transcript of every row", options.limit)
    model = (load or load_speech_lm)(options.model).eval()
    results = []
    for row in tqdm(rows, desc="simulsa probe", unit="row"):
        speech = greedy_from_slot(model, _speech_slot(model, options.manifest, row), row, options.max_new_tokens)
        text = greedy_from_slot(model, _text_slot(model, row), row, options.max_new_tokens)
        results.append(ProbeRow(row.source, row.target, speech, text))
    references = [r.reference for r in results]
    scores = {"speech": _scores([r.from_speech for r in results], references),
              "text": _scores([r.from_text for r in results], references)}  # fmt: skip
    return ProbeResult(results, scores)
