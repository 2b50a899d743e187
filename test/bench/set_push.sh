#!/usr/bin/env bash
# SET push benchmark (issue 17 item 6, spec section 12: at least 1,000 RS256
# SETs per second pushed to a local receiver): the dispatcher draining a
# backlog of N events (grants and revocations, one SET each: SCIM
# prov:patch:notice) to test/bench/fast_receiver.py answering 202 at once,
# in one run:
#
#   webhook   the baseline: Standard Webhooks messages (HMAC), batch_size 1
#   RS256     SETs signed with a 2048-bit RSA key, one POST each (RFC 8935)
#   ES256     the same with a P-256 key
#
# each on an ordered endpoint of its own (one request in flight, as spec
# section 7 orders), and each SET format again with "ordered": false (up to
# connector.max_in_flight requests in flight), timed from the endpoint's
# creation (the SETs are rendered and signed by the dispatcher as it goes)
# to the last request the receiver logged.
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/set_push.sh
#
# N (default 10000) may be set.
set -euo pipefail
N=${N:-10000}
here="$(cd "$(dirname "$0")" && pwd)"
export PGDATABASE=connector_bench_set_push
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.0f", n / t}'; }
work=$(mktemp -d)
rx_pid=
cleanup() { [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

dropdb --if-exists "$PGDATABASE" >/dev/null 2>&1
createdb "$PGDATABASE"
sql -c 'ALTER SYSTEM SET connector.allow_private_targets = on' -c 'SELECT pg_reload_conf()' >/dev/null
sql -c 'CREATE EXTENSION connector'
sql -f "$here/../fixtures/crm.sql" -c "SELECT connector.register_app('crm', pg_temp.crm_spec())" >/dev/null
sql -c "SELECT connector.add_signing_key('crm', 'RS256')" >/dev/null

coproc RX { exec python3 "$here/fast_receiver.py" --log "$work/rx.log" --status 202; }
rx_pid=$RX_PID
read -r port <&"${RX[0]}"
url="http://127.0.0.1:$port/hook"

# the backlog: N/2 grants in one transaction, revoked in a second
before=$(sql -c "SELECT connector._seal(); SELECT last_position FROM connector.seal_state" | tail -1)
sql -c "INSERT INTO \"Crm App\".user_roles SELECT 1, 2, NULL FROM generate_series(1, $((N / 2)))" \
	-c "DELETE FROM \"Crm App\".user_roles WHERE user_id = 1 AND role_id = 2" \
	-c "SELECT connector._seal()" >/dev/null
n=$(sql -c "SELECT last_position - $before FROM connector.seal_state")
echo "== backlog: $n events after position $before"

requests() { wc -l <"$work/rx.log"; }
# run NAME OPTS COUNT: COUNT endpoints with OPTS from the backlog's start,
# wait for COUNT * n requests, print the rate, remove the endpoints
run() {
	local name=$1 opts=$2 count=${3:-1} t0 t i
	: >"$work/rx.log"
	t0=$(now)
	for i in $(seq 1 "$count"); do
		sql -c "SELECT connector.add_endpoint('crm', '$name$i', '$url', '$secret',
			jsonb_build_object('from_position', $before) || '$opts')" >/dev/null
	done
	while [ "$(requests)" -lt $((n * count)) ]; do sleep 0.2; done
	t=$(awk -v a="$t0" '{b = $1} END {printf "%.3f", b - a}' "$work/rx.log")
	echo "   $((n * count)) requests in ${t}s: $(rate $((n * count)) "$t") per second"
	for i in $(seq 1 "$count"); do
		sql -c "SELECT connector.remove_endpoint('crm', '$name$i')" >/dev/null
	done
}

set_opts='{"format": "set", "issuer": "https://bench.example/ssf/crm", "audience": "bench"}'
echo "== webhook (HMAC-SHA256), batch_size 1, ordered: the baseline"
run wh '{}'
echo "== RS256 SETs, ordered"
run rs "$set_opts"
echo "== RS256 SETs, ordered false"
run rsu "$(echo "$set_opts" | sed 's/}$/, "ordered": false}/')"
sql -c "SELECT connector.add_signing_key('crm', 'ES256')" >/dev/null
echo "== ES256 SETs, ordered"
run es "$set_opts"
echo "== ES256 SETs, ordered false"
run esu "$(echo "$set_opts" | sed 's/}$/, "ordered": false}/')"
dropdb "$PGDATABASE"
