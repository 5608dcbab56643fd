import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="resident memory is read from /proc (Linux)")
def test_twenty_minutes_keep_memory_flat_and_split_into_segments(tiny_bundles):
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "tests.runtime.long_stream", str(tiny_bundles["composite", "int8"]), "20"],
                            capture_output=True, text=True, check=True, cwd=root)  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rss = report["rss_mb"]
    assert len(rss) == 20
    assert rss[19] < 1.05 * rss[1], rss  # growth under 5% between minute 2 and minute 20
    assert report["segments"] >= 60  # pauses every few seconds end segments
    assert report["cache_positions"] < 200  # the cache was cut back to the prompt at segment ends
