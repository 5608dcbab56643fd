"""Earlier segments' translation as context for the next (StreamOptions.context_tokens), scored on the shipped
default (scratch, 2026-12-05, session 20). The default was trained without context; this measures whether the
runtime option helps it anyway on recordings that span several segments.
usage: context_eval.py CONTEXT_TOKENS MANIFEST OUT CHUNKS_MS HOLD [longform]   (longform: the rows joined into one
stream with 700 ms pauses, re-segmented by mweralign, as `simulsa eval --longform`)
"""

import sys
from pathlib import Path

from simulsa.runtime.default_model import default_bundle_path
from simulsa.runtime.eval_run import EvalOptions, run_eval
from simulsa.runtime.longform_eval import LongformOptions, run_longform_eval
from simulsa.runtime.session import StreamOptions, Translator


def main(context_tokens: str, manifest: str, out: str, chunks_ms: str, hold: str, mode: str = "") -> None:
    translator = Translator.from_bundle(default_bundle_path())
    options = EvalOptions(chunks_ms=tuple(float(c) for c in chunks_ms.split(",")), holds=(int(hold),), policies=("hold",),
                          stream=StreamOptions(context_tokens=int(context_tokens)))  # fmt: skip
    if mode == "longform":
        report = run_longform_eval(Path(manifest), translator, Path(out), LongformOptions(eval=options), force=True)
    else:
        report = run_eval(Path(manifest), translator, Path(out), options, force=True)
    print(context_tokens, report)


if __name__ == "__main__":
    main(*sys.argv[1:])
