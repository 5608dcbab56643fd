"""Decode ms/token of several bundles side by side in one run (medians of 5), with decoder file size."""

import sys
from pathlib import Path

from simulsa.runtime.bench import decode_ms_at_length, decode_ms_per_token
from simulsa.runtime.onnx_model import OnnxSpeechModel

models = {path: OnnxSpeechModel.from_path(path, verify_checksums=False) for path in sys.argv[1:]}
for _ in range(2):  # the second round is the one reported (warm caches on both)
    rows = [(path, decode_ms_per_token(m, 5), decode_ms_at_length(m, 400, 5)) for path, m in models.items()]
for path, ms, at_400 in rows:
    size = sum(p.stat().st_size for p in Path(path).glob("decoder.onnx*")) / 1e6
    print(f"{path}: {ms:.2f} ms/token, {at_400:.2f} ms at 400 cached, decoder {size:.0f} MB")
