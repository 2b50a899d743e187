#!/usr/bin/env bash
# SSF poll benchmark (issue 17 item 6: poll throughput with maxEvents 1000):
# a receiver drains N events (grants and revocations, one SET each: SCIM
# prov:patch:notice) from a poll stream through connector-gateway, RFC 8936
# over keep-alive HTTP, each poll acknowledging the previous one's SETs, with
# maxEvents 1000; once with an RS256 key, once with an ES256 key.  Baseline
# in the same run: changes() reading the same N events, unsigned, through psql.
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/ssf_poll.sh
#
# N (default 20000) may be set.
set -euo pipefail
N=${N:-20000}
here="$(cd "$(dirname "$0")" && pwd)"
DB=connector_bench_ssf_poll
export PGDATABASE=$DB
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
gw_pid=
cleanup() { [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
gateway=$(pg_config --bindir)/connector-gateway
[ -x "$gateway" ] || { echo "$gateway is missing: run make install" >&2; exit 2; }

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
sql -c 'CREATE EXTENSION connector'
sql -f "$here/../fixtures/crm.sql" -c "SELECT connector.register_app('crm', pg_temp.crm_spec())" >/dev/null
sql -c "DROP ROLE IF EXISTS ssf_bench" -c "CREATE ROLE ssf_bench LOGIN PASSWORD 'bench'" \
	-c "GRANT connector_platform TO ssf_bench" >/dev/null 2>&1
token=$(sql -c "SELECT connector.add_token('crm', 'receiver')")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$gateway" --listen "127.0.0.1:$port" --insecure-http --pool 2 \
	--database "host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=$DB user=ssf_bench password=bench" \
	2>"$work/gateway.log" &
gw_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# N/2 grants in one transaction, revoked in a second
backlog() {
	sql -c "INSERT INTO \"Crm App\".user_roles SELECT 1, 2, NULL FROM generate_series(1, $((N / 2)))" \
		-c "DELETE FROM \"Crm App\".user_roles WHERE user_id = 1 AND role_id = 2" \
		-c "SELECT connector._seal()" >/dev/null
}

for alg in RS256 ES256; do
	sql -c "SELECT connector.add_signing_key('crm', '$alg')" >/dev/null
	start=$(sql -c "SELECT connector._seal(); SELECT last_position FROM connector.seal_state" | tail -1)
	python3 - "$port" "$token" "$N" "$alg" "$work/stream" <<'PY' &
import http.client, json, sys, time
port, token, n, alg, streamfile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
def call(method, path, body):
    c.request(method, path, json.dumps(body), h)
    r = c.getresponse(); d = r.read()
    assert r.status < 300, (r.status, d[:300])
    return json.loads(d) if d else None
s = call("POST", "/ssf/crm/stream", {"description": "bench " + alg})
open(streamfile, "w").write("ready")
path = "/ssf/crm/poll/" + s["stream_id"]
while open(streamfile).read().strip() != "go":
    time.sleep(0.05)
t0, got, ack = time.monotonic(), 0, []
while got < n:
    d = call("POST", path, {"maxEvents": 1000, "returnImmediately": True, "ack": ack})
    ack = list(d["sets"]); got += len(ack)
    if not ack:
        time.sleep(0.01)
call("POST", path, {"maxEvents": 0, "returnImmediately": True, "ack": ack})
dt = time.monotonic() - t0
print(f"{alg} poll: {got} SETs in {dt:.2f} s, {got / dt:.0f} SETs/s")
PY
	poller=$!
	until [ "$(cat "$work/stream" 2>/dev/null)" = ready ]; do sleep 0.05; done
	backlog
	echo go >"$work/stream"
	wait "$poller"
	t0=$(date +%s.%N)
	got=$(sql -c "SELECT count(*) FROM connector.changes('crm', $start, $N)")
	t1=$(date +%s.%N)
	awk -v n="$got" -v a="$t0" -v b="$t1" -v alg="$alg" \
		'BEGIN {printf "baseline changes(): %d events in %.2f s, %.0f events/s (same events as the %s poll)\n", n, b - a, n / (b - a), alg}'
	rm -f "$work/stream"
done
