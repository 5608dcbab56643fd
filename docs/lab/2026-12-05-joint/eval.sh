#!/usr/bin/env bash
# One bundle on the three hand-referenced sets, offline and 1000 ms hold 3 (scratch, 2026-12-05, session 17):
# everyday 1-80 x 2 voices, the 7 real recordings, the 150 held-out LibreOffice-help pairs (flite:slt).
# usage: eval.sh NAME BUNDLE   (writes /tmp/proto/ev_{everyday,real,human}_NAME)
set -euo pipefail
for set in everyday:test80 real:real human:human; do
  name=${set%%:*}; manifest=/tmp/evalsets/${set##*:}.jsonl
  [ -f /tmp/proto/ev_${name}_$1/report.json ] || simulsa eval --manifest $manifest --bundle "$2" --chunk-ms inf,1000 \
      --hold 3 --policy hold --out /tmp/proto/ev_${name}_$1 --force
done
