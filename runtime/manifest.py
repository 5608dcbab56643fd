"""Manifests: JSONL, one utterance a line (ARCHITECTURE.md, "CLI contracts").

`{"id": str, "audio": path, "target": str, "source"?: str, "src_lang"?: str, "tgt_lang"?: str}`;
`audio` is relative to the manifest's folder or absolute. Rows written by `simulsa augment`
also carry a `"simulsa"` record and may have an empty target (the model learns to wait).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Any

from simulsa.runtime.errors import ManifestError

REQUIRED_FIELDS = ("id", "audio", "target")


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    id: str
    audio: Path  # absolute path, resolved against the manifest's folder
    target: str  # reference translation; may be "" only for SimulSA rows
    source: str | None = None  # source transcript, when known
    src_lang: str | None = None
    tgt_lang: str | None = None
    simulsa: dict[str, Any] | None = None  # {"orig_id", "truncate_s", "kept_tokens", "full_tokens"}
    line: int = 0  # 1-based line in the manifest, for error messages

    def to_json(self, relative_to: Path) -> dict[str, Any]:
        """The row as a JSON object whose audio path is relative to `relative_to` (the new manifest's folder)."""
        record: dict[str, Any] = {"id": self.id, "audio": os.path.relpath(self.audio, relative_to), "target": self.target}
        for key in ("source", "src_lang", "tgt_lang", "simulsa"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        return record


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Parse and validate a manifest; every problem names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {str(path)!r} does not exist")
    rows, seen = [], set()
    with path.open(encoding="utf-8") as handle:
        for line_no, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            row = _parse_row(text, f"{path}:{line_no}", path.parent.resolve(), line_no)
            if row.id in seen:
                raise ManifestError(f"{path}:{line_no}: duplicate id {row.id!r}; ids must be unique")
            seen.add(row.id)
            rows.append(row)
    if not rows:
        raise ManifestError(f"manifest {str(path)!r} has no rows")
    return rows


def rows_with_source(manifest: str | Path, why: str, limit: int | None = None) -> list[ManifestRow]:
    """The manifest's (first `limit`) rows, refusing any without a 'source' transcript; `why` says who needs it."""
    rows = read_manifest(manifest)[:limit]
    missing = [row for row in rows if not row.source]
    if missing:
        first = missing[0]
        raise ManifestError(f"{manifest}:{first.line} - row {first.id!r} has no 'source' transcript "
                            f"({len(missing)} of {len(rows)} rows lack one); {why}")  # fmt: skip
    return rows


def _parse_row(text: str, where: str, folder: Path, line_no: int) -> ManifestRow:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{where}: not a JSON object ({err.msg}); a manifest is JSONL, one object a line") from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [key for key in REQUIRED_FIELDS if not isinstance(record.get(key), str)]
    if missing:
        raise ManifestError(f"{where}: missing or non-string field(s) {', '.join(missing)}")
    if not record["target"].strip() and "simulsa" not in record:
        raise ManifestError(f"{where}: empty target for id {record['id']!r}; give the reference translation")
    audio = Path(record["audio"])
    return ManifestRow(
        id=record["id"],
        audio=audio if audio.is_absolute() else (folder / audio),
        target=record["target"],
        source=record.get("source"),
        src_lang=record.get("src_lang"),
        tgt_lang=record.get("tgt_lang"),
        simulsa=record.get("simulsa"),
        line=line_no,
    )


def write_manifest(path: Path, rows: list[ManifestRow], relative_to: Path | None = None) -> None:
    """Write rows as JSONL with audio paths relative to `relative_to` (default: the manifest's folder)."""
    folder = (relative_to or path.parent).resolve()
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row.to_json(folder), ensure_ascii=False) + "\n")


def shuffled(rows: list[ManifestRow], seed: int) -> list[ManifestRow]:
    """A seeded shuffle that does not depend on Python's hash seed."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    return order
