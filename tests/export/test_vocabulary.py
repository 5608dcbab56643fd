"""A pruned vocabulary (export --prune-vocab): the kept tokens renumbered, every id in the bundle in the new numbering."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from simulsa.export import vocabulary
from simulsa.export.pipeline import ExportError, ExportOptions, run_export
from simulsa.export.quantize import QuantizeOptions
from simulsa.export.vocabulary import KEPT_FILE, KeptRows, VocabMap, VocabularyError, choose_vocabulary, pruned_tokenizer
from simulsa.runtime.bundle import load_bundle
from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.train.families import load_speech_lm
from simulsa.train.tokenizer import build_byte_tokenizer

KEEP_TEXT = "the cat sat on the mat"


@pytest.fixture
def narrow_rules(monkeypatch):
    """The tiny models' byte-level pieces all look like short Latin pieces: keep only what the text uses."""
    monkeypatch.setattr(vocabulary, "SHORT_LATIN", vocabulary.re.compile(r"^$"))


def test_choose_vocabulary_keeps_the_texts_tokens_the_given_ids_and_bytes():
    vocab = {"<0x41>": 0, "a": 1, "b": 2, "▁ab": 3, "漢字": 4, "ab": 5, "Ab": 6, "▁Ab": 7, "x": 8, "▁": 9, "A": 10, "漢語": 11}
    merges = [["a", "b"], ["▁", "ab"], ["▁", "Ab"], ["A", "b"]]
    spec = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": merges},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True}}
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    kept = choose_vocabulary(tokenizer, ["ab"], keep_ids=[4])
    pieces = {tokenizer.id_to_token(int(i)) for i in kept}
    assert {"<0x41>", "漢字", "ab", "▁ab", "Ab", "▁Ab"} <= pieces  # the byte, the given id, the word in its variants
    assert "漢語" not in pieces  # used by nothing given: dropped
    assert kept.dtype == np.int32 and list(kept) == sorted(kept)
    with pytest.raises(VocabularyError, match="outside the tokenizer"):
        choose_vocabulary(tokenizer, [], keep_ids=[999])


def test_a_vocabulary_record_must_match_the_dims(tiny_bundles):
    from simulsa.runtime.bundle import BundleError, BundleRecord

    entry = json.loads((tiny_bundles["composite", "none"] / "bundle.json").read_text())
    vocab_size = entry["dims"]["vocab_size"]
    record = {"kept": vocab_size, "original_size": vocab_size + 9, "file": KEPT_FILE, "chosen_by": "a test"}
    assert BundleRecord.from_json({**entry, "vocabulary": record}).vocabulary.kept == vocab_size
    with pytest.raises(BundleError, match=f"vocabulary.kept is {vocab_size - 1} but dims.vocab_size is {vocab_size}"):
        BundleRecord.from_json({**entry, "vocabulary": {**record, "kept": vocab_size - 1}})


def test_vocab_map_renumbers_in_order_and_names_dropped_tokens():
    vocab_map = VocabMap(np.array([2, 5, 9]), 10)
    assert vocab_map.new_ids([9, 2], "x") == (2, 0) and vocab_map.size == 3
    with pytest.raises(VocabularyError, match="the prompt's prefix uses tokens \\[3\\]"):
        vocab_map.new_ids([3], "the prompt's prefix")
    with pytest.raises(VocabularyError, match="distinct ids"):
        VocabMap(np.array([5, 2]), 10)


class _RowSource:
    """A WeightSource that reads rows, as the GGUF does; counts what it reads."""

    def __init__(self, matrix):
        self.matrix, self.read = matrix, 0

    def has(self, name):
        return True

    def get(self, name):
        return self.matrix

    def rows(self, name, start, stop):
        self.read += stop - start
        return self.matrix[start:stop]


def test_kept_rows_reads_a_window_at_a_time_and_gathers_the_kept_rows():
    matrix = np.arange(100 * 3, dtype=np.float32).reshape(100, 3)
    kept = np.array([1, 7, 8, 40, 41, 99])
    source = _RowSource(matrix)
    pruned = KeptRows(source, kept, window=16)
    np.testing.assert_array_equal(pruned.rows("embed_tokens.weight", 1, 5), matrix[kept[1:5]])
    assert source.read <= 16 * 3  # only the windows that hold kept rows (7..8 and 40..41), never the whole matrix
    np.testing.assert_array_equal(pruned.get("lm_head.weight"), matrix[kept])
    np.testing.assert_array_equal(pruned.get("norm.weight"), matrix)  # not a per-token matrix: as it is


def test_pruned_tokenizer_decodes_each_kept_id_as_the_original_did():
    tokenizer = build_byte_tokenizer()
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    kept = np.unique([*tokenizer.backend_tokenizer.encode(KEEP_TEXT).ids, len(tokenizer) - 1])
    pruned = Tokenizer.from_str(json.dumps(pruned_tokenizer(spec, VocabMap(kept, len(tokenizer)))))
    assert pruned.get_vocab_size() == kept.size
    original = tokenizer.backend_tokenizer
    for new, old in enumerate(kept):
        assert pruned.decode([new], skip_special_tokens=False) == original.decode([int(old)], skip_special_tokens=False)


@pytest.mark.parametrize("family", ["whisper-tokens", "composite"])
def test_pruned_export_verifies_and_speaks_only_kept_tokens(tiny_model_dirs, tmp_path, narrow_rules, family, speech_like):
    words = tmp_path / "words.txt"
    words.write_text(KEEP_TEXT + "\n", encoding="utf-8")
    out = tmp_path / "bundle"
    result = run_export(ExportOptions(checkpoint=str(tiny_model_dirs[family]), out=out, quantize=QuantizeOptions("int8"),
                                      prune_vocab=(words,)), on_step=lambda step: None)  # fmt: skip
    fp32 = result.reports[0]
    assert fp32.passed and all(c.torch_tokens == c.onnx_tokens and c.top1_match == 1.0 for c in fp32.cases)
    bundle = load_bundle(out)
    model = load_speech_lm(tiny_model_dirs[family])
    original = model.input_embeddings().weight.shape[0]
    kept = np.load(out / KEPT_FILE)
    record = bundle.record.vocabulary
    assert record is not None and record.kept == bundle.dims.vocab_size == kept.size < original and record.original_size == original
    assert np.load(out / "embed_tokens.npy").shape[0] == kept.size
    # every id of the prompt names the token it named before pruning
    prompt = bundle.record.prompt
    assert [int(kept[i]) for i in prompt.suffix_ids] == model.tokenize_row("", None, None, with_end=False).suffix_ids
    onnx = OnnxSpeechModel(bundle)
    embeds = np.concatenate([onnx.embed_tokens(list(prompt.prefix_ids)), onnx.encode_audio(speech_like),
                             onnx.embed_tokens(list(prompt.suffix_ids))])  # fmt: skip
    tokens = onnx.greedy(embeds, 8, {prompt.end_id})
    assert all(0 <= t < kept.size for t in tokens)
    tokenizer = Tokenizer.from_file(str(bundle.file("tokenizer")))
    said = tokenizer.decode([t for t in tokens if t != prompt.end_id])
    assert said and set(said) <= set(KEEP_TEXT) | set(tokenizer.decode([*prompt.prefix_ids, *prompt.suffix_ids]))


def test_prune_vocab_refuses_the_torchscript_decoder_and_a_missing_file(tiny_model_dirs, tmp_path):
    from simulsa.export.graphs import DecoderGraphOptions

    words = tmp_path / "words.txt"
    words.write_text("cat\n", encoding="utf-8")
    with pytest.raises(Exception, match="--prune-vocab needs the fused decoder"):
        DecoderGraphOptions("torchscript", kept_tokens=(1, 2))
    options = ExportOptions(checkpoint=str(tiny_model_dirs["composite"]), out=tmp_path / "b",
                            decoder=DecoderGraphOptions("torchscript"), prune_vocab=(words,))  # fmt: skip
    with pytest.raises(ExportError, match="--prune-vocab needs the fused decoder"):
        run_export(options, on_step=lambda step: None)
    assert not (tmp_path / "b").exists()
    with pytest.raises(ExportError, match="nope.txt' is not a file"):
        ExportOptions(checkpoint=str(tiny_model_dirs["composite"]), out=tmp_path / "c", prune_vocab=(tmp_path / "nope.txt",))
