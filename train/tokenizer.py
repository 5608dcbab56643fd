"""A byte-level tokenizer built from nothing, for tiny test models (no download)."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

# Special tokens of the tiny tokenizer: an end-of-text token and the ChatML/Qwen2-Audio markers.
TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>")


def build_byte_tokenizer():
    """A 256-symbol byte-level BPE with no merges plus TINY_SPECIAL_TOKENS, as a transformers tokenizer."""
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(TINY_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
