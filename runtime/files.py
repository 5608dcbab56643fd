"""Writing outputs so that an interrupted run never leaves something half-written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from simulsa.runtime.errors import OutputExistsError, OutputPathError


def check_output_free(path: Path, force: bool, flag: str = "output") -> None:
    """A folder (or file) we will create: refuse an existing one unless `force` (it is replaced only on
    success), and a place that cannot be written. Missing parent folders are created, as `mkdir -p` would."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{flag} {str(path)!r} already exists; pass --force to replace it")
    nearest = next(folder for folder in path.absolute().parents if folder.exists())  # "/" always does
    _check_writable_folder(nearest, path, flag)


def check_output_file(path: Path, flag: str) -> None:
    """A file we will write (subtitles, events): not a folder, in an existing folder we can write. Call it before any work."""
    path = Path(path)
    if path.is_dir():
        example = path / ("out" + flag_suffix(flag))
        raise OutputPathError(f"{flag} {str(path)!r} is a folder; give a file path, e.g. {str(example)!r}")
    parent = path.absolute().parent
    if not parent.exists():
        raise OutputPathError(f"{flag} {str(path)!r}: the folder {str(parent)!r} does not exist; create it first")
    _check_writable_folder(parent, path, flag)


def flag_suffix(flag: str) -> str:
    """`--srt` -> `.srt`: the file suffix a flag's files usually have."""
    return "." + flag.lstrip("-") if flag.startswith("--") else ""


def _check_writable_folder(folder: Path, path: Path, flag: str) -> None:
    if not folder.is_dir():
        raise OutputPathError(f"{flag} {str(path)!r}: {str(folder)!r} is not a folder")
    try:  # os.access says yes to root on read-only mounts; creating a file is the real test
        handle, probe = tempfile.mkstemp(prefix=".simulsa-write-check-", dir=folder)
    except OSError as err:
        raise OutputPathError(f"{flag} {str(path)!r}: cannot write in {str(folder)!r} ({err.strerror})") from None
    os.close(handle)
    os.unlink(probe)


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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: readers never see half a file, and a failure leaves nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text atomically (see write_bytes_atomic)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def folder_bytes(path: Path) -> int:
    """Bytes of every file below `path` (what removing it would free)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
