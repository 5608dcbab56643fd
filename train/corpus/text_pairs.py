"""Text-only parallel pairs: every WordNet example not in a held-out split, translated by apertium.

Speech is the expensive part of the corpus (TTS, then the encoder at every training step); text
is not: ~24k English phrases translate in seconds. Training on them as text rows (the source's
token embeddings in the audio slot, `simulsa train --text-train`) teaches the LM the
translation itself, which the speech corpus alone (~3k sentences) is too small to teach.
Fragments ("a dark room") are kept here: they are fine translation practice, never spoken.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import write_text_atomic
from simulsa.runtime.manifest import rows_with_source
from simulsa.train.corpus.sentences import WORDNET_DIR, wordnet_examples
from simulsa.train.corpus.translate import apertium_translate

MIN_WORDS, MAX_WORDS = 2, 16
PLAIN_PHRASE = re.compile(r"^[A-Za-z][A-Za-z' ,;-]*[A-Za-z][.!?]?$")  # words and light punctuation, no digits or symbols


@dataclasses.dataclass(frozen=True)
class TextPairOptions:
    exclude: tuple[Path, ...] = ()  # manifests whose sources must not appear (dev, test)
    apertium_mode: str = "eng-spa"
    src_lang: str = "en"
    tgt_lang: str = "es"
    wordnet_dir: Path = WORDNET_DIR
    sentences: Path | None = None  # a text file, one English sentence a line, instead of WordNet

    def __post_init__(self) -> None:
        if self.sentences is not None and not self.sentences.is_file():
            raise SimulsaError(f"--sentences {str(self.sentences)!r} does not exist; give a text file, one sentence a line")
        for manifest in self.exclude:
            if not manifest.is_file():
                raise SimulsaError(f"--exclude {str(manifest)!r} does not exist; give the dev/test manifests of your corpus")


def phrase_key(text: str) -> str:
    """Case-, space- and end-punctuation-insensitive identity of a phrase (what 'the same sentence' means)."""
    return " ".join(text.lower().split()).rstrip(".!?;, ")


def clean_phrases(candidates: Iterable[str], excluded: set[str]) -> list[str]:
    """Plain 2..16-word phrases, deduplicated, none whose key is in `excluded`; first occurrence kept."""
    seen, kept = set(excluded), []
    for candidate in candidates:
        phrase = " ".join(candidate.replace("`", "'").split()).strip(" ;,")
        key = phrase_key(phrase)
        if MIN_WORDS <= len(phrase.split()) <= MAX_WORDS and PLAIN_PHRASE.match(phrase) and key not in seen:
            seen.add(key)
            kept.append(phrase)
    return kept


def excluded_keys(manifests: Iterable[Path]) -> set[str]:
    keys = set()
    for manifest in manifests:
        rows = rows_with_source(manifest, "--exclude cannot tell which sentences to hold out without it")
        keys.update(phrase_key(row.source) for row in rows)
    return keys


def _candidates(options: TextPairOptions) -> list[str]:
    if options.sentences is not None:
        return options.sentences.read_text(encoding="utf-8", errors="replace").splitlines()
    return wordnet_examples(options.wordnet_dir)


def build_text_pairs(out: Path, options: TextPairOptions) -> dict[str, int]:
    """Write `out` (JSONL: source, target, src_lang, tgt_lang) atomically; return the counts."""
    phrases = clean_phrases(_candidates(options), excluded_keys(options.exclude))
    if not phrases:
        where = options.sentences or f"{options.wordnet_dir} (install the Debian package wordnet-base)"
        raise SimulsaError(f"no usable phrases (2-16 plain words) in {where}")
    targets = apertium_translate(phrases, options.apertium_mode)
    lines = [json.dumps({"source": s, "target": t, "src_lang": options.src_lang, "tgt_lang": options.tgt_lang},
                        ensure_ascii=False) for s, t in zip(phrases, targets) if t]  # fmt: skip
    if not lines:
        raise SimulsaError(f"apertium ({options.apertium_mode}) translated none of {len(phrases)} phrases; check the mode")
    write_text_atomic(out, "\n".join(lines) + "\n")
    return {"phrases": len(phrases), "pairs": len(lines), "dropped_unknown_words": targets.count(None)}
