"""A bundle that carries only the tokens its language pair uses (`simulsa export --prune-vocab FILE`).

Gemma 3's 262,144-token vocabulary is two thirds of the 270M model: the embedding table and the tied output head
(262k x 640 each). An English->Spanish translator writes Spanish (and copies a few English names), so a bundle that
keeps ~60k tokens loses nothing it would say, and its head and table shrink four-fold; the head is also most of a
decode step's arithmetic.

Pruning is a renumbering: the kept tokens get the ids 0..K-1 in their original order (`kept[new] = old`), and
every id the bundle holds (prompt, end, eos, pad, the decode-only tokenizer, the decoder's logits, the embedding
table's rows) is in the new numbering, so the runtime reads a pruned bundle as any other. `vocab_kept.npy` in the
bundle keeps the map (docs/bundle.md).

Which tokens: those the given text uses (each line tokenized whole, and each word of it alone, with and without a
leading space and a capital, as words come after "¿", quotes or a line start), the tokens the prompt needs, the
byte-fallback tokens (so any text can still be spelled out), and the short pieces of Latin script, digits and
punctuation (line breaks included: the runtime stops on them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simulsa.runtime.errors import SimulsaError

KEPT_FILE = "vocab_kept.npy"  # (K,) int32: the original id of each kept token, in the bundle's numbering
VOCAB_MATRICES = ("embed_tokens.weight", "lm_head.weight")  # the weights with a row per token
BYTE_TOKEN = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
# up to three characters of Latin script, digits, punctuation, spaces or line breaks (▁ is SentencePiece's space)
SHORT_LATIN = re.compile(r"^[\s▁\x20-\x7e\u00a1-\u024f\u2010-\u2027\u2030-\u205e]{1,3}$")
ENCODE_BATCH = 50_000


class VocabularyError(SimulsaError):
    """A vocabulary to keep that cannot be read or used."""


def word_variants(word: str) -> tuple[str, ...]:
    """The ways a word is tokenized in running text: after a space or not, lower-case or capitalised."""
    capital = word[:1].upper() + word[1:]
    return (word, " " + word, capital, " " + capital)


def text_pieces(lines: Iterable[str]) -> Iterator[str]:
    """Each line, then each of its words in every variant."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        yield line
        for word in line.split():
            yield from word_variants(word)


def read_keep_sources(paths: Iterable[Path]) -> tuple[list[int], list[str]]:
    """`.npy` files hold token ids to keep; any other file is UTF-8 text whose tokens are kept."""
    ids: list[int] = []
    lines: list[str] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise VocabularyError(f"--prune-vocab {str(path)!r} is not a file; give a text file or a .npy of token ids")
        if path.suffix == ".npy":
            ids += [int(i) for i in np.load(path).reshape(-1)]
            continue
        try:
            lines += path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise VocabularyError(f"--prune-vocab {str(path)!r} is not UTF-8 text; convert it (iconv -t utf-8)") from None
    return ids, lines


def choose_vocabulary(tokenizer: Any, lines: Iterable[str], keep_ids: Iterable[int] = ()) -> np.ndarray:
    """The sorted original ids to keep (int32): what `lines` use, `keep_ids`, byte-fallback and short Latin pieces.

    `tokenizer` is a `tokenizers.Tokenizer` that can encode (the model's full tokenizer.json)."""
    vocab: Mapping[str, int] = tokenizer.get_vocab()
    size = tokenizer.get_vocab_size()
    kept = {i for piece, i in vocab.items() if BYTE_TOKEN.match(piece) or SHORT_LATIN.match(piece)}
    kept.update(int(i) for i in keep_ids)
    batch: list[str] = []
    for piece in text_pieces(lines):
        batch.append(piece)
        if len(batch) == ENCODE_BATCH:
            kept.update(_token_ids(tokenizer, batch))
            batch = []
    kept.update(_token_ids(tokenizer, batch))
    outside = sorted(i for i in kept if not 0 <= i < size)
    if outside:
        raise VocabularyError(f"token ids {outside[:5]} are outside the tokenizer's {size} tokens; "
                              "give ids of this model's vocabulary")  # fmt: skip
    return np.array(sorted(kept), dtype=np.int32)


def _token_ids(tokenizer: Any, texts: list[str]) -> set[int]:
    return {i for encoding in tokenizer.encode_batch(texts, add_special_tokens=False) for i in encoding.ids}


class VocabMap:
    """Original ids <-> the pruned bundle's ids (the kept tokens renumbered in their original order)."""

    def __init__(self, kept: np.ndarray, original_size: int) -> None:
        self.kept = np.asarray(kept, dtype=np.int32)  # (K,) new id -> original id
        if self.kept.size == 0 or np.any(np.diff(self.kept) <= 0) or self.kept[-1] >= original_size or self.kept[0] < 0:
            raise VocabularyError(f"the kept ids must be distinct ids of the {original_size}-token vocabulary")
        self.original_size = original_size
        self.index = np.full(original_size, -1, dtype=np.int64)  # original id -> new id, -1 where dropped
        self.index[self.kept] = np.arange(self.kept.size)

    @property
    def size(self) -> int:
        return int(self.kept.size)

    def new_ids(self, ids: Iterable[int], what: str) -> tuple[int, ...]:
        """The new ids of tokens that must be kept (`what` names them in the error)."""
        ids = [int(i) for i in ids]
        dropped = [i for i in ids if self.index[i] < 0]
        if dropped:
            raise VocabularyError(f"{what} uses tokens {dropped[:5]} that the pruned vocabulary drops; keep them")
        return tuple(int(self.index[i]) for i in ids)

    def new_id(self, token: int | None, what: str) -> int | None:
        return None if token is None else self.new_ids([token], what)[0]


class KeptRows:
    """A WeightSource (export/fused_decoder.py) whose vocabulary-sized matrices hold only the kept rows, in order.

    A source that reads rows (the GGUF, a LoRA merged over it) is read a window of original rows at a time, so the
    float32 matrix is never whole; any other is gathered once."""

    def __init__(self, base: Any, kept: np.ndarray, window: int = 16384) -> None:
        self.base, self.kept, self.window = base, np.asarray(kept), window
        self._gathered: dict[str, np.ndarray] = {}

    def has(self, name: str) -> bool:
        return self.base.has(name)

    def get(self, name: str) -> np.ndarray:
        if name not in VOCAB_MATRICES:
            return self.base.get(name)
        return self.rows(name, 0, self.kept.size)

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of the pruned matrix: (stop - start, H) float32."""
        if name not in VOCAB_MATRICES:
            return self.base.get(name)[start:stop]
        ids = self.kept[start:stop]
        read_rows = getattr(self.base, "rows", None)
        if read_rows is None:
            if name not in self._gathered:
                self._gathered[name] = self.base.get(name)[self.kept]
            return self._gathered[name][start:stop]
        out = None
        for low in range(int(ids[0]), int(ids[-1]) + 1, self.window):
            high = min(int(ids[-1]) + 1, low + self.window)
            inside = np.flatnonzero((ids >= low) & (ids < high))
            if inside.size == 0:
                continue
            block = read_rows(name, low, high)  # (high - low, H)
            out = np.empty((ids.size, block.shape[1]), np.float32) if out is None else out
            out[inside] = block[ids[inside] - low]
        return out


def pruned_tokenizer(spec: Mapping[str, Any], vocab_map: VocabMap) -> dict[str, Any]:
    """A decode-only tokenizer.json in the new numbering: the kept pieces renumbered, merges and the
    post-processor (encoding-only, and it names old ids) dropped, added tokens kept where their id is kept."""
    model = dict(spec["model"])
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise VocabularyError(f"a {model.get('type')} tokenizer cannot be pruned; export without --prune-vocab")
    model["vocab"] = {piece: int(vocab_map.index[i]) for piece, i in vocab.items() if vocab_map.index[i] >= 0}
    if model.get("type") == "BPE":
        model["merges"] = []
    added = [{**entry, "id": int(vocab_map.index[entry["id"]])} for entry in spec.get("added_tokens", [])
             if entry["id"] < vocab_map.original_size and vocab_map.index[entry["id"]] >= 0]  # fmt: skip
    return {**spec, "model": model, "added_tokens": added, "post_processor": None}


def prune_record(record: Any, vocab_map: VocabMap, folder: Path, chosen_by: str) -> Any:
    """An fp32 bundle's files and record in the pruned numbering: `vocab_kept.npy` written, tokenizer.json rewritten,
    the prompt's ids renumbered (the decoder graph and the embedding table were written pruned)."""
    import dataclasses
    import json

    from simulsa.runtime.bundle_records import TokenizerRecord, VocabularyRecord

    np.save(folder / KEPT_FILE, vocab_map.kept)
    tokenizer_file = folder / record.files.tokenizer
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    tokenizer_file.write_text(json.dumps(pruned_tokenizer(spec, vocab_map), ensure_ascii=False), encoding="utf-8")
    prompt = record.prompt
    prompt = dataclasses.replace(prompt, prefix_ids=vocab_map.new_ids(prompt.prefix_ids, "the prompt's prefix"),
                                 suffix_ids=vocab_map.new_ids(prompt.suffix_ids, "the prompt's suffix"),
                                 end_id=vocab_map.new_id(prompt.end_id, "the end token"),
                                 eos_id=vocab_map.new_id(prompt.eos_id, "the eos token"),
                                 pad_id=vocab_map.new_id(prompt.pad_id, "the pad token"))  # fmt: skip
    vocabulary = VocabularyRecord(kept=vocab_map.size, original_size=vocab_map.original_size, file=KEPT_FILE,
                                  chosen_by=chosen_by)  # fmt: skip
    return dataclasses.replace(record, dims=dataclasses.replace(record.dims, vocab_size=vocab_map.size), prompt=prompt,
                               tokenizer=TokenizerRecord(decode_only=True), vocabulary=vocabulary)  # fmt: skip


def vocabulary_for(tokenizer: Any, sources: Iterable[Path], prompt: Any, original_size: int) -> VocabMap:
    """The kept tokens for a model: what `sources` give (export/vocabulary.py's rules) plus the prompt's tokens."""
    ids, lines = read_keep_sources(sources)
    must = [*ids, *prompt.prefix_ids, *prompt.suffix_ids, *(i for i in (prompt.end_id, prompt.eos_id, prompt.pad_id)
                                                             if i is not None)]  # fmt: skip
    return VocabMap(choose_vocabulary(tokenizer, lines, must), original_size)
