"""Cheapest decisive test of a token-synchronous ear: a linear map (ridge, closed form) from Whisper decoder states
to the LM's own embedding of each Whisper token's text, then the frozen base LM translating 3-shot with the mapped
states where the English words go. No gradient step. usage: ridge_ear.py TRAIN_STATES.npz EVAL_STATES.npz EVAL_MANIFEST"""
import json, sys, time
from pathlib import Path
import numpy as np, torch, sacrebleu
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
wtk = Tokenizer.from_file("/tmp/simcache/models/whisper-base/tokenizer.json")
lm_dir = "/tmp/simcache/models/gemma3-270m"
tok = AutoTokenizer.from_pretrained(lm_dir)
lm = AutoModelForCausalLM.from_pretrained(lm_dir).eval()
embed = lm.get_input_embeddings()  # Gemma scales by sqrt(hidden) inside: this is the table as the LM reads it

def piece_targets(tokens):
    """(T,) Whisper ids -> (T, H): mean LM embedding of each token's text (' station' -> LM tokens of ' station')."""
    out = []
    for t in tokens:
        text = wtk.decode([int(t)])
        ids = tok(text, add_special_tokens=False).input_ids or tok(" ", add_special_tokens=False).input_ids
        with torch.no_grad():
            out.append(embed(torch.tensor(ids)).mean(0).numpy())
    return np.stack(out)

def unloop(t):
    """Length of the first pass when Whisper starts the transcript over (a short window can make it loop)."""
    t = list(map(int, t))
    for p in range(3, len(t) // 2 + 1):
        if t[p:2 * p] == t[:p]:
            return p
    return len(t)

def load(path):
    z = np.load(path, allow_pickle=True)
    cuts = [unloop(t) for t in z["tokens"]]
    return list(z["ids"]), [t[:c] for t, c in zip(z["tokens"], cuts)], [s[:c] for s, c in zip(z["states"], cuts)]

_, train_tokens, train_states = load(sys.argv[1])
X = np.concatenate([s.astype(np.float32) for s in train_states])
Y = np.concatenate([piece_targets(t) for t in train_tokens])
Xb = np.hstack([X, np.ones((len(X), 1), np.float32)])
lam = 1.0
W = np.linalg.solve(Xb.T @ Xb + lam * np.eye(Xb.shape[1]), Xb.T @ Y)  # (513, H)
pred = Xb @ W
r2 = 1 - ((pred - Y) ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum()
print(f"ridge on {len(X)} token states: R^2 {r2:.3f}", flush=True)
np.save("/tmp/proto/ridge_W.npy", W)

FEW = ("English: Where is the station?\nSpanish: ¿Dónde está la estación?\n"
       "English: I am very tired today.\nSpanish: Hoy estoy muy cansado.\n"
       "English: We bought bread and cheese.\nSpanish: Compramos pan y queso.\n")

@torch.no_grad()
def translate_embeds(states, max_new):
    head = tok(FEW + "English:", return_tensors="pt").input_ids  # starts with <bos>
    tail = tok("\nSpanish:", add_special_tokens=False, return_tensors="pt").input_ids
    mapped = torch.from_numpy(np.hstack([states.astype(np.float32), np.ones((len(states), 1), np.float32)]) @ W).float()
    x = torch.cat([embed(head)[0], mapped, embed(tail)[0]])[None]
    out = lm.generate(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long), max_new_tokens=max_new,
                      do_sample=False)
    return tok.decode(out[0], skip_special_tokens=True).split("\n")[0].strip()

ids, tokens, states = load(sys.argv[2])
manifest = Path(sys.argv[3]); rows = {json.loads(l)["id"]: json.loads(l) for l in manifest.read_text().splitlines()}
hyps, refs, heard, t0 = [], [], [], time.time()
LIMIT = int(sys.argv[4]) if len(sys.argv) > 4 else len(ids)
for i, (uid, tk_, st) in enumerate(list(zip(ids, tokens, states))[:LIMIT]):
    hyps.append(translate_embeds(st, int(len(tk_) * 2.5) + 16)); refs.append(rows[uid]["target"]); heard.append(wtk.decode(list(map(int, tk_))))
    print(json.dumps({"i": i, "s": round(time.time() - t0), "id": uid, "heard": heard[-1], "hyp": hyps[-1], "ref": refs[-1]},
                     ensure_ascii=False), flush=True)
print(f"mapped-states 3-shot: BLEU {sacrebleu.corpus_bleu(hyps, [refs]).score:.2f} chrF {sacrebleu.corpus_chrf(hyps, [refs]).score:.2f} ({len(hyps)} rows)")
Path("/tmp/proto/ridge_hyps.json").write_text(json.dumps([{"id": u, "heard": h, "hyp": y, "ref": r} for u, h, y, r in zip(ids, heard, hyps, refs)], ensure_ascii=False, indent=1))
