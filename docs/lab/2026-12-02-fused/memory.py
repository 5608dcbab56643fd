"""Resident memory after each part of the default bundle is loaded (where `stream --example`'s peak goes)."""

import resource
import sys

import numpy as np

from simulsa.runtime.bundle import load_bundle, open_session


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


bundle = load_bundle(sys.argv[1], verify_checksums=False)
print(f"start {rss_mb():.0f} MB")
held = []
for role in ("audio_encoder", "ear_decoder", "projector", "decoder"):
    held.append(open_session(bundle.file(role)))
    print(f"+ {role} session {rss_mb():.0f} MB (peak so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f})")
held.append(np.load(bundle.file("embed_tokens")))
print(f"+ embed_tokens {rss_mb():.0f} MB")
from tokenizers import Tokenizer  # noqa: E402

held.append(Tokenizer.from_file(str(bundle.file("tokenizer"))))
print(f"+ tokenizer {rss_mb():.0f} MB")
