"""The LM alone from the gold English text, 3-shot, greedy, first line: base vs a LoRA adapter, on everyday 1-80
(the report rows) and 81-160 (the choice rows), unique sentences (scratch, 2026-12-05, session 17).
usage: from_text.py [ADAPTER_DIR]"""
import json, sys
import sacrebleu, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
LM = "/tmp/simcache/models/gemma3-270m"
FEW = ("English: Where is the station?\nSpanish: ¿Dónde está la estación?\nEnglish: I am very tired today.\n"
       "Spanish: Hoy estoy muy cansado.\nEnglish: We bought bread and cheese.\nSpanish: Compramos pan y queso.\n")
tok = AutoTokenizer.from_pretrained(LM); tok.padding_side = "left"
lm = AutoModelForCausalLM.from_pretrained(LM, torch_dtype=torch.float32).eval()
if len(sys.argv) > 1:
    from peft import PeftModel
    lm = PeftModel.from_pretrained(lm, sys.argv[1]).merge_and_unload().eval()
NL = [i for t, i in tok.get_vocab().items() if "\n" in t.replace("Ċ", "\n")]
rows = {}
for r in map(json.loads, open("/tmp/evalsets/everyday.jsonl")):
    rows.setdefault(r["source"], r)

@torch.no_grad()
def translate(sources):
    enc = tok([FEW + f"English: {s}\nSpanish:" for s in sources], return_tensors="pt", padding=True)
    out = lm.generate(**enc, max_new_tokens=64, do_sample=False, eos_token_id=[tok.eos_token_id] + NL, pad_token_id=tok.pad_token_id)
    return [tok.decode(o[enc.input_ids.shape[1]:], skip_special_tokens=True).split("\n")[0].strip() for o in out]

for name, keep in (("everyday 1-80", lambda r: int(r["id"][2:5]) <= 80), ("everyday 81-160", lambda r: int(r["id"][2:5]) > 80)):
    chosen = [r for r in rows.values() if keep(r)]
    hyps = [h for k in range(0, len(chosen), 16) for h in translate([r["source"] for r in chosen[k:k + 16]])]
    refs = [r["target"] for r in chosen]
    print(name, round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2), round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2), flush=True)
