"""Does a light LoRA on human translations (LibreOffice help) lift the base LM's from-text translation of everyday
sentences? Text only: FEW-shot prefix (KV recomputed each step under no_grad with the current adapter) + "English: src
\nSpanish:" -> " tgt\n". usage: text_lora.py OUT STEPS PROMPT [--mix distill.jsonl]"""
import argparse, copy, json, math, random, time
from pathlib import Path
import sacrebleu, torch
from peft import LoraConfig, get_peft_model
from prompts import PROMPTS, tok, lm as base, NL
torch.manual_seed(0); random.seed(0)
ap = argparse.ArgumentParser(); ap.add_argument("out"); ap.add_argument("steps", type=int); ap.add_argument("prompt")
ap.add_argument("--batch", type=int, default=8); ap.add_argument("--lr", type=float, default=2e-4); ap.add_argument("--rank", type=int, default=8)
ap.add_argument("--train", default="/tmp/human/train.jsonl"); ap.add_argument("--eval-every", type=int, default=100); ap.add_argument("--skip0", action="store_true"); ap.add_argument("--stop-at", type=int, default=0)
a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
FEW = PROMPTS[a.prompt]
lm = get_peft_model(base, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
inner = lm.base_model.model
pairs = []
for path in a.train.split(","):
    pairs += [json.loads(l) for l in open(path)]
pairs = [(p["source"], p.get("target") or p.get("distilled")) for p in pairs if p.get("target") or p.get("distilled")]
print(len(pairs), "training pairs", flush=True)
head = torch.tensor(tok(FEW).input_ids)  # <bos> + shots

def loss_of(batch):
    with torch.no_grad():
        cache = inner.model(input_ids=head[None], use_cache=True).past_key_values
    cache.batch_repeat_interleave(len(batch))
    seqs = []
    for s, t in batch:
        p = tok(f"English: {s}\nSpanish:", add_special_tokens=False).input_ids; y = tok(" " + t + "\n", add_special_tokens=False).input_ids
        seqs.append((p + y, [-100] * len(p) + y))
    n = max(len(x) for x, _ in seqs)
    ids = torch.zeros(len(seqs), n, dtype=torch.long); lab = torch.full((len(seqs), n), -100); mask = torch.zeros(len(seqs), n, dtype=torch.long)
    for b, (x, l) in enumerate(seqs):
        ids[b, :len(x)] = torch.tensor(x); lab[b, :len(l)] = torch.tensor(l); mask[b, :len(x)] = 1
    full_mask = torch.cat([torch.ones(len(seqs), len(head), dtype=torch.long), mask], 1)
    pos = torch.arange(len(head), len(head) + n)[None].expand(len(seqs), n)
    hidden = inner.model(input_ids=ids, attention_mask=full_mask, past_key_values=cache, position_ids=pos).last_hidden_state
    target = lab[:, 1:]; sel = target != -100  # the head (262k rows) only where a target token is predicted
    logits = inner.lm_head(hidden[:, :-1][sel])
    cap = getattr(inner.config, "final_logit_softcapping", None)
    if cap: logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits, target[sel])

@torch.no_grad()
def translate(sources):
    enc = tok([FEW + f"English: {s}\nSpanish:" for s in sources], return_tensors="pt", padding=True)
    longest = max(len(tok(s).input_ids) for s in sources)
    o = lm.generate(**enc, max_new_tokens=int(longest * 2) + 8, do_sample=False, eos_token_id=[tok.eos_token_id] + NL, pad_token_id=tok.pad_token_id)
    return [tok.decode(x[enc.input_ids.shape[1]:], skip_special_tokens=True).split("\n")[0].strip() for x in o]

def score(rows):
    order = sorted(rows, key=lambda r: len(r["source"])); hyp = {}
    for k in range(0, len(order), 16):
        for r, y in zip(order[k:k + 16], translate([r["source"] for r in order[k:k + 16]])): hyp[r["source"]] = y
    h = [hyp[r["source"]] for r in rows]; ref = [r["target"] for r in rows]
    return round(sacrebleu.corpus_bleu(h, [ref]).score, 2), round(sacrebleu.corpus_chrf(h, [ref]).score, 2), h

ev = {}
for l in open("/tmp/evalsets/everyday.jsonl"):
    r = json.loads(l); ev.setdefault(r["source"], r)
sets = {"ev_dev": [r for r in ev.values() if int(r["id"][2:5]) > 80], "ev_test": [r for r in ev.values() if int(r["id"][2:5]) <= 80],
        "human_dev": [json.loads(l) for l in open("/tmp/human/dev.jsonl")]}
log = open(out / "log.jsonl", "a")
def report(step):
    rec = {"step": step}
    lm.eval()
    for name, rows in sets.items():
        b, c, h = score(rows); rec[name] = [b, c]; rec[name + "_ex"] = h[:2]
    lm.train()
    print(json.dumps(rec, ensure_ascii=False), flush=True); log.write(json.dumps(rec, ensure_ascii=False) + "\n"); log.flush()
params = [p for n, p in lm.named_parameters() if "lora_" in n]
opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))
report(0) if not a.skip0 else None; lm.train(); t0 = time.time(); losses = []
for step in range(1, a.steps + 1):
    loss = loss_of(random.sample(pairs, a.batch)); opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); sched.step()
    losses.append(float(loss))
    if step % 10 == 0: print(f"step {step} loss {sum(losses[-10:]) / 10:.3f} {(time.time() - t0) / step:.2f}s/step", flush=True)
    if step % a.eval_every == 0 or step == a.steps:
        lm.save_pretrained(str(out / f"adapter_{step}")); report(step)
        if a.stop_at and step >= a.stop_at: break
