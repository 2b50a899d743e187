#!/usr/bin/env bash
# Delivery benchmark (issue 5 item 8, issue 16 item 3): the dispatcher
# against a local receiver that answers at once (test/bench/fast_receiver.py:
# no signature check, one log line per request), on a database whose outbox
# already holds HISTORY older events.  In one run:
#
#   history    HISTORY older events, one per outbox row (as single-row
#              commits leave them), unsealed (as they are while no endpoint
#              exists); the first sealing of them is timed, and the next
#              ones, then VACUUM ANALYZE (what autovacuum would do, done
#              before the measurements rather than in their middle)
#   baseline   the receiver's own rate with one keep-alive Python client
#   unbatched  messages/s draining a backlog of N1 events, batch_size 1
#   latency    commit-to-delivery, idle, one row at a time, LATENCY_RUNS times
#   changes    events/s reading CHANGES_N events with changes() in pages of
#              1000, against the SQL rendering it replaced (_events_sql) and
#              a plain SELECT of the outbox rows that hold them
#   batched    events/s draining a backlog of N2 events, batch_size 100,
#              with the worker's private memory read from /proc before,
#              during and after
#
#   make install && pg_virtualenv -o shared_preload_libraries=connector test/bench/delivery.sh
#
# HISTORY (default 1000000), N1 (20000), N2 (1000000), CHANGES_N (200000)
# and LATENCY_RUNS (50) may be set.
set -euo pipefail
HISTORY=${HISTORY:-1000000}
N1=${N1:-20000}
N2=${N2:-1000000}
CHANGES_N=${CHANGES_N:-200000}
LATENCY_RUNS=${LATENCY_RUNS:-50}
here="$(cd "$(dirname "$0")" && pwd)"
export PGDATABASE=connector_bench_delivery
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.0f", n / t}'; }
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

echo "== history: $HISTORY older events, one per outbox row, unsealed"
# Written straight into the outbox in the trigger's compact form (a grant of
# role 2 to one of 1000 accounts, origin "direct"), with transaction ids of
# an epoch no real transaction reaches, so no event id is shared.
t=$(now)
sql -c "INSERT INTO connector.outbox (position, txid, seq, n, app, occurred_at, origin, events)
	SELECT NULL, ((1000::bigint << 32) + i)::text::xid8, 0, 1, 'crm',
		   now() - interval '1 hour' + i * interval '1 millisecond',
		   '[\"direct\",\"app\",\"app\",\"crm-web\",\"10.0.0.7\"]',
		   format('[[6,[\"%s\",\"user%s\",\"human\"],[\"2\",\"editor\"],{\"user_id\":%s,\"role_id\":2,\"valid_until\":null}]]',
				  i % 1000, i % 1000, i % 1000)
	  FROM generate_series(1, $HISTORY) i"
echo "   written in $(since "$t")s"
t=$(now)
sealed=$(sql -c "SELECT connector._seal()")
echo "   first sealing: $sealed events in $(since "$t")s"
# the sealed rows' old versions stay in the position index (key NULL) until
# vacuum: the next look for unsealed rows reads them once
seals=""
for i in 1 2 3; do
	t=$(now)
	sql -c "SELECT connector._seal()" >/dev/null
	seals="$seals $(awk -v s="$(since "$t")" 'BEGIN {printf "%.0f ms", s * 1000}')"
done
echo "   sealing with nothing to seal, three times in a row (each with psql's start):$seals"
# what autovacuum does to the sealed history sooner or later, done now so
# that it does not run (on the two cores) in the middle of a measurement
t=$(now)
sql -c "VACUUM ANALYZE connector.outbox"
echo "   VACUUM ANALYZE of the outbox: $(since "$t")s; then sealing with nothing to seal: $( t=$(now); sql -c "SELECT connector._seal()" >/dev/null; awk -v s="$(since "$t")" 'BEGIN {printf "%.0f ms", s * 1000}')"
echo "   outbox: $(sql -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('connector.outbox')) FROM connector.outbox")"

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
# private memory of a process, kB: anonymous resident (status) and private
# pages of every mapping (smaps_rollup)
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
private_kb() { awk '/^Private_(Clean|Dirty)/ {n += $2} END {print n + 0}' "/proc/$1/smaps_rollup"; }
memory() { echo "RssAnon $(anon_kb "$1") kB, private $(private_kb "$1") kB"; }
# events logged by the receiver so far
events_in() { awk '{n += $3} END {print n + 0}' "$work/rx.log"; }
# drain: wait until the receiver has $1 events; prints seconds from the
# endpoint's creation to the last request
drain() {
	local want=$1 sample=${2:-}
	while [ "$(events_in)" -lt "$want" ]; do
		[ -n "$sample" ] && echo "$(anon_kb "$sample") $(private_kb "$sample")" >>"$work/mem"
		sleep 0.5
	done
	awk -v a="$(cat "$work/t_start")" '{b = $1} END {printf "%.3f\n", b - a}' "$work/rx.log"
}

# A backlog of n events (one transaction of n grants, then revoked in a
# second, so the table stays small), sealed; prints the last position before it.
make_backlog() {
	local n=$1 before
	before=$(sql -c "SELECT connector._seal(); SELECT last_position FROM connector.seal_state" | tail -1)
	sql -c "INSERT INTO \"Crm App\".user_roles SELECT 1, 2, NULL FROM generate_series(1, $((n / 2)))" \
		-c "DELETE FROM \"Crm App\".user_roles WHERE user_id = 1 AND role_id = 2" \
		-c "SELECT connector._seal()" >/dev/null
	echo "$before"
}
# An endpoint whose cursor is $1 (from_position is the cursor: the last
# position not to send).
endpoint() {
	local from=$1 opts=$2 name=$3
	: >"$work/rx.log"
	now >"$work/t_start"
	sql -c "SELECT connector.add_endpoint('crm', '$name', '$url', '$secret',
		jsonb_build_object('from_position', $from) || '$opts')" >/dev/null
}

echo "== unbatched: backlog of $N1 events, batch_size 1, one ordered endpoint"
from=$(make_backlog "$N1")
endpoint "$from" '{}' unbatched
t1=$(drain "$N1")
echo "   $N1 messages in ${t1}s: $(rate "$N1" "$t1") messages/s (target >= 3,000; baseline $base requests/s)"

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

echo "== backlog of $N2 events for changes() and the batched endpoint"
t=$(now)
from=$(make_backlog "$N2")
sql -c "VACUUM ANALYZE connector.outbox"
echo "   captured, sealed and vacuumed in $(since "$t")s; outbox: $(sql -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('connector.outbox')) FROM connector.outbox")"

echo "== changes(): $CHANGES_N events in pages of 1000, each page a statement of its own"
# the same pages three ways; the output goes through psql as a reader gets it
pages() {
	local tmpl=$1 p=$from
	while [ "$p" -lt "$((from + CHANGES_N))" ]; do
		echo "${tmpl//%s/$p}"
		p=$((p + 1000))
	done
}
read_pages() { local t; t=$(now); sql -o /dev/null -f "$1"; since "$t"; }
pages "SELECT position, event FROM connector.changes('crm', %s, 1000);" >"$work/changes.sql"
# the SQL rendering: _events_sql, or before it existed (older code, for a
# comparison with the same script) _events itself
old_fn=$(sql -c "SELECT CASE WHEN to_regproc('connector._events_sql') IS NULL THEN '_events' ELSE '_events_sql' END")
pages "SELECT position, event FROM connector.$old_fn('crm', %s, 1000);" >"$work/old.sql"
pages "SELECT count(*) FROM connector.changes('crm', %s, 1000);" >"$work/count.sql"
pages "SELECT position, events FROM connector.outbox WHERE app = 'crm' AND position > %s - 1000 AND position <= %s + 1000 AND position + n - 1 > %s ORDER BY position;" >"$work/plain.sql"
# the first read of rows just written costs more (hint bits, the TOAST
# chunks, autovacuum of the sealed history competing): timed apart
t0=$(read_pages "$work/plain.sql")
tp=$(read_pages "$work/plain.sql")
tc=$(read_pages "$work/changes.sql")
to=$(read_pages "$work/old.sql")
tn=$(read_pages "$work/count.sql")
echo "   first read of the rows (plain SELECT): $(rate "$CHANGES_N" "$t0") events/s (${t0}s)"
echo "   changes():                  $(rate "$CHANGES_N" "$tc") events/s (${tc}s; target >= 200,000)"
echo "   changes(), counted in the server (no transfer): $(rate "$CHANGES_N" "$tn") events/s (${tn}s)"
echo "   the SQL rendering replaced: $(rate "$CHANGES_N" "$to") events/s (${to}s)"
echo "   plain SELECT of the rows:   $(rate "$CHANGES_N" "$tp") events/s (${tp}s; compact text, not rendered)"

echo "== batched: backlog of $N2 events, batch_size 100, worker memory sampled"
pid=$(worker_pid)
echo "   worker pid $pid, before: $(memory "$pid")"
: >"$work/mem"
endpoint "$from" '{"batch_size": 100}' batched
t2=$(drain "$N2" "$pid")
echo "   $N2 events in ${t2}s: $(rate "$N2" "$t2") events/s (target >= 100,000)"
awk '{a[NR] = $1; p[NR] = $2} END {if (NR) printf "   during (%d samples, one every 0.5 s): RssAnon %d..%d kB, private %d..%d kB; at 1/4, 1/2, 3/4, end: RssAnon %d, %d, %d, %d kB\n", NR, min(a), max(a), min(p), max(p), a[int(NR / 4) + 1], a[int(NR / 2) + 1], a[int(NR * 3 / 4) + 1], a[NR]}
	function min(x,  i, m) {m = x[1]; for (i in x) if (x[i] < m) m = x[i]; return m}
	function max(x,  i, m) {m = x[1]; for (i in x) if (x[i] > m) m = x[i]; return m}' "$work/mem"
sleep 2
echo "   after: $(memory "$pid") (same worker: $([ "$(worker_pid)" = "$pid" ] && echo yes || echo no))"
echo "   status: $(sql -c "SELECT format('pending_events %s, delivered %s', pending_events, delivered) FROM connector.status WHERE endpoint = 'batched'") (read in $( t=$(now); sql -c 'SELECT * FROM connector.status' >/dev/null; since "$t")s)"
