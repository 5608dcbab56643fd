#!/usr/bin/env bash
# Open tail A/B on the shipped default (2026-12-03): everyday sentences 1-40 x 2 unseen voices (the first 80 rows of
# test80.jsonl, hand references), 500 ms, hold 0 and 3: where a transcript that looks finished ("Bye, have a good
# day." from 0.6 s) can make the LM say too much. Nothing retrained; only `--open-tail` differs.
set -euo pipefail
for mode in open-tail no-open-tail; do
  [ -f /tmp/ot_$mode/report.json ] && continue
  echo "== $(date +%H:%M:%S) --$mode"
  simulsa eval --manifest /tmp/evalsets/test80.jsonl --limit 80 --chunk-ms 500 --hold 0,3 --policy hold --$mode \
      --out /tmp/ot_$mode --force
done
python -m simulsa.runtime.eval_compare /tmp/ot_no-open-tail /tmp/ot_open-tail --names "as before,open tail"
