"""Probe: a bundle with its ear graphs rewritten by export/ear_builder.py with int8=True (8-bit MatMul blocks, int8
token tables), everything else hard-linked from the original, so memory, speed and quality can be measured side by
side (scratch, 2026-12-05, session 18).  usage: int8_ear.py BUNDLE OUT [GRAPH ...]  (default: all three ear graphs in 8 bits; a whisper-tokens bundle, e.g. the default;
needs /tmp/simcache/models/whisper-base: simulsa models pull)"""
import hashlib, json, os, sys
from pathlib import Path

import onnx
from onnx import numpy_helper

import numpy as np
from safetensors.numpy import load_file

from simulsa.export.ear_builder import WhisperShape, build_ear_decoder, build_ear_encoder, build_projector
from simulsa.runtime.default_model import DEFAULT_DIR

source, out = Path(sys.argv[1]), Path(sys.argv[2])
EAR = ("audio_encoder.onnx", "ear_decoder.onnx", "projector.onnx")
INT8 = set(sys.argv[3:] or EAR)  # the others are written by the same builder in float
out.mkdir(parents=True)
for path in source.iterdir():
    if path.name not in EAR and path.name != "bundle.json":
        os.link(path, out / path.name)
whisper = load_file("/tmp/simcache/models/whisper-base/model.safetensors")  # transformers names, as the builder's
shape = WhisperShape.from_config(json.loads(Path("/tmp/simcache/models/whisper-base/config.json").read_text()))
# the projector: its trained weights as packaged, its token table as the bundle holds it (the largest initializer)
projector = {k.removeprefix("projector."): v for k, v in load_file(DEFAULT_DIR / "trained_modules.safetensors").items()}
graph = onnx.load(str(source / "projector.onnx")).graph
projector["table"] = numpy_helper.to_array(max(graph.initializer, key=lambda i: len(i.raw_data))).astype(np.float32)
build_ear_encoder(whisper, shape, out / EAR[0], int8=EAR[0] in INT8)
build_ear_decoder(whisper, shape, out / EAR[1], int8=EAR[1] in INT8)
build_projector(projector, shape.d_model, out / EAR[2], int8=EAR[2] in INT8)
for name in EAR:
    print(f"{name}: {(source / name).stat().st_size / 1e6:.1f} -> {(out / name).stat().st_size / 1e6:.1f} MB")
bundle = json.loads((source / "bundle.json").read_text())
bundle["sha256"].update({name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in EAR})
(out / "bundle.json").write_text(json.dumps(bundle, indent=1, ensure_ascii=False))
