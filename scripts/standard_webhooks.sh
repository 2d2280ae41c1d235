#!/usr/bin/env bash
# Outbound events checked with the official Standard Webhooks library (PyPI `standardwebhooks`,
# installed here in a venv): a live `dialtone serve` with the simulator runs a small campaign;
# a local receiver verifies every delivery with `Webhook(secret).verify(body, headers)`. The
# endpoint's secret is rotated first, so each message carries two signatures and both the
# old and the new secret must verify it. Fails (non-zero) on any unverified or missing event.
#
#   scripts/standard_webhooks.sh            # as .ci/run runs it
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${STANDARDWEBHOOKS_VENV:-target/standardwebhooks-venv}"
# Pinned: bump on purpose.
version="1.0.1"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/pip" show standardwebhooks 2>/dev/null | grep -q "^Version: $version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "standardwebhooks==$version"
fi

cargo build --locked --quiet --bin dialtone
bin="$PWD/target/debug/dialtone"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
sim_port="$(free_port)"
base="http://127.0.0.1:$port"

export DIALTONE_DATABASE_URL="sqlite://$work/webhooks.db"
export DIALTONE_LISTEN="127.0.0.1:$port"
export DIALTONE_SIM_BASE_URL="http://127.0.0.1:$sim_port"
export DIALTONE_VAPI_WEBHOOK_SECRET="standardwebhooks"
export DIALTONE_LOG="${DIALTONE_LOG:-warn}"

key="$("$bin" keys create --name standardwebhooks)"
"$bin" sim --listen "127.0.0.1:$sim_port" --webhook-url "$base/webhooks/vapi" --webhook-secret standardwebhooks --time-scale 0.01 \
    >"$work/sim.log" 2>&1 &
pids+=($!)
"$bin" serve >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { echo "dialtone serve did not come up:" >&2; cat "$work/serve.log" >&2; exit 1; }

status=0
"$venv/bin/python" - "$base" "$key" <<'PY' || status=$?
import json, sys, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from standardwebhooks.webhooks import Webhook

base, key = sys.argv[1], sys.argv[2]
got, lock = [], threading.Lock()

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass

server = HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = f"http://127.0.0.1:{server.server_port}/hook"

def api(method, path, body=None, content_type="application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(base + "/api/v1" + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=20) as r:
        text = r.read()
        return json.loads(text) if text else None

types = ["campaign.started", "campaign.paused", "campaign.completed", "campaign.canceled",
         "call.started", "call.ended", "contact.finished", "alert.failure_rate"]
ep = api("POST", "/webhook-endpoints", {"url": hook, "events": types, "enabled": True})
old = ep["secret"]
new = api("POST", f"/webhook-endpoints/{ep['id']}/rotate-secret")["secret"]

cmp = api("POST", "/campaigns", {"name": "standardwebhooks", "provider": "sim", "assistant_id": "asst_sw",
          "phone_number_id": "pn_sw", "max_concurrent": 3, "max_attempts": 1,
          "calling_hours": {"start": "00:00", "end": "00:00"}})["id"]
csv = "name,phone\n" + "".join(f"c{i},+1212555{i:04d}\n" for i in range(5))
api("POST", f"/campaigns/{cmp}/contacts", csv.encode(), "text/csv")
api("POST", f"/campaigns/{cmp}/start")
deadline = time.time() + 60
while api("GET", f"/campaigns/{cmp}")["status"] != "completed":
    if time.time() > deadline:
        sys.exit("the campaign did not complete in 60 s")
    time.sleep(0.2)
# Wait for every event the run makes: campaign.completed and one contact.finished per
# contact. Deliveries go out several at a time and in no promised order (at least once, not
# in order), so campaign.completed may arrive before the last contact's events.
while time.time() < deadline:
    with lock:
        types_got = [json.loads(b)["type"] for _, b in got]
    if "campaign.completed" in types_got and types_got.count("contact.finished") >= 5:
        break
    time.sleep(0.1)

problems, seen = [], {}
with lock:
    deliveries = list(got)
for headers, body in deliveries:
    t = json.loads(body)["type"]
    seen[t] = seen.get(t, 0) + 1
    if len(headers["webhook-signature"].split(" ")) != 2:
        problems.append(f"{t}: not two signatures during the rotation: {headers['webhook-signature']}")
    for name, secret in (("old", old), ("new", new)):
        try:
            Webhook(secret).verify(body, headers)
        except Exception as e:
            problems.append(f"{t}: the {name} secret does not verify it: {e!r}")
for t in ("campaign.started", "campaign.completed", "call.ended", "contact.finished"):
    if not seen.get(t):
        problems.append(f"no {t} arrived")
if seen.get("contact.finished", 0) != 5:
    problems.append(f"{seen.get('contact.finished', 0)} contact.finished of 5")
print(f"standardwebhooks {len(deliveries)} deliveries verified with both secrets: {seen}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
if [ "$status" -ne 0 ]; then
    echo "Standard Webhooks check failed; the server's log:" >&2
    grep -E "ERROR|WARN|panick" "$work/serve.log" | tail -50 >&2 || true
fi
exit "$status"
