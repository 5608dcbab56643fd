"""English source sentences from offline text: WordNet's quoted usage examples, filtered to whole clauses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")  # Debian's wordnet-base
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
MIN_WORDS, MAX_WORDS = 4, 16  # short enough to say in a few seconds, long enough to be a clause
QUOTED = re.compile(r'"([^"]+)"')
CLAUSE = re.compile(r"^[A-Z][A-Za-z' ,;-]*[a-z][.!?]?$")  # plain words and light punctuation, no digits or symbols


def wordnet_examples(folder: Path = WORDNET_DIR) -> list[str]:
    """Every quoted usage example in WordNet's data files, in file order."""
    examples = []
    for name in WORDNET_FILES:
        path = folder / name
        if path.is_file():
            examples += QUOTED.findall(path.read_text(encoding="utf-8", errors="replace"))
    return examples


def normalize(sentence: str) -> str:
    sentence = " ".join(sentence.replace("`", "'").split()).strip(" ;,")
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def is_whole_clause(sentence: str) -> bool:
    """A capitalised sentence of MIN_WORDS..MAX_WORDS plain words (no fragments like 'in the house')."""
    words = sentence.split()
    return MIN_WORDS <= len(words) <= MAX_WORDS and bool(CLAUSE.match(sentence)) and sentence.count("'") <= 2


def clean_sentences(candidates: Iterable[str]) -> list[str]:
    """Normalised whole clauses, deduplicated case-insensitively, first occurrence kept."""
    seen, kept = set(), []
    for candidate in candidates:
        sentence = normalize(candidate)
        key = sentence.lower()
        if is_whole_clause(sentence) and key not in seen:
            seen.add(key)
            kept.append(sentence)
    return kept
