"""Token ids -> text as they are committed, never emitting half a character."""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a byte-level decoder shows for an incomplete UTF-8 sequence


class IncrementalText:
    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.committed_text = ""

    def _decode(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return text.rstrip(REPLACEMENT)  # hold back a character whose bytes are not all there yet

    def commit(self, committed_ids: list[int]) -> str:
        """Update with all committed ids of the segment; return the newly committed text."""
        text = self._decode(committed_ids)
        delta = text[len(self.committed_text) :] if text.startswith(self.committed_text) else ""
        self.committed_text = self.committed_text + delta
        return delta

    def tentative(self, committed_ids: list[int], proposed_ids: list[int]) -> str:
        full = self._decode(list(committed_ids) + list(proposed_ids))
        return full[len(self.committed_text) :] if full.startswith(self.committed_text) else full
