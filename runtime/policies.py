"""Read/write policies as pure functions of the decoding state (SimulEval's agent actions).

Each step the model proposes a hypothesis continuing the committed text; a policy decides how
many of its tokens to commit (write) — zero means read more audio. Committed text is never revised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class PolicyState:
    hypothesis: tuple[int, ...]  # tokens proposed this step after the committed text (end token removed)
    previous: tuple[int, ...] | None  # last step's proposal after the same committed text (None: first step)
    source_finished: bool  # no more audio will come for this segment
    hold: int = 3  # `hold` policy: tokens held back while the source goes on (paper's b)


def hold_policy(state: PolicyState) -> int:
    """The paper's rollback: commit all but the last `hold` tokens, everything once the source is finished."""
    if state.source_finished:
        return len(state.hypothesis)
    return max(0, len(state.hypothesis) - state.hold)


def local_agreement_policy(state: PolicyState) -> int:
    """LocalAgreement-2: commit the longest common prefix of the last two hypotheses."""
    if state.source_finished:
        return len(state.hypothesis)
    if state.previous is None:
        return 0
    agreed = 0
    for ours, theirs in zip(state.hypothesis, state.previous):
        if ours != theirs:
            break
        agreed += 1
    return agreed


POLICIES: dict[str, Callable[[PolicyState], int]] = {
    "hold": hold_policy,
    "local-agreement": local_agreement_policy,
}
