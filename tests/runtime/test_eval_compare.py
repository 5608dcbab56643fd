"""The side-by-side table of eval reports: shared configurations only, offline last, one line-error when none."""

from __future__ import annotations

import json
import math

import pytest

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.eval_compare import compare_table, read_report


def _config(chunk_ms: float, hold: int, bleu: float) -> dict:
    return {"policy": "hold", "chunk_ms": chunk_ms, "hold": hold, "BLEU": bleu, "LAAL": 1234.4, "erasure": 0.05}


def _report(configs: dict) -> dict:
    return {"rows": 10, "skipped": 1, "configs": configs}


def test_table_has_the_shared_configurations_in_latency_order():
    sft = _report({"offline": _config(math.inf, 0, 20.0), "hold-b3-1000ms": _config(1000, 3, 10.0),
                   "hold-b0-500ms": _config(500, 0, 5.0), "hold-b5-2000ms": _config(2000, 5, 1.0)})  # fmt: skip
    simulsa = _report({"offline": _config(math.inf, 0, 21.0), "hold-b3-1000ms": _config(1000, 3, 12.5),
                       "hold-b0-500ms": _config(500, 0, 7.0)})  # fmt: skip
    lines = compare_table({"SFT": sft, "SimulSA": simulsa}).splitlines()
    assert lines[0] == ("| chunk | hold | SFT BLEU | SFT LAAL | SFT erasure | SimulSA BLEU | SimulSA LAAL | SimulSA erasure |")
    assert lines[2] == "| 500 ms | 0 | 5.00 | 1234 | 0.050 | 7.00 | 1234 | 0.050 |"
    assert lines[3].startswith("| 1000 ms | 3 | 10.00 ") and lines[3].endswith("| 12.50 | 1234 | 0.050 |")
    assert lines[4].startswith("| offline | – | 20.00 ")
    assert not any("2000 ms" in line for line in lines)  # only in one report
    assert "{'SFT': 9, 'SimulSA': 9}" in lines[-1]


def test_no_shared_configuration_and_missing_report_are_clear_errors(tmp_path):
    with pytest.raises(SimulsaError, match="share no configuration"):
        compare_table({"a": _report({"x": _config(500, 0, 1)}), "b": _report({"y": _config(500, 3, 1)})})
    with pytest.raises(SimulsaError, match="holds no report.json"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps(_report({"offline": _config(math.inf, 0, 3.0)})))
    assert read_report(tmp_path)["configs"]["offline"]["chunk_ms"] == math.inf
