"""Our latency scorers against hand-computed cases and the `simuleval` package on the same delays."""

from __future__ import annotations

import types

import numpy as np
import pytest

from simulsa.runtime.metrics import (
    average_lagging,
    average_proportion,
    differentiable_average_lagging,
    length_adaptive_average_lagging,
    normalized_erasure,
    units,
)


def test_hand_computed_cases():
    # |X| = 3000 ms, 3 reference words, ideal pace 1000 ms/word; words emitted at 1000, 2000, 3000
    delays = [1000.0, 2000.0, 3000.0]
    assert average_lagging(delays, 3000, 3) == pytest.approx((1000 + 1000 + 1000) / 3)
    assert average_proportion(delays, 3000) == pytest.approx(6000 / 9000)
    assert differentiable_average_lagging(delays, 3000) == pytest.approx(1000)
    # waiting for the whole source: AL = the source length
    assert average_lagging([3000.0, 3000.0, 3000.0], 3000, 3) == pytest.approx(3000)
    # LAAL uses the longer hypothesis: 6 words emitted against 3 reference words
    six = [500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0]
    assert length_adaptive_average_lagging(six, 3000, 3) == pytest.approx(500)  # pace 3000 / 6: each word 500 ms late
    assert average_lagging(six, 3000, 3) < length_adaptive_average_lagging(six, 3000, 3)
    # DAL pushes simultaneous emissions apart by |X|/|hyp|
    assert differentiable_average_lagging([3000.0, 3000.0], 3000) == pytest.approx(((3000 - 0) + (4500 - 1500)) / 2)
    assert average_lagging([4000.0, 4000.0], 3000, 2) == 4000.0  # first word after the source: AL = d_1


def test_erasure_and_units():
    displays = [["hola"], ["hola", "mundo"], ["hola", "gente"], ["hola", "gente", "feliz"]]
    assert normalized_erasure(displays) == pytest.approx(1 / 3)  # 'mundo' erased once, final length 3
    assert normalized_erasure([["a"], ["a", "b"]]) == 0.0
    assert units("hola  mundo ", "es") == ["hola", "mundo"]
    assert units("你好 世界", "zh") == ["你", "好", "世", "界"]


@pytest.mark.parametrize("seed", range(20))
def test_agreement_with_simuleval(seed):
    scorers = pytest.importorskip("simuleval.evaluator.scorers.latency_scorer",
                                  reason="simuleval is the reference: pip install --no-deps simuleval==1.1.4")  # fmt: skip
    rng = np.random.default_rng(seed)
    source_ms = float(rng.uniform(1000, 20000))
    n_hyp, n_ref = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    delays = np.sort(rng.uniform(0, source_ms * 1.1, size=n_hyp)).tolist()
    if seed % 4 == 0:
        delays[-1] = source_ms  # the usual case: the last words come when the source ends
    instance = types.SimpleNamespace(delays=delays, elapsed=delays, source_length=source_ms, reference_length=n_ref,
                                     reference=" ".join(["w"] * n_ref))  # fmt: skip
    assert average_lagging(delays, source_ms, n_ref) == pytest.approx(scorers.ALScorer().compute(instance))
    assert length_adaptive_average_lagging(delays, source_ms, n_ref) == pytest.approx(scorers.LAALScorer().compute(instance))
    assert average_proportion(delays, source_ms) == pytest.approx(scorers.APScorer(use_ref_len=False).compute(instance))
    assert differentiable_average_lagging(delays, source_ms) == pytest.approx(scorers.DALScorer().compute(instance))
