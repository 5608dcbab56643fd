"""Ceilings on the hand-referenced sets: the base LM from gold text (3-shot), Whisper-base's word errors,
and the base LM from Whisper-base's transcript (3-shot). Scratch measurement script (2026-12-02)."""
import json, sys, time, re
from pathlib import Path
import torch, sacrebleu
sys.path.insert(0, "/tmp")
from asr import transcribe  # Whisper-base greedy, 30 s windows
from simulsa.runtime.audio import load_audio
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_num_threads(2)
FEW = ("English: Where is the station?\nSpanish: ¿Dónde está la estación?\n"
       "English: I am very tired today.\nSpanish: Hoy estoy muy cansado.\n"
       "English: We bought bread and cheese.\nSpanish: Compramos pan y queso.\n")
lm_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/simcache/models/gemma3-270m"
tok = AutoTokenizer.from_pretrained(lm_dir); tok.padding_side = "left"
lm = AutoModelForCausalLM.from_pretrained(lm_dir).eval()

@torch.no_grad()
def translate(sentences, batch=8):
    out = []
    for i in range(0, len(sentences), batch):
        chunk = sentences[i:i + batch]
        prompts = [FEW + f"English: {s}\nSpanish:" for s in chunk]
        enc = tok(prompts, return_tensors="pt", padding=True)
        longest = max(len(tok(s).input_ids) for s in chunk)
        ids = lm.generate(**enc, max_new_tokens=int(longest * 2.5) + 16, do_sample=False)
        for row in ids[:, enc.input_ids.shape[1]:]:
            out.append(tok.decode(row, skip_special_tokens=True).split("\n")[0].strip())
    return out

def wer(ref, hyp):
    norm = lambda t: re.sub(r"[^a-z0-9' ]", " ", t.lower()).split()
    r, h = norm(ref), norm(hyp)
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)], len(r)

def score(hyps, refs):
    return round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2), round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)

root = Path("/tmp/evalsets")
results, examples = {}, {}
for name in ("everyday", "real"):
    rows = [json.loads(l) for l in (root / f"{name}.jsonl").read_text().splitlines()]
    t0 = time.time()
    uniq = list(dict.fromkeys(r["source"] for r in rows))
    text_out = dict(zip(uniq, translate(uniq)))
    results[f"{name}: LM from gold text"] = score([text_out[r["source"]] for r in rows], [r["target"] for r in rows])
    heard = [transcribe(load_audio(root / r["audio"])) for r in rows]
    errs = [wer(r["source"], h) for r, h in zip(rows, heard)]
    for voice in sorted({r["voice"] for r in rows}):
        e = [x for x, r in zip(errs, rows) if r["voice"] == voice]
        results[f"{name}: Whisper-base WER {voice}"] = round(100 * sum(a for a, _ in e) / sum(b for _, b in e), 1)
    casc = translate(heard)
    results[f"{name}: LM from Whisper transcript"] = score(casc, [r["target"] for r in rows])
    for voice in sorted({r["voice"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["voice"] == voice]
        results[f"{name}: LM from Whisper transcript, {voice}"] = score([casc[i] for i in idx], [rows[i]["target"] for i in idx])
    examples[name] = [{"source": r["source"], "heard": h, "from_text": text_out[r["source"]], "from_heard": c, "ref": r["target"]}
                      for r, h, c in list(zip(rows, heard, casc))[:6]]
    print(name, "done in", round(time.time() - t0), "s", flush=True)
print(json.dumps(results, indent=1, ensure_ascii=False))
Path("/tmp/ceil_result.json").write_text(json.dumps({"lm": lm_dir, "results": results, "examples": examples}, indent=1, ensure_ascii=False))
