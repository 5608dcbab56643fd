"""The LM from the gold text of the 7 real recordings, whole and cut into clauses (after . , ; ? !) as the pause cut
would; base LM and with the human-pair adapter. usage: real_ceiling.py [ADAPTER]"""
import json, re, sys
import sacrebleu
import prompts
from prompts import PROMPTS, translate
if len(sys.argv) > 1:
    from peft import PeftModel
    prompts.lm = PeftModel.from_pretrained(prompts.lm, sys.argv[1]).merge_and_unload().eval()
rows = [json.loads(l) for l in open("/tmp/evalsets/real.jsonl")]
ref = [r["target"] for r in rows]
whole = [translate(PROMPTS["old3"], [r["source"]])[0] for r in rows]
cut = [" ".join(translate(PROMPTS["old3"], [p for p in re.split(r"(?<=[.,;?!])\s+", r["source"]) if p.strip()])) for r in rows]
for label, hyp in (("whole", whole), ("clauses", cut)):
    print(sys.argv[1:] or "base", label, f"BLEU {sacrebleu.corpus_bleu(hyp, [ref]).score:.2f} chrF {sacrebleu.corpus_chrf(hyp, [ref]).score:.2f}",
          "|", hyp[1], flush=True)
