"""The prompt layout shared by training, export and the runtime.

A sequence is `[prefix][audio embeddings][suffix][target][end]`; prefix and suffix are
text with `{src}` / `{tgt}` placeholders filled with language names.
"""

from __future__ import annotations

import dataclasses

AUDIO_PLACEHOLDER = "<|simulsa_audio|>"  # marks where audio goes when a prompt is rendered from a chat template

# Language names used to fill prompt placeholders; unknown codes are used verbatim.
LANGUAGE_NAMES = {
    "ar": "Arabic", "ca": "Catalan", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "it": "Italian", "ja": "Japanese", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "zh": "Chinese",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
    prefix: str  # text before the audio embeddings
    suffix: str  # text between the audio embeddings and the translation
    end: str  # token text that closes a translation (also ends a partial one: "wait for more audio")
    src_lang: str = "en"  # default source language code, when a manifest row names none
    tgt_lang: str = "es"  # default target language code

    def render(self, src_lang: str | None = None, tgt_lang: str | None = None) -> tuple[str, str]:
        """(prefix, suffix) with `{src}` and `{tgt}` replaced by language names."""
        names = {
            "src": LANGUAGE_NAMES.get(src_lang or self.src_lang, src_lang or self.src_lang),
            "tgt": LANGUAGE_NAMES.get(tgt_lang or self.tgt_lang, tgt_lang or self.tgt_lang),
        }
        return self.prefix.format(**names), self.suffix.format(**names)

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, str]) -> PromptTemplate:
        return cls(**record)


PLAIN_PROMPT = PromptTemplate(prefix="Speech: ", suffix="\nTranslate the {src} speech into {tgt}:\n", end="")
CHATML_PROMPT = PromptTemplate(
    prefix="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: <|audio_bos|>",
    suffix="<|audio_eos|>\nTranslate the {src} speech into {tgt}.<|im_end|>\n<|im_start|>assistant\n",
    end="<|im_end|>",
)
