"""The base LM 3-shot from the gold English text on the rows train_ear.py evaluates on (81-160, 30 per voice) and on
rows 1-80 (held out from every choice): the ceiling the ear is measured against. usage: gold_rows.py"""
import json, os, subprocess, sys
from pathlib import Path
import sacrebleu
rows = [json.loads(l) for l in open("/tmp/evalsets/everyday.jsonl")]
sets = {"dev81-160": [r for r in rows if int(r["id"][2:5]) > 80], "test1-80": [r for r in rows if int(r["id"][2:5]) <= 80]}
sets["dev81-160"] = sets["dev81-160"][::2][:30] + sets["dev81-160"][1::2][:30]
for name, part in sets.items():
    m = Path(f"/tmp/proto/gold_{name}.jsonl"); m.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    out = Path(f"/tmp/proto/gold_{name}_hyp{os.environ.get('TAG', '')}.jsonl")
    if not out.exists():
        subprocess.run([sys.executable, "distill.py", str(m), str(out)], check=True, capture_output=True)
    hyp = {json.loads(l)["id"]: json.loads(l)["distilled"] for l in open(out)}
    h, r = [hyp[x["id"]] for x in part], [x["target"] for x in part]
    print(name, len(part), f"BLEU {sacrebleu.corpus_bleu(h, [r]).score:.2f} chrF {sacrebleu.corpus_chrf(h, [r]).score:.2f}")
