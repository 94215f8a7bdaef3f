#!/usr/bin/env bash
# `make run`: the gateway on the embedded SQLite database with a simulated fleet behind it.
# Each node enrols once (`gridlink token create --role node --name NODE`, tokens kept in
# <data dir>/fleet-tokens.txt); Ctrl-C stops the fleet and the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
NODES=${FLEET_NODES:-8}
DATA=${GRIDLINK_DATA_DIR:-var}
HOST=${GRIDLINK_HOST:-127.0.0.1}
PORT=${GRIDLINK_PORT:-8000}
URL="http://$HOST:$PORT"
TOKENS="$DATA/fleet-tokens.txt"
export GRIDLINK_LOG_LEVEL=${GRIDLINK_LOG_LEVEL:-warning}  # no access log line per telemetry batch
mkdir -p "$DATA"

"$BIN/gridlink" db upgrade >/dev/null
if [ ! -s "$TOKENS" ] || [ "$(wc -l <"$TOKENS")" -lt "$NODES" ]; then
    echo "run: enrolling $NODES simulated nodes (once; tokens in $TOKENS)"
    : >"$TOKENS"
    chmod 600 "$TOKENS"
    for i in $(seq 1 "$NODES"); do
        name=$(printf "sim-%03d" "$i")
        echo "$name $("$BIN/gridlink" token create --role node --name "$name" 2>/dev/null)" >>"$TOKENS"
    done
fi

pids=()
stop() {
    trap - INT TERM EXIT
    echo "run: stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
}
trap stop INT TERM EXIT

"$BIN/gridlink" serve --host "$HOST" --port "$PORT" &
pids+=($!)
for _ in $(seq 1 100); do
    "$BIN/python" -c "import httpx,sys; sys.exit(0 if httpx.get('$URL/healthz').is_success else 1)" \
        2>/dev/null && break
    sleep 0.2
done
PALS_METRICS_PORT=${PALS_METRICS_PORT:-0} "$BIN/pals" fleet --gateway "$URL" --nodes "$NODES" \
    --tokens "$TOKENS" &
pids+=($!)
SIGN_IN="$DATA/page-token.txt"  # one manager token for the facility page, made once
if [ ! -s "$SIGN_IN" ]; then
    "$BIN/gridlink" token create --role manager --name facility-page 2>/dev/null | tail -n 1 >"$SIGN_IN"
fi
echo "run: the facility page: $URL/ (sign in with the manager token: $(cat "$SIGN_IN"))"
echo "run: API docs at $URL/docs; $NODES simulated nodes behind the gateway; Ctrl-C stops"
echo "run: more tokens: $BIN/gridlink token create --role admin|manager|auditor"
wait -n || true
