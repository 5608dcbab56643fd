"""An LM's 3-shot translation of the everyday sentences from gold text (same prompt as ceil.py). usage: fewshot.py LM_DIR N"""
import csv, sys, time
import torch, sacrebleu
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
FEW = ("English: Where is the station?\nSpanish: ¿Dónde está la estación?\n"
       "English: I am very tired today.\nSpanish: Hoy estoy muy cansado.\n"
       "English: We bought bread and cheese.\nSpanish: Compramos pan y queso.\n")
lm_dir, n = sys.argv[1], int(sys.argv[2])
tok = AutoTokenizer.from_pretrained(lm_dir); tok.padding_side = "left"
if tok.pad_token is None: tok.pad_token = tok.eos_token
lm = AutoModelForCausalLM.from_pretrained(lm_dir).eval()
pairs = list(csv.DictReader(open("/work/main/train/corpus/evalsets/everyday_en_es.tsv"), delimiter="\t"))[:n]
hyps, t0 = [], time.time()
with torch.no_grad():
    for i in range(0, len(pairs), 8):
        chunk = [p["english"] for p in pairs[i:i + 8]]
        enc = tok([FEW + f"English: {s}\nSpanish:" for s in chunk], return_tensors="pt", padding=True)
        ids = lm.generate(**enc, max_new_tokens=48, do_sample=False, pad_token_id=tok.pad_token_id)
        hyps += [tok.decode(r, skip_special_tokens=True).split("\n")[0].strip() for r in ids[:, enc.input_ids.shape[1]:]]
refs = [p["spanish"] for p in pairs]
print(f"{lm_dir}: BLEU {sacrebleu.corpus_bleu(hyps, [refs]).score:.2f} chrF {sacrebleu.corpus_chrf(hyps, [refs]).score:.2f} "
      f"({n} sentences, {time.time() - t0:.0f} s)")
for h, r in list(zip(hyps, refs))[:4]: print("  ", h, "|", r)
