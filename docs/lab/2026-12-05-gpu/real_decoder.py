"""The default's own LM (2026-12-05b: Gemma 3 270M + its LoRA, pruned head) as a float16 decoder on a GPU.

Does float16 hold for Gemma 3's real weights (trained in bfloat16; activations can pass float16's 65,504)?
    python real_decoder.py prepare OUT    (here, with torch: the graphs, a real prompt's embeddings, CPU logits)
    python real_decoder.py gpu OUT DIR    (on the GPU machine: DIR holds decoder_float16.onnx + inputs.npz)
The prompt is the default's 3-shot prompt with an English sentence, then its Spanish translation teacher-forced
token by token: the logits at every step are compared with the float32 int8 graph's on the CPU.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from gpu_check import decoder_for, timed  # noqa: E402

PROMPT = ("English: Where is the station?\nSpanish: ¿Dónde está la estación?\n"
          "English: I am very tired today.\nSpanish: Hoy estoy muy cansado.\n"
          "English: We bought bread and cheese.\nSpanish: Compramos pan y queso.\n"
          "English: The train to the city leaves from platform four, and I would like a cup of coffee with milk.\nSpanish:")
TARGET = " El tren a la ciudad sale del andén cuatro, y me gustaría una taza de café con leche.\n"
CUDA, CPU = ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]


def teacher_forced(decoder, embeds: np.ndarray, prompt_len: int) -> np.ndarray:
    """(N, H) -> (N - prompt_len + 1, V) logits: after the prompt, then after each target token."""
    logits, cache = decoder.decode(embeds[:prompt_len], decoder.new_cache())
    rows = [logits[0]]
    for t in range(prompt_len, len(embeds)):
        logits, cache = decoder.decode(embeds[t : t + 1], cache)
        rows.append(logits[0])
    return np.stack(rows)


def prepare(out: Path) -> None:
    import torch

    from simulsa.export.graphs import DecoderGraphOptions, lm_architecture, write_fused_decoder
    from simulsa.export.pipeline import load_merged

    out.mkdir(parents=True, exist_ok=True)
    model, _ = load_merged("/tmp/proto/out_s1")  # the shipped 2026-12-05b's train output (stage 1 of the SimulSA runs)
    kept = np.load(Path(__file__).parents[3] / "runtime/default/vocab_kept.npy")
    for dtype in ("float16", "float32"):
        write_fused_decoder(model, out / f"decoder_{dtype}.onnx", "int8",
                            DecoderGraphOptions("fused", 1024, tuple(int(i) for i in kept), dtype=dtype))
    tok = model.tokenizer
    prompt_ids = tok(PROMPT, add_special_tokens=True).input_ids
    target_ids = tok(TARGET, add_special_tokens=False).input_ids
    with torch.no_grad():
        embeds = model.input_embeddings()(torch.tensor(prompt_ids + target_ids)).float().numpy()  # (N, H), Gemma-scaled
    arch = lm_architecture(model)
    arch = type(arch)(**{**arch.__dict__, "vocab_size": int(kept.size)})
    logits = {d: teacher_forced(decoder_for(out / f"decoder_{d}.onnx", arch, d, CPU), embeds, len(prompt_ids))
              for d in ("float32", "float16")}
    position = {int(t): i for i, t in enumerate(kept)}
    targets = np.array([position.get(t, -1) for t in target_ids])
    np.savez(out / "inputs.npz", embeds=embeds, prompt_len=len(prompt_ids), targets=targets, cpu_float32=logits["float32"])
    (out / "arch.json").write_text(json.dumps(arch.__dict__, default=lambda o: o.__dict__))
    print(json.dumps(compare(logits["float16"], logits["float32"], targets) | {"what": "CPU float16 vs CPU float32"}))


def compare(got: np.ndarray, ref: np.ndarray, targets: np.ndarray) -> dict:
    rel = np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)
    return {"steps": len(ref), "max_rel_logit_diff": float(rel.max()), "top1_agree": float((got.argmax(1) == ref.argmax(1)).mean()),
            "finite": bool(np.isfinite(got).all()),
            "target_is_top1": [float((ref.argmax(1)[:-1] == targets).mean()), float((got.argmax(1)[:-1] == targets).mean())]}


def gpu(out: Path, folder: Path) -> None:
    from simulsa.export.lm_architecture import LmArchitecture, Traits

    out.mkdir(parents=True, exist_ok=True)
    data = np.load(folder / "inputs.npz")
    fields = json.loads((folder / "arch.json").read_text())
    arch = LmArchitecture(**{**fields, "traits": Traits(**fields["traits"]), "rope_thetas": tuple(fields["rope_thetas"]),
                             "windows": tuple(fields["windows"])})
    decoder = decoder_for(folder / "decoder_float16.onnx", arch, "float16", CUDA)
    got = teacher_forced(decoder, data["embeds"], int(data["prompt_len"]))
    report = compare(got, data["cpu_float32"], data["targets"]) | {"what": "GPU float16 vs CPU float32 (int8 weights)",
                                                                    "providers": decoder.session.get_providers()}
    embeds, n = data["embeds"], int(data["prompt_len"])
    _, cache = decoder.decode(embeds[:n], decoder.new_cache())
    report["ms_step_after_prompt"] = timed(lambda: decoder.decode(embeds[n : n + 1], cache), 100)
    report["ms_prefill_prompt"] = timed(lambda: decoder.decode(embeds[:n], decoder.new_cache()), 10)
    print(json.dumps(report, indent=1))
    (out / "real_decoder.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    {"prepare": lambda: prepare(Path(sys.argv[2])), "gpu": lambda: gpu(Path(sys.argv[2]), Path(sys.argv[3]))}[sys.argv[1]]()
