"""The base LM's own 3-shot translation of each English source (sequence-level self-distillation targets), batched
greedy, first line. usage: distill.py MANIFEST OUT.jsonl [LIMIT]   (scratch, 2026-12-02)"""
import json, os, sys, time
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
LM = "/tmp/simcache/models/gemma3-270m"
FEW = ("English: Where is the station?\nSpanish: ¿Dónde está la estación?\n"
       "English: I am very tired today.\nSpanish: Hoy estoy muy cansado.\n"
       "English: We bought bread and cheese.\nSpanish: Compramos pan y queso.\n")
tok = AutoTokenizer.from_pretrained(LM); tok.padding_side = "left"
lm = AutoModelForCausalLM.from_pretrained(LM).eval()
if os.environ.get("ADAPTER"):  # the LM after a LoRA stage: its from-text translation must not fall
    from peft import PeftModel
    lm = PeftModel.from_pretrained(lm, os.environ["ADAPTER"]).merge_and_unload().eval()
NL = tok("\n", add_special_tokens=False).input_ids

@torch.no_grad()
def translate(sources):
    enc = tok([FEW + f"English: {s}\nSpanish:" for s in sources], return_tensors="pt", padding=True)
    longest = max(len(tok(s).input_ids) for s in sources)
    out = lm.generate(**enc, max_new_tokens=int(longest * 2) + 8, do_sample=False, eos_token_id=[tok.eos_token_id] + NL,
                      pad_token_id=tok.pad_token_id)
    return [tok.decode(o[enc.input_ids.shape[1]:], skip_special_tokens=True).split("\n")[0].strip() for o in out]

if __name__ == "__main__":
    rows = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines()]
    rows = rows[: int(sys.argv[3])] if len(sys.argv) > 3 else rows
    order = sorted(rows, key=lambda r: len(r["source"]))
    t0 = time.time()
    with open(sys.argv[2] + ".part", "w") as f:
        for k in range(0, len(order), 16):
            part = order[k:k + 16]
            for r, y in zip(part, translate([r["source"] for r in part])):
                f.write(json.dumps({"id": r["id"], "source": r["source"], "distilled": y}, ensure_ascii=False) + "\n")
            f.flush()
            print(f"{k + len(part)}/{len(order)} {time.time() - t0:.0f}s | {part[-1]['source']} -> {y}", flush=True)
    Path(sys.argv[2] + ".part").rename(sys.argv[2])
