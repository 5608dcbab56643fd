#!/usr/bin/env bash
# Issue 20's long-form sweep of the default (scratch, 2026-12-03): both streams at 500/1000/2000 ms, hold 3 and 5,
# one eval at a time (a 2-core machine: side-by-side runs make the computation-aware numbers pessimistic).
# Needs: SIMULSA_CACHE with the default built, /tmp/evalsets from `simulsa corpus-eval`, make_streams.py run.
# usage: sweep.sh [OUT=/tmp/ev_long]   then: python docs/lab/2026-12-03-longform/plot.py OUT
set -euo pipefail
OUT=${1:-/tmp/ev_long}
SETS=/tmp/evalsets
mkdir -p "$OUT"
stamp() { echo "== $(date +%H:%M:%S) $*"; }
for hold in 5 3; do
  for stream in real everyday_long; do
    name=${stream}_h$hold
    [ -f "$OUT/$name/report.json" ] && continue
    stamp "$name"
    simulsa eval --longform --manifest $SETS/$stream.jsonl --chunk-ms 500,1000,2000 --hold $hold --policy hold \
                 --out "$OUT/$name" --force
  done
done
stamp done
