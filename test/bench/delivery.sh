#!/usr/bin/env bash
# Delivery benchmark (issue 5 item 8): the dispatcher against a local
# receiver that answers at once (test/bench/fast_receiver.py: no signature
# check, one log line per request).  In one run:
#
#   baseline   the receiver's own rate with one keep-alive Python client
#   unbatched  messages/s draining a backlog of N1 events, batch_size 1
#   batched    events/s draining a backlog of N2 events, batch_size 100,
#              with the worker's RSS sampled from /proc before, during, after
#   latency    commit-to-delivery, idle, one row at a time, 50 times: median
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/delivery.sh
#
# N1 (default 20000), N2 (default 200000) and LATENCY_RUNS (default 50) may be set.
set -euo pipefail
N1=${N1:-20000}
N2=${N2:-200000}
LATENCY_RUNS=${LATENCY_RUNS:-50}
here="$(cd "$(dirname "$0")" && pwd)"
export PGDATABASE=connector_bench_delivery
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
rx_pid=
cleanup() { [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

createdb "$PGDATABASE"
sql -c 'ALTER SYSTEM SET connector.allow_private_targets = on' -c 'SELECT pg_reload_conf()' >/dev/null
sql -c 'CREATE EXTENSION connector'
# crm_spec() lives in pg_temp: the fixture and register_app share one session
sql -f "$here/../fixtures/crm.sql" -c "SELECT connector.register_app('crm', pg_temp.crm_spec())" >/dev/null

coproc RX { exec python3 "$here/fast_receiver.py" --log "$work/rx.log"; }
rx_pid=$RX_PID
read -r port <&"${RX[0]}"
url="http://127.0.0.1:$port/hook"
: >"$work/rx.log"

echo "== baseline: one keep-alive Python client against the same receiver"
base=$(python3 "$here/fast_receiver.py" --client "$url" 5000)
echo "   $base requests/s"
: >"$work/rx.log"

worker_pid() { sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'connector dispatcher' AND datname = current_database()"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
# events logged by the receiver so far
events_in() { awk '{n += $3} END {print n + 0}' "$work/rx.log"; }
# drain: wait until the receiver has $1 events; prints seconds from the
# endpoint's creation to the last request
drain() {
	local want=$1 sample=${2:-} t_end
	while [ "$(events_in)" -lt "$want" ]; do
		[ -n "$sample" ] && echo "$(date +%s.%N) $(rss_kb "$sample") $(anon_kb "$sample")" >>"$work/rss"
		sleep 0.5
	done
	awk -v a="$(cat "$work/t_start")" '{b = $1} END {printf "%.3f\n", b - a}' "$work/rx.log"
}

# A backlog of n events (one transaction of n grants, then revoked in a second, so
# the table stays small), then an endpoint that starts before it.
backlog() {
	local n=$1 opts=$2 name=$3 before
	before=$(sql -c "SELECT connector._seal(); SELECT last_position FROM connector.seal_state")
	before=$(echo "$before" | tail -1)
	sql -c "INSERT INTO \"Crm App\".user_roles SELECT 1, 2, NULL FROM generate_series(1, $((n / 2)))" \
		-c "DELETE FROM \"Crm App\".user_roles WHERE user_id = 1 AND role_id = 2" \
		-c "SELECT connector._seal()" >/dev/null
	: >"$work/rx.log"
	date +%s.%N >"$work/t_start"
	sql -c "SELECT connector.add_endpoint('crm', '$name', '$url', '$secret',
		jsonb_build_object('from_position', $before) || '$opts')" >/dev/null
}

echo "== unbatched: backlog of $N1 events, batch_size 1, one endpoint"
backlog "$N1" '{}' unbatched
t1=$(drain "$N1")
rate1=$(awk -v n="$N1" -v t="$t1" 'BEGIN {printf "%.0f", n / t}')
echo "   $N1 messages in ${t1}s: $rate1 messages/s (target >= 1,000; baseline $base requests/s)"

echo "== idle commit-to-delivery latency, $LATENCY_RUNS single-row commits"
: >"$work/lat"
for i in $(seq 1 "$LATENCY_RUNS"); do
	sleep 0.2
	n0=$(wc -l <"$work/rx.log")
	t0=$(sql -c "INSERT INTO \"Crm App\".user_roles VALUES (2, 7, NULL)" -c "SELECT extract(epoch FROM clock_timestamp())" | tail -1)
	while [ "$(wc -l <"$work/rx.log")" -le "$n0" ]; do sleep 0.001; done
	t1=$(tail -1 "$work/rx.log" | cut -d' ' -f1)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) * 1000}' >>"$work/lat"
	sql -c "DELETE FROM \"Crm App\".user_roles WHERE user_id = 2 AND role_id = 7" >/dev/null
	while [ "$(wc -l <"$work/rx.log")" -le "$((n0 + 1))" ]; do sleep 0.001; done
done
sort -n "$work/lat" | awk '{v[NR] = $1} END {printf "   median %.1f ms, p90 %.1f ms, max %.1f ms (target: median < 50 ms)\n", v[int((NR + 1) / 2)], v[int(NR * 0.9)], v[NR]}'
sql -c "SELECT connector.remove_endpoint('crm', 'unbatched')" >/dev/null

echo "== batched: backlog of $N2 events, batch_size 100, worker RSS sampled"
pid=$(worker_pid)
echo "   worker pid $pid, before: VmRSS $(rss_kb "$pid") kB, RssAnon $(anon_kb "$pid") kB"
: >"$work/rss"
backlog "$N2" '{"batch_size": 100}' batched
t2=$(drain "$N2" "$pid")
rate2=$(awk -v n="$N2" -v t="$t2" 'BEGIN {printf "%.0f", n / t}')
echo "   $N2 events in ${t2}s: $rate2 events/s (target >= 20,000)"
awk '{r[NR] = $2; a[NR] = $3} END {if (NR) printf "   during (%d samples): VmRSS %d..%d kB, RssAnon %d..%d kB\n", NR, min(r), max(r), min(a), max(a)}
	function min(x,  i, m) {m = x[1]; for (i in x) if (x[i] < m) m = x[i]; return m}
	function max(x,  i, m) {m = x[1]; for (i in x) if (x[i] > m) m = x[i]; return m}' "$work/rss"
sleep 2
echo "   after: VmRSS $(rss_kb "$pid") kB, RssAnon $(anon_kb "$pid") kB (same worker: $([ "$(worker_pid)" = "$pid" ] && echo yes || echo no))"
