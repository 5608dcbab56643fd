"""Spanish targets from apertium (rule-based: good on simple sentences, weak on complex ones)."""

from __future__ import annotations

import re

from simulsa.train.corpus.programs import require, run

UNKNOWN_MARKS = re.compile(r"[#@*]")  # apertium's marks: * unknown word, # generation problem, @ untranslated


def clean_translation(text: str) -> str:
    text = " ".join(UNKNOWN_MARKS.sub("", text).split())
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return text[:1].upper() + text[1:]


def apertium_translate(sentences: list[str], mode: str = "eng-spa") -> list[str | None]:
    """One batched call (sentences separated by blank lines, which apertium keeps).

    A translation with an unknown or untranslatable word (marked by apertium) is None: a
    target with English left in it would teach the model to copy.
    """
    require("apertium")
    output = run(["apertium", mode], text_input="\n\n".join(sentences) + "\n", timeout=600)
    lines = [line for line in output.split("\n\n") if line.strip()]
    if len(lines) != len(sentences):  # apertium split or joined a sentence: translate one by one instead
        lines = [run(["apertium", mode], text_input=s + "\n") for s in sentences]
    return [None if UNKNOWN_MARKS.search(line) else clean_translation(line) for line in lines]
