#!/usr/bin/env bash
# graph-emulator at scale (issue 13: the emulator must scale before the sync
# benchmarks): starts an emulator on an ephemeral port and, with one
# keep-alive connection (a Python driver, so the client sets the pace alike
# for every build),
#  1. seeds USERS users in tenants of PER users (one POST /_emulator/tenants
#     per tenant, bodies made before the clock starts);
#  2. runs SIGNINS sign-ins of users picked at random, as crmsyncd's sign-in
#     does: authorize (login_hint) -> code, the code redeemed at the token
#     endpoint, then GET /v1.0/users/{upn} with that token;
#  3. subscribes the first SUBS users' calendars (each validated against a
#     local receiver), renews every subscription once (PATCH) and lists
#     each of their tenants' subscriptions (GET /v1.0/subscriptions).
# Prints each phase's time, the sign-ins' mean and p99, and the emulator's
# RSS after seeding and at the end.
#   bench/run-emulator-scale.sh [USERS] [SIGNINS] [SUBS] [EMULATOR]
# Environment: PER (users per tenant, default 100), BENCH_BUILD as for
# bench/lib.sh's bench_build (used when no EMULATOR binary is given).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-10000}
signins=${2:-3000}
subs=${3:-2000}
emulator=${4:-}
# shellcheck source=bench/lib.sh
source bench/lib.sh
if [ -z "$emulator" ]; then
  bench_build graph-emulator
  emulator="$BENCH_BIN/graph-emulator"
fi
[ -x "$emulator" ] || { echo "no emulator binary at $emulator" >&2; exit 2; }
dir="$(mktemp -d /tmp/crmsync-bench-XXXXXX)"
trap bench_cleanup EXIT
"$emulator" --listen 127.0.0.1:0 --mailbox-limit 100000000 \
  >"$dir/emu.out" 2>"$dir/emu.log" &
emu_pid=$!
wait_line "$dir/emu.out" "listening on"
E="$(sed -n 's/^graph-emulator listening on //p' "$dir/emu.out")"
echo "machine: $(nproc) cores, $(uname -sr); load: $(uptime | sed 's/.*load average: //')"
echo "emulator: $emulator ($E)"
python3 - "$E" "$emu_pid" "$users" "${PER:-100}" "$signins" "$subs" <<'PY'
import http.client, http.server, json, random, sys, threading, time
import urllib.parse
from datetime import datetime, timedelta, timezone

base, pid = sys.argv[1], int(sys.argv[2])
users, per, signins, subs = (int(a) for a in sys.argv[3:7])
url = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(url.hostname, url.port)


def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheader("Location"), r.read()


def expect(status, want, what, body=b""):
    if status != want:
        sys.exit(f"{what}: {status} (wanted {want}) {body[:300]!r}")


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def upn(i):
    return f"u{i % per}@t{i // per}.example"


def domain(i):
    return f"t{i // per}.example"


# 1. Seeding.
tenants = (users + per - 1) // per
bodies = []
for t in range(tenants):
    n = min(per, users - t * per)
    bodies.append(json.dumps({"domain": f"t{t}.example", "users": [
        {"userPrincipalName": f"u{u}@t{t}.example"} for u in range(n)]}))
start = time.monotonic()
for b in bodies:
    s, _, data = call("POST", "/_emulator/tenants", b,
                      {"Content-Type": "application/json"})
    expect(s, 201, "seed", data)
seed_s = time.monotonic() - start
print(f"seed: {users} users in {tenants} tenants of {per}: {seed_s:.2f} s "
      f"({users / seed_s:,.0f} users/s); emulator RSS {rss_mib():.0f} MiB")

consented = sorted({domain(i) for i in range(min(subs, users))})
s, _, data = call("POST", "/_emulator/apps", json.dumps(
    {"client_id": "scale", "client_secret": "s", "tenants": consented}))
expect(s, 201, "app", data)
form_headers = {"Content-Type": "application/x-www-form-urlencoded"}

# 2. Sign-ins.
rng = random.Random(13)
times = []
start = time.monotonic()
for _ in range(signins):
    i = rng.randrange(users)
    t0 = time.monotonic()
    q = urllib.parse.urlencode({
        "client_id": "scale", "response_type": "code", "state": "s",
        "redirect_uri": "http://127.0.0.1/cb", "login_hint": upn(i)})
    s, loc, data = call("GET", f"/{domain(i)}/oauth2/v2.0/authorize?{q}")
    expect(s, 302, "authorize", data)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["code"][0]
    s, _, data = call("POST", f"/{domain(i)}/oauth2/v2.0/token",
                      urllib.parse.urlencode({
                          "client_id": "scale", "client_secret": "s",
                          "grant_type": "authorization_code", "code": code,
                          "redirect_uri": "http://127.0.0.1/cb"}),
                      form_headers)
    expect(s, 200, "token", data)
    token = json.loads(data)["access_token"]
    s, _, data = call("GET", f"/v1.0/users/{upn(i)}",
                      headers={"Authorization": "Bearer " + token})
    expect(s, 200, "user", data)
    times.append(time.monotonic() - t0)
signin_s = time.monotonic() - start
if times:
    times.sort()
    print(f"sign-ins: {signins} in {signin_s:.2f} s ({signins / signin_s:,.0f}/s); "
          f"mean {1000 * sum(times) / len(times):.2f} ms, "
          f"p99 {1000 * times[int(0.99 * (len(times) - 1))]:.2f} ms")


# 3. Subscriptions, validated by a local receiver.
class hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = q["validationToken"][0].encode() if "validationToken" in q else b""
        self.send_response(200 if body else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if subs > 0:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    tokens = {}
    for d in consented:
        s, _, data = call("POST", f"/{d}/oauth2/v2.0/token", urllib.parse.urlencode({
            "client_id": "scale", "client_secret": "s",
            "grant_type": "client_credentials"}), form_headers)
        expect(s, 200, "app token", data)
        tokens[d] = {"Authorization": "Bearer " + json.loads(data)["access_token"],
                     "Content-Type": "application/json"}

    def at(minutes):
        t = datetime.now(timezone.utc) + timedelta(minutes=minutes)
        return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    n = min(subs, users)
    ids = []
    start = time.monotonic()
    for i in range(n):
        s, _, data = call("POST", "/v1.0/subscriptions", json.dumps({
            "changeType": "created,updated,deleted", "notificationUrl": hook_url,
            "resource": f"/users/{upn(i)}/events", "clientState": "c",
            "expirationDateTime": at(60)}), tokens[domain(i)])
        expect(s, 201, "subscribe", data)
        ids.append((domain(i), json.loads(data)["id"]))
    create_s = time.monotonic() - start
    start = time.monotonic()
    for d, sid in ids:
        s, _, data = call("PATCH", f"/v1.0/subscriptions/{sid}",
                          json.dumps({"expirationDateTime": at(120)}), tokens[d])
        expect(s, 200, "renew", data)
    renew_s = time.monotonic() - start
    start = time.monotonic()
    listed = 0
    for d in consented:
        s, _, data = call("GET", "/v1.0/subscriptions", headers=tokens[d])
        expect(s, 200, "list", data)
        listed += len(json.loads(data)["value"])
    list_s = time.monotonic() - start
    if listed != n:
        sys.exit(f"listed {listed} subscriptions, wanted {n}")
    receiver.shutdown()
    print(f"subscriptions: {n} created in {create_s:.2f} s (each validated), "
          f"renewed in {renew_s:.2f} s ({1000 * renew_s / n:.3f} ms each), "
          f"{len(consented)} tenants listed in {list_s:.2f} s")
print(f"emulator RSS at the end: {rss_mib():.0f} MiB")
PY
