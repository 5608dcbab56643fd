"""Options and helpers that several commands share: the bundle (or the default one), threads, output checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DefaultableBundle = Annotated[
    Path | None, typer.Option("--bundle", help="Bundle folder made by simulsa export (default: the shipped En->Es model).")
]
Threads = Annotated[int | None, typer.Option(help="onnxruntime threads (default: all cores).")]
SkipChecksum = Annotated[bool, typer.Option(help="Skip the sha256 check of the bundle's files (faster start).")]
Verbose = Annotated[bool, typer.Option("--verbose", help="Show the libraries' own output while the default model is built.")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing --out.")]
OpenTail = Annotated[bool, typer.Option(help="whisper-tokens: while a segment goes on, hide the sentence end Whisper "
                                             "writes after audio cut mid-sentence from the LM.")]


def bundle_or_default(bundle: Path | None, verbose: bool) -> Path:
    """The given bundle, else the default one from the cache (built there once when missing and buildable)."""
    return bundle if bundle is not None else ensure_default_bundle(force=False, verbose=verbose)


def ensure_default_bundle(force: bool, verbose: bool) -> Path:
    """The default bundle's path in the cache, built first when it is missing (or `force`).

    Finding it is torch-free (`simulsa.runtime.default_model`); only building it needs the extras,
    so a runtime-only install uses a default bundle that a full install built into the same cache.
    """
    from simulsa.runtime.default_model import default_bundle_path, missing_build_modules, not_built_error

    path = default_bundle_path()  # raises a clear error when no default model ships with this install
    if path.is_dir() and not force:
        return path
    missing = missing_build_modules()
    if missing:
        raise not_built_error(missing)
    from simulsa.cli.default_build import build_with_display

    return build_with_display(force=force, verbose=verbose)


def load_translator(bundle: Path | None, threads: int | None, skip_checksum: bool, verbose: bool = False):
    from simulsa.runtime.session import Translator

    return Translator.from_bundle(bundle_or_default(bundle, verbose), threads=threads, verify_checksums=not skip_checksum)


def check_output_files(**flags: Path | None) -> None:
    """Every file output (`srt=Path(...)` for --srt) checked before any audio is read or model loaded."""
    from simulsa.runtime.files import check_output_file

    for name, path in flags.items():
        if path is not None:
            check_output_file(path, "--" + name.replace("_", "-"))
