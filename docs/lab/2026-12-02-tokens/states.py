"""Whisper-base decoder states per transcript token, batched, for a manifest (scratch, 2026-12-02).
mode tf: teacher-forced on the manifest's English `source` (training: one decoder pass, no search);
mode greedy: Whisper's own greedy transcript (evaluation: what the runtime will see), start-over cut.
mode greedy-open: the same, with the transcript's trailing sentence-end tokens dropped (SimulSA's truncated rows:
the runtime's open tail hides them from the LM while a segment goes on; added 2026-12-03).
Per token t at input position p: h_pred = state at p-1 (the one that chose t), h_read = state at p.
usage: states.py MANIFEST OUT.npz tf|greedy|greedy-open [LIMIT]"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from transformers import WhisperForConditionalGeneration
from tokenizers import Tokenizer
from simulsa.runtime.audio import load_audio, log_mel
from simulsa.runtime.ear import open_tail_end, sentence_end_ids
torch.set_num_threads(2)
WHISPER = "/tmp/simcache/models/whisper-base"
model = WhisperForConditionalGeneration.from_pretrained(WHISPER).eval()
tk = Tokenizer.from_file(WHISPER + "/tokenizer.json")
PROMPT = [50258, 50259, 50359, 50363]  # <|startoftranscript|><|en|><|transcribe|><|notimestamps|>
EOT = 50257
SENTENCE_ENDS = frozenset(sentence_end_ids(tk.decode_batch([[i] for i in range(EOT)])))
WINDOW = 80000  # 5 s: audio padded with silence to a whole number of windows
BATCH = 16

def windows(n):
    return max(1, -(-n // WINDOW))

@torch.no_grad()
def encode(batch_samples):
    """list of (T,) same window count -> (B, frames, 512)."""
    size = windows(batch_samples[0].size) * WINDOW
    mel = torch.from_numpy(np.stack([log_mel(np.pad(s, (0, size - s.size)), 80) for s in batch_samples]))
    enc = model.model.encoder
    x = torch.nn.functional.gelu(enc.conv1(mel))
    x = torch.nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
    x = x + enc.embed_positions.weight[: x.shape[1]]
    for layer in enc.layers:
        x = layer(x, None)
    return enc.layer_norm(x)

def unloop(t):
    for p in range(3, len(t) // 2 + 1):
        if t[p:2 * p] == t[:p]:
            return p
    return len(t)

@torch.no_grad()
def teacher_forced(enc, token_lists):
    n = max(map(len, token_lists))
    ids = torch.tensor([PROMPT + t + [EOT] * (n - len(t) + 1) for t in token_lists])
    h = model.model.decoder(input_ids=ids, encoder_hidden_states=enc).last_hidden_state  # (B, P+n+1, 512)
    out = []
    for b, t in enumerate(token_lists):
        pos = torch.arange(len(PROMPT), len(PROMPT) + len(t))
        out.append((t, h[b, pos - 1].numpy().astype(np.float16), h[b, pos].numpy().astype(np.float16)))
    return out

@torch.no_grad()
def greedy(enc, max_new=120, open_tail=False):
    B = enc.shape[0]
    ids = [[] for _ in range(B)]; done = [False] * B
    o = model.model.decoder(input_ids=torch.tensor([PROMPT] * B), encoder_hidden_states=enc, use_cache=True)
    past = o.past_key_values
    for _ in range(max_new):
        nxt = model.proj_out(o.last_hidden_state[:, -1]).argmax(-1).tolist()
        for b in range(B):
            if not done[b]:
                if nxt[b] == EOT: done[b] = True
                else: ids[b].append(nxt[b])
        if all(done): break
        o = model.model.decoder(input_ids=torch.tensor([[x] for x in nxt]), encoder_hidden_states=enc,
                                past_key_values=past, use_cache=True)
        past = o.past_key_values
    cut = [t[: unloop(t)] for t in ids]
    if open_tail:
        cut = [t[: open_tail_end(t, 0, SENTENCE_ENDS)] for t in cut]
    return teacher_forced(enc, cut)  # the same states the greedy pass computed, in one batched pass

if __name__ == "__main__":
    manifest, out_path, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows = [json.loads(l) for l in manifest.read_text().splitlines()]
    rows = rows[: int(sys.argv[4])] if len(sys.argv) > 4 else rows
    audio = {r["id"]: load_audio(manifest.parent / r["audio"]) for r in rows}
    order = sorted(rows, key=lambda r: audio[r["id"]].size)
    groups = {}
    for r in order:
        groups.setdefault(windows(audio[r["id"]].size), []).append(r)
    result, t0, done = {}, time.time(), 0
    for w, group in groups.items():
        for k in range(0, len(group), BATCH):
            part = group[k:k + BATCH]
            enc = encode([audio[r["id"]] for r in part])
            if mode == "tf":
                got = teacher_forced(enc, [tk.encode(" " + r["source"].strip()).ids for r in part])
            else:
                got = greedy(enc, open_tail=mode == "greedy-open")
            for r, g in zip(part, got):
                result[r["id"]] = g
            done += len(part)
            print(f"{done}/{len(rows)} {time.time() - t0:.0f}s windows={w} | {tk.decode(got[0][0])} | {part[0].get('source', '')}", flush=True)
    ids = [r["id"] for r in rows]
    np.savez(out_path, ids=np.array(ids),
             tokens=np.array([np.array(result[i][0], np.int32) for i in ids], dtype=object),
             h_pred=np.array([result[i][1] for i in ids], dtype=object),
             h_read=np.array([result[i][2] for i in ids], dtype=object))
    print("done", len(rows), f"{time.time() - t0:.0f}s")
