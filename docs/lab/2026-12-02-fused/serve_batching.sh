#!/usr/bin/env bash
# Streams served in real time with and without cross-session batching (same machine, one after the other).
AUDIO=runtime/examples/en_example.wav
for args in "--max-batch-size 1" "--max-batch-size 4 --max-wait-ms 2" "--max-batch-size 4 --max-wait-ms 2 --workers 3"; do
  simulsa serve --port 8799 --max-sessions 4 $args > /tmp/serve_batch.log 2>&1 &
  PID=$!
  until curl -sf http://127.0.0.1:8799/healthz > /dev/null; do sleep 1; done
  echo "== simulsa serve $args"
  python -m simulsa.runtime.server.load --url ws://127.0.0.1:8799/v1/stream --audio $AUDIO --clients 1,2,3 --chunk-ms 1000
  kill -INT $PID; wait $PID
done
