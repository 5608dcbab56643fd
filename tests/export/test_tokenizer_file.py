"""The bundle's tokenizer.json: BPE merges dropped (the runtime only decodes), every id decoding as before."""

from __future__ import annotations

import json
from types import SimpleNamespace

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from simulsa.export.graphs import TOKENIZER_FILE, write_tokenizer

TEXT = ["Los niños estuvieron jugando en el jardín.", "The children were playing in the garden."] * 20


def _trained_bpe():
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=400, special_tokens=["<eos>"],
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


def test_decode_only_tokenizer_drops_merges_and_decodes_every_id_the_same(tmp_path):
    tokenizer = _trained_bpe()
    full, lean = tmp_path / "full", tmp_path / "lean"
    full.mkdir(), lean.mkdir()
    assert write_tokenizer(SimpleNamespace(tokenizer=tokenizer), full, decode_only=False) is False
    assert write_tokenizer(SimpleNamespace(tokenizer=tokenizer), lean) is True
    assert json.loads((full / TOKENIZER_FILE).read_text())["model"]["merges"]  # the trainer learned merges
    assert json.loads((lean / TOKENIZER_FILE).read_text())["model"]["merges"] == []
    before, after = Tokenizer.from_file(str(full / TOKENIZER_FILE)), Tokenizer.from_file(str(lean / TOKENIZER_FILE))
    assert after.get_vocab_size() == before.get_vocab_size() > 256
    every_id = [[i] for i in range(before.get_vocab_size())]
    assert after.decode_batch(every_id) == before.decode_batch(every_id)
    sentence = before.encode(TEXT[0]).ids  # what a model emits: merged tokens
    assert len(sentence) < len(TEXT[0]) and after.decode(sentence) == before.decode(sentence) == TEXT[0]
    assert (lean / TOKENIZER_FILE).stat().st_size < (full / TOKENIZER_FILE).stat().st_size
