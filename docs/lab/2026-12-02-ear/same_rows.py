"""On the rows the linear ear decoded: the same base LM 3-shot from the gold text and from the 5 s-window transcript."""
import json, sys
sys.argv = [sys.argv[0]]
import sacrebleu
exec(open("/tmp/ceil.py").read().split("def wer(")[0].replace("from asr import transcribe  # Whisper-base greedy, 30 s windows\n", ""))
rows = [json.loads(l) for l in open("/tmp/proto/ridge.log") if l.startswith("{")]
src = {json.loads(l)["id"]: json.loads(l)["source"] for l in open("/tmp/evalsets/everyday.jsonl")}
refs = [r["ref"] for r in rows]
gold = translate([src[r["id"]] for r in rows])
heard = translate([r["heard"].strip() for r in rows])
hyps = [r["hyp"] for r in rows]
for name, h in (("gold text", gold), ("5 s-window transcript as text", heard), ("linear ear (mapped states)", hyps)):
    print(f"{name:<32} BLEU {sacrebleu.corpus_bleu(h, [refs]).score:6.2f} chrF {sacrebleu.corpus_chrf(h, [refs]).score:6.2f} ({len(h)} rows)")
