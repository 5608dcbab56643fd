"""The fused decoder on onnxruntime-gpu (CUDA provider): K/V buffers bound on the device, float16 graphs.

Run on a GPU machine with onnxruntime-gpu installed (scratch, 2026-12-05, session 19):
    python docs/lab/2026-12-05-gpu/gpu_check.py OUT_DIR
Gemma 3 270M's shapes (the default's LM, its pruned 64,662-token head) with random weights, written by the
torch-free builder: (1) where each op runs (profile), (2) the GPU's logits against the CPU's on the same
float16 graph, (3) ms per decode step at 50 and 400 cached tokens, a 300-token prefill and a batch of 8 steps,
for K/V on the device vs K/V in host memory vs the CPU provider (int8 float32 graph, all cores).
"""

from __future__ import annotations

import collections
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

from simulsa.export.fused_decoder import FusedDecoderOptions, build_fused_decoder
from simulsa.export.lm_architecture import LmArchitecture
from simulsa.runtime.bundle import FUSED_INPUTS, KV_RECORD, DecoderRecord
from simulsa.runtime.bundle_records import Dims
from simulsa.runtime.decoders import FusedDecoder
from simulsa.runtime.kv_cache import HostStorage

GEMMA_270M = {"model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
              "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 64662,
              "rms_norm_eps": 1e-6, "query_pre_attn_scalar": 256, "sliding_window": 512, "tie_word_embeddings": True,
              "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 32768,
              "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 3,
              "rope_parameters": {"full_attention": {"rope_theta": 1e6, "rope_type": "default"},
                                  "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}}}
MAX_LENGTH = 1024


class RandomWeights:
    """Weights of the right shapes by name (normal, 0.02; norms near Gemma's (1 + w) = 1)."""

    def __init__(self, arch: LmArchitecture) -> None:
        a, self.rng, self.hidden = arch, np.random.default_rng(0), arch.hidden_size
        q, kv = a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim
        self.shapes = {"q_proj": (q, a.hidden_size), "k_proj": (kv, a.hidden_size), "v_proj": (kv, a.hidden_size),
                       "o_proj": (a.hidden_size, q), "gate_proj": (a.intermediate_size, a.hidden_size),
                       "up_proj": (a.intermediate_size, a.hidden_size), "down_proj": (a.hidden_size, a.intermediate_size),
                       "q_norm": (a.head_dim,), "k_norm": (a.head_dim,), "embed_tokens": (a.vocab_size, a.hidden_size)}

    def has(self, name: str) -> bool:
        return not name.startswith("lm_head")

    def get(self, name: str) -> np.ndarray:
        part = name.split(".")[-2]
        shape = self.shapes.get(part, (self.hidden,))  # every other norm: (hidden,)
        scale = 0.1 if "norm" in part else 0.02
        return (scale * self.rng.standard_normal(shape)).astype(np.float32)


def decoder_for(path: Path, arch: LmArchitecture, dtype: str, providers: list[str]) -> FusedDecoder:
    record = DecoderRecord("fused", (path.name,), FUSED_INPUTS, ("logits",), "buffers", max_length=MAX_LENGTH,
                           kv_capacity=512, dtype=dtype)
    dims = Dims(hidden_size=arch.hidden_size, num_layers=arch.num_layers, num_kv_heads=arch.num_kv_heads,
                head_dim=arch.head_dim, vocab_size=arch.vocab_size)
    bundle = types.SimpleNamespace(file=lambda role: path, decoder=record, dims=dims, kv=KV_RECORD)
    import simulsa.runtime.decoders as decoders

    original = decoders.open_session
    decoders.open_session = lambda file, threads=None, profile_prefix=None: original(file, threads, providers, profile_prefix)
    try:
        return FusedDecoder(bundle)
    finally:
        decoders.open_session = original


def timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def measure(decoder: FusedDecoder, embeds: np.ndarray) -> dict:
    """ms: one step at 50 and 400 cached, a 300-token prefill, a batch of 8 single steps at ~100 cached."""
    out = {}
    for cached in (50, 400):
        _, cache = decoder.decode(embeds[:cached], decoder.new_cache())
        out[f"step@{cached}"] = timed(lambda: decoder.decode(embeds[cached : cached + 1], cache), 50)
    out["prefill300"] = timed(lambda: decoder.decode(embeds[:300], decoder.new_cache()), 5)
    first = decoder.new_cache(slots=8)
    caches = [first.buffer.empty(s) for s in range(8)]
    for s in range(8):
        _, caches[s] = decoder.decode(embeds[: 90 + s], caches[s])
    out["batch8"] = timed(lambda: decoder.decode_steps(embeds[:8], caches), 50)
    return out


def main(out_dir: str) -> None:
    import onnxruntime as ort

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers()}
    arch = LmArchitecture.from_config(GEMMA_270M)
    graphs = {}
    for quantize, dtype in (("int8", "float16"), ("int4", "float16"), ("int8", "float32")):
        path = Path("/tmp") / f"decoder_{quantize}_{dtype}.onnx"
        start = time.perf_counter()
        build_fused_decoder(arch, RandomWeights(arch), FusedDecoderOptions(quantize=quantize, max_length=MAX_LENGTH,
                                                                           dtype=dtype), path)
        graphs[quantize, dtype] = path
        print(f"built {path.name} in {time.perf_counter() - start:.1f} s, {path.stat().st_size / 1e6:.0f} MB", flush=True)
    embeds = np.random.default_rng(1).standard_normal((512, arch.hidden_size)).astype(np.float32)
    cuda, cpu = ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]

    # (1) where the ops run: one profiled prefill + step on the float16 int8 graph
    import simulsa.runtime.decoders as decoders

    record = DecoderRecord("fused", ("d",), FUSED_INPUTS, ("logits",), "buffers", max_length=MAX_LENGTH, kv_capacity=512,
                           dtype="float16")
    session = decoders.open_session(graphs["int8", "float16"], None, cuda, str(out / "profile"))
    del record
    profiled = decoder_for(graphs["int8", "float16"], arch, "float16", cuda)
    profiled.session = session
    _, cache = profiled.decode(embeds[:20], profiled.new_cache())
    profiled.decode(embeds[20:21], cache)
    trace = json.loads(Path(session.end_profiling()).read_text())
    placed = collections.Counter((e["args"].get("op_name"), e["args"].get("provider")) for e in trace
                                 if e.get("cat") == "Node" and "provider" in e.get("args", {}))
    report["ops_by_provider"] = {f"{op} on {provider}": n for (op, provider), n in sorted(placed.items())}
    print(json.dumps(report["ops_by_provider"], indent=1), flush=True)

    # (2) the GPU's logits against the CPU's, same float16 graph, 30 greedy-free steps on fixed embeddings
    gpu = decoder_for(graphs["int8", "float16"], arch, "float16", cuda)
    ref = decoder_for(graphs["int8", "float16"], arch, "float16", cpu)
    report["kv_storage_on_gpu"] = type(gpu.kv_storage).__name__ + ":" + gpu.kv_storage.device
    diffs, agree = [], 0
    caches = [gpu.new_cache(), ref.new_cache()]
    for t, (start, end) in enumerate([(0, 40)] + [(i, i + 1) for i in range(40, 70)]):
        (a, caches[0]), (b, caches[1]) = gpu.decode(embeds[start:end], caches[0]), ref.decode(embeds[start:end], caches[1])
        diffs.append(float(np.abs(a - b).max() / np.abs(b).max()))
        agree += int(a.argmax() == b.argmax())
    report["gpu_vs_cpu_float16"] = {"max_rel_logit_diff": max(diffs), "top1_agree": agree / len(diffs)}
    print(report["gpu_vs_cpu_float16"], flush=True)

    # (3) speed
    timings = {}
    for (quantize, dtype), path in graphs.items():
        if dtype == "float16":
            device_kv = decoder_for(path, arch, dtype, cuda)
            timings[f"{quantize} {dtype} CUDA, K/V on the GPU"] = measure(device_kv, embeds)
            host_kv = decoder_for(path, arch, dtype, cuda)
            host_kv.kv_storage = HostStorage()
            timings[f"{quantize} {dtype} CUDA, K/V in host memory"] = measure(host_kv, embeds)
        timings[f"{quantize} {dtype} CPU (16 cores)"] = measure(decoder_for(path, arch, dtype, cpu), embeds)
        print(json.dumps(timings, indent=1), flush=True)
    report["ms"] = timings
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
