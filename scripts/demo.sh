#!/usr/bin/env bash
# multilangd demo: local emulators, a 4-shard stream, a producer, and the
# daemon running the unchanged aws-kcl Node sample. Run it with `make demo`
# (which first runs `make deps build`). Stop with Ctrl-C, or set
# DEMO_SECONDS=N to stop after N seconds. Everything it starts runs in its
# own process group and is stopped on exit; nothing is left behind.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PRELOAD=$ROOT/internal/testenv/node_preload.js  # keeps the emulators alive when a client hangs up
BIN=${MULTILANGD_BIN:-$ROOT/bin/multilangd}
NM=${MULTILANGD_NPM_DIR:-$ROOT/testdata/npm/node_modules}
DEMO_SECONDS=${DEMO_SECONDS:-0}
STREAM=${DEMO_STREAM:-multilangd-demo}
SHARDS=4
RATE=${DEMO_RATE:-20}

[ -x "$BIN" ] || { echo "demo: $BIN missing; run 'make build' (or 'make demo')" >&2; exit 1; }
[ -d "$NM/kinesalite" ] && [ -d "$NM/dynalite" ] && [ -d "$NM/aws-kcl" ] ||
  { echo "demo: emulators missing under $NM; run 'make deps'" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/multilangd-demo.XXXXXX")
GROUPS_STARTED=()

say() { printf '\033[1;36m[demo]\033[0m %s\n' "$*"; }

# stop_group PID [GRACE]: SIGTERM the process group, SIGKILL after GRACE s.
stop_group() {
  local pid=$1 grace=${2:-3} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "stopping (daemons first: graceful stop releases their leases)"
  # Reverse order: leases printer, daemons, producer, emulators.
  local i
  for ((i = ${#GROUPS_STARTED[@]} - 1; i >= 0; i--)); do
    stop_group "${GROUPS_STARTED[$i]}" 25
  done
  rm -rf "$WORK"
  say "stopped; nothing left running"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: run CMD in its own process group (setsid), remember it.
start() {
  local name=$1
  shift
  setsid "$@" &
  GROUPS_STARTED+=("$!")
  eval "PID_$name=$!"
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

wait_http() {
  local url=$1 i
  for ((i = 0; i < 300; i++)); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  echo "demo: $url did not answer" >&2
  return 1
}

# kinesis TARGET JSON: one Kinesis API call against kinesalite (any
# credentials are accepted; the signature is not checked).
kinesis() {
  curl -sS -X POST "$KINESIS" \
    -H "Content-Type: application/x-amz-json-1.1" \
    -H "X-Amz-Target: Kinesis_20131202.$1" -H "X-Amz-Date: 20260101T000000Z" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=demo/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00" \
    -d "$2"
}

KPORT=$(free_port)
DPORT=$(free_port)
KINESIS=http://127.0.0.1:$KPORT
DYNAMODB=http://127.0.0.1:$DPORT
say "starting kinesalite on $KINESIS and dynalite on $DYNAMODB (from $NM)"
start kinesalite node -r "$PRELOAD" "$NM/kinesalite/cli.js" --port "$KPORT" --createStreamMs 50 --shardLimit 100 >"$WORK/kinesalite.log" 2>&1
start dynalite node -r "$PRELOAD" "$NM/dynalite/cli.js" --host 127.0.0.1 --port "$DPORT" --createTableMs 50 >"$WORK/dynalite.log" 2>&1
wait_http "$KINESIS"
wait_http "$DYNAMODB"

say "creating stream $STREAM with $SHARDS shards"
out=$(kinesis CreateStream "{\"StreamName\":\"$STREAM\",\"ShardCount\":$SHARDS}")
case $out in *__type*) echo "demo: CreateStream failed: $out" >&2; exit 1 ;; esac
for ((i = 0; i < 100; i++)); do
  kinesis DescribeStreamSummary "{\"StreamName\":\"$STREAM\"}" | grep -q '"ACTIVE"' && break
  sleep 0.1
done

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export NODE_PATH=$NM

# The sample's own properties file, unchanged except for what a local run
# needs: the emulator endpoints, static credentials, a short read interval.
PROPS=$WORK/node.properties
OVERRIDES="streamName applicationName AwsCredentialsProvider kinesisEndpoint dynamoDBEndpoint idleTimeBetweenReadsInMillis failoverTimeMillis shutdownGraceMillis workerId metricsLevel"
grep -v -E "^[[:space:]]*($(echo "$OVERRIDES" | tr ' ' '|'))[[:space:]]*[=:]" "$ROOT/samples/node/sample.properties" >"$PROPS"
cat >>"$PROPS" <<EOF

# --- added by scripts/demo.sh ---
streamName = $STREAM
applicationName = multilangd-demo-node
AwsCredentialsProvider = EnvironmentVariableCredentialsProvider
kinesisEndpoint = $KINESIS
dynamoDBEndpoint = $DYNAMODB
idleTimeBetweenReadsInMillis = 1000
failoverTimeMillis = 10000
shutdownGraceMillis = 5000
workerId = demo-worker-node
# no CloudWatch here (the Java default, DETAILED, would publish to AWS)
metricsLevel = NONE
EOF
say "properties (from samples/node/sample.properties):"
grep -v -E "^[[:space:]]*(#|$)" "$PROPS" | sed "s/^/    /"

say "producing ~$RATE records/s with 'multilangd put' (every 5th Kinesis record is a KPL aggregate of 4)"
start producer "$BIN" put -p "$PROPS" --rate "$RATE" --aggregate-every 5 --records-per-aggregate 4 --partition-keys 64 >"$WORK/producer.log" 2>&1

say "starting multilangd with the Node sample (child stderr lines are logged with their shardId)"
# Run from samples/node so that "executableName = node sample_kcl_app.js"
# resolves exactly as it does for the Java daemon.
(cd "$ROOT/samples/node" && exec setsid "$BIN" -p "$PROPS") &
GROUPS_STARTED+=("$!")
PID_daemon=$!

if python3 -c 'import amazon_kclpy' 2>/dev/null; then
  say "amazon_kclpy is importable: also starting multilangd with samples/python"
  PYPROPS=$WORK/python.properties
  grep -v -E "^[[:space:]]*($(echo "$OVERRIDES" | tr ' ' '|'))[[:space:]]*[=:]" "$ROOT/samples/python/sample.properties" >"$PYPROPS"
  sed -e 's/multilangd-demo-node/multilangd-demo-python/' -e 's/demo-worker-node/demo-worker-python/' \
    <(sed -n '/--- added by scripts\/demo.sh ---/,$p' "$PROPS") >>"$PYPROPS"
  (cd "$ROOT/samples/python" && exec setsid "$BIN" -p "$PYPROPS") &
  GROUPS_STARTED+=("$!")
else
  say "amazon_kclpy is not importable by python3 here: skipping the samples/python run (pip install amazon_kclpy to include it)"
fi

# Every ~10 s: the operator's view of the lease table.
start leases bash -c '
  while sleep 10; do
    printf "\n\033[1;33m[demo] multilangd leases -p %s\033[0m\n" "'"$PROPS"'"
    "'"$BIN"'" leases -p "'"$PROPS"'" || true
    echo
  done'

if [ "$DEMO_SECONDS" -gt 0 ]; then
  say "running for $DEMO_SECONDS s (DEMO_SECONDS)"
  sleep "$DEMO_SECONDS"
else
  say "running; press Ctrl-C to stop"
  wait "$PID_daemon" || true
fi
