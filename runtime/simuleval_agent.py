"""Run a simulsa bundle as a SimulEval agent (speech in, text out).

    simuleval --agent-class simulsa.runtime.simuleval_agent.SimulsaAgent --bundle BUNDLE \\
        --source src.txt --target tgt.txt --source-segment-size 500 --output out \\
        [--simulsa-policy hold --simulsa-hold 3 --simulsa-chunk-ms 500]

`src.txt` lists wav files, `tgt.txt` the references. Needs `pip install --no-deps simuleval==1.1.4`.
"""

from __future__ import annotations

from argparse import ArgumentParser

import numpy as np
from simuleval.agents import SpeechToTextAgent
from simuleval.agents.actions import ReadAction, WriteAction

from simulsa.runtime.session import CommittedWords, StreamOptions, Translator


class SimulsaAgent(SpeechToTextAgent):
    """Each policy call feeds the new source samples to a streaming session and writes the words it committed."""

    def __init__(self, args) -> None:
        # the base class calls reset() while initialising, which needs the translator
        self.translator = Translator.from_bundle(args.bundle)
        self.options = StreamOptions(chunk_ms=args.simulsa_chunk_ms, policy=args.simulsa_policy, hold=args.simulsa_hold)
        super().__init__(args)

    @staticmethod
    def add_args(parser: ArgumentParser) -> None:
        parser.add_argument("--bundle", required=True, help="simulsa bundle folder")
        parser.add_argument("--simulsa-policy", default="hold", help="hold or local-agreement")
        parser.add_argument("--simulsa-hold", type=int, default=3, help="tokens held back by the hold policy")
        parser.add_argument("--simulsa-chunk-ms", type=float, default=500, help="audio per decoding step")

    def _new_session(self) -> None:
        self.session = self.translator.session(self.options)
        self.fed = 0  # source samples already given to the session
        self.words = CommittedWords()

    def reset(self) -> None:
        super().reset()
        self._new_session()

    def policy(self, states=None):
        states = states or self.states
        new = states.source[self.fed :]
        self.fed = len(states.source)
        if new:
            self.session.accept_audio(np.asarray(new, dtype=np.float32), states.source_sample_rate or 16000)
        events = self.session.finish() if states.source_finished else self.session.step()
        words = self.words.add(events)
        if states.source_finished:
            return WriteAction(" ".join(words + self.words.flush()), finished=True)
        if not words:
            return ReadAction()
        return WriteAction(" ".join(words), finished=False)
