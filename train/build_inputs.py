"""What the torch-free default build needs besides the pulled wheels, recorded when the default is packaged.

    python -m simulsa.train.build_inputs BASE BUNDLE      # BASE: the composed model, BUNDLE: its int8 bundle

writes into runtime/default/:

- `build_inputs.json`: the LM's transformers config (the fused builder reads its traits from it), the
  ear's settings, the prompt's token ids (the runtime never encodes text), the decode-only
  tokenizer's template (everything in tokenizer.json but the vocabulary, which the GGUF carries), and
  a reference: the bundle's transcript and top logits on the shipped example, which the build must
  reproduce;
- `vocab_kept.npy`: for a default exported with `--prune-vocab`, the original id of each kept token (the
  build reads those rows of the GGUF's table and head; every id recorded above is in the kept numbering);
- `token_pieces.npz`: for each Whisper token, the LM token ids of its text (the projector's table is
  the mean of their embeddings; computing it needs the LM's full tokenizer, which only torch-side
  tooling converts from the GGUF).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from simulsa.export.quantize import ear_quantize_of
from simulsa.export.torch_free_default import BUILD_INPUTS, TOKEN_PIECES, reference_record
from simulsa.export.vocabulary import KEPT_FILE
from simulsa.runtime import default_model as shipped
from simulsa.runtime.bundle import load_bundle
from simulsa.runtime.ear import sentence_end_ids
from simulsa.runtime.files import write_json_atomic


def tokenizer_template(tokenizer_json: dict[str, Any]) -> dict[str, Any]:
    """tokenizer.json without its vocabulary; added tokens as [id, special] (their text is the vocabulary's)."""
    template = {k: v for k, v in tokenizer_json.items() if k != "added_tokens"}
    template["model"] = {k: v for k, v in tokenizer_json["model"].items() if k not in ("vocab", "merges")}
    template["added_tokens"] = [[entry["id"], entry["special"]] for entry in tokenizer_json["added_tokens"]]
    # SentencePiece vocabularies write a word's leading space as ▁ where the GGUF keeps the space itself
    template["space_marker"] = "▁" if any("▁" in token for token in tokenizer_json["model"].get("vocab", {})) else None
    return template


def record_build_inputs(base: Path, bundle_path: Path, out: Path = shipped.DEFAULT_DIR) -> None:
    from simulsa.train.families import load_speech_lm

    model = load_speech_lm(base)
    bundle = load_bundle(bundle_path)
    texts = model.whisper_texts()
    pieces = [model.tokenizer(text, add_special_tokens=False).input_ids if text else [] for text in texts]
    offsets = np.cumsum([0] + [len(p) for p in pieces]).astype(np.int64)  # token w's pieces: ids[offsets[w]:offsets[w + 1]]
    ids = np.array([i for p in pieces for i in p], dtype=np.int32)
    tmp = out / (TOKEN_PIECES + ".tmp.npz")
    np.savez_compressed(tmp, offsets=offsets, ids=ids)
    tmp.rename(out / TOKEN_PIECES)
    audio = model.simulsa_config.audio
    inputs = {"lm_config": model.text_config.to_dict(),
              "ear": {"window_s": audio.window_s, "decoder_prompt": list(audio.decoder_prompt), "decoder_end": audio.decoder_end,
                      "sentence_end_ids": list(sentence_end_ids(texts))},
              "prompt": bundle.record.to_json()["prompt"],
              "tokenizer": tokenizer_template(json.loads(bundle.file("tokenizer").read_text(encoding="utf-8"))),
              "ear_quantize": ear_quantize_of(bundle.record.quantization.graphs),  # the build writes the ear the same way
              "reference": reference_record(bundle_path)}  # fmt: skip
    if bundle.record.vocabulary:  # a pruned default: the kept tokens travel beside the inputs
        shutil.copy(bundle_path / bundle.record.vocabulary.file, out / KEPT_FILE)
        inputs["vocabulary"] = {"chosen_by": bundle.record.vocabulary.chosen_by}
    else:
        (out / KEPT_FILE).unlink(missing_ok=True)
    write_json_atomic(out / BUILD_INPUTS, json.loads(json.dumps(inputs, default=str)))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Record what the torch-free default build needs (runtime/default/).")
    parser.add_argument("base", type=Path, help="the composed base model folder of the default")
    parser.add_argument("bundle", type=Path, help="the default's int8 bundle, built by the torch path")
    args = parser.parse_args()
    record_build_inputs(args.base, args.bundle)
    print(shipped.DEFAULT_DIR / BUILD_INPUTS, shipped.DEFAULT_DIR / TOKEN_PIECES)


if __name__ == "__main__":
    main()
