"""Writing outputs so that an interrupted run never leaves something half-written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from simulsa.runtime.errors import OutputExistsError


def check_output_free(path: Path, force: bool) -> None:
    """Refuse an existing output unless `force` (the old one is replaced only on success)."""
    if path.exists() and not force:
        raise OutputExistsError(f"output {str(path)!r} already exists; pass --force to replace it")


@contextlib.contextmanager
def atomic_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder that is renamed to `path` only if the block succeeds.

    The temporary folder lives next to `path` so the final rename stays on one filesystem.
    """
    path = Path(path)
    check_output_free(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace(tmp, path)


def _replace(new: Path, path: Path) -> None:
    """Move `new` into `path`, removing an old `path` only after the move is safe."""
    if not path.exists():
        os.replace(new, path)
        return
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
