"""Example recordings shipped with the package: English speech made by simulsa's own TTS pipeline.

`examples.json` lists each file with its English text and how it was made
(`python -m simulsa.train.corpus.examples` rebuilds them).
"""

from __future__ import annotations

import json
from pathlib import Path

from simulsa.runtime.errors import SimulsaError

EXAMPLES_DIR = Path(__file__).parent
INDEX = EXAMPLES_DIR / "examples.json"


def examples() -> list[dict]:
    if not INDEX.is_file():
        raise SimulsaError(f"this install has no example audio ({INDEX} is missing); give an audio file instead")
    return json.loads(INDEX.read_text(encoding="utf-8"))["examples"]


def example_path(name: str | None = None) -> Path:
    """The named example (default: the first), checked to exist."""
    known = examples()
    chosen = known[0] if name is None else next((e for e in known if e["name"] == name), None)
    if chosen is None:
        raise SimulsaError(f"no example named {name!r}; known: {', '.join(e['name'] for e in known)}")
    path = EXAMPLES_DIR / chosen["file"]
    if not path.is_file():
        raise SimulsaError(f"example file {path} is missing from this install; give an audio file instead")
    return path
