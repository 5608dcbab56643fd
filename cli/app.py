"""The `simulsa` command line. Commands are thin: build option dataclasses, call one function.

Heavy imports (torch, transformers) happen inside command bodies so `simulsa --help` stays fast.
Exit codes: 0 ok, 1 failure (one line on stderr), 2 bad usage (typer).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer

from simulsa.runtime.errors import SimulsaError

app = typer.Typer(
    name="simulsa",
    help="Simultaneous speech translation with audio-language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a SimulsaError into one line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SimulsaError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(code=1) from None

    return wrapper


TRANSLATE_PANEL, MEASURE_PANEL, BUILD_PANEL, DATA_PANEL, MODELS_PANEL = "Translate", "Measure", "Build models", "Data", "Models"

# typer lists commands in the order they are registered: the modules are imported in the order of the panels
from simulsa.cli import translate_commands  # noqa: E402, F401, I001  (translate, stream)
from simulsa.cli import serve_commands  # noqa: E402, F401  (serve)
from simulsa.cli import measure_commands  # noqa: E402, F401  (eval, bench)
from simulsa.cli import build_commands  # noqa: E402, F401  (compose, align, augment, train, export, probe)
from simulsa.cli import data_commands  # noqa: E402, F401  (corpus, corpus-text, corpus-speak)
from simulsa.cli import models_commands  # noqa: E402, F401  (models ...)


def main() -> None:
    import warnings

    # transformers' deprecation notices are for library authors; users of the CLI cannot act on them
    warnings.filterwarnings("ignore", category=FutureWarning)
    app(prog_name="simulsa")


if __name__ == "__main__":
    sys.exit(main())
