"""Licence and notice files that must travel with weights derived from a base model.

A model built from Gemma is a Gemma derivative: its terms (GEMMA_TERMS.html, NOTICE.md) have to
reach whoever receives the weights. `simulsa models pull` copies them beside the base weights;
compose keeps them beside each part's weights; export writes them into the bundle; packaging
the default model copies them into the package data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

NOTICE_GLOBS = ("LICENSE*", "LICENCE*", "NOTICE*", "COPYING*", "*_TERMS*")


def notice_files(folder: Path | str) -> list[Path]:
    """The licence/notice files directly in `folder` (none for a hub id or a folder without them)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = {p for pattern in NOTICE_GLOBS for p in folder.glob(pattern) if p.is_file()}
    return sorted(found)


def copy_notices(files: list[Path], out: Path, prefix: str = "") -> list[str]:
    """Copy each file into `out` as `<prefix><name>`; returns the names written."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for path in files:
        shutil.copy(path, out / f"{prefix}{path.name}")
        names.append(f"{prefix}{path.name}")
    return names
