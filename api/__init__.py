"""simulsa: simultaneous speech translation with audio-language models.

    from simulsa import StreamOptions, Translator

    translator = Translator.from_bundle("bundle")
    print(translator.translate(samples, sample_rate))

The names are looked up on first use (PEP 562), so `import simulsa.cli.app` or any
`simulsa.<part>` import does not load onnxruntime through this file.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

PUBLIC = {  # name -> module that defines it (all torch-free)
    "Translator": "simulsa.runtime.session",
    "StreamOptions": "simulsa.runtime.session",
    "load_audio": "simulsa.runtime.audio",
    "default_bundle_path": "simulsa.runtime.default_model",
}
__all__ = sorted(PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module 'simulsa' has no attribute {name!r}")
    value = getattr(importlib.import_module(PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *PUBLIC])
