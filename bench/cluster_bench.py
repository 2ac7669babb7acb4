#!/usr/bin/env python3
"""Failover and shard-move measurements on a cluster started by
deploy/run-cluster.sh with CLUSTER_ETCD=1 (bench/run-failover.sh and
bench/run-shard-move.sh start it and call this; see docs/BENCHMARKS.md).

  cluster_bench.py failover KILLS    kill -9 a shard's primary KILLS times
  cluster_bench.py move USERS        move a shard holding USERS users

The cluster comes from the environment run-cluster.sh reads
(CLUSTER_DATA, NODE_PORT_BASE); kills and restarts go through
`deploy/run-cluster.sh kill|restart NODE`. Times are wall-clock from this
process (time.monotonic), so on a busy machine they include the wait for
a CPU."""

import http.client
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time

DATA = os.environ["CLUSTER_DATA"]
BASE = int(os.environ.get("NODE_PORT_BASE", "8080"))
NODES = ["n1", "n2", "n3"]
RF = int(os.environ.get("REPLICATION_FACTOR", "2"))
ADMIN = open(os.path.join(DATA, "admin.token")).read().strip()


def port(node):
    return BASE + int(node[1:])


def call(node, method, path, token=ADMIN, body=None, timeout=5.0, headers_out=None):
    """(status, parsed JSON or None); status 0 when the node did not answer.
    headers_out (a dict): filled with the answer's headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port(node), timeout=timeout)
    try:
        headers = {"Authorization": "Bearer " + token}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, data, headers)
        r = conn.getresponse()
        raw = r.read()
        if headers_out is not None:
            headers_out.update((k.lower(), v) for k, v in r.getheaders())
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None
    except (OSError, http.client.HTTPException) as e:
        return 0, repr(e)
    finally:
        conn.close()


def ctl(*args):
    subprocess.run(["bash", "deploy/run-cluster.sh", *args], check=True,
                   stdout=subprocess.DEVNULL)


def alive(node):
    return call(node, "GET", "/healthz", timeout=2)[0] == 200


def create_org(name, via="n1"):
    # Right after the start a creation (its claims in etcd, its batch on a
    # follower) can take seconds on a busy machine; 503 is retried.
    for _ in range(10):
        st, doc = call(via, "POST", "/api/v1/orgs", timeout=60, body={
            "name": name, "edition": "free",
            "admin": {"email": "boss@" + name + ".example", "name": "Boss"}})
        if st != 503:
            break
        time.sleep(1)
    if st != 201:
        sys.exit("creating %s: %s %s" % (name, st, doc))
    return {"id": doc["org"]["id"], "token": doc["admin"]["token"],
            "user": doc["admin"]["id"]}


def placement(org_id):
    """(shard, primary) as a live node sees it."""
    for n in NODES:
        st, doc = call(n, "GET", "/admin/v1/tenants/" + org_id, timeout=2)
        if st == 200:
            return doc["shard"], doc["node"]
    return None, None


EVENT = {"title": "load", "start": "2027-01-10T10:00:00Z",
         "end": "2027-01-10T11:00:00Z"}


def write_event(org, via, title="load", timeout=3.0, headers_out=None):
    body = dict(EVENT, title=title)
    return call(via, "POST", "/api/v1/orgs/%s/users/%s/events"
                % (org["id"], org["user"]), token=org["token"], body=body,
                timeout=timeout, headers_out=headers_out)


def shard_view(org_id):
    """How each live node sees the organization's shard right now:
    node -> (owner, role, epoch, sequence)."""
    shard, _ = placement(org_id)
    out = {}
    if shard is None:
        return out
    for n in NODES:
        st, doc = call(n, "GET", "/admin/v1/shards", timeout=2)
        if st == 200:
            row = next((x for x in doc["shards"] if x["shard"] == shard), None)
            if row:
                out[n] = (row.get("node"), row.get("role"), row.get("epoch"),
                          row.get("sequence"))
    return out


def in_sync(expect_nodes):
    """Every shard has a primary that sees each of its RF - 1 followers
    caught up (lag 0, not rebuilding), the followers say so too, and every
    node reads the same owners and epochs. Returns (ok, owners)."""
    views = {}
    for n in expect_nodes:
        st, doc = call(n, "GET", "/admin/v1/shards", timeout=5)
        if st != 200:
            return False, None
        views[n] = {s["shard"]: s for s in doc["shards"]}
    first = views[expect_nodes[0]]
    owners = tuple(first[s]["node"] for s in sorted(first))
    for n in expect_nodes:
        if tuple(views[n][s]["node"] for s in sorted(first)) != owners:
            return False, None
        if any(views[n][s].get("epoch") != first[s].get("epoch") for s in first):
            return False, None
    want = min(RF - 1, len(expect_nodes) - 1)
    for s, row in first.items():
        owner = row["node"]
        if owner not in views:
            return False, None
        pv = views[owner][s]
        followers = pv.get("followers", [])
        if pv.get("role") != "primary" or len(followers) != want:
            return False, None
        reps = {r["node"]: r for r in pv.get("replicas", [])}
        for f in followers:
            r = reps.get(f)
            if r is None or r["acked_sequence"] is None or r["lag"] != 0 \
                    or r["rebuilding"]:
                return False, None
            fv = views[f][s]
            if fv.get("role") != "follower" or fv.get("rebuilding"):
                return False, None
    return True, owners


def wait_sync(nodes, deadline_s=300, stable_s=2.0):
    """Seconds until in_sync holds twice, stable_s apart, with the same
    owners (no rebalancing move still under way)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        ok, owners = in_sync(nodes)
        if ok:
            time.sleep(stable_s)
            ok2, owners2 = in_sync(nodes)
            if ok2 and owners2 == owners:
                return time.monotonic() - t0 - stable_s
        time.sleep(0.25)
    sys.exit("the cluster was not in sync within %d s" % deadline_s)


def role_counts(n):
    """Per node: how many shards it is the primary and a follower of, in
    the map node n shows (/admin/v1/shards' rows, so any build)."""
    st, doc = call(n, "GET", "/admin/v1/shards", timeout=5)
    if st != 200:
        return None
    out = {}
    for row in doc["shards"]:
        out.setdefault(row["node"], [0, 0])[0] += 1
        for f in row.get("followers", []):
            out.setdefault(f, [0, 0])[1] += 1
    return {k: tuple(v) for k, v in out.items()}


def wait_share(start, since, deadline_s):
    """Seconds from `since` until every node is back to its share of
    primaries and followers of the first map (`start`, the rendezvous
    layout) and in sync; None when not within deadline_s (t15-balance)."""
    while time.monotonic() - since < deadline_s:
        if role_counts(NODES[0]) == start and in_sync(NODES)[0]:
            return time.monotonic() - since
        time.sleep(0.25)
    return None


class Writer(threading.Thread):
    """Light REST load: one event create every PERIOD seconds, to a random
    organization through a random node that is up. Keeps the ids of the
    acknowledged (201) events to check that none is lost."""

    def __init__(self, orgs, period):
        super().__init__(daemon=True)
        self.orgs, self.period = orgs, period
        self.stop = threading.Event()
        self.acked = {o["id"]: set() for o in orgs}
        self.status = {}
        # Answers that are neither an acknowledgement nor retryable (503,
        # no answer): when, through which node, for which organization.
        self.unexpected = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            org = random.choice(self.orgs)
            via = random.choice(NODES)
            headers = {}
            st, doc = write_event(org, via, title="load %d" % i, headers_out=headers)
            i += 1
            self.status[st] = self.status.get(st, 0) + 1
            if st == 201:
                self.acked[org["id"]].add(doc["id"])
            elif st not in (0, 503):
                self.unexpected.append((time.strftime("%H:%M:%S"), via, org["id"], st,
                                        "served by %s; %s; shard now %s"
                                        % (headers.get("x-crmsync-node"), json.dumps(doc),
                                           shard_view(org["id"]))))
            self.stop.wait(self.period)


def event_ids(org):
    ids, cursor = set(), ""
    while True:
        path = "/api/v1/orgs/%s/users/%s/events?limit=500&from=2027-01-01T00:00:00Z" \
               "&to=2027-12-31T00:00:00Z%s" % (org["id"], org["user"],
                                                "&cursor=" + cursor if cursor else "")
        for n in NODES:
            st, doc = call(n, "GET", path, token=org["token"], timeout=10)
            if st == 200:
                break
        else:
            sys.exit("cannot list the events of %s" % org["id"])
        ids.update(e["id"] for e in doc["items"])
        cursor = doc.get("next_cursor") or ""
        if not cursor:
            return ids


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)]


def failover(kills):
    # One organization whose shard each node is the primary of, so the
    # kills go round the nodes.
    targets, extra, k = {}, [], 0
    while len(targets) < len(NODES) and k < 60:
        org = create_org("failover%d" % k)
        _, primary = placement(org["id"])
        if primary not in targets:
            targets[primary] = org
        else:
            extra.append(org)
        k += 1
    orgs = list(targets.values()) + extra[:3]
    print("organizations: %d (%s primaries)" % (len(orgs), ", ".join(sorted(targets))))
    print("in sync at the start after %.1f s" % wait_sync(NODES))
    start = role_counts(NODES[0])
    share_deadline = float(os.environ.get("SHARE_DEADLINE", "120"))
    print("roles at the start (primaries, followers): %s" % start)
    shares = []
    period = float(os.environ.get("LOAD_PERIOD", "0.1"))
    writer = Writer(orgs, period)
    writer.start()
    times, resync, log = [], [], []
    order = sorted(targets)
    for i in range(kills):
        org = targets[order[i % len(order)]]
        shard, primary = placement(org["id"])
        via = [n for n in NODES if n != primary][i % 2]
        t0 = time.monotonic()
        ctl("kill", primary)
        attempts = 0
        while True:
            st, _ = write_event(org, via, title="probe %d" % i, timeout=2)
            attempts += 1
            if st == 201:
                break
            time.sleep(0.05)
        took = time.monotonic() - t0
        _, new_primary = placement(org["id"])
        times.append(took)
        ctl("restart", primary)
        restarted = time.monotonic()
        back = wait_sync(NODES)
        resync.append(back)
        share = wait_share(start, restarted, share_deadline)
        shares.append(share)
        line = (time.strftime("%H:%M:%S ") + "kill %2d: shard %d primary %s killed, served by %s after %.2f s "
                "(%d attempts through %s); %s back in sync %.1f s after its restart, "
                "its share of primaries and followers %s"
                % (i + 1, shard, primary, new_primary, took, attempts, via, primary, back,
                   "back after %.1f s" % share if share is not None
                   else "NOT back within %.0f s (%s)" % (share_deadline, role_counts(NODES[0]))))
        print(line, flush=True)
        log.append(line)
    writer.stop.set()
    writer.join()
    lost = 0
    for org in orgs:
        have = event_ids(org)
        lost += len(writer.acked[org["id"]] - have)
    acked = sum(len(a) for a in writer.acked.values())
    print()
    print("failover time over %d kills (kill -9 -> first 201 through another node):" % kills)
    print("  p50 %.2f s, p99 %.2f s (nearest rank: with %d samples the p99 is the maximum), "
          "min %.2f s, mean %.2f s, max %.2f s"
          % (pct(times, 50), pct(times, 99), kills, min(times),
             statistics.mean(times), max(times)))
    print("back in sync after the restart (every shard's follower caught up, no move under way):")
    print("  p50 %.1f s, max %.1f s" % (pct(resync, 50), max(resync)))
    back_shares = [x for x in shares if x is not None]
    print("the returning node's share of primaries and followers back (from its restart):")
    if back_shares:
        print("  %d of %d kills: p50 %.1f s, max %.1f s"
              % (len(back_shares), kills, pct(back_shares, 50), max(back_shares)))
    else:
        print("  never within %.0f s (%d kills)" % (share_deadline, kills))
    print("light load: one event create every %.0f ms to %d organizations through a random node:"
          % (period * 1000, len(orgs)))
    print("  answers %s; %d acknowledged, %d of them missing afterwards"
          % (", ".join("%s: %d" % (k, v) for k, v in sorted(writer.status.items())),
             acked, lost))
    for when, via, org_id, st, doc in writer.unexpected:
        print("  unexpected at %s through %s, organization %s: %d %s"
              % (when, via, org_id, st, doc))
    if lost:
        sys.exit(1)


def move(users):
    org = create_org("movebench")
    shard, primary = placement(org["id"])
    threads = int(os.environ.get("CREATE_THREADS", "8"))
    print("organization %s on shard %d, primary %s; creating %d users (%d threads)"
          % (org["id"], shard, primary, users, threads), flush=True)
    t0 = time.monotonic()
    failures = []

    def create(part):
        for u in range(part, users, threads):
            body = {"email": "u%05d@movebench.example" % u, "name": "User %d" % u,
                    "profile": "standard", "manage_users": False}
            for _ in range(20):
                st, doc = call(random.choice(NODES), "POST",
                               "/api/v1/orgs/%s/users" % org["id"],
                               token=org["token"], body=body, timeout=30)
                if st in (201, 409):
                    break
                time.sleep(0.2)
            else:
                failures.append((u, st, doc))

    ts = [threading.Thread(target=create, args=(p,)) for p in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failures:
        sys.exit("user creations failed: %s" % failures[:3])
    st, doc = call(primary, "GET", "/admin/v1/tenants/" + org["id"])
    print("%d users created in %.0f s; the organization counts %s users"
          % (users, time.monotonic() - t0, doc.get("users") if doc else "?"), flush=True)
    print("in sync after %.1f s" % wait_sync(NODES), flush=True)
    st, doc = call(primary, "GET", "/admin/v1/shards")
    row = next(s for s in doc["shards"] if s["shard"] == shard)
    follower = row["followers"][0] if row["followers"] else None
    target = [n for n in NODES if n not in (primary, follower)][0]
    # Writes to the organization during the move, through a node that is
    # neither side, every 20 ms; each answer with its time.
    probe_via = [n for n in NODES if n != primary][0]
    answers, stop = [], threading.Event()

    def probe():
        i = 0
        while not stop.is_set():
            t = time.monotonic()
            st, _ = write_event(org, probe_via, title="move probe %d" % i, timeout=10)
            answers.append((t, time.monotonic(), st))
            i += 1
            stop.wait(0.02)

    p = threading.Thread(target=probe, daemon=True)
    p.start()
    time.sleep(2)
    m0 = time.monotonic()
    st, doc = call(primary, "POST", "/admin/v1/shards/%d/move" % shard,
                   body={"to": target}, timeout=600)
    m1 = time.monotonic()
    if st != 200:
        sys.exit("the move answered %s %s" % (st, doc))
    # Until the new primary acknowledges writes again, then 2 s more.
    while not any(a[0] > m1 and a[2] == 201 for a in answers):
        time.sleep(0.05)
    time.sleep(2)
    stop.set()
    p.join()
    synced = wait_sync(NODES)
    during = [a for a in answers if a[1] >= m0 - 0.001]
    failed = [a for a in answers if a[2] != 201]
    last_ok_before = max((a[1] for a in answers if a[2] == 201 and a[0] < m0), default=m0)
    first_ok_after = min((a[1] for a in answers if a[2] == 201 and a[0] >= m0
                          and any(f[0] >= m0 and f[0] < a[0] for f in failed)),
                         default=None)
    codes = {}
    for a in during:
        codes[a[2]] = codes.get(a[2], 0) + 1
    slowest = max((a[1] - a[0] for a in during), default=0)
    _, now = placement(org["id"])
    print()
    print("move of shard %d (%d users) from %s to %s (its follower was %s):"
          % (shard, users, primary, target, follower))
    print("  POST /admin/v1/shards/%d/move answered %d after %.2f s; map says %s"
          % (shard, st, m1 - m0, now))
    if failed:
        print("  writes refused during it: %d (first at +%.2f s, last at +%.2f s); "
              "unavailable from the last 201 before to the first 201 after: %.2f s"
              % (len(failed), failed[0][0] - m0, failed[-1][0] - m0,
                 (first_ok_after or failed[-1][1]) - last_ok_before))
    else:
        print("  no write refused; the slowest write took %.2f s" % slowest)
    print("  probe answers from the move's start on: %s; slowest %.2f s"
          % (", ".join("%s: %d" % (k, v) for k, v in sorted(codes.items())), slowest))
    print("  every shard in sync again %.1f s after the probes stopped" % synced)


if __name__ == "__main__":
    what, n = sys.argv[1], int(sys.argv[2])
    {"failover": failover, "move": move}[what](n)
