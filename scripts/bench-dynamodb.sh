#!/usr/bin/env bash
# make bench-dynamodb: the DynamoDB requests and cost of a two-worker fleet,
# counted through a proxy in front of dynalite (e2e TestBenchDynamoDB), next
# to what the Java KCL's schedule implies; written to docs/dynamodb-cost.md
# (linked from docs/performance.md).
#   BEFORE=<git revision>      also measure that revision's build first
#   MULTILANGD_BENCH_DDB_SECONDS  measured window per build (default 180)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=docs/dynamodb-cost.md
if [ -n "${BEFORE:-}" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  rev=$(git rev-parse --short "$BEFORE")
  echo "bench-dynamodb: building $rev for the 'before' column..."
  git archive "$rev" | tar -x -C "$tmp"
  (cd "$tmp" && CGO_ENABLED=0 go build -o "$tmp/multilangd-before" ./cmd/multilangd)
  export MULTILANGD_BENCH_DDB_BEFORE="$tmp/multilangd-before"
  export MULTILANGD_BENCH_DDB_BEFORE_LABEL="before ($rev)"
fi
echo "bench-dynamodb: running e2e TestBenchDynamoDB (about 4 minutes per build)..."
MULTILANGD_BENCH_DDB=1 MULTILANGD_BENCH_DDB_OUT="$ROOT/$OUT" \
  go test -count=1 -timeout 40m -run '^TestBenchDynamoDB$' -v ./e2e/ | grep -E '^(DDBCOST|--- |ok|FAIL)' || true
test -s "$OUT" || { echo "bench-dynamodb: no results (run the test by hand to see why)" >&2; exit 1; }
echo "bench-dynamodb: wrote $OUT"
cat "$OUT"
