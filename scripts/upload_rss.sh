#!/usr/bin/env bash
# Peak memory (VmHWM, the kernel's high-water mark of resident memory) of `dialtone serve`
# while it imports contact uploads: one upload of SIZE_MB, then, in a fresh server, four
# such uploads at once (four campaigns). Issue 9: memory must stay under 2x the file size.
#
#   scripts/upload_rss.sh [path/to/dialtone] [SIZE_MB]     # defaults: target/release/dialtone 50
#   UPLOAD=multipart scripts/upload_rss.sh …                # send it as a multipart `file` part
#
# Prints one line per run: baseline RSS, peak RSS, HTTP statuses and seconds taken.
set -euo pipefail
BIN=$(realpath "${1:-target/release/dialtone}")
SIZE_MB=${2:-50}
DIR=$(mktemp -d)
PORT=${PORT:-18099}
# Four debug-build imports of 50 MB take ~30 minutes on 2 busy cores: allow for it.
BASE="http://127.0.0.1:$PORT/api/v1"
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

# Valid US numbers, distinct, ~34 bytes a row.
python3 - "$DIR/contacts.csv" "$SIZE_MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
areas = [415, 650, 212, 312, 617, 206, 303, 404, 512, 702]
with open(path, "w") as f:
    f.write("name,phone,plan\n")
    n = 0
    while f.tell() < mb * 1024 * 1024:
        area, rest = areas[n % len(areas)], n // len(areas)
        f.write(f"Contact {n},+1{area}{201 + rest % 700}{(rest // 700) % 10000:04d},gold\n")
        n += 1
PY
echo "file: $(stat -c %s "$DIR/contacts.csv") bytes, $(($(wc -l < "$DIR/contacts.csv") - 1)) rows"

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$PID/status"; }

run() {
  local uploads=$1
  rm -f "$DIR"/rss.db*
  export DIALTONE_DATABASE_URL="sqlite://$DIR/rss.db" DIALTONE_LISTEN="127.0.0.1:$PORT" DIALTONE_LOG=warn
  local key; key=$("$BIN" keys create --name rss 2>/dev/null)
  "$BIN" serve 2>"$DIR/serve.log" & PID=$!
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done
  local ids=()
  for _ in $(seq "$uploads"); do
    ids+=("$(curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' \
      -d '{"name":"rss","provider":"sim","assistant_id":"asst_rss","phone_number_id":"pn_rss"}' "$BASE/campaigns" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')")
  done
  local baseline; baseline=$(kib VmRSS)
  local start=$SECONDS
  for id in "${ids[@]}"; do
    if [ "${UPLOAD:-csv}" = multipart ]; then
      set -- -F file=@"$DIR/contacts.csv"
    else
      set -- -H 'content-type: text/csv' --data-binary @"$DIR/contacts.csv"
    fi
    curl -s -o "$DIR/report-$id.json" -w '%{http_code} ' -H "Authorization: Bearer $key" "$@" \
      "$BASE/campaigns/$id/contacts" > "$DIR/status-$id" &
  done
  wait $(jobs -p | grep -v "^$PID$") 2>/dev/null || true
  local statuses; statuses=$(cat "$DIR"/status-*)
  echo "$uploads upload(s) of ${SIZE_MB} MB: baseline $((baseline / 1024)) MiB, peak $(( $(kib VmHWM) / 1024 )) MiB, statuses: $statuses, $((SECONDS - start)) s"
  head -c 300 "$DIR/report-${ids[0]}.json"; echo
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  rm -f "$DIR"/status-* "$DIR"/report-*
}

run 1
run 4
