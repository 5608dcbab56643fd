"""A simulsa bundle as a SimulStream speech processor: IWSLT 2026 runs systems through `simulstream`.

    pip install ".[simulstream]"
    # processor.yaml
    type: simulsa.integrations.simulstream.SimulsaSpeechProcessor
    bundle: /path/to/bundle        # omit for the default model (built on first use)
    speech_chunk_size: 1.0         # seconds of audio per call, as simulstream sends them
    policy: hold                   # hold or local-agreement
    hold: 3
    simulstream_inference --speech-processor-config processor.yaml --wav-list-file wavs.txt --metrics-log-file log.jsonl
    simulstream_server --speech-processor-config processor.yaml ...   # the WebSocket server, the same processor

The processor feeds each chunk to a simulsa streaming session (the same session `stream`, `serve`, `eval` and the
SimulEval agent run: no second decoding loop) and emits the words it committed, which are never revised, so
`deleted_tokens` is always empty. One loaded model is shared by the processors of a process.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from simulstream.server.speech_processors import SAMPLE_RATE, SpeechProcessor
from simulstream.server.speech_processors.incremental_output import IncrementalOutput

from simulsa.runtime.session import CommittedWords, StreamOptions, Translator


class SimulsaSpeechProcessor(SpeechProcessor):
    translator: Translator | None = None  # load_model is a class method: one model for every processor

    @classmethod
    def load_model(cls, config: SimpleNamespace) -> None:
        if cls.translator is None:
            bundle = getattr(config, "bundle", None) or _built_default()
            cls.translator = Translator.from_bundle(bundle, threads=getattr(config, "threads", None))

    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__(config)
        if self.translator is None:
            self.load_model(config)
        self.options = StreamOptions(chunk_ms=float(config.speech_chunk_size) * 1000,
                                     policy=getattr(config, "policy", "hold"), hold=int(getattr(config, "hold", 3)))  # fmt: skip
        self.languages: dict[str, str] = {}  # as the client sets them; the bundle's direction is fixed by its training
        self.clear()

    def process_chunk(self, waveform: np.ndarray) -> IncrementalOutput:
        self.session.accept_audio(np.asarray(waveform, dtype=np.float32), SAMPLE_RATE)
        return self._output(self.words.add(self.session.step()))

    def end_of_stream(self) -> IncrementalOutput:
        words = self.words.add(self.session.finish()) + self.words.flush()
        return self._output(words)

    def _output(self, words: list[str]) -> IncrementalOutput:
        return IncrementalOutput(new_tokens=words, new_string=self.tokens_to_string(words), deleted_tokens=[],
                                 deleted_string="")  # fmt: skip

    def tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def set_source_language(self, language: str) -> None:
        self.languages["source"] = language

    def set_target_language(self, language: str) -> None:
        self.languages["target"] = language

    def clear(self) -> None:
        self.session = self.translator.session(self.options)
        self.words = CommittedWords()


def _built_default() -> str:
    from simulsa.runtime.default_model import default_bundle_path, missing_build_modules, not_built_error

    path = default_bundle_path()
    if not path.is_dir():
        raise not_built_error(missing_build_modules() or ["one `simulsa models build-default`"])
    return str(path)
