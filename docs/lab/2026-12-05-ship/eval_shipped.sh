#!/usr/bin/env bash
# The shipped default as users get it (the torch-free first-use build) on the three hand-referenced sets:
# offline, 1000 ms hold 3, 500 ms hold 5 (the configurations). (scratch, 2026-12-05, session 19)
# usage: eval_shipped.sh NAME [BUNDLE]   (default: the built default; writes /tmp/proto/ev_{everyday,real,human}_NAME)
set -euo pipefail
bundle=${2:-$(python -c "from simulsa.runtime.default_model import default_bundle_path as p; print(p())")}
for set in everyday:test80 real:real human:human; do
  name=${set%%:*}; manifest=/tmp/evalsets/${set##*:}.jsonl
  for cfg in "inf,1000 3" "500 5"; do
    chunks=${cfg% *}; hold=${cfg#* }; out=/tmp/proto/ev_${name}_$1_h$hold
    [ -f $out/report.json ] || simulsa eval --manifest $manifest --bundle "$bundle" --chunk-ms $chunks \
        --hold $hold --policy hold --out $out --force
  done
done
