import json, sys, time
import numpy as np, torch
sys.path.insert(0, "/tmp/proto"); sys.path.insert(0, "/tmp")
import whisper_states as ws
from ceil_wer import wer
from simulsa.runtime.audio import load_audio
torch.set_num_threads(1)
rows = [json.loads(l) for l in open("/tmp/corpus/train.jsonl")][:24]
def run(label, prep, max_per_s=None):
    t0, E, N = time.time(), 0, 0
    for r in rows:
        s = load_audio("/tmp/corpus/" + r["audio"])
        cap = int(len(s) / 16000 * max_per_s) + 8 if max_per_s else 200
        ids, st = ws.transcribe(prep(s), max_new=cap)
        e, n = wer(r["source"], ws.tk.decode(ids)); E += e; N += n
    print(f"{label:<28} WER {100*E/N:5.1f}%  {1000*(time.time()-t0)/len(rows):6.0f} ms/utt", flush=True)
run("30 s window", lambda s: np.pad(s, (0, max(0, 480000 - s.size))))
run("own length + 1 s silence", lambda s: np.pad(s, (0, 16000)))
run("own length + 2 s silence", lambda s: np.pad(s, (0, 32000)))
run("own length, cap 6 tok/s", lambda s: s, 6)
run("own + 1 s, cap 6 tok/s", lambda s: np.pad(s, (0, 16000)), 6)
