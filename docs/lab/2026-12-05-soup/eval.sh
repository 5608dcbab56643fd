#!/usr/bin/env bash
# Score one bundle on the hand-referenced sets, the decisive ones first (scratch, 2026-12-05, session 20):
# real speech offline + 1000 ms hold 3, everyday offline + 1000 ms hold 3, then 500 ms hold 5 on both.
# usage: eval.sh NAME BUNDLE   (writes /tmp/proto/ev_{real,everyday}_NAME_h{3,5}; needs /tmp/evalsets)
set -euo pipefail
for cfg in "real:real inf,1000 3" "everyday:test80 inf,1000 3" "real:real 500 5" "everyday:test80 500 5"; do
  read -r set chunks hold <<< "$cfg"
  name=${set%%:*}; manifest=/tmp/evalsets/${set##*:}.jsonl; out=/tmp/proto/ev_${name}_$1_h$hold
  [ -f $out/report.json ] || simulsa eval --manifest $manifest --bundle "$2" --chunk-ms $chunks \
      --hold $hold --policy hold --out $out --force 2>&1 | grep -v "it/s\|s/it" || true
  echo "== $name hold $hold"; cat $out/report.md
done
