"""The hearing-vs-translating probe: greedy decoding from an embedding slot, scores, errors."""

from __future__ import annotations

import json

import pytest
import torch

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.manifest import read_manifest
from simulsa.train.families import load_speech_lm
from simulsa.train.probe import ProbeOptions, _scores, _text_slot, greedy_from_slot, run_probe
from tests.conftest import FAMILY_NAMES


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_greedy_from_slot_matches_a_step_by_step_argmax(family, tiny_model_dirs, toy_manifest):
    model = load_speech_lm(str(tiny_model_dirs[family])).eval()
    row = read_manifest(toy_manifest)[0]
    slot = _text_slot(model, row)  # (n, H): the source's own token embeddings
    assert torch.equal(slot, model.input_embeddings()(torch.tensor(model.encode_text(" " + row.source))))
    tokens = model.tokenize_row("", row.src_lang, row.tgt_lang, with_end=False)
    embed = model.input_embeddings()
    sequence = torch.cat([embed(torch.tensor(tokens.prefix_ids)), slot, embed(torch.tensor(tokens.suffix_ids))])
    chosen = []
    with torch.no_grad():
        for _ in range(6):  # greedy without a KV cache: the reference the generate() path must equal
            logits = model.language_logits(sequence[None], torch.ones(1, sequence.shape[0], dtype=torch.long))
            chosen.append(int(logits[0, -1].argmax()))
            if chosen[-1] == model.end_token_id():
                break
            sequence = torch.cat([sequence, embed(torch.tensor(chosen[-1:]))])
    expected = model.tokenizer.decode([i for i in chosen if i != model.end_token_id()], skip_special_tokens=True).strip()
    assert greedy_from_slot(model, slot, row, max_new_tokens=6) == expected


def test_probe_scores_speech_and_text_for_every_row(tiny_model_dirs, toy_manifest):
    result = run_probe(ProbeOptions(model=str(tiny_model_dirs["composite"]), manifest=toy_manifest, limit=3, max_new_tokens=4))
    rows = read_manifest(toy_manifest)[:3]
    assert [r.source for r in result.rows] == [r.source for r in rows]
    assert [r.reference for r in result.rows] == [r.target for r in rows]
    assert set(result.scores) == {"speech", "text"} and all(set(s) == {"BLEU", "chrF"} for s in result.scores.values())
    assert _scores(["el perro come la carne roja"], ["el perro come la carne roja"])["BLEU"] == pytest.approx(100)
    assert _scores(["la casa"], ["el perro come"])["chrF"] < 20


def test_probe_refuses_rows_without_a_transcript_and_bad_limits(tmp_path, toy_manifest):
    rows = [json.loads(line) for line in toy_manifest.read_text().splitlines()][:2]
    del rows[1]["source"]
    manifest = toy_manifest.parent / "no_source.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SimulsaError, match=r"row 'toy0001' has no 'source'"):
        run_probe(ProbeOptions(model="unused", manifest=manifest), load=lambda _: pytest.fail("loaded before checking rows"))
    with pytest.raises(SimulsaError, match="--limit 0 must be positive"):
        ProbeOptions(model="m", manifest=manifest, limit=0)
