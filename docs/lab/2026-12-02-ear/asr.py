"""Whisper-base transcripts (greedy, whole file in 30 s windows) of wav files: the ear's ceiling."""
import sys, torch, numpy as np
from transformers import WhisperForConditionalGeneration, WhisperProcessor, WhisperFeatureExtractor, WhisperTokenizerFast
from simulsa.runtime.audio import load_audio
torch.set_num_threads(2)
path = "/tmp/simcache/models/whisper-base"
model = WhisperForConditionalGeneration.from_pretrained(path).eval()
fe = WhisperFeatureExtractor(feature_size=80)
tok = WhisperTokenizerFast.from_pretrained(path) if False else None
from tokenizers import Tokenizer
tk = Tokenizer.from_file(path + "/tokenizer.json")
PROMPT = [50258, 50259, 50359, 50363]  # sot, en, transcribe, notimestamps
@torch.no_grad()
def greedy(feats, max_new=200):
    enc = model.model.encoder(feats).last_hidden_state
    ids = list(PROMPT)
    past = None
    inp = torch.tensor([ids])
    for _ in range(max_new):
        o = model.model.decoder(input_ids=inp, encoder_hidden_states=enc, past_key_values=past, use_cache=True)
        past = o.past_key_values
        logits = model.proj_out(o.last_hidden_state[:, -1])
        nxt = int(logits.argmax())
        if nxt == 50257: break
        ids.append(nxt); inp = torch.tensor([[nxt]])
    return ids[len(PROMPT):]
def transcribe(samples):
    out = []
    for start in range(0, len(samples), 16000 * 30):
        feats = fe(samples[start:start + 16000 * 30], sampling_rate=16000, return_tensors="pt").input_features
        ids = greedy(feats)
        out.append(tk.decode(ids, skip_special_tokens=True).strip())
    return " ".join(out)
for f in sys.argv[1:]:
    print(f, "|", transcribe(load_audio(f)), flush=True)
