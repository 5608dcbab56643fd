"""Which few-shot prompt makes the frozen base LM translate best from the gold text: every candidate on everyday
81-160 (choice) and 1-80 (report), unique sentences, batched greedy, first line.  usage: prompts.py [NAMES...]"""
import json, sys, time
from pathlib import Path
import sacrebleu, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
LM = "/tmp/simcache/models/gemma3-270m"
def shots(pairs): return "".join(f"English: {e}\nSpanish: {s}\n" for e, s in pairs)
OLD3 = [("Where is the station?", "¿Dónde está la estación?"), ("I am very tired today.", "Hoy estoy muy cansado."),
        ("We bought bread and cheese.", "Compramos pan y queso.")]
NEW = [("The post office opens at nine.", "La oficina de correos abre a las nueve."),
       ("I am very tired today.", "Hoy estoy muy cansado."),
       ("My friends are waiting for us at the restaurant.", "Mis amigos nos están esperando en el restaurante."),
       ("We bought bread and cheese.", "Compramos pan y queso."),
       ("Could you speak a little louder, please?", "¿Podría hablar un poco más alto, por favor?"),
       ("We did not have enough time to visit the castle.", "No tuvimos tiempo suficiente para visitar el castillo."),
       ("He opened the letter slowly and read it twice.", "Abrió la carta despacio y la leyó dos veces."),
       ("It was the coldest winter in twenty years, and the river froze.", "Fue el invierno más frío en veinte años, y el río se congeló."),
       ("Where is the nearest bank?", "¿Dónde está el banco más cercano?"),
       ("Our daughter starts school in September.", "Nuestra hija empieza el colegio en septiembre.")]
PROMPTS = {
    "old3": shots(OLD3),
    "new3": shots(NEW[:3]),
    "new6": shots(NEW[:6]),
    "new10": shots(NEW),
    "head10": "Translate English into Spanish.\n\n" + shots(NEW),
    "old3+new7": shots(OLD3 + [p for p in NEW if p not in OLD3][:7]),
}
tok = AutoTokenizer.from_pretrained(LM); tok.padding_side = "left"
lm = AutoModelForCausalLM.from_pretrained(LM).eval()
NL = tok("\n", add_special_tokens=False).input_ids

@torch.no_grad()
def translate(prefix, sources):
    enc = tok([prefix + f"English: {s}\nSpanish:" for s in sources], return_tensors="pt", padding=True)
    longest = max(len(tok(s).input_ids) for s in sources)
    out = lm.generate(**enc, max_new_tokens=int(longest * 2) + 8, do_sample=False, eos_token_id=[tok.eos_token_id] + NL,
                      pad_token_id=tok.pad_token_id)
    return [tok.decode(o[enc.input_ids.shape[1]:], skip_special_tokens=True).split("\n")[0].strip() for o in out]

if __name__ == "__main__":
    rows = {}
    for l in open("/tmp/evalsets/everyday.jsonl"):
        r = json.loads(l); rows.setdefault(r["source"], r)
    parts = {"dev81-160": [r for r in rows.values() if int(r["id"][2:5]) > 80], "test1-80": [r for r in rows.values() if int(r["id"][2:5]) <= 80]}
    for name in sys.argv[1:] or PROMPTS:
        t0 = time.time(); line = [name]
        for part, rs in parts.items():
            order = sorted(rs, key=lambda r: len(r["source"])); hyp = {}
            for k in range(0, len(order), 16):
                for r, y in zip(order[k:k + 16], translate(PROMPTS[name], [r["source"] for r in order[k:k + 16]])): hyp[r["source"]] = y
            h = [hyp[r["source"]] for r in rs]; ref = [r["target"] for r in rs]
            line.append(f"{part} {sacrebleu.corpus_bleu(h, [ref]).score:.2f}/{sacrebleu.corpus_chrf(h, [ref]).score:.2f}")
            Path(f"/tmp/proto/prompt_{name}_{part}.json").write_text(json.dumps(hyp, ensure_ascii=False, indent=0))
        print(" | ".join(line), f"{time.time() - t0:.0f}s", flush=True)
