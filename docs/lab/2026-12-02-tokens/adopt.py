"""Put a projector trained by train_ear.py into a composed whisper-tokens model folder. usage: adopt.py BASE PROJECTOR.pt OUT"""
import sys
from pathlib import Path
import torch
from simulsa.train.families import load_speech_lm, save_model
model = load_speech_lm(sys.argv[1])
missing, unexpected = model.projector.load_state_dict(torch.load(sys.argv[2]), strict=False)
assert missing == ["table"] and not unexpected, (missing, unexpected)
save_model(model, Path(sys.argv[3]))
print("T", float(model.projector.log_temperature.exp()))
